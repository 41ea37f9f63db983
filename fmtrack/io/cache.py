"""Where derived data (features, camera motion) is cached: ``$FMTRACK_CACHE``, else
``$XDG_CACHE_HOME/fmtrack``, else ``~/.cache/fmtrack``; one subfolder per kind."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError


def cache_dir(kind: str) -> Path:
    """The cache folder of ``kind`` (``~`` expanded); InputError naming the variable when the cache
    root or that folder exists and is not a folder (found before any work, not when writing)."""
    root = os.environ.get("FMTRACK_CACHE")
    if root:
        where, base = "$FMTRACK_CACHE", Path(root).expanduser()
    else:
        where = "the cache folder"
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "fmtrack"
    for folder in (base, base / kind):
        if folder.exists() and not folder.is_dir():
            raise InputError(folder, f"{where} names a file here, not a folder")
    return base / kind


def check_cache_entry(path: Path) -> None:
    """InputError before any work when a cache entry's name is taken by something that is not a
    file (a folder): the entry could not be written after computing it."""
    if path.exists() and not path.is_file():
        raise InputError(path, "a cache entry's name, taken by something that is not a file; remove it to "
                               "recompute")
