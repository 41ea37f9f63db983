"""Appearance descriptors by name, and the tracker configuration a preset gets with one.

A descriptor is named by a string: ``default`` (the shipped model fused with colour histograms,
:data:`~fmtrack.pipeline.defaults.DEFAULT_FUSION`), ``model`` (the shipped model alone), ``hsv``
(colour histograms), ``deepsort`` (DeepSORT's own features, precomputed per sequence), a trained
FMVAE ``.safetensors`` (latent means, compared by Euclidean distance with the threshold its JSON
sidecar holds from ``fmtrack calibrate --write``), an ``N x (7 + D)`` ``.npy`` of features per
detection row, or image descriptors fused with ``+`` (``model+hsv*3``: each part in units of its
own label-free threshold, times its weight, 1 when not given; fmtrack.embedder.fused). An
:class:`~fmtrack.embedder.Embedder` object may stand in for any of them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Any

from ..io import InputWarning
from ..tracker import PRESETS, TrackerConfig
from .defaults import (COSINE_THRESHOLDS, DEFAULT_DESCRIPTOR, DEFAULT_FUSION, LEGACY_DEFAULT_DESCRIPTOR,
                       MODEL_DESCRIPTOR, PRESET_DESCRIPTORS, default_model_path, preset_descriptor)
from .features_sidecar import read_sidecar, sidecar_path
from .preset_file import resolve_preset as resolve_preset_file
from .preset_file import tuned_features


def descriptor_spec(descriptor: str | os.PathLike | None) -> str | None:
    """A descriptor name as a string: ``default`` and ``model`` resolved (the shipped model's path),
    in every part of a fused name too (``model+hsv*3`` -> ``/.../fmvae-....safetensors+hsv*3``)."""
    if descriptor is None:
        return None
    if not isinstance(descriptor, (str, os.PathLike)):
        raise ValueError(f"descriptor must be a name (default, model, hsv, deepsort, a fused name), a .safetensors "
                         f"or .npy path, an Embedder or None, got {type(descriptor).__name__} {descriptor!r}")
    spec = os.fspath(descriptor)
    if spec == DEFAULT_DESCRIPTOR:
        spec = DEFAULT_FUSION
    parts = fused_parts(spec)
    if parts is None:
        return str(default_model_path()) if spec == MODEL_DESCRIPTOR else spec
    return "+".join(_weighted(descriptor_spec(part), weight) for part, weight in parts)


def fused_parts(spec: str) -> list[tuple[str, float]] | None:
    """The (part, weight) pairs of a fused descriptor name ``A+B*W`` (weight 1 where none is given),
    or None for a single descriptor (an existing file's name is never split). ValueError for a
    fused name whose parts are not image descriptors (``model``, ``hsv``, ``.safetensors``) or
    whose weights are not finite numbers > 0."""
    if "+" not in spec or Path(spec).is_file():
        return None
    parts = []
    for text in spec.split("+"):
        name, _, weight_text = text.rpartition("*") if "*" in text else (text, "", "1")
        try:
            weight = float(weight_text)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"descriptor {spec!r}: the weight of part {text!r} must be a finite number > 0")
        if not (name in (MODEL_DESCRIPTOR, "hsv") or is_model(name)):
            raise ValueError(f"descriptor {spec!r}: part {name!r} is not an image descriptor to fuse "
                             "(model, hsv or FMVAE weights .safetensors)")
        parts.append((name, weight))
    return parts


def _weighted(part: str, weight: float) -> str:
    return part if weight == 1 else f"{part}*{weight:g}"


def is_model(spec: object) -> bool:
    """Whether a descriptor names FMVAE weights (a ``.safetensors`` file)."""
    return isinstance(spec, str) and spec.endswith(".safetensors")


def uses_model(spec: object) -> bool:
    """Whether a descriptor name runs an FMVAE model: one, or a fused name with one among its parts."""
    if not isinstance(spec, str):
        return False
    parts = fused_parts(spec)
    return is_model(spec) if parts is None else any(part == MODEL_DESCRIPTOR or is_model(part) for part, _ in parts)


def needs_images(spec: object) -> bool:
    """Whether a descriptor name computes its features from the frames (hsv, a model, a fusion of them)."""
    return isinstance(spec, str) and (spec == "hsv" or is_model(spec) or fused_parts(spec) is not None)


def descriptor_label(spec: str) -> str:
    """A short name for a descriptor: weights and feature files by their stem (in fused names too),
    so table rows stay short and do not depend on where the file lives."""
    parts = fused_parts(spec)
    if parts is not None:
        return "+".join(_weighted(descriptor_label(part), weight) for part, weight in parts)
    return Path(spec).stem if spec.endswith((".safetensors", ".npy")) else spec


def part_threshold(spec: str) -> float:
    """The label-free threshold of one image descriptor as a Euclidean distance between its features:
    a model's calibrated one (its sidecar); HSV's cosine one as sqrt(2 x), its features being unit
    vectors (|a - b|^2 = 2 (1 - cos)). ValueError for a model never calibrated."""
    if spec == "hsv":
        return math.sqrt(2 * COSINE_THRESHOLDS["hsv"])
    from ..model.weights import read_weights_info  # torch: only when a model is named

    threshold = read_weights_info(spec).thresholds.get("euclidean")
    if threshold is None:
        raise ValueError(f"{spec}: its sidecar holds no calibrated euclidean threshold, which fusing it needs; "
                         f"run `fmtrack calibrate --features {spec} --seq SEQ --write` on the sequence it "
                         "will track (without --seq it calibrates on MOT16-11)")
    return float(threshold)


def _model_thresholds(spec: object) -> dict[str, float] | None:
    """Label-free thresholds by metric of a descriptor compared by Euclidean distance by default: an
    FMVAE sidecar's (a path or an FMVAEEmbedder), a fused descriptor's (a name or a FusedEmbedder);
    else None."""
    if is_model(spec):
        from ..model.weights import read_weights_info  # torch: only when a model is named

        return dict(read_weights_info(spec).thresholds)
    if isinstance(spec, str):
        parts = fused_parts(spec)
        if parts is None:
            return None
        from ..embedder.fused import fused_threshold

        return {"euclidean": fused_threshold([weight for _, weight in parts])}
    thresholds = getattr(spec, "thresholds", None)  # a FusedEmbedder
    if thresholds is None:
        thresholds = getattr(getattr(spec, "info", None), "thresholds", None)  # an FMVAEEmbedder's sidecar
    return dict(thresholds) if isinstance(thresholds, dict) else None


def descriptor_thresholds(spec: object) -> tuple[dict[str, float] | None, str | None]:
    """(label-free thresholds by metric, the metric to compare by) a descriptor brings: a model's or a
    fused descriptor's (Euclidean), an exported ``.npy``'s sidecar's (``fmtrack embed``); (None, None)
    where the preset's own thresholds apply (``hsv`` and ``deepsort`` by name, a bare ``.npy``)."""
    if isinstance(spec, str) and spec.endswith(".npy"):
        found = read_sidecar(spec)
        return (None, None) if found is None else (found[1], found[0])
    thresholds = _model_thresholds(spec)
    return (None, None) if thresholds is None else (thresholds, "euclidean")


def export_thresholds(spec: str) -> tuple[str, dict[str, float]]:
    """(metric, thresholds) to store beside features exported from the image descriptor ``spec``."""
    thresholds = _model_thresholds(spec)
    if thresholds is not None:
        return "euclidean", thresholds
    return "cosine", {"cosine": COSINE_THRESHOLDS[spec]} if spec in COSINE_THRESHOLDS else {}


def resolve_preset(preset_spec: str | os.PathLike | TrackerConfig) -> TrackerConfig:
    """A TrackerConfig from a preset name, a TrackerConfig, or a preset JSON file (``fmtrack tune``'s)."""
    if isinstance(preset_spec, TrackerConfig):
        return preset_spec
    return resolve_preset_file(preset_spec)


def is_preset_file(preset_spec: str | os.PathLike | TrackerConfig) -> bool:
    """Whether ``preset_spec`` names a preset file: its thresholds were tuned for the features it
    names, so a descriptor's label-free default replaces them only where they cannot hold."""
    return not isinstance(preset_spec, TrackerConfig) and os.fspath(preset_spec) not in PRESETS


def configure(preset_spec: str | os.PathLike | TrackerConfig, descriptor: Any,
              overrides: dict[str, Any] | None = None) -> TrackerConfig:
    """The configuration a preset runs with a descriptor.

    overrides: TrackerConfig fields, plus ``max_dist`` (every appearance stage's threshold,
    descriptor units). When the preset uses appearance: an FMVAE model switches the metric to
    Euclidean (its flat latent space's own distance) unless ``metric`` is given, and the threshold
    becomes the descriptor's label-free one for that metric (sidecar, or :data:`COSINE_THRESHOLDS`)
    unless ``max_dist`` is given. A preset file keeps its own thresholds when they hold: same metric,
    and tuned with this descriptor (its provenance's ``features``; a file without provenance is taken
    at its word); otherwise they are carried by their threshold factors, with an InputWarning.
    Raises ValueError for unknown fields, and for a model whose sidecar holds no threshold for the
    metric (run ``fmtrack calibrate --write`` first).
    """
    overrides = dict(overrides or {})
    max_dist = overrides.pop("max_dist", None)
    if max_dist is not None and (isinstance(max_dist, bool) or not isinstance(max_dist, (int, float))):
        raise ValueError(f"max_dist (the descriptor's threshold) must be a number, got {max_dist!r}")
    base = resolve_preset(preset_spec)
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(TrackerConfig)})
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r} for preset {base.name!r} (the settings are "
                         "TrackerConfig's fields and max_dist)")
    thresholds, metric = descriptor_thresholds(descriptor) if base.uses_appearance else (None, None)
    if thresholds is not None and "metric" not in overrides:
        overrides["metric"] = metric
    try:
        config = base.replace(**overrides)
    except TypeError as err:
        raise ValueError(f"bad setting for preset {base.name!r}: {err}") from None
    if not config.uses_appearance:
        return config if max_dist is None else config.with_max_distance(float(max_dist))
    if max_dist is not None:
        return config.with_max_distance(float(max_dist))
    if is_preset_file(preset_spec) and descriptor is not None:
        mismatch = _file_thresholds_mismatch(preset_spec, base, config, descriptor)
        if mismatch is None:
            return config
        # Carried as fmtrack tune carries them to a sequence its features miss: by threshold factor.
        warnings.warn(InputWarning(f"{os.fspath(preset_spec)}: {mismatch}; its appearance thresholds are carried "
                                   "to this descriptor's own threshold by their threshold factors"))
        if thresholds is None and "metric" not in overrides:  # the metric of the preset the file came from
            config = config.replace(metric=PRESETS[base.name].metric if base.name in PRESETS else base.metric)
    if thresholds is not None:
        if config.metric not in thresholds:
            if (isinstance(descriptor, str) and fused_parts(descriptor) is not None) or hasattr(descriptor, "parts"):
                raise ValueError(f"a fused descriptor is compared by Euclidean distance only, not {config.metric}")
            if isinstance(descriptor, str) and descriptor.endswith(".npy"):
                raise ValueError(f"{sidecar_path(descriptor)}: holds no {config.metric} threshold for these features "
                                 f"(give max_dist, or the metric it holds)")
            where = descriptor if is_model(descriptor) else getattr(descriptor, "weights_path", "the model")
            raise ValueError(f"{where}: its sidecar holds no calibrated {config.metric} threshold, so appearance "
                             f"would never match; run `fmtrack calibrate --features {where} --seq SEQ --write` on "
                             "the sequence it will track (without --seq it calibrates on MOT16-11), or give max_dist")
        return config.with_max_distance(float(thresholds[config.metric]))
    if isinstance(descriptor, str) and descriptor in COSINE_THRESHOLDS:
        if config.metric != "cosine":  # else the preset's own threshold, in no unit of this descriptor
            raise ValueError(f"{descriptor}'s label-free threshold is a cosine distance; compared by "
                             f"{config.metric} distance it needs max_dist (--max-dist; fmtrack calibrate --features "
                             f"{descriptor} gives one)")
        return config.with_max_distance(COSINE_THRESHOLDS[descriptor])
    return config


