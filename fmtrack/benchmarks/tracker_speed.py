"""``fmtrack bench tracker``: frames/s of ``Tracker.update`` and memory over a long stream.

Detections and features are loaded and filtered before timing, so only association is measured.
Rates are wall-clock frames per second, best of several repeats (CPU time would charge the
original DeepSORT for its BLAS threads spinning on tiny matrices).
Where a checkout of the original DeepSORT (nwojke/deep_sort) or SORT (abewley/sort, needs filterpy)
is given, it is timed in the same run on the same frames, so the printed ratio is fair on a noisy
shared machine. When the ``trackers`` package is installed (the ``[peers]`` extra), its
``ByteTrackTracker`` is timed against the modern presets the same way, run by run in turn.
Figures are printed, never asserted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ..io import deepsort_features_path, find_sequence, read_seqinfo
from ..embedder import PrecomputedFeatures
from ..tracker import PRESETS, Tracker, TrackerConfig

Frame = tuple[np.ndarray, np.ndarray, np.ndarray]


def load_frames(seq: str, data_root: str | Path | None, min_confidence: float = float("-inf")) -> list[Frame]:
    """Per-frame (boxes tlwh, scores, features) of a sequence with DeepSORT features."""
    info = read_seqinfo(find_sequence(seq, data_root))
    dets = PrecomputedFeatures(deepsort_features_path(seq, data_root), info.seq_length).detections
    frames = []
    for frame in range(1, info.seq_length + 1):
        boxes, scores, feats = dets.at(frame)
        keep = scores >= min_confidence
        frames.append((boxes[keep], scores[keep], feats[keep]))
    return frames


def time_updates(config: TrackerConfig, frames: list[Frame], repeats: int) -> float:
    """Best-of-``repeats`` frames/s of a fresh tracker fed every frame."""
    best = 0.0
    for _ in range(repeats):
        tracker = Tracker(config)
        feats_needed = config.uses_appearance
        start = time.perf_counter()
        for boxes, scores, feats in frames:
            tracker.update(boxes, scores, feats if feats_needed else None)
        best = max(best, len(frames) / (time.perf_counter() - start))
    return best


def time_reference_deepsort(repo: str | Path, frames: list[Frame], repeats: int) -> float:
    """frames/s of nwojke/deep_sort's Tracker with deep_sort_app's settings on the same frames."""
    sys.path.insert(0, str(Path(repo)))
    try:
        from deep_sort import nn_matching
        from deep_sort.detection import Detection
        from deep_sort.tracker import Tracker as ReferenceTracker
    finally:
        sys.path.pop(0)
    detections = [[Detection(b, s, f) for b, s, f in zip(*frame)] for frame in frames]
    best = 0.0
    for _ in range(repeats):
        tracker = ReferenceTracker(nn_matching.NearestNeighborDistanceMetric("cosine", 0.2, 100))
        start = time.perf_counter()
        for dets in detections:
            tracker.predict()
            tracker.update(dets)
        best = max(best, len(frames) / (time.perf_counter() - start))
    return best


def time_reference_sort(repo: str | Path, frames: list[Frame], repeats: int) -> float:
    """frames/s of abewley/sort's Sort (plotting imports stubbed) on the same frames."""
    import types

    for name in ("skimage", "skimage.io", "matplotlib.pyplot", "matplotlib.patches"):
        sys.modules.setdefault(name, types.ModuleType(name))
    import matplotlib

    use = matplotlib.use
    matplotlib.use = lambda *a, **k: None  # sort.py asks for TkAgg at import
    sys.path.insert(0, str(Path(repo)))
    try:
        import sort as reference_sort
    finally:
        sys.path.pop(0)
        matplotlib.use = use
    dets = [np.column_stack([b[:, :2], b[:, :2] + b[:, 2:], s]) for b, s, _ in frames]
    best = 0.0
    for _ in range(repeats):
        tracker = reference_sort.Sort(max_age=1, min_hits=3, iou_threshold=0.3)
        start = time.perf_counter()
        for d in dets:
            tracker.update(d)
        best = max(best, len(frames) / (time.perf_counter() - start))
    return best


PEER_PRESETS = ("bytetrack", "fmtrack")


