"""Shared fixtures. Tests that need the real MOTChallenge data take ``data_root`` and are skipped
cleanly (with the reason) when no data root can be resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmtrack.io import InputError, resolve_data_root

REFERENCE_DIR = Path(__file__).parent / "reference"


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The MOTChallenge data root (--data-root order: $FMTRACK_DATA, then ../shared/data)."""
    try:
        return resolve_data_root()
    except InputError as err:
        pytest.skip(f"no MOTChallenge data root: {err}")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR
