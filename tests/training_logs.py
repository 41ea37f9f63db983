"""Shared by the tests that drive training processes: how far a run's log has got."""

from __future__ import annotations

from pathlib import Path


def logged_step(out: Path) -> int:
    """The last step in ``out/log.csv`` (0 before the first log line)."""
    try:
        lines = (out / "log.csv").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return int(lines[-1].split(",")[0]) if len(lines) > 1 else 0
