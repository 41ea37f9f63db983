"""The issue's acceptance checks: SORT and DeepSORT reproduce the reference rows of
../shared/reference/README.md (bundled in tests/reference/reference_rows.csv) through the same
library path the CLI uses: parse_method -> load_inputs -> track_sequence -> accumulate -> summarise.

Tolerances are the issue's: SORT +-1.0 IDF1/MOTA and +-5 IDs; DeepSORT +-1.0 IDF1/MOTA and +-3 IDs.
No images are read (detections from det.txt, DeepSORT's precomputed features), so each case runs in
a few seconds.

Why ``sort@min_confidence=0`` for the MOT16-09 "all dets" row: the original abewley/sort reproduces
that row (41.5 / 40.5 / 83) only when fed the detections with confidence >= 0 (DPM scores are SVM
margins and can be negative); fed literally every row it gives 39.2 / 25.9. The thresholds are on
the detector's own (DPM) scale, as in the reference runs.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from fmtrack.benchmarks.evaluate import results_frame
from fmtrack.benchmarks.methods import load_inputs, parse_method
from fmtrack.benchmarks.scoring import accumulate, protocol_for, summarise
from fmtrack.cli import main
from fmtrack.io import find_sequence, read_ground_truth, read_results, read_seqinfo
from fmtrack.pipeline import track_sequence

from conftest import REFERENCE_DIR


def _reference_rows() -> list[dict]:
    with open(REFERENCE_DIR / "reference_rows.csv", encoding="utf8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


ROWS = _reference_rows()


def _score(info, rows: np.ndarray):
    gt = read_ground_truth(info.gt_path, info.seq_length)
    acc = accumulate(gt, results_frame(rows), info, protocol_for(info))
    return summarise([acc], [info.name]).loc[info.name]


def _check(row: dict, got) -> None:
    where = (f"{row['method']} on {row['sequence']}: got IDF1 {got['IDF1']:.1f} MOTA {got['MOTA']:.1f} "
             f"IDs {int(got['IDs'])} FP {int(got['FP'])} FN {int(got['FN'])}; reference IDF1 {row['idf1']} "
             f"MOTA {row['mota']} IDs {row['ids']} FP {row['fp']} FN {row['fn']}")
    assert abs(got["IDF1"] - float(row["idf1"])) <= float(row["idf1_tol"]), where
    assert abs(got["MOTA"] - float(row["mota"])) <= float(row["mota_tol"]), where
    assert abs(int(got["IDs"]) - int(row["ids"])) <= int(row["ids_tol"]), where


def test_reference_table_is_complete():
    # Guards the bundled CSV itself: six rows, SORT and DeepSORT, all evaluation sequences.
    assert len(ROWS) == 6
    assert {r["sequence"] for r in ROWS} == {"MOT16-09", "MOT17-09-FRCNN", "MOT17-09-SDP"}
    assert sum(r["method"].startswith("deepsort") for r in ROWS) == 2


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['method']}-{r['sequence']}" for r in ROWS])
def test_library_path_reproduces_reference_row(row, data_root):
    method = parse_method(row["method"])
    info = read_seqinfo(find_sequence(row["sequence"], data_root))
    inputs = load_inputs(method, info, data_root, progress=False)
    assert inputs.camera_motion is None  # the reference runs had no camera-motion compensation
    if method.config.uses_appearance:
        assert inputs.embedder is not None and inputs.embedder.dim == 128
    result = track_sequence(info, inputs.detections, method.config, inputs.embedder, False,
                            inputs.camera_motion)
    assert result.frames == info.seq_length
    _check(row, _score(info, result.rows))


def test_cli_run_writes_a_result_file_that_scores_as_the_reference(data_root, tmp_path, capsys):
    row = next(r for r in ROWS if r["method"] == "sort@min_confidence=0.3" and r["sequence"] == "MOT17-09-FRCNN")
    out = tmp_path / "MOT17-09-FRCNN.txt"
    code = main(["run", "--seq", "MOT17-09-FRCNN", "--data-root", str(data_root), "--preset", "sort",
                 "--min-confidence", "0.3", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.is_file()
    assert str(out) in capsys.readouterr().out
    info = read_seqinfo(find_sequence("MOT17-09-FRCNN", data_root))
    results = read_results(out, info.seq_length)  # validates the written file
    assert len(results) > 0
    gt = read_ground_truth(info.gt_path, info.seq_length)
    acc = accumulate(gt, results, info, protocol_for(info))
    _check(row, summarise([acc], [info.name]).loc[info.name])


def test_tracker_alone_reproduces_mot16_09_row_on_raw_dpm_scores(data_root):
    """Localises a failure of the MOT16-09 rows above: the same SORT configuration fed det.txt as
    read (raw DPM margins, thresholded at 0 as abewley/sort was) must give the reference row. If
    this passes while the library-path test fails, the difference lies in load_inputs (e.g. the
    detector scores being rescaled before the preset's confidence threshold is applied)."""
    from fmtrack.io import read_detections

    row = next(r for r in ROWS if r["method"] == "sort@min_confidence=0" and r["sequence"] == "MOT16-09")
    method = parse_method(row["method"])
    info = read_seqinfo(find_sequence(row["sequence"], data_root))
    detections = read_detections(info.det_path, info.seq_length)
    assert detections.scores.min() < 0  # DPM margins: the threshold at 0 really removes rows
    result = track_sequence(info, detections, method.config)
    _check(row, _score(info, result.rows))
