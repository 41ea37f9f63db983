"""The one place fmtrack imports py-motmetrics.

py-motmetrics 1.4.0 (the latest release) calls ``np.asfarray``, which NumPy 2 removed. Rather than
pin NumPy < 2 for the whole project, this module restores exactly that one name, as NumPy 1 defined
it, before motmetrics is imported. tests/test_scoring.py checks the shim and that motmetrics still
reproduces its own MOTChallenge devkit figures through it.
"""

from __future__ import annotations

import numpy as np


def _asfarray(a, dtype=np.float64):
    """NumPy 1's ``asfarray``: an array of a floating dtype (float64 unless a float dtype is given)."""
    if not np.issubdtype(np.dtype(dtype), np.inexact):
        dtype = np.float64
    return np.asarray(a, dtype=dtype)


if not hasattr(np, "asfarray"):
    np.asfarray = _asfarray

import motmetrics  # noqa: E402  (must follow the shim)

__all__ = ["motmetrics"]
