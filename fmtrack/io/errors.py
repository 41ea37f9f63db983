"""One error type for bad input, so the CLI can print it as a single line, and the checks shared by
the readers that raise it."""

from __future__ import annotations

import math
import os
from pathlib import Path


class InputError(ValueError):
    """Bad or missing input. ``str(err)`` is one line: ``path:line: problem``."""

    def __init__(self, path: str | Path | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path
        if line is not None:
            where = f"{where or 'input'}:{line}"
        super().__init__(problem if where is None else f"{where}: {problem}")  # no file: the problem alone

    def __reduce__(self) -> tuple:
        # Rebuilt from its own arguments: a Ray worker's error reaches the driver as this error, not
        # as Ray's "failed to deserialize" (pickle would call __init__ with the message alone).
        return type(self), (self.path, self.problem, self.line)


class InputWarning(UserWarning):
    """Input that is used but looks wrong (duplicated rows, frames of another size); the CLI prints
    it as one ``fmtrack: warning:`` line."""


def check_thresholds(path: str | os.PathLike, thresholds: object, metrics: tuple[str, ...]) -> None:
    """InputError naming ``path`` unless ``thresholds`` (a sidecar's entry) maps some of ``metrics``
    to finite distances > 0."""
    if not isinstance(thresholds, dict) or not all(
            name in metrics and isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 < value < math.inf for name, value in thresholds.items()):
        raise InputError(path, f"thresholds must map {' / '.join(metrics)} to finite distances > 0, got {thresholds!r}")
