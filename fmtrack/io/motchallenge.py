"""MOTChallenge text formats: seqinfo.ini, det.txt, gt.txt, feature arrays and result files.

Every reader validates what it reads and raises :class:`InputError` naming the file, the line
(1-based; for ``.npy`` arrays the row) and the problem, so bad input never surfaces as a
traceback from inside numpy or pandas.

Documented skip: detections with zero width or height (some detectors emit them) are dropped with a
warning count in ``Detections.skipped``; negative sizes are errors.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .errors import InputError

GT_COLUMNS = ["X", "Y", "Width", "Height", "Confidence", "ClassId", "Visibility"]
RESULT_COLUMNS = ["X", "Y", "Width", "Height", "Confidence"]


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


def read_seqinfo(sequence_dir: str | Path) -> SequenceInfo:
    """Parse ``sequence_dir/seqinfo.ini``."""
    sequence_dir = Path(sequence_dir)
    ini = sequence_dir / "seqinfo.ini"
    if not ini.is_file():
        raise InputError(ini, "missing seqinfo.ini")
    parser = configparser.ConfigParser()
    try:
        parser.read(ini, encoding="utf8")
        sec = parser["Sequence"]
        info = SequenceInfo(
            name=sec.get("name", sequence_dir.name),
            path=sequence_dir,
            frame_rate=float(sec["frameRate"]),
            seq_length=int(sec["seqLength"]),
            im_width=int(sec["imWidth"]),
            im_height=int(sec["imHeight"]),
            im_dir=sec.get("imDir", "img1"),
            im_ext=sec.get("imExt", ".jpg"),
        )
    except (configparser.Error, KeyError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(ini, f"malformed seqinfo.ini ({type(err).__name__}: {first_line})") from None
    if info.seq_length <= 0 or info.frame_rate <= 0 or info.im_width <= 0 or info.im_height <= 0:
        raise InputError(ini, "seqLength, frameRate, imWidth and imHeight must be positive")
    return info


def _read_numeric_table(path: Path, allowed_columns: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Comma-separated numbers -> ``(rows (N, C) float64, line_numbers (N,) int)``.

    Blank lines are skipped. Every row must have the same count, one of ``allowed_columns``.
    """
    if not path.is_file():
        raise InputError(path, "file not found")
    rows: list[list[float]] = []
    lines: list[int] = []
    ncols = None
    with open(path, encoding="utf8", errors="replace") as fh:
        for lineno, text in enumerate(fh, start=1):
            text = text.strip()
            if not text:
                continue
            parts = [p for p in text.replace(" ", ",").split(",") if p != ""]
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
                bad = next(p for p in parts if not _is_float(p))
                raise InputError(path, f"not a number: {bad!r}", lineno) from None
            rows.append(values)
            lines.append(lineno)
    if not rows:
        raise InputError(path, "file is empty")
    table = np.asarray(rows, dtype=np.float64)
    line_numbers = np.asarray(lines, dtype=np.int64)
    _check_finite(path, table, line_numbers)
    return table, line_numbers


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
    bad = (frames < 1) | (frames != np.round(frames))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(path, f"frame {frames[i]:g} is not a positive integer", int(line_numbers[i]))
    if seq_length is not None and (frames > seq_length).any():
        i = int(np.argmax(frames > seq_length))
        raise InputError(path, f"frame {int(frames[i])} is beyond seqLength={seq_length}", int(line_numbers[i]))


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
        """Row range of ``frame`` (empty when the frame has no detections)."""
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
    negative = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if negative.any():
        i = int(np.argmax(negative))
        raise InputError(path, f"negative box size {boxes[i, 2]:g} x {boxes[i, 3]:g}", int(line_numbers[i]))
    keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    return Detections(frames=frames[keep].astype(np.int64), boxes=boxes[keep], scores=scores[keep],
                      features=None if features is None else features[keep], source=str(path),
                      skipped=int((~keep).sum()))


def read_detections(path: str | Path, seq_length: int | None = None) -> Detections:
    """Read a MOTChallenge ``det.txt`` (10 columns, or the 7-column short form)."""
    path = Path(path)
    table, line_numbers = _read_numeric_table(path, (10, 7))
    return _detections_from_table(path, table, line_numbers, None, seq_length)


def read_feature_array(path: str | Path, seq_length: int | None = None) -> Detections:
    """Read detections with appearance features from a ``.npy`` array.

    Two layouts: ``N x (7 + D)`` (frame, -1, left, top, width, height, confidence, features: the
    shared data's and ``fmtrack embed``'s) and DeepSORT's ``N x (10 + D)``, recognised by columns
    7-9 being -1 in every row. Line numbers in errors are 1-based rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputError(path, f"not a readable .npy array ({err})") from None
    if array.ndim != 2 or array.shape[1] < 8 or array.shape[0] == 0:
        raise InputError(path, f"expected a non-empty N x (7 + D) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(path, f"expected a numeric array, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    rows = np.arange(1, len(array) + 1)
    _check_finite(path, array, rows)
    first = 10 if array.shape[1] > 10 and (array[:, 7:10] == -1).all() else 7
    return _detections_from_table(path, array[:, :7], rows, array[:, first:], seq_length)


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
    path = Path(path)
    table, line_numbers = _read_numeric_table(path, (9, 10))
    _check_frames(path, table[:, 0], line_numbers, seq_length)
    if table.shape[1] == 10:
        table = np.column_stack([table[:, :7], np.ones(len(table)), np.ones(len(table))])
    return _indexed_by_frame_and_id(path, table, line_numbers, table[:, 2:], GT_COLUMNS, "id")


def read_results(path: str | Path, seq_length: int | None = None) -> pd.DataFrame:
    """Read a tracker result file (``frame,id,left,top,width,height,conf,-1,-1,-1``; 6+ columns).

    Returns py-motmetrics' layout: index (FrameId, Id), columns RESULT_COLUMNS. An empty file is a
    valid result (a tracker that reported nothing).
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        return pd.DataFrame(columns=RESULT_COLUMNS,
                            index=pd.MultiIndex.from_arrays([[], []], names=["FrameId", "Id"]))
    table, line_numbers = _read_numeric_table(path, (6, 7, 9, 10))
    _check_frames(path, table[:, 0], line_numbers, seq_length)
    bad_size = (table[:, 4] <= 0) | (table[:, 5] <= 0)
    if bad_size.any():
        i = int(np.argmax(bad_size))
        raise InputError(path, f"non-positive box size {table[i, 4]:g} x {table[i, 5]:g}", int(line_numbers[i]))
    conf = table[:, 6] if table.shape[1] > 6 else np.ones(len(table))
    return _indexed_by_frame_and_id(path, table, line_numbers, np.column_stack([table[:, 2:6], conf]),
                                    RESULT_COLUMNS, "track id")


def write_results(path: str | Path, rows: np.ndarray) -> Path:
    """Write tracker output atomically as ``frame,id,left,top,width,height,1,-1,-1,-1``.

    rows: (N, 6) array of frame, track id, left, top, width, height (pixels).
    """
    path = Path(path)
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    with atomic_write(path, "w") as fh:
        for frame, track_id, left, top, width, height in rows:
            fh.write(f"{int(frame)},{int(track_id)},{left:.2f},{top:.2f},{width:.2f},{height:.2f},1,-1,-1,-1\n")
    return path
