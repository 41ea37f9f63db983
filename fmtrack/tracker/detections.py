"""Checking and filtering one frame's detections before association."""

from __future__ import annotations

import numpy as np

from .config import TrackerConfig


def validate_frame_input(boxes: np.ndarray, scores: np.ndarray | None, features: np.ndarray | None,
                         needs_features: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Check shapes and values of one frame's input; raise ValueError with a plain message.

    Boxes with non-positive width or height are dropped (returned count), not an error: detectors
    emit them and a streaming caller should not have to filter them first.
    Returns ``(boxes (N, 4) float64, scores (N,) float64, features (N, D) float32 or None, dropped)``.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) tlwh, got {boxes.shape}")
    n = len(boxes)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != n:
        raise ValueError(f"got {n} boxes but {len(scores)} scores")
    if features is None:
        if needs_features:
            raise ValueError("this tracker configuration uses appearance: pass features (N, D)")
    else:
        features = np.asarray(features, dtype=np.float32)
        if features.size == 0 and features.ndim != 2:
            features = features.reshape(n, 0)
        if features.ndim != 2 or len(features) != n:
            raise ValueError(f"features must have shape (N={n}, D), got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError(f"features row {int(np.argmax(~np.isfinite(features).all(axis=1)))} is not finite")
    for name, values in (("boxes", boxes), ("scores", scores)):
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{name} row {row} is not finite: {values[row]}")
    ok = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if ok.all():
        return boxes, scores, features, 0
    return boxes[ok], scores[ok], None if features is None else features[ok], int((~ok).sum())


def select_detections(boxes: np.ndarray, scores: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """Indices of detections kept: confidence, minimum height, then non-maximum suppression."""
    keep = np.flatnonzero((scores >= config.min_confidence) & (boxes[:, 3] >= config.min_height))
    if config.nms_max_overlap < 1.0 and len(keep) > 1:
        import cv2  # only needed when NMS is on

        picked = cv2.dnn.NMSBoxes(boxes[keep].tolist(), scores[keep].tolist(), float("-inf"),
                                  config.nms_max_overlap)
        keep = np.sort(keep[np.asarray(picked, dtype=np.int64).reshape(-1)])
    return keep