def peer_detections(frames: list[Frame]) -> list:
    """The frames as ``sv.Detections`` (xyxy pixels, the same confidences), built once, outside any timing."""
    import supervision as sv

    return [sv.Detections(xyxy=np.column_stack([b[:, :2], b[:, :2] + b[:, 2:]]), confidence=s)
            for b, s, _ in frames]


def time_peer_bytetrack(detections: list) -> tuple[float, int]:
    """Seconds for one pass of trackers' ``ByteTrackTracker`` (constructor defaults) over
    ``detections``, and the rows it reported with a track id."""
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker()
    start = time.perf_counter()
    outputs = [tracker.update(dets) for dets in detections]
    seconds = time.perf_counter() - start
    return seconds, sum(int((out.tracker_id >= 0).sum()) for out in outputs)


def _time_preset(config: TrackerConfig, frames: list[Frame]) -> tuple[float, int]:
    """Seconds for one pass of a fresh tracker over ``frames``, and the rows it reported."""
    tracker = Tracker(config)
    appearance = config.uses_appearance
    start = time.perf_counter()
    outputs = [tracker.update(boxes, scores, feats if appearance else None) for boxes, scores, feats in frames]
    seconds = time.perf_counter() - start
    return seconds, sum(map(len, outputs))


def peer_comparison(frames: list[Frame], repeats: int = 5, frame_rate: float = 30.0) -> dict[str, dict[str, float]] | None:
    """Print and return frames/s of the modern presets and of trackers' ByteTrackTracker on the same
    detections (every row, each tracker's own confidence thresholds), best of ``repeats`` with the
    runs taken in turn, and each preset's ratio to the peer. The presets run as configured at
    ``frame_rate``, as ``fmtrack run`` runs them. None (one line printed) when the ``trackers``
    package is missing.

    Returns ``{name: {"fps": frames/s, "rows": rows reported in the last pass, "ratio": x peer}}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    try:
        import trackers  # noqa: F401
    except ImportError:
        print("peer comparison skipped: the trackers package is not installed (pip install 'fmtrack[peers]')")
        return None
    detections = peer_detections(frames)
    runs = {f"fmtrack --preset {name}": (lambda c=PRESETS[name].at_frame_rate(frame_rate): _time_preset(c, frames))
            for name in PEER_PRESETS}
    runs["trackers ByteTrackTracker"] = lambda: time_peer_bytetrack(detections)
    best = {name: float("inf") for name in runs}
    rows = {}
    for _ in range(repeats):
        for name, run in runs.items():
            seconds, rows[name] = run()
            best[name] = min(best[name], seconds)
    peer = len(frames) / best["trackers ByteTrackTracker"]
    print(f"against trackers {_version('trackers')} ByteTrackTracker (same detections, update only, "
          f"best of {repeats}, runs in turn):")
    out = {}
    for name, seconds in best.items():
        fps = len(frames) / seconds
        out[name] = {"fps": fps, "rows": rows[name], "ratio": fps / peer}
        print(f"  {name:<40s} {fps:8.0f} frames/s  {fps / peer:5.2f}x  ({rows[name]} rows reported)")
    return out


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return float("nan")
    return pages * 4096 / 2**20


def synthetic_stream(n_frames: int, seed: int = 0, dim: int = 128):
    """Walkers crossing a 1920x1080 frame, about 8 at a time, each living ~300 frames."""
    rng = np.random.default_rng(seed)
    walkers: list[list] = []  # [x, y, vx, w, h, feature, frames left]
    for _ in range(n_frames):
        if len(walkers) < 8 and rng.random() < 0.05:
            h = rng.uniform(80, 300)
            walkers.append([rng.uniform(0, 1700), rng.uniform(0, 800), rng.normal(0, 3), 0.4 * h, h,
                            rng.normal(size=dim), int(rng.integers(100, 500))])
        for w in walkers:
            w[0] += w[2]
            w[6] -= 1
        walkers = [w for w in walkers if w[6] > 0]
        seen = [w for w in walkers if rng.random() > 0.1]  # 10% missed detections
        boxes = np.array([[w[0], w[1], w[3], w[4]] for w in seen]).reshape(-1, 4)
        boxes += rng.normal(0, 2, boxes.shape)
        feats = np.array([w[5] + rng.normal(0, 0.3, dim) for w in seen]).reshape(-1, dim)
        yield boxes, np.ones(len(seen)), feats


def memory_over_stream(config: TrackerConfig, n_frames: int, checkpoints: int = 5) -> list[tuple[int, float, int]]:
    """(frame, RSS MiB, live tracks) at evenly spaced frames of a synthetic stream."""
    tracker = Tracker(config)
    marks = set(np.linspace(n_frames // checkpoints, n_frames, checkpoints).astype(int).tolist())
    out = []
    for i, (boxes, scores, feats) in enumerate(synthetic_stream(n_frames), start=1):
        tracker.update(boxes, scores, feats if config.uses_appearance else None)
        if i in marks:
            out.append((i, _rss_mb(), len(tracker.tracks)))
    return out


def video_tracker_overhead(frames: list[Frame], repeats: int = 3,
                           presets: tuple[str, ...] = ("bytetrack", "sort")) -> dict[str, tuple[float, float]]:
    """Print and return frames/s of ``Tracker.update`` and of ``VideoTracker.update`` (no descriptor,
    no camera motion, no frame) on the same frames and configuration, repeats interleaved."""
    from ..pipeline import VideoTracker

    rates = {}
    for name in presets:
        video = VideoTracker(name, descriptor=None, camera_motion="none")
        bare = [0.0, 0.0]
        for _ in range(repeats):
            bare[0] = max(bare[0], time_updates(video.config, frames, 1))
            video.reset()
            start = time.perf_counter()
            for boxes, scores, _ in frames:
                video.update(None, boxes, scores)
            bare[1] = max(bare[1], len(frames) / (time.perf_counter() - start))
        rates[name] = (bare[0], bare[1])
        print(f"  {name}: Tracker.update {bare[0]:.0f} frames/s, VideoTracker.update {bare[1]:.0f} frames/s "
              f"(overhead {100 * (bare[0] / bare[1] - 1):+.1f}%)")
    return rates


def run_tracker_benchmark(seq: str = "MOT17-09-FRCNN", data_root: str | Path | None = None, repeats: int = 3,
                          stream_frames: int = 100_000, reference_deepsort: str | None = None,
                          reference_sort: str | None = None, peer_repeats: int = 5) -> dict[str, float]:
    """Print and return frames/s per preset (and per reference implementation given); then the
    modern presets against trackers' ByteTrackTracker when installed (``peer_repeats`` passes each)."""
    all_frames = load_frames(seq, data_root)
    frame_rate = read_seqinfo(find_sequence(seq, data_root)).frame_rate  # presets run as configured at it
    # The originals are fed what deep_sort_app feeds them (confidence >= 0.3); fmtrack's presets get
    # every detection and filter by their own thresholds (ByteTrack's low stage needs the 0.1-0.45 ones).
    frames = load_frames(seq, data_root, 0.3)
    print(f"{seq}: {len(frames)} frames, {sum(len(f[0]) for f in all_frames) / len(frames):.1f} detections/frame, "
          f"{sum(len(f[0]) for f in frames) / len(frames):.1f} with confidence >= 0.3; "
          f"update() only (no camera motion; presets at the sequence's {frame_rate:g} fps), best of {repeats}")
    rates = {}
    for name, config in PRESETS.items():
        rates[f"fmtrack --preset {name}"] = time_updates(config.at_frame_rate(frame_rate), all_frames, repeats)
    if reference_deepsort:
        rates["reference DeepSORT (nwojke/deep_sort)"] = time_reference_deepsort(reference_deepsort, frames, repeats)
    if reference_sort:
        rates["reference SORT (abewley/sort)"] = time_reference_sort(reference_sort, frames, repeats)
    base = rates.get("reference DeepSORT (nwojke/deep_sort)")
    for name, rate in rates.items():
        ratio = f"  ({rate / base:.2f}x reference DeepSORT)" if base else ""
        print(f"  {name:<40s} {rate:8.0f} frames/s{ratio}")
    peer_comparison(all_frames, peer_repeats, frame_rate)
    video_tracker_overhead(all_frames, repeats)
    if stream_frames > 0:
        print(f"memory over a {stream_frames}-frame synthetic stream (deepsort preset, 128-d features):")
        for frame, rss, live in memory_over_stream(PRESETS["deepsort"], stream_frames):
            print(f"  frame {frame:>7d}: RSS {rss:7.1f} MiB, live tracks {live}")
    return rates
