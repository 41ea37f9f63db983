"""Label-free calibration of an appearance threshold, from a training sequence's detections alone.

Two kinds of detection pairs need no identity labels:

- *same*: the two ends of an unambiguous chain of detections ``gap`` frames long (default 15,
  half a second at 30 fps), each link a mutual best match in the next frame with IoU >= ``min_iou``
  (0.7) (optionally also no competitor at IoU >= ``max_competitor``; off by default because
  detectors such as DPM emit overlapping duplicates that would cut every chain): almost surely the same person, seen
  far enough apart that pose and background have changed (consecutive frames alone make every
  descriptor look perfect);
- *different*: two detections of one frame that do not overlap at all: surely two people.

The threshold is the equal-error point of the two distance distributions: the distance at which
the share of same pairs above it equals the share of different pairs below it. The ROC AUC of the
split is reported too, as a label-free measure of how well the descriptor separates people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..io import Detections
from ..tracker.distance import Metric, paired_distance
from ..tracker.linear_assignment import iou_matrix
from ..tracker.linking import unambiguous_links


@dataclass(frozen=True)
class Calibration:
    """threshold: in the metric's units (cosine: 1 - cos; euclidean: true L2 distance)."""

    metric: str
    threshold: float
    equal_error_rate: float
    auc: float
    same_pairs: int
    different_pairs: int

    def to_dict(self) -> dict:
        return asdict(self)


def label_free_pairs(detections: Detections, gap: int = 15, min_iou: float = 0.7, max_competitor: float | None = None,
                     max_different_per_frame: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row-index pairs ``(same (P, 2), different (Q, 2))`` into ``detections``; no labels used."""
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 1:  # 0 would pair each detection with itself
        raise ValueError(f"gap must be a whole number of frames >= 1, got {gap!r}")
    successor = unambiguous_links(detections, min_iou, max_competitor)
    end = np.arange(len(detections))
    for _ in range(gap):
        end = np.where(end >= 0, successor[np.maximum(end, 0)], -1)
    start = np.flatnonzero(end >= 0)
    same = np.column_stack([start, end[start]]).astype(np.int64)
    rng = np.random.default_rng(seed)
    different = []
    for frame in np.unique(detections.frames):
        here = detections.frame_slice(int(frame))
        boxes = detections.boxes[here]
        if len(boxes) > 1:
            apart = np.argwhere(np.triu(iou_matrix(boxes, boxes) == 0.0, k=1))
            if len(apart) > max_different_per_frame:
                apart = apart[rng.choice(len(apart), max_different_per_frame, replace=False)]
            different.append(apart + here.start)
    different = np.concatenate(different).astype(np.int64) if different else np.zeros((0, 2), dtype=np.int64)
    return same, different


def pair_distances(features: np.ndarray, pairs: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances (P,) float64 between the rows of ``features`` (N, D) named by ``pairs`` (P, 2)."""
    a, b = features[pairs[:, 0]].astype(np.float64), features[pairs[:, 1]].astype(np.float64)
    return paired_distance(a, b, metric)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney U)."""
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2.0
    return float(u / (len(positive) * len(negative)))


def calibrate_threshold(features: np.ndarray, detections: Detections,
                        metric: Metric, gap: int = 15) -> Calibration:
    """Equal-error threshold of same vs different label-free pairs (see the module docstring).

    features: (N, D) descriptors of ``detections``' rows.
    """
    same_pairs, different_pairs = label_free_pairs(detections, gap)
    if len(same_pairs) < 10 or len(different_pairs) < 10:
        raise ValueError(f"too few label-free pairs to calibrate ({len(same_pairs)} same, "
                         f"{len(different_pairs)} different): need a longer sequence")
    same = pair_distances(features, same_pairs, metric)
    different = pair_distances(features, different_pairs, metric)
    candidates = np.unique(np.concatenate([same, different]))
    miss = 1.0 - np.searchsorted(np.sort(same), candidates, side="right") / len(same)
    false_accept = np.searchsorted(np.sort(different), candidates, side="right") / len(different)
    best = int(np.argmin(np.abs(miss - false_accept)))
    return Calibration(metric=metric, threshold=float(candidates[best]),
                       equal_error_rate=float((miss[best] + false_accept[best]) / 2),
                       auc=roc_auc(-same, -different), same_pairs=len(same), different_pairs=len(different))
