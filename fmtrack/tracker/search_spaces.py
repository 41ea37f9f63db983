"""Declared search spaces of the presets, for ``fmtrack tune``: plain data, next to the presets.

A parameter is addressed by name: a TrackerConfig field (``max_age``), a field of one association
stage as ``stages.<index>.<field>`` (``stages.0.max_cost``: the first stage's threshold), or a field
of the motion-only form as ``motion_only.<field>`` (``motion_only.max_age``). Each maps
to ``(kind, low, high)``:

- ``("float", low, high)``: uniform in [low, high];
- ``("int", low, high)``: an integer in [low, high];
- ``("scale", low, high)``: the preset's own value times a factor drawn log-uniformly from
  [low, high]. For appearance thresholds, whose units depend on the descriptor (cosine for
  DeepSORT's features, calibrated Euclidean for the FMVAE model), so one range serves every descriptor;
- ``("bool", 0, 1)``: off or on (a switch such as a stage's ``height_modulated``).

Score-scale settings (``min_confidence`` of the raw-score presets) are left out: their range depends
on the detector. Settings the pipeline applies before tracking (score normalisation, camera motion)
are left out too, since a trial reuses its inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from .config import MOTION_ONLY_FIELDS, TrackerConfig

Kind = Literal["float", "int", "scale", "bool"]
Space = dict[str, tuple[Kind, float, float]]


def _bytetrack_family(high: int, low: int) -> Space:
    """ByteTrack's thresholds and lifecycle, its high- and low-detection stages at these indices."""
    return {
        "high_confidence": ("float", 0.3, 0.7),
        "min_confidence": ("float", 0.05, 0.3),
        "max_age": ("int", 10, 60),
        "n_init": ("int", 1, 4),
        "duplicate_iou": ("float", 0.7, 0.95),
        f"stages.{high}.max_cost": ("float", 0.6, 0.95),  # high detections, confirmed tracks (1 - IoU * score)
        f"stages.{low}.max_cost": ("float", 0.3, 0.7),  # low detections (1 - IoU)
        f"stages.{high}.iou_buffer": ("float", 0.0, 0.5),  # C-BIoU buffers (fraction of the box per side)
        f"stages.{low}.iou_buffer": ("float", 0.0, 0.5),
        f"stages.{high}.height_modulated": ("bool", 0, 1),  # IoU times the boxes' height IoU
        f"stages.{low}.height_modulated": ("bool", 0, 1),
    }


SEARCH_SPACES: dict[str, Space] = {
    "sort": {
        "stages.0.max_cost": ("float", 0.5, 0.9),
        "max_age": ("int", 1, 10),
        "report_min_hit_streak": ("int", 1, 5),
    },
    "deepsort": {
        "stages.0.max_cost": ("scale", 0.5, 2.0),  # appearance threshold (descriptor units)
        "stages.1.max_cost": ("float", 0.5, 0.9),
        "max_age": ("int", 10, 90),
        "n_init": ("int", 1, 5),
    },
    "motion": {
        "stages.0.max_cost": ("float", 0.3, 1.0),  # Mahalanobis cost as a fraction of the chi-square gate
        "stages.1.max_cost": ("float", 0.5, 0.9),
        "max_age": ("int", 10, 90),
        "n_init": ("int", 1, 5),
    },
    "bytetrack": {
        **_bytetrack_family(0, 1),
        "stages.2.max_cost": ("float", 0.5, 0.9),  # high detections left, unconfirmed tracks
        "stages.2.iou_buffer": ("float", 0.0, 0.5),
        "stages.2.height_modulated": ("bool", 0, 1),
    },
    "fmtrack": {
        **_bytetrack_family(1, 2),
        "max_age": ("int", 10, 90),
        "identity_memory": ("int", 0, 300),  # at 30 fps; a deleted track's id reclaimable by appearance
        "identity_factor": ("float", 0.5, 1.5),
        "motion_only.max_age": ("int", 10, 90),  # where no descriptor can be had
        "motion_only.high_confidence": ("float", 0.3, 0.7),
        "stages.0.max_cost": ("scale", 0.5, 1.6),  # strict appearance-first threshold
        "stages.1.appearance_max": ("scale", 0.5, 2.0),  # appearance fused into the IoU stage
        "stages.1.proximity": ("float", 0.3, 0.8),
        "stages.1.appearance_veto": ("float", 1.0, 3.0),  # a multiple of the fused threshold
        "stages.3.max_cost": ("scale", 0.5, 2.0),  # re-identification threshold
        "stages.4.max_cost": ("float", 0.5, 0.9),  # unconfirmed tracks
        "stages.4.iou_buffer": ("float", 0.0, 0.5),
        "stages.4.height_modulated": ("bool", 0, 1),
        "motion_iou_buffer": ("float", 0.0, 0.5),  # at 30 fps, where motion alone decides
        "ema_alpha": ("float", 0.7, 0.98),
        "velocity_noise": ("float", 0.5, 2.0),  # Kalman velocity noise factor at 30 fps
    },
}


