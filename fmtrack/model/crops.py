"""Cutting detection boxes out of a frame: clipped to the image, never a crash."""

from __future__ import annotations

import cv2
import numpy as np


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer pixel boxes (N, 4) as (x0, y0, x1, y1), clipped to the image, at least 1 pixel each way.

    boxes: (N, 4) float tlwh pixels. A box entirely outside the image shrinks to the nearest
    1-pixel strip at the border, so every detection still gets a (poor) crop.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.clip(np.floor(boxes[:, 0]), 0, width - 1)
    y0 = np.clip(np.floor(boxes[:, 1]), 0, height - 1)
    x1 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2]), x0 + 1, width)
    y1 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3]), y0 + 1, height)
    return np.column_stack([x0, y0, x1, y1]).astype(np.int64)


def cut_crops(image: np.ndarray, boxes: np.ndarray, size: tuple[int, int],
              interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """Crops (N, H, W, 3) uint8 of ``boxes`` (N, 4) tlwh in ``image`` (H, W, 3) uint8 BGR.

    size: (width, height) of each crop in pixels.
    """
    height, width = image.shape[:2]
    out = np.empty((len(boxes), size[1], size[0], 3), dtype=np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(clip_boxes(boxes, width, height)):
        out[i] = cv2.resize(image[y0:y1, x0:x1], size, interpolation=interpolation)
    return out
