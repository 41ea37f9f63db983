"""A hand-crafted, label-free colour descriptor: the honest floor a learned one must clear.

Recipe (../shared/reference/README.md): the crop, clipped to the image, is resized to 32 x 64
(w x h, bilinear: cv2.resize's default, INTER_LINEAR, which the reference's own figures need;
docs/design-decisions.md) and converted to HSV (OpenCV ranges); a hue x saturation histogram with
8 x 8 bins over H in [0, 180) and S in [0, 256) is taken for the upper and the lower half
separately; the two are concatenated (128 values), square-rooted and L2-normalised.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..model.crops import cut_crops

CROP_SIZE = (32, 64)  # width, height
BINS = (8, 8)
RANGES = [0, 180, 0, 256]


class HSVEmbedder:
    """HSV colour histograms of the upper and lower halves of each box: (N, 128) float32."""

    needs_image = True
    needs_colour = True  # on grey frames every crop's histogram is the same (hue and saturation 0)
    dim = 2 * BINS[0] * BINS[1]
    identity = "hsv-v2"  # names cached features; change it when the recipe changes

    def embed(self, image: np.ndarray | None, boxes: np.ndarray, frame: int | None = None) -> np.ndarray:
        if image is None:
            raise ValueError("the HSV embedder needs the frame image")
        crops = cut_crops(image, boxes, CROP_SIZE, cv2.INTER_LINEAR)
        out = np.empty((len(crops), self.dim), dtype=np.float32)
        half = CROP_SIZE[1] // 2
        for i, crop in enumerate(crops):
            hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
            upper = cv2.calcHist([hsv[:half]], [0, 1], None, list(BINS), RANGES).ravel()
            lower = cv2.calcHist([hsv[half:]], [0, 1], None, list(BINS), RANGES).ravel()
            out[i] = np.sqrt(np.concatenate([upper, lower]))
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
