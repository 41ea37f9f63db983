"""Frames of an image sequence, read with OpenCV."""

from __future__ import annotations

import functools
import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, InputWarning
from .motchallenge import SequenceInfo


class ImageSequence:
    """Random access to the frames of a MOTChallenge sequence: ``seq[frame]`` -> (H, W, 3) uint8 BGR.

    A frame whose size differs from seqinfo.ini's imWidth x imHeight is returned as it is, with one
    :class:`InputWarning` per sequence (boxes and camera motion assume the stated size).
    """

    def __init__(self, info: SequenceInfo):
        self.info = info
        self._size_warned = False
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
        height, width = image.shape[:2]
        if (width, height) != (self.info.im_width, self.info.im_height) and not self._size_warned:
            self._size_warned = True
            warnings.warn(InputWarning(f"{path}: frame is {width}x{height} but {self.info.ini_path} says "
                                       f"{self.info.im_width}x{self.info.im_height}"), stacklevel=2)
        return image


def frames_fingerprint(info: SequenceInfo) -> str:
    """A digest of a sequence's frames for cache keys: every frame file's bytes (a missing frame
    counts as absent).

    Content rather than modification times, so a copied data folder keeps its caches; every byte,
    so an edit anywhere that keeps a file's size misses the cache too (its cost: docs/io-boundary.md).
    Within a process the digest of frames whose sizes and modification times are unchanged is
    reused: a run asks once per cache (each part of a fused descriptor, camera motion).
    """
    header = f"{info.seq_length}:{info.im_width}x{info.im_height}"
    folder = info.image_dir
    if not folder.is_dir():
        return "noimages-" + hashlib.sha256(header.encode()).hexdigest()[:16]
    paths = tuple(folder / f"{frame:06d}{info.im_ext}" for frame in range(1, info.seq_length + 1))
    return _digest(header, paths, tuple(map(_stat_key, paths)))


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _digest(header: str, paths: tuple[Path, ...], stats: tuple[tuple[int, int] | None, ...]) -> str:
    """The fingerprint's digest; ``stats`` (size, mtime of each frame) only key the cache."""
    digest = hashlib.sha256(header.encode())
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        # Each frame's length first, so no two sequences of files hash alike by shifting bytes.
        digest.update(b"-1;" if data is None else f"{len(data)};".encode())
        digest.update(data or b"")
    return digest.hexdigest()[:16]
