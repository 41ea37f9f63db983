"""A whole MOTChallenge sequence through one :class:`VideoTracker`: what ``fmtrack run`` and
``fmtrack eval`` do.

The per-sequence work that streams cannot do lives here: reading the detection (or feature) file,
computing a descriptor's features and the camera motion once and caching them (the stream is then
fed those cached numbers, identical to computing them frame by frame), and the whole-file score
mappings the reference presets may ask for.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
from tqdm import tqdm

from ..embedder import Embedder, PrecomputedFeatures, cached_features
from ..embedder.cache import cached_features_many
from ..embedder.fused import FusedEmbedder, is_grey, without_colour_on_grey
from ..io import Detections, ImageSequence, InputError, InputWarning, SequenceInfo, deepsort_features_path, read_detections
from ..io.motchallenge import check_sequence_length
from ..tracker import TrackerConfig
from .descriptor import image_embedder, needs_images, uses_model
from .video_tracker import VideoTracker


class MethodUnavailable(InputError):
    """A method cannot run on a sequence (e.g. no precomputed features for it)."""


@dataclass(frozen=True)
class SequenceResult:
    """rows: (N, 6) float64 frame, track id, left, top, width, height (pixels).

    timings: seconds spent per part inside the loop (``camera_motion``, ``embedding``, ``tracking``).
    """

    rows: np.ndarray
    frames: int
    seconds: float  # wall time of the whole loop (embedding included)
    skipped_detections: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class SequenceInputs:
    """What a method feeds the tracker on one sequence.

    detections: scores already mapped as the configuration asks. camera_motion: (F, 2, 3)
    frame-to-frame affines (entry f - 1 moves frame f - 1 to frame f), or None. detector: the score
    map used (None: identity or none). features_path: the cached features file, if any. seconds:
    time spent computing or loading the cached ``embedding`` and ``camera_motion``.
    """

    detections: Detections
    embedder: Embedder | None
    camera_motion: np.ndarray | None
    detector: str | None = None
    features_path: Path | None = None
    features_computed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def map_scores(detections: Detections, config: TrackerConfig, detector: str | None = None,
               sequence: str = "") -> tuple[Detections, str | None]:
    """Detections with scores mapped as ``config.score_normalisation`` asks, and the detector map used.

    ``auto``: the streaming map of ``detector`` (guessed from the sequence name and its scores when
    None; fmtrack.scores.guess_detector), the same numbers a VideoTracker with that detector gives;
    ``none``: identity; ``raw``: unchanged; ``minmax`` / ``logistic`` / ``rank``: whole-file.
    """
    from ..scores import ScoreStream, fit_score_map, guess_detector, normalise_detections, score_map

    mode = config.score_normalisation
    source = detections.source or "<detections>"
    if mode == "raw":
        if detector is not None:
            raise ValueError(f"preset {config.name!r} uses the detector's own score scale: --detector does not apply")
        return detections, None
    if mode not in ("auto", "none"):
        return normalise_detections(detections, mode), None
    mapping = None
    if mode == "auto" and detector is None:
        try:
            detector = guess_detector(sequence, detections.scores)
        except ValueError as err:
            # A detector no table entry knows: its own scores' quantiles (what --score-norm rank
            # does), with a warning, rather than no result at all.
            mapping = fit_score_map("this file", detections.scores, f"{source} itself")
            warnings.warn(InputWarning(f"{source}: {err}; mapping them by their own quantiles in this file "
                                       "(name --detector to use a fixed map)"))
    mapping = mapping or score_map(detector if mode == "auto" else None)
    stream = ScoreStream(mapping, f"{source}: choose --detector (in an eval method: detector=)")
    return dataclasses.replace(detections, scores=stream(detections.scores)), detector


def sequence_inputs(config: TrackerConfig, features: str | None, info: SequenceInfo,
                    data_root: str | Path | None = None, det_path: str | Path | None = None,
                    progress: bool = True, detector: str | None = None, label: str = "",
                    threads: int | None = None) -> SequenceInputs:
    """The detections (scores mapped), embedder and camera motion ``config`` uses on a sequence.

    features: ``deepsort``, ``hsv``, FMVAE weights, a fused name of those (resolved), an
    ``N x (7 + D)`` .npy, or None. With a features file the detections are that file's rows (for
    DeepSORT's the same as det.txt) and the embedder serves those rows; image descriptors (each part
    of a fused one on its own) and camera motion are computed once and cached.
    threads: torch's CPU thread count while a model embeds (None: torch's default).
    """
    from_file = None  # features stored with their detections: the detections are that file's rows
    if features is None or needs_images(features):
        detections = read_detections(det_path or info.det_path, info.seq_length)
    else:
        feature_file = (deepsort_features_path(info.name, data_root) if features == "deepsort" else Path(features))
        if features == "deepsort" and not feature_file.is_file():
            raise MethodUnavailable(feature_file, f"{label or config.name}: no DeepSORT features for {info.name}")
        from_file = PrecomputedFeatures(feature_file, info.seq_length)
        detections = from_file.detections
        # A features file replaces the detections, so it must hold this sequence's (or --det's) rows.
        reference = Path(det_path) if det_path is not None else info.det_path
        if det_path is not None or reference.is_file():
            rows = read_detections(reference, info.seq_length)
            from_file.check_rows(rows, reference)
            # The same rows: boxes and scores as the detection file gives them, not as a float32
            # features file rounded them, so the tracker sees what it sees with the descriptor itself.
            detections = dataclasses.replace(rows, features=detections.features)
    check_sequence_length(info, detections)
    raw = detections  # the feature cache stores the file's own scores, whoever fills it first
    detections, detector = map_scores(detections, config, detector, info.name)
    seconds = {"embedding": 0.0, "camera_motion": 0.0}
    embedder, features_path, computed = None, None, False
    if features is not None and config.uses_appearance:
        from_images = image_embedder(features) if has_frames(info) or not needs_images(features) else None
        if from_images is None and needs_images(features):
            warnings.warn(InputWarning(f"{info.image_dir}: {info.name} has no frames: the {label or config.name} "
                                       "preset runs on motion alone (no appearance, no camera motion)"))
        if uses_model(features):
            from ..model.device import set_threads

            set_threads(threads)
        if from_images is None:
            embedder = from_file
        else:
            from_images = without_colour_on_grey(from_images, lambda: _grey_frames(info),
                                                 f"{info.image_dir}: the frames carry")
            start, before = time.perf_counter(), time.time()
            embedder, features_path = cached_embedder(info, raw, from_images, progress)
            seconds["embedding"] = time.perf_counter() - start
            computed = features_path.stat().st_mtime >= before  # written now, not served from the cache
    camera_motion = None
    if config.camera_motion != "none" and has_frames(info):
        from ..camera_motion import CameraMotionConfig, sequence_camera_motion

        start = time.perf_counter()
        # People moving in front of the background are masked out, as BoT-SORT's GMC does.
        camera_motion = sequence_camera_motion(info, CameraMotionConfig(method=config.camera_motion),
                                               exclude=detections, progress=progress)
        seconds["camera_motion"] = time.perf_counter() - start
    return SequenceInputs(detections, embedder, camera_motion, detector, features_path, computed, seconds)


def track_sequence(info: SequenceInfo, detections: Detections, config: TrackerConfig,
                   embedder: Embedder | None = None, progress: bool = False,
                   camera_motion: np.ndarray | None = None) -> SequenceResult:
    """Track frames 1..seqLength of a sequence with one VideoTracker and collect the reported boxes.

    detections: scores as the configuration expects them (see :func:`sequence_inputs`).
    camera_motion: (F, 2, 3) affines, entry f - 1 moving frame f - 1 pixels to frame f; None with a
    preset that compensates camera motion: estimated from the frames as the stream goes.
    """
    config = motion_only_without_frames(config, info, embedder, camera_motion)
    if config.uses_appearance and embedder is None:
        raise ValueError(f"preset {config.name!r} uses appearance: give an embedder (e.g. --features FILE)")
    config = config.at_frame_rate(info.frame_rate)
    tracker = VideoTracker.from_config(config, embedder)
    needs_images = ((embedder is not None and embedder.needs_image and config.uses_appearance)
                    or (camera_motion is None and config.camera_motion != "none"))
    images = ImageSequence(info) if needs_images else None
    rows: list[np.ndarray] = []
    start = time.perf_counter()
    for frame in tqdm(range(1, info.seq_length + 1), desc=info.name, disable=not progress, unit="frame"):
        boxes, scores, _ = detections.at(frame)
        motion = None if camera_motion is None else camera_motion[frame - 1]
        image = images[frame] if images is not None else None
        for track in tracker.update(image, boxes, scores, camera_motion=motion):
            rows.append(np.array([frame, track.track_id, *track.tlwh]))
    seconds = time.perf_counter() - start
    table = np.vstack(rows) if rows else np.zeros((0, 6))
    return SequenceResult(table, info.seq_length, seconds, tracker.skipped_detections, dict(tracker.seconds))


def cached_embedder(info: SequenceInfo, detections: Detections, embedder: Embedder,
                    progress: bool = True) -> tuple[Embedder, Path]:
    """``embedder``'s features of every detection, served from the feature cache (computed into it
    first when missing), and the cache file (of a fused descriptor: its first part's). A fused
    descriptor's parts are cached one by one, so each part's cache also serves runs of it alone."""
    if not isinstance(embedder, FusedEmbedder):
        path = cached_features(info, detections, embedder, progress=progress)
        return PrecomputedFeatures(path, info.seq_length), path
    # The parts missing from the cache are computed together: each frame decoded once.
    paths = cached_features_many(info, detections, [part for part, _, _ in embedder.parts], progress=progress)
    return (FusedEmbedder([(PrecomputedFeatures(path, info.seq_length), weight, threshold)
                           for path, (_, weight, threshold) in zip(paths, embedder.parts)]), paths[0])


def served_detections(embedder: Embedder, detections: Detections) -> Detections:
    """``detections`` with the features of the embedder :func:`cached_embedder` returned for them.

    Only the features come from the cache (its rows are these detections', checked when it is
    read): its scores are whoever filled it first's, mapped or not, and are not part of its key."""
    return dataclasses.replace(detections, features=_served_features(embedder))


def _served_features(embedder: Embedder) -> np.ndarray:
    if isinstance(embedder, FusedEmbedder):
        return embedder.combine([_served_features(part) for part, _, _ in embedder.parts])
    return embedder.detections.features


def _grey_frames(info: SequenceInfo) -> bool:
    """Whether the sequence's first, middle and last frames all carry no colour."""
    images = ImageSequence(info)
    return all(is_grey(images[frame]) for frame in sorted({1, (info.seq_length + 1) // 2, info.seq_length}))


def has_frames(info: SequenceInfo) -> bool:
    """Whether the sequence's image folder is there (the design set ships detections only)."""
    return info.image_dir.is_dir()


def motion_only_without_frames(config: TrackerConfig, info: SequenceInfo, embedder: Embedder | None,
                               camera_motion: np.ndarray | None) -> TrackerConfig:
    """``config`` as it can run on a sequence without frames: no image descriptor means the preset's
    motion-only form (:meth:`TrackerConfig.without_appearance`), and no camera motion is estimated.
    Unchanged when the frames are there or nothing needs them."""
    if has_frames(info):
        return config
    if config.uses_appearance and embedder is None:
        config = config.without_appearance()
    if config.camera_motion != "none" and camera_motion is None:
        config = config.replace(camera_motion="none")
    return config


def end_to_end_seconds(result: SequenceResult, inputs: SequenceInputs) -> dict[str, float]:
    """Seconds per part of a whole run, cache work included: embedding, camera_motion, tracking."""
    parts = {part: result.timings.get(part, 0.0) + inputs.seconds.get(part, 0.0)
             for part in ("embedding", "camera_motion")}
    parts["tracking"] = result.timings.get("tracking", 0.0)
    return parts
