"""MOTChallenge text formats: seqinfo.ini, det.txt, gt.txt, feature arrays and result files.

Every reader validates what it reads and raises :class:`InputError` naming the file, the line
(1-based; for ``.npy`` arrays the row) and the problem, so bad input never surfaces as a
traceback from inside numpy or pandas. Values must be finite and plausible: box coordinates within
±MAX_PIXELS, other used columns within ±MAX_VALUE, frames and ids integers.

Documented skip: detections with a width or height below MIN_BOX_SIZE (zero-size boxes, which some
detectors emit) are dropped with a count in ``Detections.skipped``; negative sizes are errors.
Duplicated rows of a det file (same frame and box) are kept, with an :class:`InputWarning`.
"""

from __future__ import annotations

import configparser
import csv
import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .errors import InputError, InputWarning
from .names import check_name, name_problem

GT_COLUMNS = ["X", "Y", "Width", "Height", "Confidence", "ClassId", "Visibility"]
RESULT_COLUMNS = ["X", "Y", "Width", "Height", "Confidence"]
# Bounds that turn absurd-but-finite input into an error instead of inf/nan downstream: no image is
# a million pixels wide, and MOTChallenge's longest sequence has 3,315 frames.
MAX_PIXELS = 1e6
MAX_VALUE = 1e9  # scores, ids, flags
MIN_BOX_SIZE = 1e-3  # pixels; a thinner detection covers no pixel
MAX_SEQ_LENGTH = 10_000_000
# Without frames on disk, seqLength may run past the last detection by at most this many frames
# (an empty frame costs the tracker ~0.2 ms, so this bounds the silent tail to well under a minute).
MAX_EMPTY_TAIL = 100_000
MAX_FRAME_RATE = 10_000.0
# Feature values whose squared distances stay finite in float32 over a few hundred dimensions.
MAX_FEATURE = 1e18
_CHUNK_ROWS = 1 << 16
_BOM = b"\xef\xbb\xbf"


