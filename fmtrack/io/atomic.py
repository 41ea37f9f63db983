"""Atomic file writes: write a temporary file beside the target, then rename over it.

A reader (or a killed run) never sees a half-written result, table or checkpoint. The rename only
replaces a regular file, never an input of the same run (``inputs``), a directory or a device; a
write that fails (disk full, read-only, permission) is one :class:`InputError` naming the target,
and leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import InputError

# mkstemp creates files readable by the owner only; results should get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)
_MODE = 0o666 & ~_UMASK
# A temporary file beside a target not written to for this long belongs to a killed writer.
_STALE_SECONDS = 600.0
# Errors that mean "this destination cannot be written", reported as such rather than a traceback.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR,
                 errno.EEXIST, errno.EFBIG, errno.EIO, getattr(errno, "EDQUOT", errno.ENOSPC)}


def check_output(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``path`` as a Path when a run may replace it: absent, or a regular file that is none of
    ``inputs`` (compared as files, so links and other spellings count). InputError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a directory; give a file path to write")
    for folder in path.parents:  # the nearest existing one must be a folder to write into
        if folder.exists():
            if not folder.is_dir():
                raise InputError(path, f"cannot write: {folder} is a file, not a folder")
            break
    if path.exists() and not path.is_file():
        raise InputError(path, "exists and is not a regular file (a device, fifo or socket); refusing to replace it")
    if path.is_file():
        for source in inputs:
            if source is not None and Path(source).exists() and os.path.samefile(path, source):
                raise InputError(path, f"is the input {source}; refusing to overwrite it (choose another output)")
    return path


def _write_error(path: Path, err: OSError) -> InputError:
    return InputError(path, f"cannot write ({err.strerror or err})")


@contextlib.contextmanager
def atomic_path(path: str | Path, inputs: Iterable[str | Path | None] = (), keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that want a path (safetensors, matplotlib with an
    explicit ``format``); on success it replaces ``path`` in one rename, on failure it is removed.

    The temporary name ends in ``.tmp``, not in ``path``'s suffix: a writer that appends a suffix
    it misses (``np.save``, ``np.savez``) would write elsewhere, so give those a file object
    (:func:`atomic_write` with ``"wb"``). ``keep_suffix``: end the temporary name in ``.tmp`` plus
    ``path``'s suffix, for writers that pick the format from the name (OpenCV's VideoWriter).
    ``inputs``: files this output must not replace.
    """
    path = check_output(path, inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                   suffix=".tmp" + (path.suffix if keep_suffix else ""))
    except OSError as err:
        raise _write_error(path, err) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
        remove_stale_temporaries(path, _STALE_SECONDS)  # what a writer killed with -9 left
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if err.errno in _WRITE_ERRNOS:
            raise _write_error(path, err) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", inputs: Iterable[str | Path | None] = ()) -> Iterator[IO]:
    """An open temporary file (text as UTF-8 unless ``mode`` has "b"), flushed to disk and renamed
    over ``path`` on success. Writes exactly ``path``: use it (``"wb"``) for numpy's writers."""
    with atomic_path(path, inputs) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def remove_stale_temporaries(path: str | Path, idle_seconds: float = 0.0) -> int:
    """Delete the temporary files that killed writers of ``path`` left beside it, those not written to
    for ``idle_seconds`` (a live writer keeps its own fresh); returns how many."""
    path = Path(path)
    removed = 0
    now = time.time()
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):  # a name may hold [ ] * ?
        with contextlib.suppress(FileNotFoundError):
            if now - stale.stat().st_mtime >= idle_seconds:
                stale.unlink()
                removed += 1
    return removed
