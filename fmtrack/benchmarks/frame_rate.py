"""A sequence at a lower frame rate: every ``step``-th frame of it, as a MOTChallenge sequence of its own.

A user's camera may run at 7 fps where the design sequences run at 10-30. Keeping frames 1, 1 + step,
1 + 2 step, ... of a sequence (renumbered 1, 2, 3, ...) with their detections, ground truth and
precomputed features gives the same scene at ``frameRate / step``: what ``benchmarks/frame_rate_check.py``
tracks to see whether defaults chosen at the design set's rates hold at lower ones.

The copy is written under a separate root in the official layout (``BENCH/train/NAME``), so every
command takes it through ``--data-root``. Frames are not copied: each is a link to the original image.
Text files are filtered line by line, every column kept as written.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import math
from pathlib import Path

import numpy as np

from ..io import InputError, find_sequence, read_seqinfo, resolve_data_root
from ..io.atomic import atomic_write
from ..io.dataroot import deepsort_features_path


def _kept(frame, step: int):
    """Whether frame number(s) ``frame`` (int or int array, 1-based) survive: 1, 1 + step, 1 + 2 step, ..."""
    return (frame >= 1) & ((frame - 1) % step == 0)


def _renumbered(frame, step: int):
    """The number(s) a kept ``frame`` gets in the lower-rate copy: 1, 2, 3, ..."""
    return (frame - 1) // step + 1


def _keep_rows(path: Path, step: int) -> str:
    """The lines of a MOTChallenge text file (frame in the first column) on kept frames, renumbered."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf8").splitlines(), start=1):
        if not line.strip():
            continue
        first, _, rest = line.partition(",")
        try:
            frame = int(float(first))
        except ValueError:
            raise InputError(path, f"first column {first!r} is not a frame number", number) from None
        if _kept(frame, step):
            out.append(f"{_renumbered(frame, step)},{rest}")
    return "".join(f"{line}\n" for line in out)


def _layout(sequence: Path, root: Path) -> Path:
    """The sequence's place under its data root (``MOT16/train/MOT16-09``, or just its name)."""
    try:
        return sequence.resolve().relative_to(root.resolve())
    except ValueError:
        return Path(sequence.name)


def subsample_sequence(name: str, step: int, out_root: str | Path, data_root: str | Path | None = None) -> Path:
    """Write sequence ``name`` at 1 / ``step`` of its frame rate under ``out_root``; return its directory.

    step: keep frames 1, 1 + step, 1 + 2 step, ... (1 copies the sequence as it is).
    out_root: a new data root; refused inside the source data root, which is never written to.
    Writes seqinfo.ini (frameRate / step, the new seqLength), det/det.txt and gt/gt.txt where the
    source has them, img1/ links to the kept frames, and DeepSORT's features
    (``out_root/features/deepsort/NAME.npy``) where the data root has them for this sequence.
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be an integer >= 1 (keep every step-th frame), got {step!r}")
    step = int(step)
    root = resolve_data_root(data_root)
    out_root = Path(out_root)
    if out_root.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"out_root {out_root} is inside the data root {root}: write the lower-rate copy elsewhere")
    source = find_sequence(name, root)
    info = read_seqinfo(source)
    target = out_root / _layout(source, root)

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep seqinfo's key case (frameRate, seqLength)
    parser["Sequence"] = {"name": info.name, "imDir": info.im_dir, "frameRate": f"{info.frame_rate / step:g}",
                          "seqLength": str(math.ceil(info.seq_length / step)), "imWidth": str(info.im_width),
                          "imHeight": str(info.im_height), "imExt": info.im_ext}
    text = io.StringIO()
    parser.write(text, space_around_delimiters=False)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_write(target / "seqinfo.ini") as fh:
        fh.write(text.getvalue())
    for kind, path in (("det", info.det_path), ("gt", info.gt_path)):
        if path.is_file():
            (target / kind).mkdir(exist_ok=True)
            with atomic_write(target / kind / path.name) as fh:
                fh.write(_keep_rows(path, step))
    if info.image_dir.is_dir():
        images = target / info.im_dir
        images.mkdir(exist_ok=True)
        for frame in range(1, info.seq_length + 1, step):
            original = info.image_dir / f"{frame:06d}{info.im_ext}"
            link = images / f"{_renumbered(frame, step):06d}{info.im_ext}"
            if original.is_file() and not link.is_symlink():
                with contextlib.suppress(FileExistsError):  # another process built the same copy
                    link.symlink_to(original.resolve())
    features = deepsort_features_path(info.name, root)
    if features.is_file():
        rows = np.load(features)
        frames = rows[:, 0].astype(np.int64)
        keep = _kept(frames, step)
        kept = rows[keep]  # a boolean index copies
        kept[:, 0] = _renumbered(frames[keep], step)
        out = deepsort_features_path(info.name, out_root)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out, "wb") as fh:
            np.save(fh, kept)
    return target
