"""Tracker configuration: one dataclass, a tuple of association stages, and named presets.

A preset is data, not code: a new association strategy is a new tuple of :class:`Stage` plus
lifecycle numbers, run by the same :class:`~fmtrack.tracker.tracker.Tracker`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .kalman_filter import check_velocity_noise
from .linear_assignment import INFEASIBLE

# 95% quantiles of the chi-square distribution by degrees of freedom (scipy.stats.chi2.ppf(0.95, df)),
# written out so that importing the tracker does not load scipy.stats. DeepSORT gates the squared
# Mahalanobis distance of its 4-d measurement at CHI2_95[4].
CHI2_95: dict[int, float] = {
    1: 3.841458820694124, 2: 5.991464547107979, 3: 7.814727903251179, 4: 9.487729036781154,
    5: 11.070497693516351, 6: 12.591587243743977, 7: 14.067140449340169, 8: 15.50731305586545,
    9: 16.918977604620448,
}
CHI2_95_4DOF = CHI2_95[4]
# The Kalman models (fmtrack.tracker.kalman_filter.MOTION_MODELS) a config may name.
MotionModelName = Literal["xyah", "xysr", "xywh"]
MOTION_MODEL_NAMES: tuple[str, ...] = typing.get_args(MotionModelName)
# Largest frame-rate-scaled buffer: boxes grown by half their size on each side are twice as large,
# enough to hold a walker at 7 fps; beyond that neighbours' boxes overlap everywhere.
MAX_MOTION_BUFFER = 0.5


@dataclass(frozen=True)
class Stage:
    """One association stage: one cost matrix between chosen tracks and detections, one assignment.

    cost:
        ``appearance``: nearest-neighbour distance between the detection's feature and the track's
        gallery (metric from the config), pairs outside the Mahalanobis gate excluded.
        ``mahalanobis``: squared Mahalanobis distance divided by the gating threshold (motion only).
        ``iou``: 1 - IoU between the predicted track box and the detection box.
    max_cost: pairs costing more are never matched (distance units of ``cost``).
    detections: ``high`` (score above the config's high_confidence, or every kept detection when
        that is None) or ``low`` (kept, but not high: ByteTrack's second stage).
    fuse_score: IoU cost becomes 1 - IoU * score (ByteTrack), so confident detections match first.
    iou_buffer: with an ``iou`` cost, the IoU of both boxes grown by this fraction of their width and
        height on every side (C-BIoU, Yang et al., WACV 2023): a person who moved further than their
        own width between frames (low frame rate, fast motion) still overlaps their track. 0: plain IoU.
    height_modulated: with an ``iou`` cost, the IoU times the two boxes' height IoU (the overlap of
        their vertical extents over the extent they span together, of the unbuffered boxes):
        Hybrid-SORT's HMIoU (Yang et al., AAAI 2024). A person's height and the row of their feet
        change slowly, so a pair that overlaps sideways but disagrees on them is penalised.
    appearance_max: with an ``iou`` cost, fuse appearance as BoT-SORT does: a pair whose appearance
        distance d is at most ``appearance_max`` (descriptor units) and whose unfused IoU distance is
        at most ``proximity`` costs min(iou cost, d * appearance_scale / appearance_max). The scale
        puts the descriptor's own threshold where BoT-SORT's cosine threshold (0.25) sits, so any
        descriptor (cosine or Euclidean) competes with IoU on the same footing.
    appearance_veto: with ``appearance_max``, a pair whose appearance distance exceeds this multiple
        of ``appearance_max`` is never matched, however much the boxes overlap: the descriptor says
        another person. None: IoU alone can match any pair (BoT-SORT).
    tracks: which live tracks take part (``all``, ``confirmed``, ``unconfirmed``); tracks matched by an
        earlier stage never take part again.
    updates_appearance: a match made here adds the detection's feature to the track's appearance
        memory. BoT-SORT's low-confidence stage does not (its low detections carry no feature): they
        are mostly partly occluded people, whose crops show the occluder.
    max_time_since_update: only tracks missed at most this many frames (counted after predict, so 1
        means "updated in the previous frame"); None for no limit.
    cascade: match in order of time since update, most recently seen first (DeepSORT's cascade).
    threshold_factor: this stage's appearance threshold (``max_cost`` of an ``appearance`` stage,
        ``appearance_max`` of a fused one) as a multiple of the descriptor's threshold: what
        :meth:`TrackerConfig.with_max_distance` keeps when another descriptor brings its own threshold.
    gated: clip over-threshold costs before the assignment (DeepSORT) or solve on raw costs (SORT);
        see :func:`~fmtrack.tracker.linear_assignment.min_cost_matching`.
    """

    cost: Literal["appearance", "mahalanobis", "iou"]
    max_cost: float
    tracks: Literal["all", "confirmed", "unconfirmed"] = "all"
    max_time_since_update: int | None = None
    cascade: bool = False
    gated: bool = True
    detections: Literal["high", "low"] = "high"
    fuse_score: bool = False
    iou_buffer: float = 0.0
    height_modulated: bool = False
    appearance_max: float | None = None
    appearance_veto: float | None = None
    proximity: float = 0.5
    appearance_scale: float = 0.25
    updates_appearance: bool = True
    threshold_factor: float = 1.0

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.height_modulated and self.cost != "iou":
            raise ValueError(f"height_modulated needs an iou cost, got a {self.cost} stage")
        if not 0.0 <= self.max_cost < INFEASIBLE:  # False for NaN too
            # INFEASIBLE marks the pairs a gate or veto excludes: a max_cost above it would match them.
            raise ValueError(f"max_cost must be >= 0 and below {INFEASIBLE:g} (in the units of its cost), "
                             f"got {self.max_cost!r}")
        if self.max_time_since_update is not None:
            _check_range("max_time_since_update", self.max_time_since_update, 1,
                         what=" (frames missed, counted after predict: 1 is the previous frame) or None")
        if not 0.0 <= self.iou_buffer < 10.0:  # False for NaN too
            raise ValueError(f"iou_buffer must be in [0, 10) (a fraction of the box size), got {self.iou_buffer!r}")
        _check_range("proximity", self.proximity, 0.0, what=" (an IoU distance)")
        _check_range("appearance_scale", self.appearance_scale, 0.0, above=True)
        _check_range("threshold_factor", self.threshold_factor, 0.0, above=True,
                     what=" (a multiple of the descriptor's threshold)")
        if self.appearance_max is not None:
            # > 0: the fused cost is the distance over appearance_max.
            _check_range("appearance_max", self.appearance_max, 0.0, above=True, what=" (descriptor units) or None")
        if self.appearance_veto is not None and not (self.appearance_max is not None and self.appearance_veto >= 1.0):
            raise ValueError(f"appearance_veto must be >= 1 (a multiple of appearance_max) on a stage with "
                             f"appearance_max, got {self.appearance_veto} with appearance_max {self.appearance_max}")

    @property
    def uses_appearance(self) -> bool:
        return self.cost == "appearance" or self.appearance_max is not None

    @property
    def threshold_field(self) -> str | None:
        """The field holding this stage's appearance threshold (None: the stage uses no appearance)."""
        if self.cost == "appearance":
            return "max_cost"
        return "appearance_max" if self.appearance_max is not None else None


