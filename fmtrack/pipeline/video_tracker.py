"""VideoTracker: everything ``fmtrack run`` does to one frame, for a caller's own video pipeline.

Per frame it maps the detector's scores to [0, 1] (a fixed per-detector map, fmtrack.scores),
estimates camera motion from the previous frame, computes appearance features for the detections
the tracker will keep, and advances the tracker. One object serves one stream: it keeps the
previous frame and the tracks, and is not to be shared between threads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..embedder.fused import FusedEmbedder, is_grey, without_colour_on_grey
from ..io.motchallenge import check_frame_rate
from ..tracker import Track, Tracker, TrackerConfig, to_tlwh
from ..tracker.boxes import as_real, check_finite, real_array
from ..tracker.detections import select_detections
from .defaults import DEFAULT_DESCRIPTOR, DEFAULT_PRESET
from .descriptor import configure, descriptor_spec, image_embedder, uses_model

if TYPE_CHECKING:
    from ..embedder import Embedder

BOX_FORMATS = ("tlwh", "xyxy")
# Score handling the stream itself does; the other TrackerConfig modes map a whole file beforehand
# (fmtrack.pipeline.sequence) and the stream then expects scores already in [0, 1].
_STREAMING_MODES = ("auto", "none")


class VideoTracker:
    """The tracker ``fmtrack run`` runs, fed one frame at a time.

    >>> tracker = VideoTracker()                       # fmtrack preset, the default descriptor
    >>> tracks = tracker.update(frame, boxes, scores)  # frame: (H, W, 3) uint8 BGR; boxes: (N, 4) tlwh

    preset: a preset name (``fmtrack``, ``bytetrack``, ``deepsort``, ``sort``, ``motion``), a
    TrackerConfig, or a preset JSON file where the tracker package reads them.
    descriptor: ``"default"`` (the shipped model fused with HSV colour histograms, ``model+hsv*3``),
    ``"model"`` (the shipped model alone), ``"hsv"``, a ``.safetensors`` path, a fused name of those
    (``"my.safetensors+hsv"``), an ``N x (7 + D)`` ``.npy`` of features per detection row (looked
    up by frame and box), an Embedder, ``"deepsort"`` (features passed to update()), or None (motion
    only; an appearance preset then raises ValueError). A model or a fused descriptor brings its
    metric (Euclidean) and label-free threshold.
    box_format: ``tlwh`` (left, top, width, height) or ``xyxy`` (left, top, right, bottom), pixels.
    detector: the score map of the detector that made the scores (a key of
    ``fmtrack.scores.SCORE_MAPS``, e.g. ``dpm``, ``frcnn``, ``sdp``, ``acf``); None: scores already
    lie in [0, 1]. Used by presets that map scores (``bytetrack``, ``fmtrack``); presets on the
    detector's own scale (``sort``, ``deepsort``, ``motion``) reject it.
    frame_rate: frames per second (presets with ages given for 30 fps scale them).
    camera_motion: ``none``, ``sof`` or ``ecc``; None: the preset's.
    device, threads: where a model embeds, and torch's CPU thread count (set process-wide when a
    model is loaded; 1 keeps embedding fast on a busy CPU).
    overrides: TrackerConfig fields, plus ``max_dist`` (appearance threshold, descriptor units).

    ``config`` is the resolved configuration (frame rate, metric and threshold applied).
    """

    def __init__(self, preset: str | os.PathLike | TrackerConfig = DEFAULT_PRESET,
                 descriptor: str | os.PathLike | Embedder | None = DEFAULT_DESCRIPTOR, *,
                 box_format: Literal["tlwh", "xyxy"] = "tlwh", detector: str | None = None,
                 frame_rate: float = 30.0, camera_motion: str | None = None, device: str = "cpu",
                 threads: int | None = 1, **overrides: Any):
        if box_format not in BOX_FORMATS:
            raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
        check_frame_rate(frame_rate, "frame_rate")
        if camera_motion is not None:
            if not isinstance(camera_motion, str):  # an affine belongs to update(camera_motion=...)
                raise ValueError(f"camera_motion must be 'none', 'sof' or 'ecc' (a per-frame affine goes to "
                                 f"update(camera_motion=...)), got {type(camera_motion).__name__}")
            overrides["camera_motion"] = camera_motion
        spec = descriptor if hasattr(descriptor, "embed") else descriptor_spec(descriptor)
        config = configure(preset, spec, overrides)
        if config.uses_appearance and spec is None:
            raise ValueError(f"preset {config.name!r} uses appearance: give a descriptor "
                             "('default', 'model', 'hsv', a .safetensors model, a fused name such as 'model+hsv*3', "
                             "or 'deepsort' with features= per frame)")
        self._setup(config.at_frame_rate(float(frame_rate)), spec, box_format, detector, device, threads)

    @classmethod
    def from_config(cls, config: TrackerConfig, embedder: Embedder | None = None, *,
                    detector: str | None = None, box_format: Literal["tlwh", "xyxy"] = "tlwh") -> VideoTracker:
        """A VideoTracker running ``config`` exactly as given (no descriptor threshold or frame-rate
        change applied): the sequence runner's way in, with an already configured method."""
        self = cls.__new__(cls)
        self._setup(config, embedder, box_format, detector, "cpu", 1)
        return self

    def _setup(self, config: TrackerConfig, spec: Any, box_format: str, detector: str | None,
               device: str, threads: int | None) -> None:
        from ..scores import ScoreStream, score_map

        self.config = config
        self.box_format = box_format
        if detector is not None and config.score_normalisation == "raw":
            raise ValueError(f"preset {config.name!r} uses the detector's own score scale "
                             "(score_normalisation='raw'): detector= applies to presets that map scores")
        self.detector = detector
        self._scores = None if config.score_normalisation == "raw" else ScoreStream(
            score_map(detector if config.score_normalisation in _STREAMING_MODES else None),
            "pass the detector= that made these scores" if detector is None else "check detector=")
        self.embedder = None
        self._needs_features = config.uses_appearance
        if config.uses_appearance and spec is not None:
            if hasattr(spec, "embed"):
                self.embedder = spec
            elif spec.endswith(".npy"):
                from ..embedder import PrecomputedFeatures

                self.embedder = PrecomputedFeatures(spec)
            else:
                if uses_model(spec):
                    from ..model.device import set_threads

                    set_threads(threads)
                self.embedder = image_embedder(spec, device)  # None for "deepsort": features come per frame
        self._descriptor = self.embedder  # what each new stream starts with (grey frames may drop colour)
        self._motion = None
        if config.camera_motion != "none":
            from ..camera_motion import CameraMotionConfig

            self._motion = CameraMotionConfig(method=config.camera_motion)
        self.reset()

    # -- per frame ---------------------------------------------------------------------------
    def update(self, frame: np.ndarray | None, boxes: np.ndarray, scores: np.ndarray | None = None,
               class_ids: np.ndarray | None = None, features: np.ndarray | None = None, *,
               camera_motion: np.ndarray | None = None) -> list[Track]:
        """Advance one frame.

        frame: (H, W, 3) uint8 BGR, or None when neither the descriptor nor camera motion needs it.
        boxes: (N, 4) float pixels in ``box_format``. scores: (N,) detector scores (None: all 1,
        not mapped). class_ids: (N,) int or None; ``class_id(track)`` gives a track's last one.
        features: (N, D) precomputed descriptors (instead of computing them from ``frame``).
        camera_motion: (2, 3) affine previous -> this frame's pixels (or (3, 3) with last row [0, 0, 1]),
        instead of estimating it.
        Returns the tracks reported in this frame; ``Track.detection`` indexes ``boxes``. Bad input
        raises ValueError naming the argument, with nothing applied (the frame is not counted).
        """
        # Nothing is applied when the frame is refused (as Tracker.update): the stream state put back.
        state = (self.frame_index, self._skipped, self._previous, self.embedder, self._colour_checked,
                 None if self._scores is None else (self._scores.low, self._scores.high, self._scores.warned))
        try:
            return self._update(frame, boxes, scores, class_ids, features, camera_motion)
        except BaseException:
            self.frame_index, self._skipped, self._previous, self.embedder, self._colour_checked, scored = state
            if scored is not None:
                self._scores.low, self._scores.high, self._scores.warned = scored
            raise

    def _update(self, frame: np.ndarray | None, boxes: np.ndarray, scores: np.ndarray | None,
                class_ids: np.ndarray | None, features: np.ndarray | None,
                camera_motion: np.ndarray | None) -> list[Track]:
        start = time.perf_counter()
        if frame is not None:  # checked even where nothing reads it: a wrong frame is a caller's mistake
            _check_frame(frame)
        self.frame_index += 1
        boxes = self._tlwh(boxes)
        n = len(boxes)
        if scores is None:
            scores = np.ones(n)
        else:
            scores = _column(scores, n, "scores", np.float64)
            if self._scores is not None:
                scores = self._scores(scores)
        if class_ids is not None:
            class_ids = _column(class_ids, n, "class_ids", np.int64)
        if features is not None:
            features = real_array(features, "features").astype(np.float32, copy=False)
            if features.ndim != 2 or len(features) != n:
                raise ValueError(f"features must have shape (N={n}, D), got {features.shape}")
            dim = getattr(self._descriptor, "dim", None)
            if dim is not None and features.shape[1] != dim:  # the threshold is in that descriptor's units
                raise ValueError(f"features have {features.shape[1]} values per row, but this tracker's "
                                 f"descriptor gives {dim} (descriptor=None or 'deepsort' takes any length)")
        valid = None
        if self._needs_features or self._motion is not None:
            valid = np.flatnonzero((boxes[:, 2] > 0) & (boxes[:, 3] > 0))
            if self._needs_features:  # the tracker sees only kept rows, so count the dropped ones here
                self._skipped += n - len(valid)
        motion = self._camera_motion(frame, boxes, valid, camera_motion)
        after_motion = time.perf_counter()
        if self._needs_features:
            # Embed only what the tracker will keep: image embedders are the expensive part.
            rows = valid[select_detections(boxes[valid], scores[valid], self.config)]
            appearance = self._features(frame, boxes[rows], features, rows)
            after_embedding = time.perf_counter()
            tracks = self._tracker.update(boxes[rows], scores[rows], appearance, motion)
        else:
            after_embedding = after_motion
            tracks = self._tracker.update(boxes, scores, None, motion)
        if self._needs_features and tracks and hasattr(tracks[0], "detection"):
            tracks = [t._replace(detection=int(rows[t.detection])) if t.detection >= 0 else t for t in tracks]
        if class_ids is not None and tracks and hasattr(tracks[0], "detection"):
            for t in tracks:
                if t.detection >= 0:
                    self._class_ids[t.track_id] = int(class_ids[t.detection])
        end = time.perf_counter()
        self.seconds["camera_motion"] += after_motion - start
        self.seconds["embedding"] += after_embedding - after_motion
        self.seconds["tracking"] += end - after_embedding
        return tracks

    def class_id(self, track: Track) -> int | None:
        """The class id of the last detection ``track`` matched (None when no class ids were given)."""
        return self._class_ids.get(track.track_id)

    def reset(self) -> None:
        """Forget every track and the previous frame: the next update() starts a fresh stream."""
        self._tracker = Tracker(self.config)
        self.embedder, self._colour_checked = self._descriptor, False
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (frame, its valid boxes)
        self._class_ids: dict[int, int] = {}
        self.frame_index = 0
        self._skipped = 0
        self.seconds = {"camera_motion": 0.0, "embedding": 0.0, "tracking": 0.0}

    @property
    def skipped_detections(self) -> int:
        """Detections dropped for non-positive width or height."""
        return self._skipped + self._tracker.skipped_detections

    def snapshot(self) -> dict[str, np.ndarray]:
        """The full stream state as plain arrays (the tracker's, plus the previous frame for camera
        motion): ``restore`` on a VideoTracker of the same configuration continues identically."""
        if not hasattr(self._tracker, "snapshot"):
            raise NotImplementedError("this version of fmtrack.tracker.Tracker has no snapshot()")
        state = {f"tracker.{k}": v for k, v in self._tracker.snapshot().items()}
        state["pipeline.frame_index"] = np.array(self.frame_index)
        if self._previous is not None:
            state["pipeline.previous_frame"], state["pipeline.previous_boxes"] = self._previous
        if self._scores is not None:
            state["pipeline.score_range"] = np.array([self._scores.low, self._scores.high])
        if self._class_ids:
            state["pipeline.class_ids"] = np.array(sorted(self._class_ids.items()), dtype=np.int64)
        # Whether this stream was found grey and runs its descriptor without the colour part.
        state["pipeline.colour"] = np.array([self._colour_checked, self.embedder is not self._descriptor])
        return state

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a ``snapshot`` of a VideoTracker of this configuration; ValueError naming the
        entry that does not fit (the stream is then as after ``reset()``)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"snapshot must be the dict of arrays VideoTracker.snapshot() returned, "
                             f"got {type(state).__name__}")
        self.reset()
        try:
            self._restore(state)
        except BaseException:
            self.reset()
            raise

    def _restore(self, state: Mapping[str, np.ndarray]) -> None:
        self._tracker.restore({k.removeprefix("tracker."): v for k, v in state.items() if k.startswith("tracker.")})
        if self._tracker.config != self.config:  # another preset's state would fail frames later, misleadingly
            raise ValueError(f"snapshot was taken with the {self._tracker.config.name!r} configuration; this "
                             f"VideoTracker runs {self.config.name!r} (or the same preset with other settings)")
        index = np.asarray(state.get("pipeline.frame_index", -1))
        if index.size != 1 or index.dtype.kind not in "iu" or int(index.reshape(())) < 0:
            raise ValueError(f"snapshot pipeline.frame_index must be one whole number >= 0, got {index!r}")
        self.frame_index = int(index.reshape(()))
        if "pipeline.previous_frame" in state:
            frame = np.asarray(state["pipeline.previous_frame"])
            boxes = np.asarray(state.get("pipeline.previous_boxes", np.zeros((0, 4))))
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
                raise ValueError(f"snapshot pipeline.previous_frame must be an (H, W, 3) uint8 image, "
                                 f"got {frame.dtype} {frame.shape}")
            if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.dtype.kind != "f" or not np.isfinite(boxes).all():
                raise ValueError(f"snapshot pipeline.previous_boxes must be finite (K, 4) boxes, got {boxes.dtype} "
                                 f"{boxes.shape}")
            self._previous = (frame, boxes)
        if self._scores is not None and "pipeline.score_range" in state:
            score_range = np.asarray(state["pipeline.score_range"], dtype=np.float64).reshape(-1)
            if score_range.shape != (2,) or np.isnan(score_range).any():
                raise ValueError(f"snapshot pipeline.score_range must be two numbers, got {score_range.tolist()}")
            self._scores.low, self._scores.high = score_range.tolist()
        if "pipeline.class_ids" in state:
            pairs = np.asarray(state["pipeline.class_ids"])
            if pairs.dtype.kind not in "iu" or pairs.size % 2:
                raise ValueError(f"snapshot pipeline.class_ids must be (track id, class id) integer pairs, got "
                                 f"{pairs.dtype} {pairs.shape}")
            self._class_ids = {int(k): int(v) for k, v in pairs.reshape(-1, 2)}
        if "pipeline.colour" in state:  # the stream's decision, not the next frame's (absent: decide anew)
            checked, without = (bool(v) for v in np.asarray(state["pipeline.colour"]).reshape(-1)[:2])
            self._colour_checked = checked
            if without and isinstance(self._descriptor, FusedEmbedder):
                self.embedder = self._descriptor.without_colour()

    # -- steps -------------------------------------------------------------------------------
    def _tlwh(self, boxes: np.ndarray) -> np.ndarray:
        # The Tracker's own checks: a negative size or non-finite value is an error here too, not a skip.
        return to_tlwh(boxes, self.box_format)

    def _frame(self, frame: np.ndarray | None, why: str) -> np.ndarray:
        """The frame ``why`` needs (update() has checked any frame it was given)."""
        if frame is None:
            raise ValueError(f"frame is None, but {why} needs the image")
        return frame

    def _camera_motion(self, frame: np.ndarray | None, boxes: np.ndarray, valid: np.ndarray | None,
                       given: np.ndarray | None) -> np.ndarray | None:
        if given is not None:  # the tracker checks it, as it checks a motion given to it directly
            return given
        if self._motion is None:
            return None
        from ..camera_motion import estimate_motion

        frame = self._frame(frame, f"camera motion ({self.config.camera_motion!r})")
        # A copy: a caller reusing one buffer for every frame would otherwise change the reference.
        previous, self._previous = self._previous, (frame.copy(), boxes[valid])
        if previous is None:
            return None
        if previous[0].shape != frame.shape:
            raise ValueError(f"frame size changed from {previous[0].shape} to {frame.shape} mid-stream")
        # People moving in front of the background are masked out (the previous frame's detections).
        return estimate_motion(previous[0], frame, self._motion, previous[1])

    def _features(self, frame: np.ndarray | None, boxes: np.ndarray, given: np.ndarray | None,
                  rows: np.ndarray) -> np.ndarray:
        if given is not None:
            return given[rows]
        if self.embedder is None:
            raise ValueError(f"preset {self.config.name!r} uses appearance and this descriptor computes no "
                             "features from frames: pass features= (N, D)")
        if not self.embedder.needs_image:
            return self.embedder.embed(None, boxes, self.frame_index)
        frame = self._frame(frame, "the appearance descriptor")
        if not self._colour_checked:  # once per stream, on its first frame, before any feature is stored
            self._colour_checked = True
            self.embedder = without_colour_on_grey(self.embedder, lambda: is_grey(frame), "the first frame carries")
        return self.embedder.embed(frame, boxes, self.frame_index)


def _check_frame(frame: Any) -> None:
    """ValueError unless ``frame`` is a non-empty (H, W, 3) uint8 BGR image."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"frame must be an (H, W, 3) uint8 BGR image, got shape {shape} "
                         f"dtype {getattr(frame, 'dtype', type(frame).__name__)}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame is empty: shape {frame.shape} (a failed decode?)")


def _column(values: Any, n: int, name: str, dtype: type) -> np.ndarray:
    if dtype is np.float64:
        values = as_real(values, name)  # the Tracker's own checks: no silent casts, finite
    else:
        raw = real_array(values, name)
        if raw.dtype.kind not in "iu":  # no silent casts of floats either
            raise ValueError(f"{name} must be whole numbers, got an array of dtype {raw.dtype}")
        values = raw.astype(dtype, copy=False)
    if values.shape != (n,):
        raise ValueError(f"{name} must have shape (N={n},), got {values.shape}")
    if dtype is np.float64:
        check_finite(values, name)
    return values
