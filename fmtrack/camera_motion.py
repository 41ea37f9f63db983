"""Camera-motion compensation (CMC): global frame-to-frame motion and its effect on Kalman states.

An affine here is always a (2, 3) float64 matrix ``A = [L | t]`` mapping a pixel ``p`` of the
previous frame to ``L @ p + t`` in the current frame (full-resolution pixels).

Methods (``CameraMotionConfig.method``):

- ``none``: identity every frame.
- ``sof``: sparse optical flow as in BoT-SORT's GMC. Corners (``goodFeaturesToTrack``) of the
  downscaled grey previous frame are followed into the current frame with pyramidal Lucas-Kanade
  and a rotation + uniform scale + translation is fitted with RANSAC (``estimateAffinePartial2D``).
- ``ecc``: ``findTransformECC`` with a Euclidean (rotation + translation) model on the downscaled
  grey frames.

Both estimate on frames shrunk by ``downscale`` and map the result back to full resolution. When an
estimate fails (too few corners or inliers, ECC not converging) the frame gets the identity: a
missed compensation costs less than a wrong one.

The tracker applies an affine to its Kalman states with ``KalmanFilter.warp``.
:func:`sequence_camera_motion` runs a method over a whole sequence, cached on disk.
``fmtrack bench cmc`` (or ``python -m fmtrack.camera_motion``) prints the speed of each method on 1920x1080 frames.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .io import Detections, ImageSequence, InputError, InputWarning, SequenceInfo, atomic_write
from .io import cache_dir as cache_dir_for
from .io import check_cache_entry
from .io.images import frames_fingerprint
from .io.motchallenge import load_npy

METHODS = ("none", "sof", "ecc")
IDENTITY = np.eye(2, 3, dtype=np.float64)
# Bump when the estimators change in a way that alters their output, so old caches are ignored.
CACHE_FORMAT = 1


@dataclass(frozen=True)
class CameraMotionConfig:
    """How the global motion is estimated.

    method: ``none``, ``sof`` or ``ecc``. downscale: frames are shrunk by this factor (>= 1) before
    estimating. max_corners, corner_quality, corner_min_distance (downscaled pixels): corner
    detection for ``sof``. ransac_threshold (downscaled pixels) and min_inliers: ``sof``'s robust
    fit, identity below min_inliers. ecc_iterations, ecc_epsilon: ``ecc``'s stopping rule.
    """

    method: str = "sof"
    downscale: float = 4.0
    max_corners: int = 1000
    corner_quality: float = 0.01
    corner_min_distance: float = 1.0
    ransac_threshold: float = 3.0
    min_inliers: int = 8
    ecc_iterations: int = 100
    ecc_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown camera-motion method {self.method!r}; choose one of {METHODS}")
        if not self.downscale >= 1.0:
            raise ValueError(f"downscale must be >= 1, got {self.downscale}")

    def digest(self) -> str:
        """Short hash of every field: equal configs give equal digests."""
        text = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Prepared:
    """A frame as the estimators see it: downscaled grey plus the scale factors used."""

    grey: np.ndarray  # (h, w) uint8
    scale_x: float  # downscaled width / full width
    scale_y: float


def _prepare(frame: np.ndarray, config: CameraMotionConfig) -> _Prepared:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    height, width = grey.shape
    small_w = max(1, round(width / config.downscale))
    small_h = max(1, round(height / config.downscale))
    if (small_w, small_h) != (width, height):
        grey = cv2.resize(grey, (small_w, small_h), interpolation=cv2.INTER_AREA)
    return _Prepared(grey, small_w / width, small_h / height)


def _foreground_mask(prepared: _Prepared, boxes: np.ndarray | None) -> np.ndarray | None:
    """uint8 mask (255 = usable) with the tlwh ``boxes`` (full-resolution pixels) blanked out."""
    if boxes is None or len(boxes) == 0:
        return None
    height, width = prepared.grey.shape
    mask = np.full((height, width), 255, dtype=np.uint8)
    x1 = np.floor(boxes[:, 0] * prepared.scale_x).astype(int).clip(0, width)
    y1 = np.floor(boxes[:, 1] * prepared.scale_y).astype(int).clip(0, height)
    x2 = np.ceil((boxes[:, 0] + boxes[:, 2]) * prepared.scale_x).astype(int).clip(0, width)
    y2 = np.ceil((boxes[:, 1] + boxes[:, 3]) * prepared.scale_y).astype(int).clip(0, height)
    for left, top, right, bottom in zip(x1, y1, x2, y2):
        mask[top:bottom, left:right] = 0
    return mask


def _to_full_resolution(small: np.ndarray, prepared: _Prepared) -> np.ndarray:
    """Conjugate an affine fitted on downscaled pixels back to full-resolution pixels.

    With ``p_small = S p`` (S = diag(scale_x, scale_y)) the full-resolution map is ``S^-1 A S``:
    for equal scales the linear part is unchanged and the translation grows by 1 / scale.
    """
    scale = np.diag([prepared.scale_x, prepared.scale_y])
    inverse = np.diag([1.0 / prepared.scale_x, 1.0 / prepared.scale_y])
    full = np.empty((2, 3), dtype=np.float64)
    full[:, :2] = inverse @ small[:, :2] @ scale
    full[:, 2] = inverse @ small[:, 2]
    return full


def _sparse_optical_flow(previous: _Prepared, current: _Prepared, config: CameraMotionConfig,
                         mask: np.ndarray | None) -> np.ndarray:
    corners = cv2.goodFeaturesToTrack(previous.grey, config.max_corners, config.corner_quality,
                                      config.corner_min_distance, mask=mask, blockSize=3)
    if corners is None or len(corners) < config.min_inliers:
        return IDENTITY.copy()
    moved, status, _ = cv2.calcOpticalFlowPyrLK(previous.grey, current.grey, corners, None,
                                                 winSize=(21, 21), maxLevel=3)
    found = status.reshape(-1) == 1
    if found.sum() < config.min_inliers:
        return IDENTITY.copy()
    small, inliers = cv2.estimateAffinePartial2D(corners[found], moved[found], method=cv2.RANSAC,
                                                 ransacReprojThreshold=config.ransac_threshold)
    if small is None or int(inliers.sum()) < config.min_inliers:
        return IDENTITY.copy()
    return _to_full_resolution(small.astype(np.float64), previous)


def _ecc(previous: _Prepared, current: _Prepared, config: CameraMotionConfig,
         mask: np.ndarray | None) -> np.ndarray:
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, config.ecc_iterations,
                config.ecc_epsilon)
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        # findTransformECC's warp maps template (previous) pixels onto input (current) pixels.
        _, warp = cv2.findTransformECC(previous.grey, current.grey, warp, cv2.MOTION_EUCLIDEAN,
                                       criteria, mask, 1)
    except cv2.error:  # raised when ECC does not converge
        return IDENTITY.copy()
    return _to_full_resolution(warp.astype(np.float64), previous)


_ESTIMATORS = {"sof": _sparse_optical_flow, "ecc": _ecc}


def _estimate_prepared(previous: _Prepared, current: _Prepared, config: CameraMotionConfig,
                       exclude_boxes: np.ndarray | None) -> np.ndarray:
    if config.method == "none":
        return IDENTITY.copy()
    return _ESTIMATORS[config.method](previous, current, config,
                                      _foreground_mask(previous, exclude_boxes))


def estimate_motion(previous: np.ndarray, current: np.ndarray, config: CameraMotionConfig,
                    exclude_boxes: np.ndarray | None = None) -> np.ndarray:
    """Global motion between two frames.

    previous, current: (H, W, 3) uint8 BGR (or (H, W) grey) frames of equal size.
    exclude_boxes: optional (n, 4) tlwh boxes, full-resolution pixels of the previous frame, whose
    pixels are not used (moving people). Consecutive frames differ by a few pixels, so the current
    frame's detections serve as well.
    Returns affine: (2, 3) float64, previous -> current full-resolution pixels; identity on failure.
    """
    return _estimate_prepared(_prepare(previous, config), _prepare(current, config), config,
                              exclude_boxes)


def _cache_path(info: SequenceInfo, config: CameraMotionConfig, cache_dir: Path,
                exclude: Detections | None) -> Path:
    key = hashlib.sha1(config.digest().encode())
    key.update(f"{info.seq_length}x{info.im_width}x{info.im_height}".encode())
    if config.method != "none":
        key.update(frames_fingerprint(info).encode())
    if exclude is not None:  # masked estimates depend on the exact boxes
        key.update(np.ascontiguousarray(exclude.frames).tobytes())
        key.update(np.ascontiguousarray(exclude.boxes).tobytes())
    return cache_dir / f"{info.name}-{config.method}-{key.hexdigest()[:16]}.npy"


def _read_cache(path: Path, seq_length: int) -> np.ndarray | None:
    """The cached affines, or None (file deleted, with a warning) when unreadable or not finite."""
    try:
        affines = load_npy(path)  # a damaged file is named as one (numpy calls it "pickled data")
        problem = None
        if affines.shape != (seq_length, 2, 3) or affines.dtype != np.float64:
            problem = f"shape {affines.shape} {affines.dtype}, expected ({seq_length}, 2, 3) float64"
        elif not np.isfinite(affines).all():
            problem = "non-finite values"
    except InputError as err:
        problem = err.problem
    except (OSError, ValueError, EOFError) as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
    if problem is None:
        return affines
    warnings.warn(InputWarning(f"{path}: unusable camera-motion cache ({problem}); recomputing"), stacklevel=3)
    path.unlink(missing_ok=True)
    return None


def _finite_or_identity(affines: np.ndarray, info: SequenceInfo) -> np.ndarray:
    """Non-finite estimates become the identity (with a warning): a NaN affine would drop every track."""
    bad = ~np.isfinite(affines).all(axis=(1, 2))
    if bad.any():
        warnings.warn(InputWarning(f"{info.image_dir}: camera motion of {int(bad.sum())} frames was not finite "
                                   f"(first: frame {int(np.argmax(bad)) + 1}); using the identity there"),
                      stacklevel=3)
        affines[bad] = IDENTITY
    return affines


def sequence_camera_motion(info: SequenceInfo, config: CameraMotionConfig,
                           cache_dir: str | Path | None = None, exclude: Detections | None = None,
                           progress: bool = True) -> np.ndarray:
    """Frame-to-frame motion of a whole sequence, cached on disk.

    Returns (F, 2, 3) float64 with F = info.seq_length: entry ``f - 1`` maps frame ``f - 1`` pixels
    to frame ``f`` pixels; entry 0 (frame 1) is the identity. ``exclude``: detections whose boxes
    are masked out of each previous frame. The cache (``cache_dir``, default
    ``fmtrack.io.cache_dir('cmc')``) is keyed by sequence, every config field, the frame size, a
    fingerprint of the frames and the excluded boxes, so any change recomputes; an unreadable or
    non-finite cache file is recomputed with a warning, and a non-finite estimate becomes the
    identity with a warning. Missing or unreadable frames raise :class:`fmtrack.io.InputError`
    naming the image.
    """
    cache = _cache_path(info, config, Path(cache_dir) if cache_dir else cache_dir_for('cmc'), exclude)
    check_cache_entry(cache)
    if cache.is_file():
        affines = _read_cache(cache, info.seq_length)
        if affines is not None:
            return affines
    affines = np.repeat(IDENTITY[None], info.seq_length, axis=0)
    if config.method != "none":
        images = ImageSequence(info)
        previous = _prepare(images[1], config)
        for frame in tqdm(range(2, info.seq_length + 1), desc=f"CMC {config.method} {info.name}",
                          unit="frame", disable=not progress):
            current = _prepare(images[frame], config)
            boxes = None if exclude is None else exclude.at(frame - 1)[0]
            affines[frame - 1] = _estimate_prepared(previous, current, config, boxes)
            previous = current
    affines = _finite_or_identity(affines, info)
    # Through a file object: np.save given a path appends ".npy" to names without it.
    with atomic_write(cache, "wb") as fh:
        np.save(fh, affines)
    return affines


def centre_displacement(affines: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels the image centre moves under each affine: (F, 2, 3) -> (F,) float64."""
    centre = np.array([width / 2.0, height / 2.0])
    moved = affines[:, :, :2] @ centre + affines[:, :, 2]
    return np.linalg.norm(moved - centre, axis=1)