@dataclass(frozen=True)
class TrackerConfig:
    """Everything that decides what the tracker does; serialised into every result it produces.

    Units: confidences on the detector's scale (or [0, 1] after the score map); heights in pixels;
    ages in frames. Appearance distances: ``cosine`` is 1 - cos(a, b) in [0, 2]; ``euclidean`` is
    the true (not squared) L2 distance between feature vectors.

    name: the preset's name (results go to ``runs/NAME`` by default).
    motion_model: the Kalman filter's state (fmtrack.tracker.kalman_filter): ``xyah`` DeepSORT's,
        ``xysr`` SORT's, ``xywh`` BoT-SORT's.
    stages: the association stages, run in order (:class:`Stage`).
    metric: appearance distance, ``cosine`` or ``euclidean``.
    budget: features kept per track (the last ``budget``) with ``appearance_memory="gallery"``.
    gating_threshold: the Mahalanobis gate, on the squared distance (chi-square 95 %, 4 dof).
    min_confidence: detections scoring below this are dropped.
    high_confidence: detections scoring above this are "high" (ByteTrack); None: every kept one is.
    birth_confidence: a new track needs a high detection scoring at least this.
    min_height: detections lower than this (pixels) are dropped.
    nms_max_overlap: DeepSORT's suppression (overlap over the lower-scored box's own area, not
        IoU); 1.0: off.
    max_detections: at most this many detections a frame, the highest-scoring (None: no limit):
        association cost grows as tracks x detections, and thousands in a frame is a detector fault.
    n_init: hits (the birth detection included) that confirm a tentative track.
    max_age: a confirmed track is deleted once missed more than this many frames.
    tentative_max_age: likewise for tentative tracks (0: deleted on their first miss).
    max_age_scales_with_frame_rate: ``max_age`` and ``identity_memory`` are given for 30 fps
        (:meth:`at_frame_rate` scales them).
    identity_memory: frames after its last update that a deleted, reported track keeps its id and
        appearance; a new track within ``identity_factor`` x the descriptor's threshold of it when
        first reported takes the id back (one assignment). 0: off; needs appearance features.
    identity_factor: see ``identity_memory``.
    velocity_noise: the Kalman velocities' process and initial noise (standard deviation) times this.
    velocity_noise_scales_with_frame_rate: ``velocity_noise`` is given for 30 fps; at_frame_rate
        multiplies it by 30 / fps (a velocity in pixels per frame, and its uncertainty, grow with
        the time between frames).
    motion_only: the fields the motion-only form (:meth:`without_appearance`, run where no
        descriptor can be had) replaces, e.g. ``{"max_age": 26}``; stored as sorted (field, value)
        pairs so the config stays hashable (read them with :meth:`motion_overrides`).
    motion_iou_buffer: the C-BIoU buffer, given for 30 fps, of every IoU stage where motion alone
        decides (no appearance credit); at_frame_rate sets theirs to this x 30 / fps, at most
        MAX_MOTION_BUFFER. 0: off.
    confirm_first_frame: tracks born in frame 1 start confirmed (ByteTrack).
    predict_unconfirmed: unconfirmed tracks are predicted (False: matched at their birth state, as
        ByteTrack does).
    freeze_lost_height: a lost track's height velocity is zeroed (ByteTrack).
    duplicate_iou: a lost and an active track overlapping more than this: the one tracked for
        fewer frames is dropped (ByteTrack); None: off.
    appearance_memory: ``gallery`` (the last ``budget`` features, DeepSORT) or ``ema`` (one
        feature, normalise(ema_alpha * feature + (1 - ema_alpha) * new), BoT-SORT).
    ema_alpha: see ``appearance_memory``.
    camera_motion: ``none``, ``sof`` or ``ecc``: estimated by the pipeline
        (fmtrack.pipeline.VideoTracker, fmtrack.camera_motion) and passed to ``update()``, not done
        by Tracker itself.
    score_normalisation: how the pipeline maps detector scores to [0, 1] (fmtrack.scores;
        docs/score_maps.md): ``auto`` each score through the detector's fixed streaming map;
        ``minmax`` / ``logistic`` / ``rank`` over a whole detection file (reference runs); ``raw``
        the detector's own scale (the original SORT and DeepSORT).
    report_max_time_since_update: tracks missed more frames than this are not reported.
    report_min_hit_streak: reported only after this many matches since birth or the last miss
        (the birth not counted).
    report_warmup_frames: during the first frames, any track updated in the frame is reported too.
    """

    name: str = "custom"
    motion_model: MotionModelName = "xyah"
    stages: tuple[Stage, ...] = ()
    metric: Literal["cosine", "euclidean"] = "cosine"
    budget: int = 100
    gating_threshold: float = CHI2_95_4DOF
    # Detection preprocessing.
    min_confidence: float = float("-inf")
    high_confidence: float | None = None
    birth_confidence: float = float("-inf")
    min_height: float = 0.0
    nms_max_overlap: float = 1.0
    max_detections: int | None = 1000
    # Track lifecycle.
    n_init: int = 3
    max_age: int = 30
    tentative_max_age: int = 0
    max_age_scales_with_frame_rate: bool = False
    identity_memory: int = 0
    identity_factor: float = 1.0
    # Kalman filter and IoU where motion alone decides.
    velocity_noise: float = 1.0
    velocity_noise_scales_with_frame_rate: bool = False
    motion_only: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()
    motion_iou_buffer: float = 0.0
    # ByteTrack's bookkeeping.
    confirm_first_frame: bool = False
    predict_unconfirmed: bool = True
    freeze_lost_height: bool = False
    duplicate_iou: float | None = None
    # Appearance memory.
    appearance_memory: Literal["gallery", "ema"] = "gallery"
    ema_alpha: float = 0.9
    # Done by the pipeline, not by Tracker.update.
    camera_motion: Literal["none", "sof", "ecc"] = "none"
    score_normalisation: Literal["raw", "auto", "minmax", "logistic", "rank"] = "raw"
    # Which tracks are reported each frame.
    report_max_time_since_update: int = 1
    report_min_hit_streak: int = 0
    report_warmup_frames: int = 0

    @functools.cached_property  # asked several times per frame; the config is frozen
    def uses_appearance(self) -> bool:
        return any(stage.uses_appearance for stage in self.stages)

    def at_frame_rate(self, frame_rate: float) -> TrackerConfig:
        """The configuration for a sequence at ``frame_rate``: ages and velocity noise given for 30 fps
        scale when set, and ``motion_iou_buffer`` becomes the buffer of the IoU stages without
        appearance credit (a person moves further between frames at a lower rate). Idempotent: the
        result scales no more."""
        if isinstance(frame_rate, bool) or not (isinstance(frame_rate, numbers.Real) and 0 < frame_rate <= MAX_FRAME_RATE):
            raise ValueError(f"frame_rate must be a frame rate in (0, {MAX_FRAME_RATE:g}] frames per second, "
                             f"got {frame_rate!r}")
        config = self
        # (flag, fields given for 30 fps, their value at this rate): each field and its motion_only
        # twin scale together, and the flag is cleared.
        for flag, fields, scale in (
                ("max_age_scales_with_frame_rate", ("max_age", "identity_memory"),
                 lambda age: int(frame_rate / 30.0 * age)),
                ("velocity_noise_scales_with_frame_rate", ("velocity_noise",), lambda noise: noise * 30.0 / frame_rate)):
            if getattr(config, flag) and frame_rate != 30:
                alone = config.motion_overrides
                alone.update({field: scale(alone[field]) for field in fields if field in alone})
                config = config.replace(**{field: scale(getattr(config, field)) for field in fields}, **{flag: False},
                                        motion_only=alone)
        if config.motion_iou_buffer > 0:
            buffer = min(config.motion_iou_buffer * 30.0 / frame_rate, MAX_MOTION_BUFFER)
            stages = tuple(dataclasses.replace(s, iou_buffer=max(s.iou_buffer, buffer))
                           if s.cost == "iou" and s.appearance_max is None else s for s in config.stages)
            config = config.replace(stages=stages, motion_iou_buffer=0.0)
        return config

    def replace(self, **changes: Any) -> TrackerConfig:
        return dataclasses.replace(self, **changes)

    @property
    def appearance_threshold(self) -> float:
        """The descriptor's appearance threshold (descriptor units): the first appearance stage's
        threshold divided by its ``threshold_factor``."""
        for stage in self.stages:
            if stage.threshold_field is not None:
                return getattr(stage, stage.threshold_field) / stage.threshold_factor
        raise ValueError(f"preset {self.name!r} has no appearance stage")

    def with_max_distance(self, max_distance: float) -> TrackerConfig:
        """The same configuration for a descriptor whose threshold is ``max_distance``: each
        appearance stage's threshold becomes ``max_distance`` times its ``threshold_factor``."""
        if not self.uses_appearance:
            raise ValueError(f"preset {self.name!r} has no appearance stage to take a distance threshold")
        if not 0.0 < max_distance < math.inf:  # False for NaN too; the fused cost divides by it
            raise ValueError(f"max_dist (the descriptor's threshold) must be a finite distance > 0, got {max_distance!r}")
        stages = tuple(s if s.threshold_field is None
                       else dataclasses.replace(s, **{s.threshold_field: max_distance * s.threshold_factor})
                       for s in self.stages)
        return self.replace(stages=stages)

    @property
    def motion_overrides(self) -> dict[str, Any]:
        """``motion_only`` as a new dict {field: value}."""
        return dict(self.motion_only)

    def without_appearance(self) -> TrackerConfig:
        """The same preset on motion alone: appearance-only stages dropped, fused stages back to
        their IoU cost, the ``motion_only`` fields in place. What an appearance preset does where no
        descriptor can be had (no frames). Call it before :meth:`at_frame_rate`, whose buffers go to
        the stages that are plain IoU at that moment."""
        stages = tuple(dataclasses.replace(s, appearance_max=None, appearance_veto=None) if s.appearance_max is not None
                       else s for s in self.stages if s.cost != "appearance")
        return self.replace(stages=stages, motion_only=(), **self.motion_overrides)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["motion_only"] = self.motion_overrides
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerConfig:
        """The config ``to_dict`` wrote; also reads files written before ``motion_only`` (which held
        its max_age, high_confidence and motion_model as motion_max_age, motion_high_confidence, motion_filter)."""
        data = dict(data)
        data["stages"] = tuple(Stage(**s) for s in data.get("stages", ()))
        legacy = {field: data.pop(old) for old, field in _LEGACY_MOTION_FIELDS.items() if old in data}
        alone = {field: value for field, value in legacy.items() if value is not None}
        if alone:
            data["motion_only"] = {**alone, **dict(data.get("motion_only") or {})}
        return cls(**data)

    def __post_init__(self) -> None:
        if isinstance(self.stages, list):  # a list from a caller: stored as the tuple a frozen config hashes
            object.__setattr__(self, "stages", tuple(self.stages))
        if not isinstance(self.stages, tuple) or not all(isinstance(s, Stage) for s in self.stages):
            raise ValueError(f"stages must be a tuple of Stage, got {self.stages!r}")
        if not self.stages:
            raise ValueError("TrackerConfig needs at least one association stage")
        _check_fields(self)
        check_velocity_noise(self.velocity_noise)
        if self.high_confidence is not None and not math.isfinite(self.high_confidence):
            raise ValueError(f"high_confidence must be a finite score or None, got {self.high_confidence}")
        if not 0.0 <= self.nms_max_overlap:  # False for NaN too
            raise ValueError(f"nms_max_overlap must be >= 0 (1.0: off), got {self.nms_max_overlap}")
        if self.max_detections is not None and self.max_detections < 1:
            raise ValueError(f"max_detections must be >= 1 or None, got {self.max_detections}")
        _check_range("identity_memory", self.identity_memory, 0, what=" (frames; 0: off)")
        _check_range("identity_factor", self.identity_factor, 0.0, above=True,
                     what=" (a multiple of the descriptor's threshold)")
        if self.n_init < 1 or self.budget < 1 or self.max_age < 0:
            raise ValueError(f"n_init and budget must be >= 1 and max_age >= 0, got {self.n_init}, {self.budget}, "
                             f"{self.max_age}")
        for field, low, high in (("min_height", 0.0, math.inf), ("ema_alpha", 0.0, 1.0),
                                 ("tentative_max_age", 0, math.inf), ("report_max_time_since_update", 0, math.inf),
                                 ("report_min_hit_streak", 0, math.inf), ("report_warmup_frames", 0, math.inf)):
            _check_range(field, getattr(self, field), low, high)
        _check_range("gating_threshold", self.gating_threshold, 0.0, above=True, what=" (a squared Mahalanobis distance)")
        for field in ("min_confidence", "birth_confidence"):
            if math.isnan(getattr(self, field)):
                raise ValueError(f"{field} must be a score (-inf: none refused), got nan")
        if self.duplicate_iou is not None:
            _check_range("duplicate_iou", self.duplicate_iou, 0.0, 1.0, what=" (an IoU) or None (off)")
        if not 0.0 <= self.motion_iou_buffer <= MAX_MOTION_BUFFER:  # False for NaN too
            raise ValueError(f"motion_iou_buffer must be in [0, {MAX_MOTION_BUFFER}] (a fraction of the box "
                             f"size at 30 fps), got {self.motion_iou_buffer}")
        if any(s.detections == "low" for s in self.stages) and self.high_confidence is None:
            raise ValueError("a stage on low-confidence detections needs high_confidence set")
        self._check_motion_only()  # last: the motion-only form is built from this one, checked

    def _check_motion_only(self) -> None:
        """Store ``motion_only`` as sorted pairs and refuse what the motion-only form could not be."""
        try:
            pairs = tuple(sorted(dict(self.motion_only).items()))
        except (TypeError, ValueError):
            raise ValueError(f"motion_only must map TrackerConfig fields to values, got {self.motion_only!r}") from None
        object.__setattr__(self, "motion_only", pairs)  # frozen: normalised once, here
        for field, _ in pairs:
            if field not in MOTION_ONLY_FIELDS:
                raise ValueError(f"motion_only: {field!r} is not a TrackerConfig field the motion-only form can set "
                                 f"(one of {', '.join(sorted(MOTION_ONLY_FIELDS))})")
        if pairs:
            try:  # the motion-only form must itself be a valid config
                dataclasses.replace(self, motion_only=(), **dict(pairs))
            except (TypeError, ValueError) as err:
                raise ValueError(f"motion_only: {err}") from None