def check_frame_rate(value: object, name: str) -> float:
    """``value`` as a float, or ValueError naming ``name`` unless it is a number of frames per second
    in (0, MAX_FRAME_RATE] (seqinfo.ini's frameRate has the same bounds)."""
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and 0 < value <= MAX_FRAME_RATE):  # NaN fails
        raise ValueError(f"{name} must be a frame rate in (0, {MAX_FRAME_RATE:g}] frames per second, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SequenceInfo:
    """The contents of a sequence's ``seqinfo.ini`` plus its directory."""

    name: str
    path: Path
    frame_rate: float
    seq_length: int
    im_width: int
    im_height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"

    def __post_init__(self) -> None:
        # The name becomes part of output and cache paths; imDir a folder under the sequence.
        check_name(self.name, "sequence name")
        check_name(self.im_dir, "imDir")
        if self.im_ext and name_problem(self.im_ext) is not None:
            raise ValueError(f"imExt {self.im_ext!r} {name_problem(self.im_ext)}")

    @property
    def image_dir(self) -> Path:
        """The frames' folder. MOT17 sequences share their video with MOT16: there ``img1`` may be a
        symbolic link, or a link stored as a small text file holding the relative target path."""
        path = self.path / self.im_dir
        if path.is_file() and path.stat().st_size < 4096:
            target = (self.path / path.read_text(encoding="utf8").strip()).resolve()
            if target.is_dir():
                return target
        return path

    @property
    def det_path(self) -> Path:
        return self.path / "det" / "det.txt"

    @property
    def gt_path(self) -> Path:
        return self.path / "gt" / "gt.txt"

    @property
    def ini_path(self) -> Path:
        return self.path / "seqinfo.ini"


def _ini_line(ini: Path, key: str) -> int | None:
    """1-based line of ``key=`` in an ini file (keys are case-insensitive), for error messages."""
    text = ini.read_text(encoding="utf8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), start=1):
        name, eq, _ = line.partition("=")
        if eq and name.strip().lower() == key.lower():
            return lineno
    return None


def _count_frames(info: SequenceInfo) -> int | None:
    """Frames (files ending in imExt) in the image folder, or None when it does not exist."""
    folder = info.image_dir
    if not folder.is_dir():
        return None
    return sum(1 for entry in folder.iterdir() if entry.name.endswith(info.im_ext))


def read_seqinfo(sequence_dir: str | Path) -> SequenceInfo:
    """Parse ``sequence_dir/seqinfo.ini``.

    ``name`` and ``imDir`` must be one safe path component (outputs and caches are named after
    them); frameRate finite in (0, MAX_FRAME_RATE]; seqLength at most MAX_SEQ_LENGTH and, when the
    image folder exists, its last frame must be there (or the folder hold that many frames);
    imWidth and imHeight in 1..MAX_PIXELS.
    """
    sequence_dir = Path(sequence_dir)
    ini = sequence_dir / "seqinfo.ini"
    if not ini.is_file():
        raise InputError(ini, "missing seqinfo.ini")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8-sig")
        sec = parser["Sequence"]
        values = {"name": sec.get("name", sequence_dir.name), "frameRate": sec["frameRate"],
                  "seqLength": sec["seqLength"], "imWidth": sec["imWidth"], "imHeight": sec["imHeight"],
                  "imDir": sec.get("imDir", "img1"), "imExt": sec.get("imExt", ".jpg")}
    except KeyError as err:
        missing = err.args[0]
        raise InputError(ini, "malformed seqinfo.ini (no [Sequence] section)" if missing == "Sequence"
                         else f"malformed seqinfo.ini (no {missing}= in its [Sequence] section)") from None
    except (configparser.Error, UnicodeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(ini, f"malformed seqinfo.ini ({type(err).__name__}: {first_line})") from None
    except OSError as err:
        raise InputError(ini, f"cannot read ({err.strerror})") from None
    for key in ("name", "imDir"):
        problem = name_problem(values[key])
        if problem is not None:
            raise InputError(ini, f"{key}={values[key]!r} {problem}: it must be one path component",
                             _ini_line(ini, key))
    if name_problem(values["imExt"]) is not None and values["imExt"]:
        raise InputError(ini, f"imExt={values['imExt']!r} {name_problem(values['imExt'])}", _ini_line(ini, "imExt"))
    parsed: dict[str, float | int] = {}
    for key, cast, low, high in (("frameRate", float, 0.0, MAX_FRAME_RATE), ("seqLength", int, 0, MAX_SEQ_LENGTH),
                                 ("imWidth", int, 0, MAX_PIXELS), ("imHeight", int, 0, MAX_PIXELS)):
        text = values[key]
        try:
            number = cast(text)
        except ValueError:
            raise InputError(ini, f"malformed seqinfo.ini ({key}={text!r} is not "
                                  f"{'a number' if cast is float else 'an integer'})", _ini_line(ini, key)) from None
        if not math.isfinite(number) or number <= low:
            raise InputError(ini, f"{key}={text} must be positive (seqLength, frameRate, imWidth and imHeight "
                                  "must be positive and finite)", _ini_line(ini, key))
        if number > high:
            raise InputError(ini, f"{key}={text} is beyond the plausible maximum {high:g}", _ini_line(ini, key))
        parsed[key] = number
    info = SequenceInfo(name=values["name"], path=sequence_dir, frame_rate=float(parsed["frameRate"]),
                        seq_length=int(parsed["seqLength"]), im_width=int(parsed["imWidth"]),
                        im_height=int(parsed["imHeight"]), im_dir=values["imDir"], im_ext=values["imExt"])
    # A sequence longer than its frames on disk; a lost frame in the middle is reported when read.
    on_disk = _count_frames(info)
    last = info.image_dir / f"{info.seq_length:06d}{info.im_ext}"
    if on_disk is not None and on_disk < info.seq_length and not last.is_file():
        raise InputError(ini, f"seqLength={info.seq_length} but {info.image_dir} holds only {on_disk} "
                              f"{info.im_ext} frames (no {last.name})", _ini_line(ini, "seqLength"))
    return info


def check_sequence_length(info: SequenceInfo, detections: "Detections") -> None:
    """InputError naming seqinfo.ini when, with no frames on disk to confirm it, seqLength runs more
    than MAX_EMPTY_TAIL frames past the last detection (a run would loop over empty frames)."""
    if info.image_dir.is_dir() or info.seq_length <= detections.last_frame + MAX_EMPTY_TAIL:
        return
    raise InputError(info.ini_path, f"seqLength={info.seq_length} but the detections ({detections.source}) end at "
                                    f"frame {detections.last_frame} and there are no frames on disk to confirm "
                                    "the length", _ini_line(info.ini_path, "seqLength"))


def _read_numeric_table(path: Path, allowed_columns: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Comma-separated numbers -> ``(rows (N, C) float64, line_numbers (N,) int)``.

    Blank lines are skipped. Every row must have the same count, one of ``allowed_columns``.
    Memory stays a small multiple of the table itself: well-formed files go through pandas' C
    parser, anything else through a line reader that builds the table in chunks and names the
    first bad line.
    """
    if path.is_dir():
        raise InputError(path, "is a directory, expected a text file")
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        table = _read_well_formed(path, allowed_columns)
        if table is not None:
            line_numbers = np.arange(1, len(table) + 1, dtype=np.int64)
        else:
            table, line_numbers = _read_line_by_line(path, allowed_columns)
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror or err})") from None
    except MemoryError:
        raise InputError(path, f"not enough memory to read {path.stat().st_size / 1e6:.0f} MB") from None
    _check_finite(path, table, line_numbers)
    return table, line_numbers


def _read_well_formed(path: Path, allowed_columns: tuple[int, ...]) -> np.ndarray | None:
    """The table when every line is ``allowed`` comma-separated numbers with no blank line, else
    None (the line reader then finds and names the problem)."""
    try:
        frame = pd.read_csv(path, header=None, sep=",", dtype=np.float64, skipinitialspace=True,
                            skip_blank_lines=False, quoting=csv.QUOTE_NONE, encoding="utf8",
                            encoding_errors="replace", engine="c")
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    table = frame.to_numpy(dtype=np.float64)
    # NaN marks a blank line, a short row or a literal nan: the line reader names it exactly.
    if table.ndim != 2 or len(table) == 0 or table.shape[1] not in allowed_columns or np.isnan(table).any():
        return None
    return table


# Commas, and (as some exporters write) spaces or tabs, between values.
_SEPARATORS = re.compile(r"[,\s]+")
# A number as the devkit's readers take it: ASCII digits, optional sign, point and exponent (or nan / inf).
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.IGNORECASE | re.ASCII)


def _read_line_by_line(path: Path, allowed_columns: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    chunks: list[np.ndarray] = []
    line_chunks: list[np.ndarray] = []
    rows: list[list[float]] = []
    lines: list[int] = []
    ncols = None
    with open(path, encoding="utf-8-sig", errors="replace") as fh:  # -sig: an editor's byte-order mark
        for lineno, text in enumerate(fh, start=1):
            text = text.strip()
            if not text:
                continue
            parts = [p for p in _SEPARATORS.split(text) if p != ""]
            if ncols is None:
                if len(parts) not in allowed_columns:
                    want = " or ".join(map(str, allowed_columns))
                    raise InputError(path, f"expected {want} comma-separated columns, found {len(parts)}", lineno)
                ncols = len(parts)
            elif len(parts) != ncols:
                raise InputError(path, f"expected {ncols} columns like the first line, found {len(parts)}", lineno)
            try:
                values = [float(p) for p in parts]
            except ValueError:
                values = None
            if values is None or not all(map(_NUMBER.fullmatch, parts)):  # float() also takes 1_000 and non-ASCII digits
                bad = next(p for p in parts if not (_is_float(p) and _NUMBER.fullmatch(p)))
                raise InputError(path, f"not a number: {bad!r}", lineno)
            rows.append(values)
            lines.append(lineno)
            if len(rows) == _CHUNK_ROWS:  # Python lists cost ~10x the array: keep few of them alive
                chunks.append(np.asarray(rows, dtype=np.float64))
                line_chunks.append(np.asarray(lines, dtype=np.int64))
                rows, lines = [], []
    if rows:
        chunks.append(np.asarray(rows, dtype=np.float64))
        line_chunks.append(np.asarray(lines, dtype=np.int64))
    if not chunks:
        raise InputError(path, "file is empty")
    return np.concatenate(chunks), np.concatenate(line_chunks)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_finite(path: Path, table: np.ndarray, line_numbers: np.ndarray) -> None:
    bad = ~np.isfinite(table)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(path, f"non-finite value {table[row, col]} in column {col + 1}", int(line_numbers[row]))


def _check_frames(path: Path, frames: np.ndarray, line_numbers: np.ndarray, seq_length: int | None) -> None:
    bad = (frames < 1) | (frames != np.round(frames)) | (frames > MAX_SEQ_LENGTH)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(path, f"frame {frames[i]:g} is not a positive integer up to {MAX_SEQ_LENGTH}",
                         int(line_numbers[i]))
    if seq_length is not None and (frames > seq_length).any():
        i = int(np.argmax(frames > seq_length))
        raise InputError(path, f"frame {int(frames[i])} is beyond seqLength={seq_length}", int(line_numbers[i]))


def _check_ids(path: Path, ids: np.ndarray, line_numbers: np.ndarray, id_name: str) -> None:
    bad = (ids != np.round(ids)) | (np.abs(ids) > MAX_VALUE)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(path, f"{id_name} {ids[i]:g} must be an integer within ±{MAX_VALUE:g}", int(line_numbers[i]))


def _check_magnitude(path: Path, table: np.ndarray, line_numbers: np.ndarray, columns: range | list[int],
                     limit: float, what: str) -> None:
    """InputError at the first value of ``columns`` (0-based) whose magnitude exceeds ``limit``."""
    columns = list(columns)
    bad = np.abs(table[:, columns]) > limit
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(path, f"{what} {table[row, columns[col]]:g} in column {columns[col] + 1} is beyond "
                               f"±{limit:g}", int(line_numbers[row]))


def _check_box_sizes(path: Path, boxes: np.ndarray, line_numbers: np.ndarray) -> None:
    """Width and height must be at least MIN_BOX_SIZE (result and gt boxes are not skipped)."""
    bad = (boxes[:, 2] < MIN_BOX_SIZE) | (boxes[:, 3] < MIN_BOX_SIZE)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(path, f"box size {boxes[i, 2]:g} x {boxes[i, 3]:g} is below {MIN_BOX_SIZE:g} px",
                         int(line_numbers[i]))


@dataclass
class Detections:
    """All detections of one sequence, sorted by frame.

    frames: (N,) int64, 1-based. boxes: (N, 4) float64, tlwh pixels. scores: (N,) float64, the
    detector's confidence on its own scale. features: (N, D) float32 appearance descriptors, or None.
    """

    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    features: np.ndarray | None = None
    source: str = ""
    skipped: int = 0  # rows dropped for zero width or height
    _starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        order = np.argsort(self.frames, kind="stable")
        self.frames = np.asarray(self.frames, dtype=np.int64)[order]
        self.boxes = np.asarray(self.boxes, dtype=np.float64)[order]
        self.scores = np.asarray(self.scores, dtype=np.float64)[order]
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)[order]
        last = int(self.frames[-1]) if len(self.frames) else 0
        self._starts = np.searchsorted(self.frames, np.arange(last + 2))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1]) if len(self.frames) else 0

    def frame_slice(self, frame: int) -> slice:
        """Row range of ``frame`` (1-based; empty when the frame has no detections, and for frames < 1)."""
        if isinstance(frame, bool) or not isinstance(frame, numbers.Integral):
            raise ValueError(f"frame must be a whole frame number (1-based), got {frame!r}")
        if frame < 0 or frame + 1 >= len(self._starts):
            return slice(0, 0)
        return slice(int(self._starts[frame]), int(self._starts[frame + 1]))

    def at(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(boxes (n, 4) tlwh, scores (n,), features (n, D) or None)`` of one frame."""
        s = self.frame_slice(frame)
        return self.boxes[s], self.scores[s], None if self.features is None else self.features[s]


def _detections_from_table(path: Path, table: np.ndarray, line_numbers: np.ndarray,
                           features: np.ndarray | None, seq_length: int | None) -> Detections:
    frames, boxes, scores = table[:, 0], table[:, 2:6], table[:, 6]
    _check_frames(path, frames, line_numbers, seq_length)
    _check_magnitude(path, table, line_numbers, range(2, 6), MAX_PIXELS, "box value")
    _check_magnitude(path, table, line_numbers, [6], MAX_VALUE, "score")
    negative = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if negative.any():
        i = int(np.argmax(negative))
        raise InputError(path, f"negative box size {boxes[i, 2]:g} x {boxes[i, 3]:g}", int(line_numbers[i]))
    keep = (boxes[:, 2] >= MIN_BOX_SIZE) & (boxes[:, 3] >= MIN_BOX_SIZE)
    return Detections(frames=frames[keep].astype(np.int64), boxes=boxes[keep], scores=scores[keep],
                      features=None if features is None else features[keep], source=str(path),
                      skipped=int((~keep).sum()))


def _seq_length(value: object) -> int | None:
    """The ``seq_length`` argument as an int (None: unbounded); ValueError naming it otherwise."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"seq_length must be a whole number of frames >= 0 or None, got {value!r}")
    return int(value)


def _path(path: str | os.PathLike, name: str) -> Path:
    """``path`` as a Path; ValueError naming the argument for anything that is not a path."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a file path, got {type(path).__name__} {path!r}")
    return Path(path)


def read_detections(path: str | Path, seq_length: int | None = None) -> Detections:
    """Read a MOTChallenge ``det.txt`` (10 columns, or the 7-column short form)."""
    seq_length = _seq_length(seq_length)
    path = _path(path, "path")
    table, line_numbers = _read_numeric_table(path, (10, 7))
    detections = _detections_from_table(path, table, line_numbers, None, seq_length)
    duplicates = int(pd.DataFrame(table[:, [0, 2, 3, 4, 5]]).duplicated().sum())  # hashing, not sorting
    if duplicates:
        warnings.warn(InputWarning(f"{path}: {duplicates} duplicated detection rows (same frame and box); "
                                   "each becomes a detection"), stacklevel=2)
    return detections


def load_npy(path: Path) -> np.ndarray:
    """``np.load`` of a plain numeric ``.npy``, with its header checked against the file size
    before anything is allocated."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(6)
        if head.startswith(b"PK"):
            raise InputError(path, "expected a .npy array, got a .npz archive (or another zip file)")
        if head != b"\x93NUMPY":
            raise InputError(path, "not a readable .npy array (no NUMPY header)")
        fh.seek(0)
        try:
            version = np.lib.format.read_magic(fh)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(fh))
        except (ValueError, SyntaxError, TypeError) as err:
            raise InputError(path, f"not a readable .npy array ({err})") from None
        if dtype.hasobject:
            raise InputError(path, "holds Python objects (pickles are refused); expected a numeric array")
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise InputError(path, f"expected a numeric array, got dtype {dtype}")
        needed = math.prod(shape) * dtype.itemsize
        available = size - fh.tell()
        if needed > available:
            raise InputError(path, f"header says shape {shape} ({needed} bytes) but the file holds {available} "
                                   "bytes of data (truncated or corrupt)")
        fh.seek(0)
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise InputError(path, f"not a readable .npy array ({err})") from None


def read_feature_array(path: str | Path, seq_length: int | None = None) -> Detections:
    """Read detections with appearance features from a ``.npy`` array.

    Two layouts: ``N x (7 + D)`` (frame, -1, left, top, width, height, confidence, features: the
    shared data's and ``fmtrack embed``'s) and DeepSORT's ``N x (10 + D)``, recognised by columns
    7-9 being -1 in every row. Line numbers in errors are 1-based rows. Feature values must be
    within ±MAX_FEATURE.
    """
    seq_length = _seq_length(seq_length)
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        array = load_npy(path)
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror or err})") from None
    if array.ndim != 2 or array.shape[1] < 8:  # N = 0: a sequence without one usable detection
        raise InputError(path, f"expected an N x (7 + D) array, got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    rows = np.arange(1, len(array) + 1)
    _check_finite(path, array, rows)
    first = 10 if len(array) and array.shape[1] > 10 and (array[:, 7:10] == -1).all() else 7
    _check_magnitude(path, array, rows, range(first, array.shape[1]), MAX_FEATURE, "feature value")
    _check_zero_features(path, array[:, first:])
    return _detections_from_table(path, array[:, :7], rows, array[:, first:], seq_length)


def _check_zero_features(path: Path, features: np.ndarray) -> None:
    """A feature of all zeros has no direction: compared by cosine it is at distance 1 from every
    track, so it never matches by appearance and the fused stage's veto stops IoU matching it too.
    Every row zero is a broken file (InputError); some rows zero, one warning counting them."""
    zero = ~features.any(axis=1)
    if len(zero) and zero.all():
        raise InputError(path, "every feature is all zeros: no appearance to compare (a failed export?)")
    if zero.any():
        first = int(np.argmax(zero)) + 1
        warnings.warn(InputWarning(f"{path}:{first}: {int(zero.sum())} of {len(zero)} features are all zeros; "
                                   "compared by cosine they match no track by appearance"), stacklevel=3)


def _indexed_by_frame_and_id(path: Path, table: np.ndarray, line_numbers: np.ndarray, values: np.ndarray,
                             columns: list[str], id_name: str) -> pd.DataFrame:
    """py-motmetrics' layout: ``values`` indexed by (FrameId, Id) from the table's first two columns;
    InputError naming the line where an id repeats within a frame."""
    frame_ids = table[:, :2].astype(np.int64)
    index = pd.MultiIndex.from_arrays(frame_ids.T, names=["FrameId", "Id"])
    duplicate = index.duplicated()
    if duplicate.any():
        i = int(np.argmax(duplicate))
        raise InputError(path, f"{id_name} {frame_ids[i, 1]} appears twice in frame {frame_ids[i, 0]}",
                         int(line_numbers[i]))
    return pd.DataFrame(values, columns=columns, index=index).sort_index()


def read_ground_truth(path: str | Path, seq_length: int | None = None) -> pd.DataFrame:
    """Read ``gt.txt`` into py-motmetrics' layout: index (FrameId, Id), columns GT_COLUMNS.

    9 columns (MOT16/17: consider flag, class, visibility) or 10 columns (MOT15: confidence then
    world coordinates; every row becomes class 1, visibility 1, since MOT15 is scored without classes).
    """
    seq_length = _seq_length(seq_length)
    path = _path(path, "path")
    table, line_numbers = _read_numeric_table(path, (9, 10))
    _check_frames(path, table[:, 0], line_numbers, seq_length)
    _check_ids(path, table[:, 1], line_numbers, "id")
    _check_magnitude(path, table, line_numbers, range(2, 6), MAX_PIXELS, "box value")
    _check_magnitude(path, table, line_numbers, range(6, 7 if table.shape[1] == 10 else 9), MAX_VALUE, "value")
    if table.shape[1] == 10:
        table = np.column_stack([table[:, :7], np.ones(len(table)), np.ones(len(table))])
    return _indexed_by_frame_and_id(path, table, line_numbers, table[:, 2:], GT_COLUMNS, "id")


def _checked_result_rows(rows: np.ndarray) -> np.ndarray:
    """``rows`` as a float64 (N, 6) array of result rows; ValueError naming the first bad row."""
    values = np.asarray(rows)
    if values.size == 0:
        return np.zeros((0, 6))
    if values.dtype.kind not in "fiu" or values.ndim != 2 or values.shape[1] != 6:
        raise ValueError(f"result rows must be an (N, 6) array of numbers (frame, id, left, top, width, height), "
                         f"got shape {values.shape} of dtype {values.dtype}")
    values = values.astype(np.float64, copy=False)
    frames, ids, boxes = values[:, 0], values[:, 1], values[:, 2:]
    # In order, each on rows the earlier ones passed (lambdas: a NaN frame never reaches the int cast).
    checks = (("is not finite", lambda: ~np.isfinite(values).all(axis=1)),
              ("has a frame that is not a whole number >= 1", lambda: (frames < 1) | (frames != np.round(frames))),
              (f"has a track id that is not a whole number within ±{MAX_VALUE:g}",  # as the reader takes them
               lambda: (ids != np.round(ids)) | (np.abs(ids) > MAX_VALUE)),
              (f"has a value beyond {MAX_PIXELS:g} px", lambda: (np.abs(boxes) > MAX_PIXELS).any(axis=1)),
              ("has a width or height not above 0", lambda: (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)),
              ("repeats the (frame, track id) of an earlier row",
               lambda: pd.MultiIndex.from_arrays(values[:, :2].astype(np.int64).T).duplicated()))
    for problem, test in checks:
        bad = test()
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"result row {i} {problem}: {values[i].tolist()}")
    return values


def read_results(path: str | Path, seq_length: int | None = None) -> pd.DataFrame:
    """Read a tracker result file (``frame,id,left,top,width,height,conf,-1,-1,-1``; 6+ columns).

    Returns py-motmetrics' layout: index (FrameId, Id), columns RESULT_COLUMNS. An empty file (or
    one of blank lines) is a valid result (a tracker that reported nothing).
    """
    seq_length = _seq_length(seq_length)
    path = _path(path, "path")
    if path.is_file() and path.stat().st_size < 4096 and not path.read_bytes().removeprefix(_BOM).strip():
        return pd.DataFrame(columns=RESULT_COLUMNS,
                            index=pd.MultiIndex.from_arrays([[], []], names=["FrameId", "Id"]))
    table, line_numbers = _read_numeric_table(path, (6, 7, 9, 10))
    _check_frames(path, table[:, 0], line_numbers, seq_length)
    _check_ids(path, table[:, 1], line_numbers, "track id")
    _check_magnitude(path, table, line_numbers, range(2, 6), MAX_PIXELS, "box value")
    bad_size = (table[:, 4] <= 0) | (table[:, 5] <= 0)
    if bad_size.any():
        i = int(np.argmax(bad_size))
        raise InputError(path, f"non-positive box size {table[i, 4]:g} x {table[i, 5]:g}", int(line_numbers[i]))
    _check_box_sizes(path, table[:, 2:6], line_numbers)
    if table.shape[1] > 6:
        _check_magnitude(path, table, line_numbers, [6], MAX_VALUE, "confidence")
    conf = table[:, 6] if table.shape[1] > 6 else np.ones(len(table))
    return _indexed_by_frame_and_id(path, table, line_numbers, np.column_stack([table[:, 2:6], conf]),
                                    RESULT_COLUMNS, "track id")


def _size(value: float) -> str:
    """A width or height as written: two decimals, or as many digits as keep it readable (0.004 px
    written as 0.00 made a file the reader refuses); below MIN_BOX_SIZE, that size."""
    return f"{value:.2f}" if value >= 0.005 else f"{max(value, MIN_BOX_SIZE):.6g}"


def write_results(path: str | Path, rows: np.ndarray) -> Path:
    """Write tracker output atomically as ``frame,id,left,top,width,height,1,-1,-1,-1``.

    rows: (N, 6) array of frame, track id, left, top, width, height (pixels). ValueError naming the
    row for what :func:`read_results` would refuse: frames not whole numbers >= 1, ids not whole, a value
    not finite or beyond 1e6 px, a width or height not above 0, an id twice in one frame. Positions
    are written to 0.01 px; sizes too, but one below 0.005 px with the digits it needs (at least
    MIN_BOX_SIZE), so that the file reads back.
    """
    path = Path(path)
    rows = _checked_result_rows(rows)
    with atomic_write(path, "w") as fh:
        for frame, track_id, left, top, width, height in rows:
            fh.write(f"{int(frame)},{int(track_id)},{left:.2f},{top:.2f},{_size(width)},{_size(height)},1,-1,-1,-1\n")
    return path
