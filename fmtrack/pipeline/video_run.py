"""A video (file, image folder or sequence folder) and its detection file through one
:class:`VideoTracker`, frame by frame: what ``fmtrack run --video`` does.

Unlike the sequence runner nothing is cached per sequence: the tracker computes the appearance
features and the camera motion from each decoded frame as a live stream would. The detection file
is whole, so its scores are mapped as for a sequence (the preset's mode; ``auto`` guesses the
detector from the file when ``--detector`` is not given), and the result can be drawn into an mp4
while tracking.
"""

from __future__ import annotations

import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from tqdm import tqdm

from ..embedder import Embedder, PrecomputedFeatures
from ..io import Detections, InputError, InputWarning, check_output, read_detections, read_seqinfo
from ..io.motchallenge import check_frame_rate
from ..tracker import TrackerConfig
from ..video import (DEFAULT_FPS, FrameSource, TrackRenderer, check_detections_reached, exact_frame_count,
                     open_frames)
from .descriptor import configure, image_embedder, method_descriptor, uses_model
from .sequence import map_scores
from .video_tracker import VideoTracker


@dataclass(frozen=True)
class VideoResult:
    """rows: (N, 6) float64 frame, track id, left, top, width, height (pixels).

    name: the source's name (a video's stem, a sequence folder's name). fps: the frame rate the
    tracker ran at; fps_source: where it came from (``--fps``, ``the video``, ``seqinfo.ini`` or
    ``default``). detector: the score map used (None: identity or none). seconds: wall time of the
    frame loop (decoding, embedding and rendering included); timings: seconds per part
    (``camera_motion``, ``embedding``, ``tracking``).
    """

    rows: np.ndarray
    name: str
    frames: int
    fps: float
    fps_source: str
    detector: str | None
    seconds: float
    skipped_detections: int
    config: TrackerConfig
    descriptor: str | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def source_name(source: FrameSource) -> str:
    """A name for results: a video's stem, else the folder's name, or for a sequence's image
    folder (``SEQ/img1``) the sequence's."""
    path = source.path
    info = _sequence_of(path) if path.is_dir() else None
    if info is not None:
        return info.name
    return path.stem if path.is_file() else path.name


def _sequence_of(image_dir: Path):
    """The SequenceInfo whose seqinfo.ini names ``image_dir`` as its image folder, else None."""
    ini = image_dir.parent / "seqinfo.ini"
    if not ini.is_file():
        return None
    try:
        info = read_seqinfo(image_dir.parent)
    except InputError as err:  # said, not skipped in silence: its frame rate would have scaled the tracker
        warnings.warn(InputWarning(f"{err}; {image_dir} is read without it (frame rate and name not from it)"),
                      stacklevel=3)
        return None
    return info if info.image_dir.resolve() == image_dir.resolve() else None


def frame_rate(source: FrameSource, fps: float | None = None) -> tuple[float, str]:
    """(frames per second, where it came from): ``fps`` if given, else the source's (a video's
    container, a sequence's seqinfo.ini, also for its image folder given directly), else 30."""
    if fps is not None:
        return check_frame_rate(fps, "--fps"), "--fps"
    if source.fps is not None:
        return float(source.fps), "the video" if source.path.is_file() else "seqinfo.ini"
    info = _sequence_of(source.path) if source.path.is_dir() else None
    if info is not None and info.frame_rate:
        return float(info.frame_rate), "seqinfo.ini"
    return DEFAULT_FPS, "default"


def check_render_path(render: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> Path:
    """``render`` as a Path when an annotated mp4 may be written there: a .mp4 that is none of
    ``inputs`` (the result file included, even before it exists). ValueError / InputError otherwise."""
    path = Path(render)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"--render: expected a .mp4 file, got {path}")
    for other in inputs:
        if other is not None and Path(other).resolve() == path.resolve():
            raise ValueError(f"--render: {path} is also an input or the result file; choose another path")
    return check_output(path, [p for p in inputs if p is not None])


