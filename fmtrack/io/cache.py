"""Where derived data (features, camera motion) is cached: ``$FMTRACK_CACHE``, else
``$XDG_CACHE_HOME/fmtrack``, else ``~/.cache/fmtrack``; one subfolder per kind."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    root = os.environ.get("FMTRACK_CACHE")
    if root:
        return Path(root) / kind
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fmtrack" / kind
