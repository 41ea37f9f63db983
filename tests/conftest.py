"""Shared fixtures. Tests that need the real MOTChallenge data take ``data_root`` and are skipped
cleanly (with the reason) when no data root can be resolved, except on CI (``CI=true``), where a
missing data root fails them: a CI run that skipped every data test would prove nothing.

Every test session uses a fresh temporary feature and camera-motion cache (``$FMTRACK_CACHE``),
never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmtrack.io import InputError, resolve_data_root

REFERENCE_DIR = Path(__file__).parent / "reference"


@pytest.fixture(scope="session", autouse=True)
def temporary_cache(tmp_path_factory: pytest.TempPathFactory):
    """``$FMTRACK_CACHE`` points at a temporary folder for the whole session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FMTRACK_CACHE", str(tmp_path_factory.mktemp("fmtrack-cache")))
        yield Path(os.environ["FMTRACK_CACHE"])


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The MOTChallenge data root (--data-root order: $FMTRACK_DATA, then ../shared/data)."""
    try:
        return resolve_data_root()
    except InputError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no MOTChallenge data root resolves ({err}); set FMTRACK_DATA", pytrace=False)
        pytest.skip(f"no MOTChallenge data root: {err}")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR
