"""Features of a whole sequence, computed once from the images and cached as ``N x (7 + D)`` .npy.

The cache file is named after the sequence, the embedder's ``identity`` (which for learned models
includes a digest of the weights, so new weights never reuse old features) and the detection file,
so ``fmtrack run --features`` and ``fmtrack eval`` can reuse it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io import Detections, ImageSequence, SequenceInfo, atomic_path, cache_dir as cache_dir_for
from .base import Embedder


def embed_sequence(info: SequenceInfo, detections: Detections, embedder: Embedder,
                   out_path: str | Path, progress: bool = True) -> Path:
    """Embed every detection of a sequence from its frames; write ``N x (7 + D)`` float32 atomically.

    Columns: frame, -1, left, top, width, height, confidence, then the D-dim descriptor.
    """
    images = ImageSequence(info)
    rows = np.zeros((len(detections), 7 + embedder.dim), dtype=np.float32)
    rows[:, 0] = detections.frames
    rows[:, 1] = -1
    rows[:, 2:6] = detections.boxes
    rows[:, 6] = detections.scores
    frames = np.unique(detections.frames)
    for frame in tqdm(frames, desc=f"embed {info.name}", disable=not progress, unit="frame"):
        rows_of_frame = detections.frame_slice(int(frame))
        rows[rows_of_frame, 7:] = embedder.embed(images[int(frame)], detections.boxes[rows_of_frame], int(frame))
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        np.save(tmp, rows)
    return out_path


def cached_features(info: SequenceInfo, detections: Detections, embedder: Embedder,
                    cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Path of the cached features for this sequence, detections and embedder; computed if absent."""
    # Scores do not change a descriptor, so raw and normalised detections share one cache entry.
    source = hashlib.sha256(np.ascontiguousarray(np.column_stack(
        [detections.frames, detections.boxes])).tobytes()).hexdigest()[:12]
    path = Path(cache_dir or cache_dir_for('features')) / f"{info.name}-{embedder.identity}-{source}.npy"
    if not path.is_file():
        embed_sequence(info, detections, embedder, path, progress)
    return path
