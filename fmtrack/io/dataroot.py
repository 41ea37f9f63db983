"""Where the MOTChallenge data lives, and how a sequence is found by name.

Order: an explicit ``--data-root``, then ``$FMTRACK_DATA``, then ``../shared/data`` beside the
repository (or the working directory) if it exists. Inside a root the official layout is searched:
``MOT15|MOT16|MOT17|MOT20 / train|test / NAME``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .errors import InputError, InputWarning
from .names import name_problem

BENCHMARKS = ("MOT16", "MOT17", "MOT15", "MOT20")
SPLITS = ("train", "test")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """Return the data root; raise InputError naming what was tried when there is none."""
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise InputError(root, "--data-root is not a directory")
        return root
    env = os.environ.get("FMTRACK_DATA")
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise InputError(root, "$FMTRACK_DATA is not a directory")
        return root
    candidates = [_REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for root in candidates:
        if root.is_dir():
            return root
    raise InputError(None, "no data root: pass --data-root DIR or set FMTRACK_DATA "
                           f"(also looked for {candidates[0]})")


def find_sequence(name: str, data_root: str | Path | None = None) -> Path:
    """Directory of sequence ``name`` (e.g. ``MOT16-09``, ``MOT17-09-FRCNN``, ``TUD-Campus``)."""
    root = resolve_data_root(data_root)
    if name_problem(name) is not None:
        raise InputError(None, f"sequence name {name!r} {name_problem(name)}: it must be one path component")
    direct = root / name
    if (direct / "seqinfo.ini").is_file() or (direct / "det").is_dir():
        _warn_if_images_outside(root, direct)
        return direct
    found = [root / bench / split / name for bench in BENCHMARKS for split in SPLITS
             if (root / bench / split / name).is_dir()]
    if len(found) > 1:  # taking the first in silence would score one and mean the other
        raise InputError(root, f"sequence {name!r} is in {len(found)} places: "
                               f"{', '.join(str(p.relative_to(root)) for p in found)}; keep one under this root")
    if found:
        _warn_if_images_outside(root, found[0])
        return found[0]
    known = sorted(p.name for b in BENCHMARKS for s in SPLITS
                   for p in (root / b / s).glob("*") if p.is_dir())
    known += sorted(p.name for p in root.glob("*") if (p / "seqinfo.ini").is_file() or (p / "det").is_dir())
    hint = ", ".join(known) if known else "none"
    if not known and (root / "seqinfo.ini").is_file():
        hint += f" ({root} is itself a sequence folder: the data root is the folder above its benchmark)"
    raise InputError(root, f"unknown sequence {name!r}; sequences under this root: {hint}")


_warned_outside: set[Path] = set()


def _warn_if_images_outside(root: Path, sequence: Path) -> None:
    """Warn once per sequence when its ``img1`` is a link resolving outside the data root (MOT17's
    links to MOT16 stay inside it)."""
    images = sequence / "img1"
    if not images.is_symlink() or sequence in _warned_outside:
        return
    target = images.resolve()
    if not target.is_relative_to(root.resolve()):
        _warned_outside.add(sequence)
        warnings.warn(InputWarning(f"{images}: links to {target}, outside the data root {root}"), stacklevel=3)


def deepsort_features_path(name: str, data_root: str | Path | None = None) -> Path:
    """Where the shared data keeps DeepSORT's precomputed features for a sequence."""
    return resolve_data_root(data_root) / "features" / "deepsort" / f"{name}.npy"
