"""HOTA, DetA and AssA by TrackEval, the MOTChallenge's own evaluation code.

TrackEval's ``MotChallenge2DBox`` dataset reads the sequence's ``gt.txt`` itself and preprocesses it
as the MOTChallenge devkit does: MOT16/17 tracker boxes matched (IoU >= 0.5) to distractor ground
truth are removed, then only pedestrian rows with consider != 0 count; MOT15 keeps every row except
zero-marked ones (7th column 0). Its metric classes (HOTA, CLEAR, Identity) then score the
preprocessed sequence. The tracker rows go through a result file in a temporary folder because that
dataset reads files only; calling it (rather than re-implementing its preprocessing) keeps the
figures the devkit's own.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import SequenceInfo, read_results, write_results
from .scoring import Protocol

HOTA_COLUMNS = ("HOTA", "DetA", "AssA")
_SEQ = "seq"  # the sequence's key inside TrackEval: a fixed name, so no path is built from seqinfo.ini
_TRACKER = "tracker"


def _trackeval():
    """TrackEval, imported on first use (it is slow to import and only scoring needs it)."""
    import trackeval

    return trackeval


def evaluate_sequence(info: SequenceInfo, results: str | Path | np.ndarray, protocol: Protocol,
                      metrics: tuple[str, ...] = ("HOTA",)) -> dict[str, dict]:
    """TrackEval's per-sequence results for one tracker output.

    results: a MOTChallenge result file, or tracker rows (N, 6) frame, id, left, top, width, height
        (pixels), written to a temporary result file first (two decimals, as ``write_results`` does).
    metrics: TrackEval metric class names (``HOTA``, ``CLEAR``, ``Identity``).
    Returns {metric name: TrackEval's result dict for the sequence (fractions, not percent)}.
    """
    trackeval = _trackeval()
    with tempfile.TemporaryDirectory(prefix="fmtrack-trackeval-") as folder:
        tracker_file = Path(folder) / _TRACKER / f"{_SEQ}.txt"
        if isinstance(results, np.ndarray):
            write_results(tracker_file, results)
        else:  # the rows our reader checked, not the file's text: TrackEval's reader fails on a BOM or blank line
            tracker_file.parent.mkdir(parents=True)
            _write_exact(tracker_file, read_results(results, info.seq_length))
        config = {
            "GT_FOLDER": folder, "TRACKERS_FOLDER": folder, "TRACKERS_TO_EVAL": [_TRACKER],
            "TRACKER_SUB_FOLDER": "", "SKIP_SPLIT_FOL": True, "SEQ_INFO": {_SEQ: info.seq_length},
            # The gt file itself, braces escaped: TrackEval fills this with str.format.
            "GT_LOC_FORMAT": str(info.gt_path).replace("{", "{{").replace("}", "}}"),
            "BENCHMARK": "MOT15" if protocol == "mot15" else "MOT17", "PRINT_CONFIG": False,
        }
        with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints as it goes
            dataset = trackeval.datasets.MotChallenge2DBox(config)
            raw = dataset.get_raw_seq_data(_TRACKER, _SEQ)
            data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
            return {name: getattr(trackeval.metrics, name)({"PRINT_CONFIG": False}).eval_sequence(data)
                    for name in metrics}


def _write_exact(path: Path, table: pd.DataFrame) -> None:
    """A :func:`read_results` table as the 10-column result file TrackEval reads, every value as read
    (17 significant digits give back the same float64)."""
    index = table.index.to_frame().to_numpy(dtype=np.int64)
    values = table[["X", "Y", "Width", "Height", "Confidence"]].to_numpy(dtype=np.float64)
    with path.open("w", encoding="utf8") as fh:
        for (frame, track_id), row in zip(index.tolist(), values.tolist()):
            fh.write(f"{frame},{track_id}," + ",".join(f"{v:.17g}" for v in row) + ",-1,-1,-1\n")


def combine(per_sequence: list[dict[str, dict]]) -> dict[str, dict]:
    """TrackEval's own pooling of several sequences' results (its COMBINED_SEQ row)."""
    trackeval = _trackeval()
    with contextlib.redirect_stdout(io.StringIO()):
        return {name: getattr(trackeval.metrics, name)({"PRINT_CONFIG": False}).combine_sequences(
                    {str(i): seq[name] for i, seq in enumerate(per_sequence)})
                for name in per_sequence[0]}


def hota_row(result: dict[str, dict]) -> dict[str, float]:
    """HOTA, DetA, AssA in percent, averaged over TrackEval's 19 localisation thresholds as it reports them."""
    hota = result["HOTA"]
    return {column: 100.0 * float(np.mean(hota[column])) for column in HOTA_COLUMNS}


def with_hota(table: pd.DataFrame, per_sequence: list[dict[str, dict]]) -> pd.DataFrame:
    """``summarise``'s table (index: sequence names, then OVERALL when there are several) with the
    HOTA columns appended; OVERALL pools the sequences as TrackEval does."""
    overall = len(table) == len(per_sequence) + 1
    if not overall and len(table) != len(per_sequence):
        raise ValueError(f"{len(per_sequence)} HOTA results for a table of {len(table)} rows")
    rows = [hota_row(result) for result in per_sequence]
    if overall:
        rows.append(hota_row(combine(per_sequence)))
    return table.assign(**{column: [row[column] for row in rows] for column in HOTA_COLUMNS})
