"""A method is a tracker configuration plus where its detections' scores and features come from.

Spelled on the command line as ``PRESET[@key=value,...]``, e.g. ``sort@min_confidence=0.3`` or
``fmtrack@features=hsv,max_dist=0.2``. Keys are TrackerConfig fields, plus:

- ``max_dist``: the appearance threshold of every appearance stage (descriptor units);
- ``features``: ``deepsort`` (DeepSORT's own features from the data root), ``hsv`` (computed from
  the images, cached), a trained FMVAE ``.safetensors`` (latent means computed from the images,
  cached per weights digest; compared by Euclidean distance unless ``metric`` says otherwise, with
  the threshold its JSON sidecar holds from ``fmtrack calibrate --write``), or a path to an
  ``N x (7 + D)`` .npy file;
- ``score_norm``: short for ``score_normalisation`` (``raw``, ``auto``, ``minmax``, ``logistic``,
  ``rank``; fmtrack.scores);
- ``cmc``: short for ``camera_motion`` (``none``, ``sof`` or ``ecc``; fmtrack.camera_motion).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera_motion import CameraMotionConfig, sequence_camera_motion
from ..embedder import Embedder, HSVEmbedder, PrecomputedFeatures, cached_features
from ..embedder.calibration import Calibration, calibrate_threshold
from ..io import (Detections, InputError, SequenceInfo, deepsort_features_path, find_sequence, read_detections,
                  read_seqinfo)
from ..scores import normalise_detections
from ..tracker import TrackerConfig, preset

# Appearance thresholds of the descriptors that need no weights, used when a method gives none.
# DeepSORT: its published max_cosine_distance. HSV: the label-free calibration on MOT16-11
# (fmtrack.embedder.calibration; equal-error point, cosine).
DEFAULT_MAX_DIST = {"deepsort": 0.2, "hsv": 0.113}
# The shipped default model (weights/README.md, the model card, says how it was trained and why it
# is the default). The repository's weights/ folder: run from a checkout or an editable install.
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "fmvae-tracklets-strict.safetensors"
# Descriptor of an appearance preset when none is named: the paper's setting keeps DeepSORT's
# supervised features; fmtrack's own preset uses the shipped default model.
DEFAULT_FEATURES = {"deepsort": "deepsort", "fmtrack": str(DEFAULT_MODEL)}


class MethodUnavailable(InputError):
    """A method cannot run on a sequence (e.g. no precomputed features for it)."""


@dataclass(frozen=True)
class Method:
    label: str
    config: TrackerConfig
    features: str | None = None  # "deepsort", "hsv", a .npy path, or None (motion only)


@dataclass(frozen=True)
class SequenceInputs:
    """What a method feeds the tracker on one sequence.

    camera_motion: (F, 2, 3) frame-to-frame affines (entry f - 1 moves frame f - 1 to frame f), or None.
    """

    detections: Detections
    embedder: Embedder | None
    camera_motion: np.ndarray | None


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


def _is_fmvae(features: str | None) -> bool:
    return features is not None and features.endswith(".safetensors")


def image_embedder(features: str) -> Embedder | None:
    """The embedder that computes ``features`` from frames (``hsv`` or FMVAE weights), else None."""
    if features == "hsv":
        return HSVEmbedder()
    if _is_fmvae(features):
        from ..embedder.fmvae import FMVAEEmbedder  # torch is imported only when a model is used

        return FMVAEEmbedder(features)
    return None


def default_max_dist(features: str, metric: str) -> float | None:
    """A descriptor's label-free threshold in ``metric`` units, if one is known."""
    if _is_fmvae(features):
        from ..model.weights import read_weights_info

        return read_weights_info(features).thresholds.get(metric)
    return DEFAULT_MAX_DIST.get(features) if metric == "cosine" else None


def make_method(label: str, preset_name: str, overrides: dict, features: str | None = None) -> Method:
    """A Method; an appearance preset with no features given uses the preset's default descriptor,
    and a descriptor with a known label-free threshold gets it unless ``max_dist`` is set."""
    if preset(preset_name).uses_appearance:
        features = features or DEFAULT_FEATURES.get(preset_name, "deepsort")
    if _is_fmvae(features) and "metric" not in overrides:
        overrides = {**overrides, "metric": "euclidean"}  # the flat latent space's own distance
    config = configure(preset_name, overrides)
    if config.uses_appearance:
        threshold = default_max_dist(features, config.metric)
        if "max_dist" not in overrides and threshold is not None:
            config = config.with_max_distance(threshold)
    return Method(label=label, config=config, features=features)


