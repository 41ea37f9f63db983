"""How pure label-free mined tracklets are against ground truth (evaluation only: never feeds training)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..io import Detections
from .scoring import match_identities


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

    Evaluation only. Detections match gt boxes at IoU >= ``min_iou`` (see :func:`.scoring.match_identities`).
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
