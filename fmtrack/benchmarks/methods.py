"""A method is a tracker configuration plus where its detections' scores and features come from.

Spelled on the command line as ``PRESET[@key=value,...]``, e.g. ``sort@min_confidence=0.3`` or
``fmtrack@features=hsv,max_dist=0.2``. Keys are TrackerConfig fields, plus:

- ``max_dist``: the appearance threshold of every appearance stage (descriptor units);
- ``features``: ``default`` (the shipped model fused with HSV), ``model`` (the shipped model
  alone), ``deepsort`` (DeepSORT's own features from the data root), ``hsv``, a trained FMVAE
  ``.safetensors``, a fused name (``A+B*W``), or an ``N x (7 + D)`` .npy file
  (fmtrack.pipeline.descriptor says what each brings: metric and label-free threshold);
- ``detector``: the score map (fmtrack.scores.SCORE_MAPS; guessed from the sequence when absent);
- ``score_norm``: short for ``score_normalisation`` (``raw``, ``auto`` = the streaming per-detector
  map, or the whole-file ``minmax``, ``logistic``, ``rank``; fmtrack.scores);
- ``cmc``: short for ``camera_motion`` (``none``, ``sof`` or ``ecc``; fmtrack.camera_motion).

The configuration itself is the pipeline's (fmtrack.pipeline.configure), so a preset name means the
same here, in ``fmtrack run`` and in :class:`fmtrack.VideoTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from ..embedder.calibration import Calibration, calibrate_threshold
from ..io import InputError, SequenceInfo, find_sequence, read_detections, read_seqinfo
from ..pipeline import (MethodUnavailable, SequenceInputs, configure, default_model_path, descriptor_label,
                        descriptor_spec, image_embedder, is_model, method_descriptor, sequence_inputs)
from ..pipeline.sequence import cached_embedder, served_detections
from ..tracker import TrackerConfig
from ..scores import normalise_detections

__all__ = ["DEFAULT_MODEL", "Method", "MethodUnavailable", "SequenceInputs", "calibrate_descriptor",
           "descriptor_label", "image_embedder", "load_inputs", "make_method",
           "parse_method"]

# The shipped default model (package data) and the folder of the other shipped models.
DEFAULT_MODEL = default_model_path()
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
_is_fmvae = is_model


@dataclass(frozen=True)
class Method:
    label: str
    config: TrackerConfig
    features: str | None = None  # "deepsort", "hsv", a weights or .npy path, or None (motion only)
    detector: str | None = None  # score map name; None: guessed per sequence


def _parse_value(text: str):
    if text.lower() in ("true", "false"):  # a switch: the string "false" would count as on
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def make_method(label: str, preset_name: str, overrides: dict, features: str | None = None,
                detector: str | None = None) -> Method:
    """A Method; an appearance preset with no features given uses the preset's default descriptor
    (fmtrack.pipeline.defaults), and the configuration is fmtrack.pipeline.configure's."""
    features = method_descriptor(preset_name, features)
    return Method(label=label, config=configure(preset_name, features, overrides), features=features,
                  detector=detector)


def parse_method(spec: str) -> Method:
    """``PRESET[@key=value,...]`` -> Method."""
    name, _, settings = spec.partition("@")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"method {spec!r}: expected key=value, got {item!r}")
        if key.strip() in overrides:  # which one was meant cannot be told
            raise ValueError(f"method {spec!r}: {key.strip()!r} is set twice")
        overrides[key.strip()] = _parse_value(value.strip())
    features = overrides.pop("features", None)
    detector = overrides.pop("detector", None)
    for short, field in (("cmc", "camera_motion"), ("score_norm", "score_normalisation")):
        if short in overrides:
            overrides[field] = overrides.pop(short)
    if features is not None:
        features = str(features)
        spec = spec.replace(features, descriptor_label(features))
    try:
        return make_method(spec, name, overrides, features, None if detector is None else str(detector))
    except InputError:
        raise  # names its file already
    except ValueError as err:
        raise ValueError(f"method {spec!r}: {err}") from None


def load_inputs(method: Method, info: SequenceInfo, data_root: str | Path | None = None,
                det_path: str | Path | None = None, progress: bool = True) -> SequenceInputs:
    """The detections (scores mapped), embedder and camera motion a method uses on a sequence
    (fmtrack.pipeline.sequence_inputs)."""
    return sequence_inputs(method.config, method.features, info, data_root, det_path, progress,
                           method.detector, method.label)


