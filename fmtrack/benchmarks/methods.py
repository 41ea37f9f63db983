"""A method is a tracker configuration plus where its appearance features come from.

Spelled on the command line as ``PRESET[@key=value,...]``, e.g. ``sort@min_confidence=0.3`` or
``deepsort@features=deepsort,max_dist=0.2``. Keys are TrackerConfig fields, plus ``max_dist`` (the
appearance stages' threshold) and ``features`` (``deepsort``: DeepSORT's features from the data
root; or a path to an ``N x (7 + D)`` .npy file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..embedder import Embedder, PrecomputedFeatures
from ..io import Detections, InputError, SequenceInfo, deepsort_features_path, read_detections
from ..tracker import TrackerConfig, preset


class MethodUnavailable(Exception):
    """A method cannot run on a sequence (e.g. no precomputed features for it)."""


@dataclass(frozen=True)
class Method:
    label: str
    config: TrackerConfig
    features: str | None  # "deepsort", a .npy path, or None (motion only)


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def configure(preset_name: str, overrides: dict) -> TrackerConfig:
    """A preset with TrackerConfig fields replaced; ``max_dist`` sets the appearance threshold."""
    overrides = dict(overrides)
    max_dist = overrides.pop("max_dist", None)
    try:
        config = preset(preset_name, **overrides)
    except TypeError as err:
        raise ValueError(f"bad setting for preset {preset_name!r}: {err}") from None
    if max_dist is not None:
        config = config.with_max_distance(float(max_dist))
    return config


def parse_method(spec: str) -> Method:
    """``PRESET[@key=value,...]`` -> Method."""
    name, _, settings = spec.partition("@")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"method {spec!r}: expected key=value, got {item!r}")
        overrides[key.strip()] = _parse_value(value.strip())
    features = overrides.pop("features", None)
    config = configure(name, overrides)
    if config.uses_appearance and features is None:
        features = "deepsort"
    return Method(label=spec, config=config, features=None if features is None else str(features))


def load_inputs(method: Method, info: SequenceInfo, data_root: str | Path | None = None
                ) -> tuple[Detections, Embedder | None]:
    """The detections and embedder a method uses on a sequence.

    With precomputed features the detections are that file's rows (the same as det.txt for the
    shared DeepSORT features), so every detection has its feature.
    """
    if method.features is None:
        return read_detections(info.det_path, info.seq_length), None
    path = (deepsort_features_path(info.name, data_root) if method.features == "deepsort"
            else Path(method.features))
    if not path.is_file():
        raise MethodUnavailable(f"{method.label}: no features for {info.name} ({path})")
    embedder = PrecomputedFeatures(path, info.seq_length)
    return embedder.detections, embedder


__all__ = ["InputError", "Method", "MethodUnavailable", "configure", "load_inputs", "parse_method"]
