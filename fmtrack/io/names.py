"""Names read from files (a sequence's ``name=``, ``imDir=``) become path components of outputs and
caches, so they must be exactly one harmless path component."""

from __future__ import annotations

import os

_SEPARATORS = {"/", "\\", os.sep, os.altsep or "/"}
MAX_NAME_LENGTH = 200  # below every file system's 255-byte limit, leaving room for suffixes


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a single path component, or None when it can.

    The rule: non-empty, at most MAX_NAME_LENGTH characters, printable, no path separator, not
    ``.`` or ``..``, no leading or trailing blanks.
    """
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if not name.isprintable():
        return "holds non-printable characters"
    if any(sep in name for sep in _SEPARATORS):
        return "holds a path separator"
    if name in (".", ".."):
        return "is a relative folder reference"
    if name != name.strip():
        return "starts or ends with blanks"
    return None


def check_name(name: str, what: str = "name") -> str:
    """``name`` unchanged, or ValueError when it is not one safe path component."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"{what} {name!r} {problem}: it must be one path component")
    return name
