"""Checking and filtering one frame's detections before association."""

from __future__ import annotations

import warnings

import numpy as np

from .boxes import MAX_SCORE, MIN_SIZE, as_real, check_finite, check_tlwh, real_array
from .config import TrackerConfig

# Largest |feature value| accepted: squared norms of float32 features up to a few thousand
# dimensions stay finite below it.
MAX_FEATURE = 1e15


def validate_frame_input(boxes: np.ndarray, scores: np.ndarray | None, features: np.ndarray | None,
                         needs_features: bool, feature_dim: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    """Check shapes and values of one frame's input; raise ValueError naming the argument and row.

    boxes: (N, 4) tlwh pixels; a negative width or height, a non-finite value or one beyond 1e6 px
    is an error. Boxes narrower or lower than 1e-6 px are dropped, not an error: detectors emit them
    and a streaming caller should not have to filter them first.
    feature_dim: the D the tracker's appearance memory holds (None: any D).
    Returns ``(boxes (M, 4) float64, scores (M,) float64, features (M, D) float32 or None, rows,
    dropped)``: ``rows`` (M,) are the indices of the kept rows in the input, or None when all N are
    kept; ``dropped`` = N - M.
    """
    boxes = as_real(boxes, "boxes")
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) tlwh, got {boxes.shape}")
    n = len(boxes)
    scores = np.ones(n) if scores is None else as_real(scores, "scores")
    if scores.shape != (n,):  # not flattened: a (2, 2) array for 4 boxes is a mistake, not 4 scores
        raise ValueError(f"scores must have shape (N={n},) for {n} boxes, got shape {scores.shape}")
    if features is None:
        if needs_features:
            raise ValueError("this tracker configuration uses appearance: pass features (N, D)")
    else:
        features = _check_features(features, n, feature_dim)
    all_sized = check_tlwh(boxes)
    if not _all_within(scores, MAX_SCORE):  # scores are float64 here: the test is exact
        check_finite(scores, "scores")
        row = int(np.argmax(np.abs(scores) > MAX_SCORE))
        raise ValueError(f"scores row {row} is out of range: {float(scores[row])!r} "
                         f"(|score| must be at most {MAX_SCORE:g})")
    if all_sized:
        return boxes, scores, features, None, 0
    rows = ((boxes[:, 2] >= MIN_SIZE) & (boxes[:, 3] >= MIN_SIZE)).nonzero()[0]
    return boxes[rows], scores[rows], None if features is None else features[rows], rows, n - len(rows)


def _check_features(features: np.ndarray, n: int, feature_dim: int | None) -> np.ndarray:
    features = real_array(features, "features")
    if features.dtype.itemsize < 4:  # float16 (or small ints): the range test below needs a wider type
        features = features.astype(np.float32)
    if features.size == 0 and features.ndim != 2:
        features = features.reshape(n, 0)
    if features.ndim != 2 or len(features) != n:
        raise ValueError(f"features must have shape (N={n}, D), got {features.shape}")
    if n == 0:
        return features.astype(np.float32)
    if feature_dim is not None and features.shape[1] != feature_dim:
        raise ValueError(f"features have {features.shape[1]} values per row, but this tracker holds "
                         f"{feature_dim}-d features (from its first frame with features)")
    if features.shape[1] == 0:
        raise ValueError(f"features must have shape (N={n}, D) with D >= 1, got {features.shape}")
    if not _all_within(features, MAX_FEATURE) and not float(np.abs(features).max()) <= MAX_FEATURE:  # NaN too
        check_finite(features, "features")
        row = int(np.argmax((np.abs(features) > MAX_FEATURE).any(axis=1)))
        raise ValueError(f"features row {row} is out of range: a value of magnitude "
                         f"{float(np.abs(features[row]).max())!r} (at most {MAX_FEATURE:g})")
    return features.astype(np.float32, copy=False)


def _all_within(values: np.ndarray, limit: float) -> bool:
    """Whether every value lies in [-limit, limit], by two C reductions and no temporary array
    (np.abs would allocate one). False for NaN, and for dtypes other than float and integer (the
    caller then checks those another way)."""
    if values.dtype.kind not in "fiu":
        return False
    flat = values.reshape(-1)
    return not len(flat) or bool(np.minimum.reduce(flat) >= -limit and np.maximum.reduce(flat) <= limit)


def count_duplicates(boxes: np.ndarray) -> int:
    """How many rows of ``boxes`` (N, 4) repeat an earlier row exactly."""
    if len(boxes) < 2:
        return 0
    rows = boxes.tolist()  # a set of tuples: ten times cheaper than a numpy sort at a few rows
    return len(rows) - len(set(map(tuple, rows)))


def select_detections(boxes: np.ndarray, scores: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """Indices (ascending) of the detections kept: confidence, minimum height, the
    ``max_detections`` highest-scoring (with a warning when more pass), then non-maximum suppression.

    boxes: (N, 4) tlwh pixels; scores: (N,).
    """
    keep = ((scores >= config.min_confidence) & (boxes[:, 3] >= config.min_height)).nonzero()[0]
    cap = config.max_detections
    if cap is not None and len(keep) > cap:
        warnings.warn(f"{len(keep)} detections in one frame: keeping the {cap} highest-scoring "
                      f"(TrackerConfig.max_detections; association costs grow as tracks x detections)",
                      RuntimeWarning, stacklevel=2)
        keep = np.sort(keep[np.argsort(-scores[keep], kind="stable")[:cap]])
    if config.nms_max_overlap < 1.0 and len(keep) > 1:
        keep = keep[non_max_suppression(boxes[keep], scores[keep], config.nms_max_overlap)]
    return keep


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, max_overlap: float) -> np.ndarray:
    """Indices (ascending) of the boxes kept by DeepSORT's suppression (deep_sort_app's --nms_max_overlap).

    boxes: (N, 4) tlwh pixels; scores: (N,). Written here because its rule is not IoU (OpenCV's
    NMSBoxes differs, and rejects some thresholds): boxes are taken in decreasing score (on a tie,
    the later row first); each taken box removes every remaining box whose intersection with it,
    divided by the REMAINING box's own area, exceeds ``max_overlap``. Areas and intersections count
    pixels inclusively (width + 1), as DeepSORT does, so identical boxes overlap exactly 1.0 and
    ``max_overlap`` 1.0 keeps everything.
    """
    x1, y1, w, h = boxes.T
    x2, y2 = x1 + w, y1 + h
    area = (w + 1.0) * (h + 1.0)
    order = np.argsort(scores, kind="stable")  # ascending: the next box taken is the last
    taken = []
    while len(order):
        best, rest = order[-1], order[:-1]
        taken.append(best)
        # Clamped to the box's own size: rounding of x + w never makes a box overlap more than all of it.
        width = np.minimum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), w[rest])
        height = np.minimum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), h[rest])
        width, height = np.maximum(0.0, width + 1.0), np.maximum(0.0, height + 1.0)
        order = rest[width * height / area[rest] <= max_overlap]
    return np.sort(np.array(taken, dtype=np.int64))
