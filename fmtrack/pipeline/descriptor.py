"""Appearance descriptors by name, and the tracker configuration a preset gets with one.

A descriptor is named by a string: ``default`` (the shipped model), ``hsv`` (colour histograms),
``deepsort`` (DeepSORT's own features, precomputed per sequence), a trained FMVAE ``.safetensors``
(latent means, compared by Euclidean distance with the threshold its JSON sidecar holds from
``fmtrack calibrate --write``), or an ``N x (7 + D)`` ``.npy`` of features per detection row. An
:class:`~fmtrack.embedder.Embedder` object may stand in for any of them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..io import InputWarning
from ..tracker import PRESETS, TrackerConfig
from .defaults import COSINE_THRESHOLDS, DEFAULT_DESCRIPTOR, default_model_path, preset_descriptor
from .preset_file import resolve_preset as resolve_preset_file
from .preset_file import tuned_features

def descriptor_spec(descriptor: str | os.PathLike | None) -> str | None:
    """A descriptor name as a string, with ``default`` resolved to the shipped model's path."""
    if descriptor is None:
        return None
    spec = os.fspath(descriptor)
    return str(default_model_path()) if spec == DEFAULT_DESCRIPTOR else spec


def is_model(spec: object) -> bool:
    """Whether a descriptor names FMVAE weights (a ``.safetensors`` file)."""
    return isinstance(spec, str) and spec.endswith(".safetensors")


def descriptor_label(spec: str) -> str:
    """A short name for a descriptor: weights and feature files by their stem, so table rows stay
    short and do not depend on where the file lives."""
    return Path(spec).stem if spec.endswith((".safetensors", ".npy")) else spec


def _model_thresholds(spec: object) -> dict[str, float] | None:
    """Label-free thresholds by metric from an FMVAE sidecar (a path or an FMVAEEmbedder), else None."""
    if is_model(spec):
        from ..model.weights import read_weights_info  # torch: only when a model is named

        return dict(read_weights_info(spec).thresholds)
    info = getattr(spec, "info", None)  # an FMVAEEmbedder carries its sidecar
    thresholds = getattr(info, "thresholds", None)
    return dict(thresholds) if isinstance(thresholds, dict) else None


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
    base = resolve_preset(preset_spec)
    thresholds = _model_thresholds(descriptor) if base.uses_appearance else None
    if thresholds is not None and "metric" not in overrides:
        overrides["metric"] = "euclidean"
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
            where = descriptor if is_model(descriptor) else getattr(descriptor, "weights_path", "the model")
            raise ValueError(f"{where}: its sidecar holds no calibrated {config.metric} threshold, so appearance "
                             f"would never match; run `fmtrack calibrate --features {where} --write` "
                             "(or give max_dist)")
        return config.with_max_distance(float(thresholds[config.metric]))
    if isinstance(descriptor, str) and config.metric == "cosine" and descriptor in COSINE_THRESHOLDS:
        return config.with_max_distance(COSINE_THRESHOLDS[descriptor])
    return config


def _file_thresholds_mismatch(path: str | os.PathLike, base: TrackerConfig, config: TrackerConfig,
                              descriptor: Any) -> str | None:
    """Why a preset file's appearance thresholds do not hold for this run's descriptor (None: they do).
    They are distances in the file's metric between the features it was tuned with."""
    if config.metric != base.metric:
        return f"its thresholds are {base.metric} distances and this descriptor is compared by {config.metric} distance"
    known, features = tuned_features(path)
    if known and isinstance(descriptor, str):
        tuned = descriptor_spec(features or preset_descriptor(base.name))
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


def image_embedder(spec: str, device: str = "auto"):
    """The embedder that computes ``spec``'s features from frames (``hsv`` or FMVAE weights), else None."""
    from ..embedder import HSVEmbedder

    if spec == "hsv":
        return HSVEmbedder()
    if is_model(spec):
        from ..embedder.fmvae import FMVAEEmbedder  # torch is imported only when a model is used

        return FMVAEEmbedder(spec, device=device)
    return None
