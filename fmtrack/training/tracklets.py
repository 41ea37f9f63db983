"""Label-free tracklets: detections linked frame to frame only where the link cannot be wrong.

A tracklet is a chain of detections in consecutive frames, each link unambiguous: IoU >= ``min_iou``,
a mutual best match, and no competitor (no other detection in the link's row or column of the IoU
matrix overlaps at ``max_competitor`` or more). The chain is cut at any doubt: a missing frame, a
detection too close to another one, two people crossing. Short chains (under ``min_length``
detections) are dropped: they add few positive pairs and more of them sit next to a crossing.
Two crops of one tracklet are then, almost surely, one person seen at two moments: the positive
pairs of the tracklet term of the training objective (:func:`.objective.tracklet_infonce`).

:func:`fmtrack.benchmarks.tracklet_purity.tracklet_purity` checks that "almost surely" against
ground truth; it is for evaluation only and never feeds training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io import Detections
from ..tracker.linking import unambiguous_links


@dataclass(frozen=True)
class MiningConfig:
    """Thresholds of tracklet mining; IoUs are dimensionless in [0, 1], ``min_length`` in detections.

    Defaults are those of the reference README's tracklet self-supervision probe (IoU >= 0.7, mutual
    best, no competitor >= 0.3, tracklets of 10+ detections: 106 tracklets on MOT16-11's DPM
    detections there).
    """

    min_iou: float = 0.7          # a link's own IoU
    max_competitor: float = 0.3   # any other overlap this large in the link's row or column cuts it
    min_length: int = 10          # shorter chains are dropped

    def __post_init__(self) -> None:
        # unambiguous_links counts the link itself among the overlaps >= max_competitor.
        if not 0.0 < self.max_competitor <= self.min_iou <= 1.0:
            raise ValueError(f"need 0 < max_competitor <= min_iou <= 1, got {self.max_competitor}, {self.min_iou}")
        if self.min_length < 2:
            raise ValueError(f"min_length must be at least 2 (one link), got {self.min_length}")


def mine_tracklets(detections: Detections, config: MiningConfig = MiningConfig()) -> np.ndarray:
    """(N,) int64 tracklet id of each row of ``detections``, -1 for rows in no kept tracklet.

    Ids are 0, 1, ... in the order of each tracklet's first row (so by first frame).
    """
    successor = unambiguous_links(detections, config.min_iou, config.max_competitor)
    # Mutual best matches give every row at most one predecessor, so the links form disjoint chains.
    has_predecessor = np.zeros(len(detections), dtype=bool)
    has_predecessor[successor[successor >= 0]] = True
    ids = np.full(len(detections), -1, dtype=np.int64)
    next_id = 0
    for start in np.flatnonzero(~has_predecessor & (successor >= 0)):
        chain = [int(start)]
        while successor[chain[-1]] >= 0:
            chain.append(int(successor[chain[-1]]))
        if len(chain) >= config.min_length:
            ids[chain] = next_id
            next_id += 1
    return ids
