"""The JSON beside a feature file that ``fmtrack embed`` writes (``f.npy`` -> ``f.json``): which
descriptor made the features, the metric it compares them by and its label-free thresholds, so that
``run --features f.npy`` compares them as the descriptor itself would (without it, an exported
model's Euclidean latents were compared by cosine at DeepSORT's 0.2).

Layout: ``{"format": "fmtrack-features", "version": 1, "descriptor": "fmvae-...+hsv*3",
"metric": "euclidean", "thresholds": {"euclidean": 3.16}}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..io import InputError, atomic_write
from ..io.errors import check_thresholds
from ..tracker.distance import METRICS

FORMAT = "fmtrack-features"
VERSION = 1


def sidecar_path(features_path: str | os.PathLike) -> Path:
    """``f.npy`` -> ``f.json``, as a model's weights keep theirs."""
    return Path(features_path).with_suffix(".json")


def check_writable(features_path: str | os.PathLike) -> None:
    """InputError when ``features_path``'s sidecar path holds a file that is not a features sidecar
    (a preset file of the same name, say), which writing would destroy."""
    path = sidecar_path(features_path)
    if path.exists() and _read(path, strict=False) is None:
        raise InputError(path, f"exists and is not an fmtrack features sidecar, which {Path(features_path).name} "
                               "needs beside it; choose another --out")


def write_sidecar(features_path: str | os.PathLike, descriptor: str, metric: str,
                  thresholds: dict[str, float]) -> Path:
    """Write (atomically) the sidecar of ``features_path``; returns its path."""
    path = sidecar_path(features_path)
    document = {"format": FORMAT, "version": VERSION, "descriptor": descriptor, "metric": metric,
                "thresholds": {name: float(value) for name, value in thresholds.items()}}
    _check(path, document)
    with atomic_write(path) as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")
    return path


def read_sidecar(features_path: str | os.PathLike) -> tuple[str, dict[str, float]] | None:
    """(metric, thresholds by metric) from ``features_path``'s sidecar, or None where it has none
    (DeepSORT's own features, a file made elsewhere). InputError naming the sidecar when it is damaged."""
    path = sidecar_path(features_path)
    if not path.is_file():
        return None
    document = _read(path, strict=True)
    return document["metric"], dict(document["thresholds"])


def _read(path: Path, strict: bool) -> dict[str, Any] | None:
    """The checked document; None for a file that is not a features sidecar when not ``strict``."""
    try:
        document = json.loads(path.read_text(encoding="utf8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        if not strict:
            return None
        raise InputError(path, f"cannot read the features sidecar: {err}") from None
    if not (isinstance(document, dict) and document.get("format") == FORMAT):
        if not strict:
            return None
        raise InputError(path, f"not an fmtrack features sidecar (no \"format\": \"{FORMAT}\")")
    _check(path, document)
    return document


def _check(path: Path, document: dict[str, Any]) -> None:
    if document.get("version") != VERSION:
        raise InputError(path, f"features sidecar version {document.get('version')!r}; this fmtrack reads {VERSION}")
    if document.get("metric") not in METRICS:
        raise InputError(path, f"metric must be one of {', '.join(METRICS)}, got {document.get('metric')!r}")
    check_thresholds(path, document.get("thresholds"), METRICS)