def descriptor_label(features: str) -> str:
    """A short name for a descriptor: weights and feature files by their stem, so table rows stay
    short and do not depend on where the file lives."""
    return Path(features).stem if features.endswith((".safetensors", ".npy")) else features


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
    for short, field in (("cmc", "camera_motion"), ("score_norm", "score_normalisation")):
        if short in overrides:
            overrides[field] = overrides.pop(short)
    if features is not None:
        features = str(features)
        spec = spec.replace(features, descriptor_label(features))
    return make_method(spec, name, overrides, features)


def load_inputs(method: Method, info: SequenceInfo, data_root: str | Path | None = None,
                det_path: str | Path | None = None, progress: bool = True) -> SequenceInputs:
    """The detections (scores normalised), embedder and camera motion a method uses on a sequence.

    With features the detections are the feature file's rows (for DeepSORT's the same as det.txt)
    and the embedder serves those rows; image descriptors and camera motion are computed once and
    cached.
    """
    from_file = None  # features stored with their detections: the detections are that file's rows
    if method.features is None or method.features == "hsv" or _is_fmvae(method.features):
        detections = read_detections(det_path or info.det_path, info.seq_length)
    else:
        feature_file = (deepsort_features_path(info.name, data_root) if method.features == "deepsort"
                        else Path(method.features))
        if method.features == "deepsort" and not feature_file.is_file():
            raise MethodUnavailable(feature_file, f"{method.label}: no DeepSORT features for {info.name}")
        from_file = PrecomputedFeatures(feature_file, info.seq_length)
        detections = from_file.detections
    if method.config.score_normalisation != "raw":
        detections = normalise_detections(detections, method.config.score_normalisation)
    embedder = None
    if method.features is not None and method.config.uses_appearance:
        from_images = image_embedder(method.features)
        embedder = from_file if from_images is None else PrecomputedFeatures(
            cached_features(info, detections, from_images, progress=progress), info.seq_length)
    camera_motion = None
    if method.config.camera_motion != "none":
        # People moving in front of the background are masked out, as BoT-SORT's GMC does: on the
        # static MOT17-09 this cuts the spurious motion from 1.9 to 0.5 px (90th percentile).
        camera_motion = sequence_camera_motion(info, CameraMotionConfig(method=method.config.camera_motion),
                                               exclude=detections, progress=progress)
    return SequenceInputs(detections, embedder, camera_motion)


def calibrate_descriptor(features: str, sequence: str, metrics: tuple[str, ...] = ("euclidean", "cosine"),
                         data_root: str | Path | None = None, write: bool = False,
                         gap: int = 15, force: bool = False, threads: int | None = 1) -> dict[str, Calibration]:
    """Label-free thresholds of an image descriptor on a (training) sequence's detections, per metric.

    With ``write`` and FMVAE weights, the thresholds are stored in the weights' JSON sidecar, where
    ``make_method`` finds them; a sidecar calibrated on another sequence is an InputError unless
    ``force``. ``threads``: torch threads of an FMVAE model (see FMVAEEmbedder).
    """
    embedder = image_embedder(features)
    if embedder is None:
        raise InputError(None, f"calibrate needs hsv or FMVAE weights (.safetensors), got {features!r}")
    if write and not _is_fmvae(features):
        raise InputError(None, "--write stores thresholds in FMVAE weights' sidecars only")
    if hasattr(embedder, "threads"):
        embedder.threads = threads
    info = read_seqinfo(find_sequence(sequence, data_root))
    if write:
        from ..model.weights import read_weights_info, sidecar_path

        previous = read_weights_info(features).provenance.get("calibration")
        made_on = previous.get("sequence") if isinstance(previous, dict) else None
        if made_on not in (None, info.name) and not force:
            raise InputError(sidecar_path(features), f"holds thresholds calibrated on {made_on}; replacing them "
                                                     f"with {info.name}'s needs --force")
    detections = normalise_detections(read_detections(info.det_path, info.seq_length), "auto")
    path = cached_features(info, detections, embedder)
    described = PrecomputedFeatures(path, info.seq_length).detections
    calibrations = {metric: calibrate_threshold(described.features, described, metric, gap) for metric in metrics}
    if write:
        from ..model.weights import update_thresholds

        update_thresholds(features, {metric: c.threshold for metric, c in calibrations.items()},
                          {"calibration": {"sequence": info.name,
                                           **{metric: c.to_dict() for metric, c in calibrations.items()}}})
    return calibrations
