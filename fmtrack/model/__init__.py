"""The VHP-FMVAE appearance model: architecture config, network, weights I/O, input normalisation,
device and precision. Used by :mod:`fmtrack.embedder` (inference) and :mod:`fmtrack.training`.

Names are imported on first use (PEP 562), so the torch-free :mod:`.config` loads without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"ModelConfig": "config", "FMVAE": "network", "WeightsInfo": "weights", "load_weights": "weights",
          "save_weights": "weights", "read_weights_info": "weights", "normalise_crops": "normalise",
          "resolve_device": "device", "resolve_precision": "device", "autocast_context": "device"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
