"""Preset files: a TrackerConfig stored as JSON (``fmtrack tune`` writes them), usable wherever a
preset name is (``run --preset FILE``, ``eval --methods FILE@...``, the library).

Layout: ``{"format": "fmtrack-preset", "version": 1, "tracker": TrackerConfig.to_dict(),
"provenance": {...}}``; a bare ``TrackerConfig.to_dict()`` object is read too. Infinite thresholds
are stored as JSON's ``-Infinity`` (Python's ``json`` writes and reads them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..io import InputError
from ..io.names import name_problem
from ..tracker import PRESETS, TrackerConfig

FORMAT = "fmtrack-preset"
VERSION = 1


def _error(path: Path, problem: str, line: int | None = None) -> InputError:
    return InputError(path, problem, line)


def preset_document(config: TrackerConfig, provenance: dict[str, Any]) -> dict[str, Any]:
    """The JSON object a preset file holds for ``config`` and how it was made."""
    return {"format": FORMAT, "version": VERSION, "tracker": config.to_dict(), "provenance": provenance}


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # an editor's byte-order mark is not content
    except (OSError, UnicodeDecodeError) as err:
        raise _error(path, f"cannot read preset file: {err}") from None
    try:
        return json.loads(text, object_pairs_hook=lambda pairs: _unique_keys(path, pairs))
    except json.JSONDecodeError as err:
        raise _error(path, f"not JSON: {err.msg}", err.lineno) from None


def _unique_keys(path: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; InputError for a key given twice (json keeps the last silently)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _error(path, f"key {key!r} is given twice in one object")
        data[key] = value
    return data


def tuned_features(path: str | Path) -> tuple[bool, str | None, str | None]:
    """(known, features, descriptor): the descriptor a preset file's appearance thresholds were tuned
    with: as ``fmtrack tune --features`` named it (None: the preset's default descriptor), and the
    descriptor that default was, by name (None where the file does not say); known
    is False for a file that says neither (a bare TrackerConfig, or no provenance)."""
    data = _read_json(Path(path))
    provenance = data.get("provenance") if isinstance(data, dict) else None
    if not isinstance(provenance, dict) or "features" not in provenance:
        return False, None, None
    features, descriptor = provenance["features"], provenance.get("descriptor")
    return True, None if features is None else str(features), None if descriptor is None else str(descriptor)


def load_preset_file(path: str | Path) -> TrackerConfig:
    """The TrackerConfig of a preset file; InputError naming the file (and line) when it is not one."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and "format" in data:
        if data["format"] != FORMAT or data.get("version") != VERSION:
            raise _error(path, f"format {data['format']!r} version {data.get('version')!r}; "
                               f"expected {FORMAT!r} version {VERSION}")
        data = data.get("tracker")
    if not isinstance(data, dict):
        raise _error(path, "expected a JSON object with a 'tracker' TrackerConfig")
    stages = data.get("stages")
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        raise _error(path, "'stages' must be a list of stage objects")
    problem = name_problem(data["name"]) if isinstance(data.get("name"), str) else None
    if problem is not None:  # the name becomes the default output folder, runs/NAME
        raise _error(path, f"preset name {data['name']!r} {problem}: it must be one path component")
    try:
        return TrackerConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        raise _error(path, f"not a valid tracker configuration: {err}") from None


def resolve_preset(name_or_path: str | Path) -> TrackerConfig:
    """A preset by name (``fmtrack.tracker.PRESETS``), else an existing ``.json`` preset file."""
    name = str(name_or_path)
    if name in PRESETS:
        return PRESETS[name]
    path = Path(name)
    if path.suffix.lower() == ".json" and path.is_file():
        return load_preset_file(path)
    raise ValueError(f"unknown preset {name!r}: neither one of {', '.join(sorted(PRESETS))} "
                     "nor an existing .json preset file")