@functools.cache
def _field_kinds(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """(field, the types its annotation allows) of a dataclass, annotations resolved once."""
    kinds = []
    for field, kind in typing.get_type_hints(cls).items():
        union = typing.get_origin(kind) in (typing.Union, types.UnionType)
        kinds.append((field, typing.get_args(kind) if union else (kind,)))
    return tuple(kinds)


def _check_fields(instance: Stage | TrackerConfig) -> None:
    """ValueError naming the field whose value is not of its declared type: a switch anything but true
    or false (in a preset file "false", a string, would be on by Python's truth rules), a count not a
    whole number, a threshold not a number, a name outside its choices. Whole numbers given as floats
    (60.0 from JSON) are stored as ints. Ranges are checked by each class after this."""
    for field, options in _field_kinds(type(instance)):
        value = getattr(instance, field)
        if value is None and type(None) in options:
            continue
        kind = options[0]
        if kind is bool:
            if isinstance(value, np.bool_):  # numpy's, as Python's (a config is written as JSON)
                object.__setattr__(instance, field, bool(value))
            elif not isinstance(value, bool):
                raise ValueError(f"{field} must be true or false, got {value!r}")
        elif kind is int:
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                object.__setattr__(instance, field, int(value))  # frozen: normalised once, here
            elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{field} must be a whole number, got {value!r}")
            elif type(value) is not int:  # numpy's integers: JSON (snapshots, preset files) takes only Python's
                object.__setattr__(instance, field, int(value))
        elif kind is float:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise ValueError(f"{field} must be a number, got {value!r}")
            if type(value) not in (int, float):
                object.__setattr__(instance, field, float(value))
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{field} must be a string, got {value!r}")
        elif typing.get_origin(kind) is Literal and value not in typing.get_args(kind):
            raise ValueError(f"unknown {field} {value!r} (one of {', '.join(map(str, typing.get_args(kind)))})")


def _check_range(field: str, value: float, low: float, high: float = math.inf, *, above: bool = False,
                 what: str = "") -> None:
    """ValueError unless ``value`` lies in [low, high] ((low, high] when ``above``) and is finite (NaN fails)."""
    if not ((low < value if above else low <= value) and value <= high and math.isfinite(value)):
        if high < math.inf:
            bounds = f"in {'(' if above else '['}{low:g}, {high:g}]"
        else:
            bounds = f"a finite number {'>' if above else '>='} {low:g}"
        raise ValueError(f"{field} must be {bounds}{what}, got {value!r}")


# Frames per second at most, as seqinfo.ini's frameRate (fmtrack.io.motchallenge.MAX_FRAME_RATE, the
# same number: the tracker does not import fmtrack.io, and a test holds them equal).
MAX_FRAME_RATE = 10_000.0

# What a config's motion_only may replace: not what the config is (name, stages, the form itself),
# nor the frame-rate settings, which at_frame_rate settles for both forms alike.
MOTION_ONLY_FIELDS = frozenset(f.name for f in dataclasses.fields(TrackerConfig)) - {
    "name", "stages", "motion_only", "max_age_scales_with_frame_rate", "velocity_noise_scales_with_frame_rate",
    "motion_iou_buffer"}
# Before motion_only (preset files and snapshots written then): the field each held.
_LEGACY_MOTION_FIELDS = {"motion_max_age": "max_age", "motion_high_confidence": "high_confidence",
                         "motion_filter": "motion_model"}


def _deepsort_stages(first: Stage) -> tuple[Stage, ...]:
    # DeepSORT: cascade over confirmed tracks, then IoU for tentative tracks and the confirmed ones
    # missed only in the previous frame (nwojke/deep_sort tracker.py, max_iou_distance=0.7).
    return (first, Stage("iou", max_cost=0.7, tracks="all", max_time_since_update=1))


PRESETS: dict[str, TrackerConfig] = {
    # abewley/sort defaults: max_age=1, min_hits=3, iou_threshold=0.3, one IoU stage over all tracks.
    # SORT reports a track updated in this frame whose hit streak reaches min_hits; during the
    # first min_hits frames it reports every track updated in that frame.
    "sort": TrackerConfig(
        name="sort", motion_model="xysr",
        stages=(Stage("iou", max_cost=1 - 0.3, gated=False),),
        n_init=1, max_age=1, tentative_max_age=1,
        report_max_time_since_update=0, report_min_hit_streak=3, report_warmup_frames=3,
    ),
    # nwojke/deep_sort deep_sort_app as run for the reference numbers: min_confidence=0.3, no NMS,
    # max_cosine_distance=0.2, nn_budget=100, Tracker defaults max_age=30, n_init=3,
    # max_iou_distance=0.7; confirmed tracks reported while missed for at most one frame.
    "deepsort": TrackerConfig(
        name="deepsort",
        stages=_deepsort_stages(Stage("appearance", max_cost=0.2, tracks="confirmed", cascade=True)),
        metric="cosine", budget=100, n_init=3, max_age=30, min_confidence=0.3,
    ),
    # DeepSORT's machinery without appearance: the cascade matches on Mahalanobis distance alone.
    "motion": TrackerConfig(
        name="motion",
        stages=_deepsort_stages(Stage("mahalanobis", max_cost=1.0, tracks="confirmed", cascade=True)),
        n_init=3, max_age=30, min_confidence=0.3,
    ),
}


def _bytetrack_stages(first: Stage) -> tuple[Stage, ...]:
    # ByteTrack (boxmot 25.0.0; docs/reference_bytetrack.md): high detections against confirmed
    # tracks, fused with score; low detections against the tracks seen last frame, plain IoU at
    # 0.5; the high detections left against unconfirmed tracks, fused, at 0.7.
    return (first,
            Stage("iou", max_cost=0.5, tracks="confirmed", max_time_since_update=1, detections="low"),
            Stage("iou", max_cost=0.7, tracks="unconfirmed", fuse_score=True))


# boxmot 25.0.0's ByteTrack with its constructor defaults (as the reference rows were made):
# min_conf 0.1, track_thresh 0.45, match_thresh 0.8, track_buffer 25 at 30 fps. A lost track
# expires when more than track_buffer frames old, but lingers one frame more (a quirk of its list
# bookkeeping), so it can be re-found up to track_buffer + 2 frames after its last update:
# max_age = track_buffer + 1. (boxmot's create_tracker yaml uses other values: docs/design-decisions.md.)
_BYTETRACK = TrackerConfig(
    name="bytetrack", motion_model="xyah",
    stages=_bytetrack_stages(Stage("iou", max_cost=0.8, tracks="confirmed", fuse_score=True)),
    min_confidence=0.1, high_confidence=0.45, n_init=2, max_age=26, tentative_max_age=0,
    max_age_scales_with_frame_rate=True, confirm_first_frame=True, predict_unconfirmed=False,
    freeze_lost_height=True, duplicate_iou=0.85, report_max_time_since_update=0,
    score_normalisation="auto",  # its thresholds assume [0, 1]; DPM and ACF scores are not
)
PRESETS["bytetrack"] = _BYTETRACK
# fmtrack: ByteTrack's association with appearance in two places, and camera-motion compensation.
# Stage 1 fuses appearance into the IoU cost as BoT-SORT does (proximity 0.5), settling ambiguities
# between overlapping people; after ByteTrack's low-confidence stage, a re-identification stage
# offers the high detections still unmatched to the remaining confirmed tracks by appearance inside
# DeepSORT's Mahalanobis gate, which IoU alone cannot re-find after an occlusion; then ByteTrack's
# unconfirmed stage. One appearance threshold serves both: DeepSORT's published 0.2 (cosine) for its
# features; other embedders bring their label-free calibrated threshold (with_max_distance).
# Stages, moving average, ByteTrack's max_age and ECC camera motion (people masked out) were each
# chosen on MOT16-11, the training sequence, with HSV features: docs/design-decisions.md.
# Where the descriptor is sure two boxes are different people (1.5x its threshold), IoU cannot pair
# them: chosen on MOT17-05 and MOT16-11 (docs/tuning.md).
# Every IoU stage weighs the boxes' height agreement (HMIoU): chosen on the design sequences, MOT16-11
# and TUD-Campus at 1/1-1/4 of their frame rates (docs/tuning.md).
_FUSED = Stage("iou", max_cost=0.8, tracks="confirmed", fuse_score=True, appearance_max=0.2, appearance_veto=1.5,
               proximity=0.5, height_modulated=True)
_LOW, _UNCONFIRMED = (dataclasses.replace(s, height_modulated=True) for s in _bytetrack_stages(_FUSED)[1:])
# As in BoT-SORT's code, a low-confidence match (mostly a partly occluded person, whose crop shows
# the occluder) does not feed the moving average (docs/design-decisions.md).
_LOW = dataclasses.replace(_LOW, updates_appearance=False)
# First, confirmed tracks whose appearance is unmistakable (0.6 of the threshold, inside the gate)
# take their detections before IoU decides: measured on MOT16-11 and MOT17-05 (docs/tuning.md).
_STRICT = Stage("appearance", max_cost=0.2 * 0.6, tracks="confirmed", threshold_factor=0.6)
# Where motion alone decides (the low and unconfirmed stages; every stage on motion alone), IoU of
# boxes grown by 0.13 of their size at 30 fps, more at lower rates: chosen on the design set with
# MOT16-11 (docs/tuning.md); inside stages that weigh appearance a buffer cost IDF1, so none there.
PRESETS["fmtrack"] = _BYTETRACK.replace(
    name="fmtrack",
    stages=(_STRICT, _FUSED, _LOW, Stage("appearance", max_cost=0.2, tracks="confirmed"), _UNCONFIRMED),
    metric="cosine", appearance_memory="ema", camera_motion="ecc", motion_iou_buffer=0.13,
    # Appearance re-finds a track after longer gaps than IoU can (MOT16-11, MOT17-05; docs/tuning.md).
    max_age=60,
    # A person back within 100 frames (at 30 fps) of their last update, after their track was
    # deleted, takes their id back when the descriptor is within its threshold: chosen on MOT17-05,
    # MOT16-11 and TUD-Campus at 1/1-1/4 of their frame rates (docs/tuning.md).
    identity_memory=100,
    # The Kalman filter's velocity noise given for 30 fps: chosen on the design sequences, MOT16-11 and
    # TUD-Campus at 1/1-1/4 of their frame rates, in every leave-one-sequence-out fold (docs/tuning.md).
    velocity_noise_scales_with_frame_rate=True,
    # On motion alone: ByteTrack's max_age (IoU alone re-finds a track), and BoT-SORT's high threshold
    # and Kalman filter, chosen in every leave-one-sequence-out fold of the motion-only design sequences.
    motion_only={"max_age": _BYTETRACK.max_age, "high_confidence": 0.6, "motion_model": "xywh"},
)


def preset(name: str, **overrides: Any) -> TrackerConfig:
    """A named preset, optionally with fields replaced (``preset("deepsort", min_confidence=0.3)``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)
