"""Appearance features read from a file: DeepSORT's own, or ones cached by ``fmtrack embed``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import Detections, InputError, read_feature_array


class PrecomputedFeatures:
    """Features stored per detection row in an ``N x (7 + D)`` (or DeepSORT ``N x (10 + D)``) array.

    ``detections`` holds the file's rows; ``embed`` looks boxes up among one frame's rows, so the
    tracker can be fed exactly those detections (or any subset of them).
    """

    needs_image = False

    def __init__(self, path: str | Path, seq_length: int | None = None):
        self.path = Path(path)
        self.detections: Detections = read_feature_array(self.path, seq_length)
        self.dim = int(self.detections.features.shape[1])
        self.identity = f"file-{self.path.stem}"

    def check_rows(self, detections: Detections, source: str | Path) -> None:
        """InputError unless this file's rows are ``detections`` (read from ``source``): the same
        frames and boxes (within 1e-3 px) in frame order; names the first row that differs."""
        mine = self.detections
        count = min(len(mine), len(detections))
        # 1e-3 px, plus float32's rounding of large coordinates in files written as float32.
        tolerance = 1e-3 + 1e-6 * np.abs(detections.boxes[:count])
        differs = (mine.frames[:count] != detections.frames[:count]) | (
            np.abs(mine.boxes[:count] - detections.boxes[:count]) > tolerance).any(axis=1)
        if differs.any():
            i = int(np.argmax(differs))
            raise InputError(self.path, f"does not match {source}: detection {i + 1} (in frame order) is frame "
                                        f"{mine.frames[i]} box {np.round(mine.boxes[i], 2).tolist()} here but frame "
                                        f"{detections.frames[i]} box {np.round(detections.boxes[i], 2).tolist()} "
                                        "there (features of another sequence or detector?)")
        if len(mine) != len(detections):
            raise InputError(self.path, f"does not match {source}: {len(mine)} detections here, {len(detections)} "
                                        f"there (the first {count} agree)")

    def embed(self, image: np.ndarray | None, boxes: np.ndarray, frame: int | None = None) -> np.ndarray:
        """Features (N, D) float32 of boxes (N, 4) tlwh, which must be rows of ``frame``."""
        if frame is None:
            raise ValueError("PrecomputedFeatures.embed needs the frame number")
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        stored_boxes, _, stored_features = self.detections.at(frame)
        if len(boxes) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(stored_boxes) == 0:
            raise InputError(self.path, f"no feature rows for frame {frame}")
        # Each box is looked up by its coordinates (to 1e-3 pixel) among the frame's rows.
        diff = np.abs(boxes[:, None, :] - stored_boxes[None, :, :]).max(axis=2)
        row = diff.argmin(axis=1)
        missing = diff[np.arange(len(boxes)), row] > 1e-3
        if missing.any():
            box = boxes[int(np.argmax(missing))]
            raise InputError(self.path, f"frame {frame}: no feature row for box {np.round(box, 2).tolist()}")
        return stored_features[row]