def _file_thresholds_mismatch(path: str | os.PathLike, base: TrackerConfig, config: TrackerConfig,
                              descriptor: Any) -> str | None:
    """Why a preset file's appearance thresholds do not hold for this run's descriptor (None: they do).
    They are distances in the file's metric between the features it was tuned with."""
    if config.metric != base.metric:
        return f"its thresholds are {base.metric} distances and this descriptor is compared by {config.metric} distance"
    known, features, name = tuned_features(path)
    if known and isinstance(descriptor, str):
        if name is None:  # a file that names no descriptor
            name = features or PRESET_DESCRIPTORS.get(base.name, LEGACY_DEFAULT_DESCRIPTOR)
        tuned = descriptor_spec(name)
        if tuned != descriptor:
            return (f"its thresholds were tuned with {descriptor_label(tuned)} features and this run uses "
                    f"{descriptor_label(descriptor)}")
    return None


def method_descriptor(preset_spec: str | os.PathLike | TrackerConfig, features: str | None) -> str | None:
    """The descriptor a command-line method runs: ``features`` (``default`` resolved), or for an
    appearance preset given none, the preset's default (fmtrack.pipeline.defaults)."""
    if features is None and resolve_preset(preset_spec).uses_appearance:
        features = preset_descriptor(resolve_preset(preset_spec).name)
    return descriptor_spec(features)


def image_embedder(spec: str, device: str = "auto", **model_options: Any):
    """The embedder that computes ``spec``'s features from frames (``hsv``, FMVAE weights, or a fused
    name of those, resolved by :func:`descriptor_spec`), else None. model_options: FMVAEEmbedder's
    (precision, threads, batch_size)."""
    from ..embedder import HSVEmbedder

    if spec == "hsv":
        return HSVEmbedder()
    if is_model(spec):
        from ..embedder.fmvae import FMVAEEmbedder  # torch is imported only when a model is used

        return FMVAEEmbedder(spec, device=device, **model_options)
    parts = fused_parts(spec)
    if parts is None:
        return None
    from ..embedder.fused import FusedEmbedder

    resolved = [(descriptor_spec(part), weight) for part, weight in parts]
    return FusedEmbedder([(image_embedder(part, device, **model_options), weight, part_threshold(part))
                          for part, weight in resolved])
