"""Shipped FMVAE weights: ``NAME.safetensors`` plus a ``NAME.json`` sidecar. Loading never unpickles.

The sidecar holds the architecture (ModelConfig), the input normalisation (per-channel RGB mean and
std of [0, 1] pixels; crops arrive as BGR uint8 and are flipped to RGB), the training provenance
(TrainConfig, crops file, steps, final C and beta, time, hardware) and ``thresholds``, a dict the
calibration step fills in (empty at export). fp16 export halves the file (full model: ~38 MB).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..io import InputError, atomic_path, atomic_write
from ..io.errors import check_thresholds
from ..tracker.distance import METRICS
from .config import ModelConfig
from .network import FMVAE

FORMAT = "fmtrack-fmvae/1"


@dataclass
class WeightsInfo:
    """Everything in the sidecar JSON."""

    model_config: ModelConfig
    mean: list[float]                 # RGB, [0, 1] pixel units
    std: list[float]
    provenance: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "model_config": self.model_config.to_dict(), "dtype": self.dtype,
                "normalisation": {"mean": self.mean, "std": self.std, "channel_order": "RGB",
                                  "pixel_range": [0.0, 1.0]},
                "provenance": self.provenance, "thresholds": self.thresholds}


def sidecar_path(weights_path: str | Path) -> Path:
    """``x.safetensors`` -> ``x.json``."""
    return Path(weights_path).with_suffix(".json")


def save_weights(model: FMVAE, path: str | Path, info: WeightsInfo, fp16: bool = False) -> Path:
    """Write the model's tensors (optionally as fp16) and the sidecar, each atomically."""
    path = Path(path)
    dtype = torch.float16 if fp16 else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    info.dtype = str(dtype).removeprefix("torch.")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    with atomic_write(sidecar_path(path)) as fh:
        json.dump(info.to_dict(), fh, indent=2)
    return path


def read_weights_info(path: str | Path) -> WeightsInfo:
    """Parse and validate the sidecar of ``path``: every field's type, a finite mean, a positive
    finite std and finite positive thresholds; InputError naming the sidecar otherwise."""
    side = sidecar_path(path)
    if not side.is_file():
        if not Path(path).is_file():  # the model itself is missing, not only its sidecar
            raise InputError(path, "weights file not found")
        raise InputError(side, "weights sidecar JSON not found (it must sit beside the .safetensors file)")
    try:
        data = json.loads(side.read_text(encoding="utf8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InputError(side, f"not an FMVAE weights sidecar (format {found!r}, want {FORMAT!r})")
        norm = data["normalisation"]
        info = WeightsInfo(ModelConfig.from_dict(data["model_config"]), _three_numbers(norm, "mean"),
                           _three_numbers(norm, "std"), data.get("provenance", {}), data.get("thresholds", {}),
                           data.get("dtype", "float32"))
    except InputError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(side, f"malformed weights sidecar ({type(err).__name__}: {err})") from None
    if not all(s > 0 for s in info.std):
        raise InputError(side, f"normalisation std must be positive, got {info.std}")
    if not isinstance(info.provenance, dict):
        raise InputError(side, "provenance must be a JSON object")
    if info.dtype not in ("float32", "float16", "bfloat16"):
        raise InputError(side, f"dtype must be float32, float16 or bfloat16, got {info.dtype!r}")
    check_thresholds(side, info.thresholds, METRICS)
    return info


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _three_numbers(norm: Any, key: str) -> list[float]:
    values = norm[key]
    if not isinstance(values, list) or len(values) != 3 or not all(_is_number(v) and math.isfinite(v) for v in values):
        raise ValueError(f"normalisation {key} must be 3 finite numbers, got {values!r}")
    return [float(v) for v in values]


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header (reads no tensor data)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(path, f"not a readable safetensors file ({err})") from None


def existing_weights(path: str | Path) -> Path:
    """``path`` as a Path; InputError naming it when there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    return path


def load_weights(path: str | Path, device: torch.device | str = "cpu") -> tuple[FMVAE, WeightsInfo]:
    """Rebuild the model from the sidecar's architecture and load the tensors (as fp32).

    InputError for a missing file, a missing/unexpected key or a shape that disagrees with the sidecar.
    """
    path = existing_weights(path)
    info = read_weights_info(path)
    shapes = tensor_shapes(path)
    # The sidecar's architecture is checked on the meta device (no memory) before a model is built,
    # so a sidecar claiming a huge model cannot allocate it.
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in FMVAE(info.model_config).state_dict().items()}
    except (OverflowError, RuntimeError, TypeError, ValueError) as err:
        raise InputError(sidecar_path(path), f"model_config describes no buildable model ({err})") from None
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise InputError(path, f"tensors do not match the sidecar's architecture ({what}; "
                               f"{len(missing)} missing, {len(unexpected)} unexpected)")
    for key, shape in expected.items():
        if shapes[key] != shape:
            raise InputError(path, f"{key} has shape {shapes[key]}, the sidecar's architecture needs {shape}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise InputError(path, f"not a readable safetensors file ({err})") from None
    model = FMVAE(info.model_config)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.to(device).eval(), info


def update_thresholds(path: str | Path, thresholds: dict[str, float], provenance: dict[str, Any]) -> WeightsInfo:
    """Merge calibrated thresholds (and how they were obtained) into the sidecar, atomically."""
    info = read_weights_info(path)
    info.thresholds.update(thresholds)
    info.provenance.update(provenance)
    with atomic_write(sidecar_path(path)) as fh:
        json.dump(info.to_dict(), fh, indent=2)
    return info


def export_weights(source: str | Path, destination: str | Path, fp16: bool = True,
                   provenance: dict[str, Any] | None = None) -> Path:
    """Copy trained weights (and their sidecar: provenance, thresholds) to ``destination``, as fp16
    by default: a quarter-width model drops from 8.7 to 4.3 MB, which is what ``weights/`` ships.
    ``destination`` must end in ``.safetensors``: descriptors are recognised by it, and its sidecar
    (``NAME.json``) would otherwise be ``destination`` itself."""
    if Path(destination).suffix != ".safetensors":
        raise InputError(destination, "an exported model's name must end in .safetensors (its sidecar is "
                                      "written beside it as NAME.json)")
    model, info = load_weights(source)
    info.provenance.update(provenance or {})
    return save_weights(model, destination, info, fp16=fp16)