# State layouts and the entries that are sizes or size velocities (scaled by the affine's scale).
# Centre and centre velocity are entries 0-1 and 4-5 in both; xyah's aspect a = w / h (2, and its
# velocity 6) is unchanged by a similarity.
def benchmark(frames: list[np.ndarray], methods: tuple[str, ...] = ("sof", "ecc"),
              downscale: float = 4.0) -> dict[str, float]:
    """Frames per second of each method over consecutive pairs of ``frames`` (measured, printed)."""
    rates = {}
    for method in methods:
        config = CameraMotionConfig(method=method, downscale=downscale)
        start = time.perf_counter()
        previous = _prepare(frames[0], config)
        for frame in frames[1:]:
            current = _prepare(frame, config)
            _estimate_prepared(previous, current, config, None)
            previous = current
        rates[method] = (len(frames) - 1) / (time.perf_counter() - start)
        print(f"{method}: {rates[method]:.1f} frames/s on {frames[0].shape[1]}x{frames[0].shape[0]} "
              f"(downscale {downscale})")
    return rates


def benchmark_frames(count: int, data_root: str | Path | None = None) -> list[np.ndarray]:
    """MOT16-11's first frames when the data root has them, else textured synthetic 1080p."""
    from .io import InputError, find_sequence, read_seqinfo

    try:
        images = ImageSequence(read_seqinfo(find_sequence("MOT16-11", data_root)))
        return [images[frame] for frame in range(1, count + 1)]
    except InputError as err:
        print(f"real frames unavailable ({err}); using synthetic 1920x1080 frames")
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 3)
    return [cv2.warpAffine(base, np.float64([[1, 0, 2 * i], [0, 1, i]]), (1920, 1080))
            for i in range(count)]


if __name__ == "__main__":
    benchmark(benchmark_frames(60))
