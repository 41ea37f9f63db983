"""Label-free tracklets: detections linked frame to frame only where the link cannot be wrong.

A tracklet is a chain of detections in consecutive frames, each link unambiguous: IoU >= ``min_iou``,
a mutual best match, and no competitor (no other detection in the link's row or column of the IoU
matrix overlaps at ``max_competitor`` or more). The chain is cut at any doubt: a missing frame, a
detection too close to another one, two people crossing. Short chains (under ``min_length``
detections) are dropped: they add few positive pairs and more of them sit next to a crossing.
Two crops of one tracklet are then, almost surely, one person seen at two moments: the positive
pairs of the tracklet term of the training objective (:func:`.objective.tracklet_infonce`).

:func:`tracklet_purity` checks that "almost surely" against ground truth; it is for evaluation only
and never feeds training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..embedder.calibration import unambiguous_links
from ..io import Detections
from ..benchmarks.scoring import match_identities


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


@dataclass(frozen=True)
class TrackletPurity:
    """How often mined tracklets follow one ground-truth person.

    link_purity: share of links (consecutive detections of one tracklet) whose two ends match the
    same gt identity, among the ``links`` whose both ends match some gt box (NaN when none does).
    tracklets: the number of tracklets. pure_share: share of the ``matched_tracklets`` (those with at
    least one detection matched) whose matched detections all carry one gt identity.
    """

    link_purity: float
    links: int
    tracklets: int
    matched_tracklets: int
    pure_share: float

    def to_dict(self) -> dict:
        return asdict(self)


def tracklet_purity(detections: Detections, tracklet_ids: np.ndarray, gt: pd.DataFrame,
                    min_iou: float = 0.5) -> TrackletPurity:
    """Purity of ``tracklet_ids`` ((N,) per detection row, -1 = none) against ground truth.

    Evaluation only. Detections match gt boxes at IoU >= ``min_iou`` (see :func:`fmtrack.benchmarks.scoring.match_identities`).
    """
    identity = match_identities(detections, gt, min_iou)
    kept = np.flatnonzero(tracklet_ids >= 0)
    # Rows are sorted by frame, so a stable sort by id lists each tracklet in frame order.
    ordered = kept[np.argsort(tracklet_ids[kept], kind="stable")]
    same_tracklet = tracklet_ids[ordered[1:]] == tracklet_ids[ordered[:-1]]
    first, second = identity[ordered[:-1]][same_tracklet], identity[ordered[1:]][same_tracklet]
    both = (first >= 0) & (second >= 0)
    links = int(both.sum())
    link_purity = float((first[both] == second[both]).mean()) if links else float("nan")
    matched = kept[identity[kept] >= 0]
    per_tracklet = pd.Series(identity[matched]).groupby(tracklet_ids[matched]).nunique()
    pure_share = float((per_tracklet == 1).mean()) if len(per_tracklet) else float("nan")
    return TrackletPurity(link_purity, links, int(len(np.unique(tracklet_ids[kept]))), int(len(per_tracklet)),
                          pure_share)
