"""Frames of an image sequence, read with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .motchallenge import SequenceInfo


class ImageSequence:
    """Random access to the frames of a MOTChallenge sequence: ``seq[frame]`` -> (H, W, 3) uint8 BGR."""

    def __init__(self, info: SequenceInfo):
        self.info = info
        if not info.image_dir.is_dir():
            raise InputError(info.image_dir, "image directory not found")

    def path(self, frame: int) -> Path:
        return self.info.image_dir / f"{frame:06d}{self.info.im_ext}"

    def __len__(self) -> int:
        return self.info.seq_length

    def __getitem__(self, frame: int) -> np.ndarray:
        if not 1 <= frame <= self.info.seq_length:
            raise InputError(self.info.image_dir, f"frame {frame} outside 1..{self.info.seq_length}")
        path = self.path(frame)
        if not path.is_file():
            raise InputError(path, "missing image")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(path, "unreadable image")
        return image
