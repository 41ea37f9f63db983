"""Label-free training of the VHP-FMVAE appearance model: config, objective, crops, trainer (the network
and its weights I/O live in :mod:`fmtrack.model`).

Names are imported on first use (PEP 562), so torch-free parts such as :mod:`.config` can be
imported, e.g. by the CLI's argument parser, without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"PRESETS": "config", "ModelConfig": "config", "Preset": "config", "TrainConfig": "config",
          "CropSet": "crops", "cut_crops": "crops", "load_crops": "crops", "save_crops": "crops",
          "synthetic_crops": "crops", "Trainer": "trainer", "TrainingInterrupted": "trainer", "train": "trainer"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