def calibrate_descriptor(features: str, sequence: str | None, metrics: tuple[str, ...] = ("euclidean", "cosine"),
                         data_root: str | Path | None = None, write: bool = False,
                         gap: int = 15, force: bool = False, threads: int | None = 1,
                         progress: bool = True, video: str | Path | None = None,
                         det: str | Path | None = None) -> dict[str, Calibration]:
    """Label-free thresholds of an image descriptor on a (training) sequence's detections, per metric,
    or on a video's (``video``: a file or frame folder, ``det``: its MOTChallenge detections, rows
    keyed by 1-based frame; then ``sequence`` is None and nothing is cached).

    With ``write`` and FMVAE weights, the thresholds are stored in the weights' JSON sidecar, where
    ``make_method`` finds them; a sidecar calibrated on another sequence is an InputError unless
    ``force``. ``threads``: torch threads of an FMVAE model (see FMVAEEmbedder).
    """
    if (video is None) == (sequence is None) or (video is None) != (det is None):
        raise ValueError("calibrate takes a sequence, or a video with its detections (--video with --det)")
    features = descriptor_spec(features)
    embedder = image_embedder(features)
    if embedder is None:
        raise InputError(None, f"calibrate needs a descriptor computed from frames (hsv, model, default, FMVAE "
                               f"weights .safetensors, or a fused name such as model+hsv*3), got {features!r}")
    if write and not _is_fmvae(features):
        raise InputError(None, "--write stores thresholds in FMVAE weights' sidecars only")
    package = Path(str(files("fmtrack"))).resolve()
    if write and package in Path(features).resolve().parents:  # the installed package's own data
        raise InputError(features, f"ships with fmtrack, calibrated on its training sequence; --write "
                                   f"would change every run's default: calibrate a copy (fmtrack export "
                                   f"--weights {features} --out mine.safetensors)")
    if hasattr(embedder, "threads"):
        embedder.threads = threads
    if video is not None:
        from ..pipeline.video_run import source_name
        from ..video import open_frames

        source = open_frames(video)
        name = source_name(source)
    else:
        info = read_seqinfo(find_sequence(sequence, data_root))
        name = info.name
    if write:
        from ..model.weights import read_weights_info, sidecar_path

        previous = read_weights_info(features).provenance.get("calibration")
        made_on = previous.get("sequence") if isinstance(previous, dict) else None
        if made_on not in (None, name) and not force:
            raise InputError(sidecar_path(features), f"holds thresholds calibrated on {made_on}; replacing them "
                                                     f"with {name}'s needs --force")
    if video is not None:
        described = _video_detections(source, det, embedder, progress)
    else:
        detections = normalise_detections(read_detections(info.det_path, info.seq_length), "auto")
        described = served_detections(cached_embedder(info, detections, embedder, progress)[0], detections)
    calibrations = {metric: calibrate_threshold(described.features, described, metric, gap) for metric in metrics}
    if write:
        from ..model.weights import update_thresholds

        update_thresholds(features, {metric: c.threshold for metric, c in calibrations.items()},
                          {"calibration": {"sequence": name,
                                           **{metric: c.to_dict() for metric, c in calibrations.items()}}})
    return calibrations


def _video_detections(source, det: str | Path, embedder, progress: bool):
    """A video's detections (scores mapped as ``auto`` does) with ``embedder``'s features, embedded
    frame by frame as the frames are decoded."""
    import dataclasses

    import numpy as np
    from tqdm import tqdm

    from ..video import check_detections_reached, exact_frame_count

    detections = normalise_detections(read_detections(det, exact_frame_count(source)), "auto")
    features = np.zeros((len(detections), embedder.dim), dtype=np.float32)
    last = 0
    for index, image in tqdm(source, total=source.frame_count, desc="embed", unit="frame", disable=not progress):
        last = index
        rows = detections.frame_slice(index)
        if rows.stop > rows.start:
            features[rows] = embedder.embed(image, detections.boxes[rows], index)
    check_detections_reached(det, detections.last_frame, source, last)
    return dataclasses.replace(detections, features=features)