# Where a parameter lives: a stage index, the config itself, or its motion-only form.
Scope = int | Literal["config", "motion_only"]


def _split(name: str, config: TrackerConfig) -> tuple[Scope, str]:
    """(where, field) of a parameter name; ValueError naming what is wrong."""
    parts = name.split(".")
    scope: Scope
    if len(parts) == 1:
        scope, field = "config", parts[0]
        known = {f.name for f in dataclasses.fields(config)} - {"stages", "name", "motion_only"}
    elif len(parts) == 2 and parts[0] == "motion_only":
        scope, field = "motion_only", parts[1]
        known = set(MOTION_ONLY_FIELDS)
    elif len(parts) == 3 and parts[0] == "stages" and parts[1].isdigit():
        scope, field = int(parts[1]), parts[2]
        if scope >= len(config.stages):
            raise ValueError(f"parameter {name!r}: preset {config.name!r} has {len(config.stages)} stages")
        known = {f.name for f in dataclasses.fields(config.stages[scope])}
    else:
        raise ValueError(f"parameter {name!r}: expected a TrackerConfig field, motion_only.<field> or "
                         "stages.<index>.<field>")
    if field not in known:
        raise ValueError(f"parameter {name!r}: no field {field!r} (known: {', '.join(sorted(known))})")
    return scope, field


def get_parameter(config: TrackerConfig, name: str) -> Any:
    """The current value of a named parameter (``max_age``, ``stages.0.max_cost``); for
    ``motion_only.<field>``, the value the motion-only form runs with (its own, else the config's)."""
    scope, field = _split(name, config)
    if scope == "motion_only":
        return config.motion_overrides.get(field, getattr(config, field))
    return getattr(config if scope == "config" else config.stages[scope], field)


def apply_parameters(config: TrackerConfig, values: dict[str, Any]) -> TrackerConfig:
    """``config`` with the named parameters set (names as in SEARCH_SPACES); ValueError for an unknown name.

    An appearance threshold moved by a factor moves its stage's ``threshold_factor`` by the same
    factor, so the tuned ratios between stages survive a descriptor with another threshold."""
    stages = list(config.stages)
    fields: dict[str, Any] = {}
    alone = config.motion_overrides
    for name, value in values.items():
        scope, field = _split(name, config)
        if scope == "config":
            fields[field] = value
        elif scope == "motion_only":
            alone[field] = value
        else:
            stage, changes = stages[scope], {field: value}
            if field == stage.threshold_field and getattr(stage, field):
                changes["threshold_factor"] = stage.threshold_factor * value / getattr(stage, field)
            stages[scope] = dataclasses.replace(stage, **changes)
    return config.replace(stages=tuple(stages), motion_only=alone, **fields)


def check_space(config: TrackerConfig, space: Space) -> None:
    """ValueError unless every entry names a parameter of ``config`` and has a valid (kind, low, high)."""
    for name, entry in space.items():
        _split(name, config)
        if len(entry) != 3 or entry[0] not in ("float", "int", "scale", "bool") or not entry[1] < entry[2]:
            raise ValueError(f"parameter {name!r}: expected (float|int|scale|bool, low, high) with low < high, "
                             f"got {entry!r}")
        if entry[0] == "bool" and (entry[1:] != (0, 1) or not isinstance(get_parameter(config, name), bool)):
            raise ValueError(f"parameter {name!r}: a bool is (bool, 0, 1) on a field that is True or False")
        if entry[0] == "scale" and (entry[1] <= 0 or get_parameter(config, name) is None):
            raise ValueError(f"parameter {name!r}: a scale needs a positive range and a preset value to scale")
