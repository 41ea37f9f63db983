"""Features of a whole sequence, computed once from the images and cached as ``N x (7 + D)`` .npy.

The cache key covers everything that determines the features: the embedder's ``identity`` (for
learned models a digest of the weights and of the sidecar's normalisation and architecture), the
detection boxes and a fingerprint of the frames (:func:`fmtrack.io.images.frames_fingerprint`).
Scores are not part of it: they do not change a descriptor. A cache file that cannot be read or
does not match the detections is deleted and recomputed with a warning; non-finite features are
never cached.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io import (Detections, ImageSequence, InputError, InputWarning, SequenceInfo, atomic_write,
                  cache_dir as cache_dir_for, check_cache_entry, read_feature_array)
from ..io.images import frames_fingerprint
from ..io.names import name_problem
from .base import Embedder
from .fused import FusedEmbedder


def _descriptor_source(embedder: Embedder) -> str | None:
    """The file behind a descriptor (weights), for error messages."""
    path = getattr(embedder, "weights_path", None) or getattr(embedder, "path", None)
    return None if path is None else str(path)


def embed_rows(info: SequenceInfo, detections: Detections, embedder: Embedder, progress: bool = True) -> np.ndarray:
    """``N x (7 + D)`` float32 rows: frame, -1, left, top, width, height, confidence, descriptor.

    Raises InputError naming the descriptor (its weights file when it has one) when a descriptor
    value is not finite.
    """
    return _embed_rows_many(info, detections, [embedder], progress)[0]


def _embed_rows_many(info: SequenceInfo, detections: Detections, embedders: list[Embedder],
                     progress: bool = True) -> list[np.ndarray]:
    """:func:`embed_rows` of several embedders in one pass over the frames (each decoded once)."""
    images = ImageSequence(info)
    tables = []
    for embedder in embedders:
        rows = np.zeros((len(detections), 7 + embedder.dim), dtype=np.float32)
        rows[:, 0] = detections.frames
        rows[:, 1] = -1
        rows[:, 2:6] = detections.boxes
        rows[:, 6] = detections.scores
        tables.append(rows)
    frames = np.unique(detections.frames)
    for frame in tqdm(frames, desc=f"embed {info.name}", disable=not progress, unit="frame"):
        rows_of_frame = detections.frame_slice(int(frame))
        image = images[int(frame)]
        for embedder, rows in zip(embedders, tables):
            features = embedder.embed(image, detections.boxes[rows_of_frame], int(frame))
            if not np.isfinite(features).all():
                raise InputError(_descriptor_source(embedder), f"descriptor {embedder.identity} gave non-finite "
                                                               f"values in frame {int(frame)} of {info.name} "
                                                               "(nothing was cached)")
            rows[rows_of_frame, 7:] = features
    return tables


def _save(rows: np.ndarray, out_path: Path, inputs: tuple = ()) -> Path:
    # Through a file object: np.save given a path appends ".npy" to names without it.
    with atomic_write(out_path, "wb", inputs=inputs) as fh:
        np.save(fh, rows)
    return out_path


def embed_sequence(info: SequenceInfo, detections: Detections, embedder: Embedder,
                   out_path: str | Path, progress: bool = True) -> Path:
    """Embed every detection of a sequence from its frames; write ``N x (7 + D)`` float32 atomically
    to exactly ``out_path`` (see :func:`embed_rows` for the columns)."""
    return _save(embed_rows(info, detections, embedder, progress), Path(out_path))


def feature_cache_path(info: SequenceInfo, detections: Detections, embedder: Embedder,
                       cache_dir: str | Path | None = None) -> Path:
    """Where the features of these detections, frames and descriptor are cached."""
    key = hashlib.sha256(embedder.identity.encode())
    key.update(np.ascontiguousarray(np.column_stack([detections.frames, detections.boxes])).tobytes())
    key.update(frames_fingerprint(info).encode())
    label = embedder.identity if name_problem(f"{info.name}-{embedder.identity}") is None else "descriptor"
    return Path(cache_dir or cache_dir_for("features")) / f"{info.name}-{label}-{key.hexdigest()[:16]}.npy"


def _cache_problem(path: Path, detections: Detections, dim: int) -> str | None:
    """Why a cache file cannot serve these detections, or None when it can."""
    try:
        cached = read_feature_array(path)
    except InputError as err:
        return err.problem
    if len(cached) != len(detections) or cached.features.shape[1] != dim:
        return f"holds {len(cached)} x {cached.features.shape[1]} features, expected {len(detections)} x {dim}"
    if not (np.array_equal(cached.frames, detections.frames)
            and np.allclose(cached.boxes, detections.boxes, rtol=0, atol=1e-2)):
        return "its rows are not these detections"
    return None


def cached_features(info: SequenceInfo, detections: Detections, embedder: Embedder,
                    cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Path of the cached features for this sequence, detections and embedder; computed if absent
    or unusable (then replaced, with an InputWarning)."""
    return cached_features_many(info, detections, [embedder], cache_dir, progress)[0]


def cached_features_many(info: SequenceInfo, detections: Detections, embedders: list[Embedder],
                         cache_dir: str | Path | None = None, progress: bool = True) -> list[Path]:
    """:func:`cached_features` of several embedders (a fused descriptor's parts); those missing from
    the cache are computed together, in one pass over the frames."""
    paths = [feature_cache_path(info, detections, embedder, cache_dir) for embedder in embedders]
    for path in paths:
        check_cache_entry(path)
    missing = []
    for index, (path, embedder) in enumerate(zip(paths, embedders)):
        if path.is_file():
            problem = _cache_problem(path, detections, embedder.dim)
            if problem is None:
                continue
            warnings.warn(InputWarning(f"{path}: unusable feature cache ({problem}); recomputing"), stacklevel=3)
            path.unlink(missing_ok=True)
        missing.append(index)
    if missing:
        tables = _embed_rows_many(info, detections, [embedders[i] for i in missing], progress)
        for index, rows in zip(missing, tables):
            _save(rows, paths[index])
    return paths


def export_features(info: SequenceInfo, detections: Detections, embedder: Embedder, out_path: str | Path,
                    inputs: tuple = (), progress: bool = True, cache_dir: str | Path | None = None) -> Path:
    """``fmtrack embed``: the cached features (computed and cached if needed) with these detections'
    own scores, written to exactly ``out_path``; ``inputs`` are files it must not replace. A fused
    descriptor's parts are cached one by one, as ``fmtrack run`` caches them, so each serves the other."""
    if isinstance(embedder, FusedEmbedder):
        paths = cached_features_many(info, detections, [part for part, _, _ in embedder.parts], cache_dir, progress)
        parts = [np.load(path, allow_pickle=False) for path in paths]
        rows = np.column_stack([parts[0][:, :7], embedder.combine([part[:, 7:] for part in parts])])
    else:
        rows = np.load(cached_features(info, detections, embedder, cache_dir, progress), allow_pickle=False)
    rows[:, 6] = detections.scores
    return _save(rows, Path(out_path), inputs)
