"""Tracker configuration: one dataclass, a tuple of association stages, and named presets.

A preset is data, not code: a new association strategy is a new tuple of :class:`Stage` plus
lifecycle numbers, run by the same :class:`~fmtrack.tracker.tracker.Tracker`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from scipy.stats import chi2

# DeepSORT gates at the 95% quantile of the chi-square distribution with 4 degrees of freedom
# (the measurement is 4-d): 9.4877.
CHI2_95_4DOF = float(chi2.ppf(0.95, df=4))


@dataclass(frozen=True)
class Stage:
    """One association stage: one cost matrix between chosen tracks and detections, one assignment.

    cost:
        ``appearance``: nearest-neighbour distance between the detection's feature and the track's
        gallery (metric from the config), pairs outside the Mahalanobis gate excluded.
        ``mahalanobis``: squared Mahalanobis distance divided by the gating threshold (motion only).
        ``iou``: 1 - IoU between the predicted track box and the detection box.
    max_cost: pairs costing more are never matched (distance units of ``cost``).
    tracks: which live tracks take part (``all``, ``confirmed``, ``unconfirmed``); tracks matched by an
        earlier stage never take part again.
    max_time_since_update: only tracks missed at most this many frames (counted after predict, so 1
        means "updated in the previous frame"); None for no limit.
    cascade: match in order of time since update, most recently seen first (DeepSORT's cascade).
    gated: clip over-threshold costs before the assignment (DeepSORT) or solve on raw costs (SORT);
        see :func:`~fmtrack.tracker.linear_assignment.min_cost_matching`.
    """

    cost: Literal["appearance", "mahalanobis", "iou"]
    max_cost: float
    tracks: Literal["all", "confirmed", "unconfirmed"] = "all"
    max_time_since_update: int | None = None
    cascade: bool = False
    gated: bool = True


@dataclass(frozen=True)
class TrackerConfig:
    """Everything that decides what the tracker does; serialised into every result it produces.

    Units: confidences on the detector's scale; heights in pixels; ages in frames.
    Appearance distances: ``cosine`` is 1 - cos(a, b) in [0, 2]; ``euclidean`` is the true
    (not squared) L2 distance between feature vectors.
    """

    name: str = "custom"
    motion_model: Literal["xyah", "xysr"] = "xyah"
    stages: tuple[Stage, ...] = ()
    metric: Literal["cosine", "euclidean"] = "cosine"
    budget: int = 100  # gallery size per track (last `budget` features)
    gating_threshold: float = CHI2_95_4DOF  # on squared Mahalanobis distance
    # Detection preprocessing.
    min_confidence: float = float("-inf")
    min_height: float = 0.0
    nms_max_overlap: float = 1.0  # IoU above which a lower-scored detection is dropped; 1.0 = off
    # Track lifecycle.
    n_init: int = 3  # hits (birth detection included) that confirm a tentative track
    max_age: int = 30  # a confirmed track is deleted after this many missed frames (more than)
    tentative_max_age: int = 0  # likewise for tentative tracks (0: deleted on their first miss)
    # Which tracks are reported each frame.
    report_max_time_since_update: int = 1
    report_min_hit_streak: int = 0  # matches since birth or the last miss, birth not counted
    report_warmup_frames: int = 0  # during the first frames, report any track updated this frame

    @property
    def uses_appearance(self) -> bool:
        return any(stage.cost == "appearance" for stage in self.stages)

    def replace(self, **changes: Any) -> TrackerConfig:
        return dataclasses.replace(self, **changes)

    def with_max_distance(self, max_distance: float) -> TrackerConfig:
        """The same configuration with every appearance stage's threshold set to ``max_distance``."""
        if not self.uses_appearance:
            raise ValueError(f"preset {self.name!r} has no appearance stage to take a distance threshold")
        stages = tuple(dataclasses.replace(s, max_cost=max_distance) if s.cost == "appearance" else s
                       for s in self.stages)
        return self.replace(stages=stages)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackerConfig:
        data = dict(data)
        data["stages"] = tuple(Stage(**s) for s in data.get("stages", ()))
        return cls(**data)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("TrackerConfig needs at least one association stage")
        if self.metric not in ("cosine", "euclidean"):
            raise ValueError(f"unknown appearance metric {self.metric!r} (cosine or euclidean)")
        if self.motion_model not in ("xyah", "xysr"):
            raise ValueError(f"unknown motion model {self.motion_model!r} (xyah or xysr)")
        if self.n_init < 1 or self.budget < 1 or self.max_age < 0:
            raise ValueError("n_init and budget must be >= 1 and max_age >= 0")


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


def preset(name: str, **overrides: Any) -> TrackerConfig:
    """A named preset, optionally with fields replaced (``preset("deepsort", min_confidence=0.3)``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)