def _video_embedder(features: str | None, config: TrackerConfig, detections: Detections, det_path: Path,
                    frame_count: int | None, threads: int | None) -> tuple[Embedder | None, Detections]:
    """The embedder for ``features`` on a video, and the detections to track (a features file's
    own rows, checked against the det file)."""
    if features is None or not config.uses_appearance:
        return None, detections
    if features == "deepsort":
        raise ValueError("--features deepsort reads a MOTChallenge sequence's precomputed features: use --seq, "
                         "or give those features as an N x (7 + D) .npy with --features FILE")
    if features.endswith(".npy"):
        from_file = PrecomputedFeatures(features, frame_count)
        from_file.check_rows(detections, det_path)
        return from_file, from_file.detections
    embedder = image_embedder(features)
    if embedder is None:
        raise ValueError(f"--features {features}: not a descriptor that computes features from frames "
                         "(default, model, hsv, a .safetensors model, a fused name such as model+hsv*3) "
                         "nor an N x (7 + D) .npy")
    if uses_model(features):
        from ..model.device import set_threads

        set_threads(threads)
    return embedder, detections


def run_video(video: str | os.PathLike, det_path: str | os.PathLike, preset: str | os.PathLike = "fmtrack",
              features: str | None = None, overrides: dict[str, Any] | None = None, detector: str | None = None,
              *, fps: float | None = None, threads: int | None = 1, render: str | os.PathLike | None = None,
              render_inputs: Iterable[str | os.PathLike | None] = (), progress: bool = True) -> VideoResult:
    """Track ``video``'s frames with the detections of ``det_path`` through one VideoTracker.

    video: a video file, an image folder (frames in name order) or a sequence folder.
    det_path: MOTChallenge det rows keyed by 1-based frame index. preset, features, overrides,
    detector: as ``fmtrack run`` (features None: the preset's default descriptor). fps: the frame
    rate (None: the source's, else 30). threads: torch CPU threads of a model (None: torch's
    default). render: an mp4 written while tracking (boxes, ids, trails, frame number);
    render_inputs: further paths it must not overwrite. Shows a progress bar with frames/s.
    Raises InputError for detections beyond the video's last frame.
    """
    source = open_frames(video)
    det_path = Path(det_path)
    rate, rate_source = frame_rate(source, fps)
    descriptor = method_descriptor(preset, features)
    config = configure(preset, descriptor, overrides).at_frame_rate(rate)
    count = exact_frame_count(source)
    detections = read_detections(det_path, count)
    embedder, detections = _video_embedder(descriptor, config, detections, det_path, count, threads)
    name = source_name(source)
    detections, detector = map_scores(detections, config, detector, name)
    renderer = None
    if render is not None:
        inputs = [p for p in (source.path, det_path, *render_inputs) if p is not None]
        renderer = TrackRenderer(check_render_path(render, inputs), rate, source.size, inputs=inputs)
    tracker = VideoTracker.from_config(config, embedder)
    needs_images = (embedder is not None and embedder.needs_image) or config.camera_motion != "none"
    rows: list[np.ndarray] = []
    frames = 0
    start = time.perf_counter()
    with renderer if renderer is not None else nullcontext():
        for index, image in tqdm(source, total=source.frame_count, desc=name, unit="frame", disable=not progress):
            boxes, scores, _ = detections.at(index)
            tracks = tracker.update(image if needs_images else None, boxes, scores)
            rows.extend(np.array([index, t.track_id, *t.tlwh]) for t in tracks)
            if renderer is not None:
                renderer.write(renderer.draw(image, tracks, index))
            frames = index
        check_detections_reached(det_path, detections.last_frame, source, frames)
    seconds = time.perf_counter() - start
    table = np.vstack(rows) if rows else np.zeros((0, 6))
    return VideoResult(table, name, frames, rate, rate_source, detector, seconds,
                       detections.skipped + tracker.skipped_detections, config, descriptor, dict(tracker.seconds))
