"""The defaults, stated once: the default tracker preset and the default appearance descriptor.

``fmtrack run``, ``fmtrack eval``, ``fmtrack embed``, ``fmtrack eval-descriptor`` and
:class:`fmtrack.VideoTracker` all take their defaults from here.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The default tracker: ByteTrack association + appearance + camera motion (fmtrack.tracker.config).
DEFAULT_PRESET = "fmtrack"
# The default descriptor: the shipped model (package data; weights/README.md is its model card) fused
# with HSV colour histograms weighted 3 in units of each one's label-free threshold: chosen on MOT16-11
# and TUD-Campus, docs/descriptor-fusion.md. "model" names the shipped model alone.
DEFAULT_DESCRIPTOR = "default"
DEFAULT_FUSION = "model+hsv*3"
MODEL_DESCRIPTOR = "model"
DEFAULT_MODEL_NAME = "fmvae-tracklets-strict.safetensors"
# The paper-reproduction preset keeps DeepSORT's own (supervised) features on the command line and in
# ``fmtrack eval`` specs, so its reference rows stay reproducible; every other appearance preset uses
# DEFAULT_DESCRIPTOR.
PRESET_DESCRIPTORS = {"deepsort": "deepsort"}
# Appearance thresholds of the descriptors that carry no sidecar (cosine distance). DeepSORT: its
# published max_cosine_distance. HSV: the label-free calibration on MOT16-11 (equal-error point).
COSINE_THRESHOLDS = {"deepsort": 0.2, "hsv": 0.113}


def default_model_path() -> Path:
    """The shipped default model's ``.safetensors`` (its ``.json`` sidecar lies beside it)."""
    return Path(str(files("fmtrack").joinpath("weights", DEFAULT_MODEL_NAME)))


def preset_descriptor(preset_name: str) -> str:
    """The descriptor a command-line method uses when none is named (``DEFAULT_DESCRIPTOR`` or the
    paper preset's DeepSORT features)."""
    return PRESET_DESCRIPTORS.get(preset_name, DEFAULT_DESCRIPTOR)


def descriptor_name(features: str | None, preset_name: str) -> str:
    """The descriptor a run of ``preset_name`` with ``features`` uses, by a name that stays true when
    the default changes (``default`` spelt out as :data:`DEFAULT_FUSION`): what preset files record."""
    features = features or preset_descriptor(preset_name)
    return DEFAULT_FUSION if features == DEFAULT_DESCRIPTOR else features


# What a preset file that names no descriptor was tuned with: such files come from releases whose
# default was the model alone.
LEGACY_DEFAULT_DESCRIPTOR = MODEL_DESCRIPTOR
