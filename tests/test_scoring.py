"""Scoring: the np.asfarray shim, py-motmetrics' own devkit figures through fmtrack's loading and
scoring, the derived columns (MOTAL, FAR) against closed forms, the table writers, and scoring a
results folder against the direct path."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pandas as pd
import pytest

import fmtrack.benchmarks.motmetrics_compat as compat
from fmtrack.benchmarks import evaluate
from fmtrack.benchmarks.evaluate import (Evaluation, render_markdown, results_frame, score_results_dir,
                                         write_tables)
from fmtrack.benchmarks.scoring import accumulate, summarise
from fmtrack.io import (find_sequence, read_detections, read_ground_truth, read_results, read_seqinfo,
                        write_results)
from fmtrack.pipeline import track_sequence
from fmtrack.tracker import preset

from conftest import REFERENCE_DIR

MM = compat.motmetrics
MM_DATA = os.path.join(os.path.dirname(MM.__file__), "data")
PAPER_COLUMNS = ["IDF1", "IDP", "IDR", "Rcll", "Prcn", "FAR", "MT", "PT", "ML", "FP", "FN", "IDs", "FM",
                 "MOTA", "MOTP", "MOTAL"]


# -- (a) the np.asfarray shim -------------------------------------------------------------------
def test_asfarray_is_available_after_import_and_gives_float64():
    out = np.asfarray([1, 2])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.asarray([1, 2], dtype=float))


def test_asfarray_keeps_a_requested_float_dtype():
    out = np.asfarray([1, 2, 3], dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([1, 2, 3], dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, bool])
def test_asfarray_turns_a_non_float_dtype_request_into_float64(dtype):
    # NumPy 1 behaviour: asfarray(a, dtype=int) still returns float64.
    out = np.asfarray([1, 0, 7], dtype=dtype)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 0.0, 7.0])


def test_asfarray_shim_function_itself():
    # The shim's own definition (whether or not this NumPy still has asfarray).
    assert compat._asfarray([1, 2]).dtype == np.float64
    assert compat._asfarray([1, 2], dtype=np.float32).dtype == np.float32
    assert compat._asfarray([1, 2], dtype=np.int8).dtype == np.float64
    np.testing.assert_array_equal(compat._asfarray([[1, 2], [3, 4]]), [[1.0, 2.0], [3.0, 4.0]])


# -- (b) py-motmetrics' devkit figures through fmtrack's loading and scoring ---------------------
def _devkit_rows() -> list[dict]:
    with open(REFERENCE_DIR / "motmetrics_devkit.csv", encoding="utf8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


# The motmetrics wheel also ships a sequence of the project's blind test set: its row is gone, it is never read.
DEVKIT = _devkit_rows()
DEVKIT_SEQUENCES = [row["sequence"] for row in DEVKIT]
# motmetrics name -> (fmtrack column, transform from the devkit fraction to fmtrack's printed value)
DEVKIT_TO_FMTRACK = {
    "idf1": ("IDF1", lambda v: 100 * v), "idp": ("IDP", lambda v: 100 * v), "idr": ("IDR", lambda v: 100 * v),
    "recall": ("Rcll", lambda v: 100 * v), "precision": ("Prcn", lambda v: 100 * v),
    "mostly_tracked": ("MT", int), "partially_tracked": ("PT", int), "mostly_lost": ("ML", int),
    "num_false_positives": ("FP", int), "num_misses": ("FN", int), "num_switches": ("IDs", int),
    "num_fragmentations": ("FM", int), "mota": ("MOTA", lambda v: 100 * v),
    "motp": ("MOTP", lambda v: (1 - v) * 100),
}


def _devkit_accumulator(seq: str):
    gt = read_ground_truth(os.path.join(MM_DATA, seq, "gt.txt"))
    res = read_results(os.path.join(MM_DATA, seq, "test.txt"))
    return gt, res, accumulate(gt, res, None, protocol="mot15")


def test_devkit_files_are_mot15_ten_column_ground_truth():
    for seq in DEVKIT_SEQUENCES:
        with open(os.path.join(MM_DATA, seq, "gt.txt"), encoding="utf8") as fh:
            assert len(fh.readline().strip().split(",")) == 10


@pytest.mark.parametrize("row", DEVKIT, ids=[r["sequence"] for r in DEVKIT])
def test_motmetrics_devkit_figures_through_fmtrack(row):
    _, _, acc = _devkit_accumulator(row["sequence"])
    got = summarise([acc], [row["sequence"]]).loc[row["sequence"]]
    for name, (column, convert) in DEVKIT_TO_FMTRACK.items():
        expected = convert(float(row[name]))
        assert got[column] == pytest.approx(expected, rel=1e-4), (row["sequence"], column)
    # num_unique_objects is not a printed column: check it on the accumulator directly.
    unique = MM.metrics.create().compute(acc, metrics=["num_unique_objects"])["num_unique_objects"].iloc[0]
    assert unique == int(row["num_unique_objects"])


def test_devkit_overall_row_pools_counts():
    """The same devkit sequence twice, under two names: OVERALL holds twice every count."""
    accs = [_devkit_accumulator(r["sequence"])[2] for r in DEVKIT] * 2
    names = [f"{r['sequence']}-{copy}" for copy in ("a", "b") for r in DEVKIT]
    table = summarise(accs, names)
    assert list(table.index) == [*names, "OVERALL"]
    for col in ("FP", "FN", "IDs", "FM", "MT", "PT", "ML"):
        assert table.loc["OVERALL", col] == 2 * sum(int(float(r[DEVKIT_TO_FMTRACK_NAME[col]])) for r in DEVKIT)


DEVKIT_TO_FMTRACK_NAME = {v[0]: k for k, v in DEVKIT_TO_FMTRACK.items()}


# -- (c) MOTAL and FAR against closed forms -------------------------------------------------------
@pytest.mark.parametrize("seq", DEVKIT_SEQUENCES)
def test_motal_and_far_closed_forms_on_devkit_files(seq):
    gt, res, acc = _devkit_accumulator(seq)
    got = summarise([acc], [seq]).loc[seq]
    num_objects = len(gt)  # MOT15: every gt row is an object to find
    frames = len(set(gt.index.get_level_values(0)) | set(res.index.get_level_values(0)))
    fp, fn, ids = int(got["FP"]), int(got["FN"]), int(got["IDs"])
    assert got["MOTAL"] == pytest.approx(100 * (1 - (fn + fp + math.log10(ids + 1)) / num_objects), rel=1e-12)
    assert got["FAR"] == pytest.approx(fp / frames, rel=1e-12)
    # MOTA uses IDs itself, so MOTAL >= MOTA whenever there is a switch.
    assert got["MOTAL"] > got["MOTA"]


def _frame(rows) -> pd.DataFrame:
    return results_frame(np.asarray(rows, dtype=float))


def test_motal_far_mota_on_a_hand_built_case():
    # One person standing still for 3 frames. The tracker: frame 1 id 10 on it; frame 2 id 11 on it
    # (a switch) plus id 12 far away (a false positive); frame 3 nothing (a miss).
    box = [100, 100, 50, 120]
    gt = _frame([[1, 1, *box], [2, 1, *box], [3, 1, *box]])
    gt["ClassId"], gt["Visibility"] = 1.0, 1.0
    res = _frame([[1, 10, *box], [2, 11, *box], [2, 12, 500, 500, 50, 120]])
    got = summarise([accumulate(gt, res, None, protocol="mot15")], ["x"]).loc["x"]
    assert (got["FP"], got["FN"], got["IDs"]) == (1, 1, 1)
    assert got["MOTA"] == pytest.approx(100 * (1 - 3 / 3))
    assert got["MOTAL"] == pytest.approx(100 * (1 - (1 + 1 + math.log10(2)) / 3))
    assert got["FAR"] == pytest.approx(1 / 3)
    assert got["MOTP"] == pytest.approx(100.0)  # matched boxes coincide: IoU 1
    assert got["Rcll"] == pytest.approx(200 / 3) and got["Prcn"] == pytest.approx(200 / 3)


# -- (d) table writers ------------------------------------------------------------------------------
def _devkit_evaluation() -> Evaluation:
    accs = [_devkit_accumulator(r["sequence"])[2] for r in DEVKIT]
    table = summarise(accs, [r["sequence"] for r in DEVKIT]).assign(Method="devkit")
    table = table.rename_axis("Sequence").reset_index().set_index(["Method", "Sequence"])
    return Evaluation(table)


def test_render_markdown_has_the_paper_columns_and_formatted_values():
    evaluation = _devkit_evaluation()
    lines = render_markdown(evaluation.table).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["Method", "Sequence"] + PAPER_COLUMNS
    assert set(lines[1].replace("|", "")) == {"-"}
    assert len(lines) == 2 + len(evaluation.table)
    campus = [c.strip() for c in lines[2].strip("|").split("|")]
    cells = dict(zip(header, campus))
    assert cells["Sequence"] == "TUD-Campus"
    assert cells["IDF1"] == "55.8" and cells["MOTA"] == "52.6" and cells["IDs"] == "7" and cells["FP"] == "13"
    assert cells["MOTP"] == f"{(1 - 0.277201) * 100:.1f}"


def test_write_tables_writes_both_files_atomically(tmp_path):
    evaluation = _devkit_evaluation()
    csv_path, md_path = write_tables(evaluation, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["summary.csv", "summary.md"]
    back = pd.read_csv(csv_path, index_col=[0, 1])
    assert list(back.columns) == PAPER_COLUMNS
    np.testing.assert_allclose(back.to_numpy(float), evaluation.table.to_numpy(float), atol=6e-5)
    assert md_path.read_text(encoding="utf8") == render_markdown(evaluation.table)


def test_write_tables_failure_leaves_previous_files_and_no_temporaries(tmp_path, monkeypatch):
    evaluation = _devkit_evaluation()
    write_tables(evaluation, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(table):
        raise RuntimeError("disk full while rendering")

    monkeypatch.setattr(evaluate, "render_markdown", boom)
    changed = Evaluation(evaluation.table.assign(IDF1=0.0))
    with pytest.raises(RuntimeError, match="disk full"):
        write_tables(changed, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["summary.csv", "summary.md"], names  # no .tmp files left behind
    assert (tmp_path / "summary.md").read_bytes() == before["summary.md"]


# -- (e) scoring a results folder equals the direct path --------------------------------------------
def test_score_results_dir_matches_direct_path(data_root, tmp_path):
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    result = track_sequence(info, read_detections(info.det_path, info.seq_length), preset("sort"))
    assert len(result.rows) > 0
    folder = tmp_path / "mytracker"
    write_results(folder / "TUD-Campus.txt", result.rows)

    scored = score_results_dir(folder, None, data_root)
    assert list(scored.table.index) == [("mytracker", "TUD-Campus")]
    got = scored.table.loc[("mytracker", "TUD-Campus")]

    gt = read_ground_truth(info.gt_path, info.seq_length)
    direct = summarise([accumulate(gt, results_frame(result.rows), info, "mot15")], ["TUD-Campus"]).loc["TUD-Campus"]
    for col in ("FP", "FN", "IDs", "FM", "MT", "PT", "ML"):
        assert got[col] == direct[col], col
    for col in ("IDF1", "IDP", "IDR", "Rcll", "Prcn", "FAR", "MOTA", "MOTAL"):
        assert got[col] == pytest.approx(direct[col], rel=1e-9), col
    # Result files keep two decimals, which can move the mean IoU only slightly.
    assert got["MOTP"] == pytest.approx(direct["MOTP"], abs=0.05)
    # And the named-sequence form scores the same file.
    named = score_results_dir(folder, ["TUD-Campus"], data_root).table
    pd.testing.assert_frame_equal(named, scored.table)


def test_ids_ratio_is_the_baseline_ids_over_each_rows_ids_per_sequence():
    from fmtrack.benchmarks.evaluate import IDS_RATIO, format_table, with_ids_ratio
    from fmtrack.io import InputError

    index = pd.MultiIndex.from_tuples([("sort", "A"), ("sort", "B"), ("ours", "A"), ("ours", "B")],
                                      names=["Method", "Sequence"])
    table = pd.DataFrame({"IDF1": [50.0, 40.0, 60.0, 45.0], "IDs": [30, 12, 12, 0]}, index=index)
    ratio = with_ids_ratio(table, "sort")[IDS_RATIO]
    assert ratio.tolist() == [1.0, 1.0, 2.5, 12.0]  # zero IDs counts as one: the ratio stays finite
    # printed as a lower bound, not as the ratio of a row with one switch
    assert format_table(with_ids_ratio(table, "sort"))[IDS_RATIO].tolist()[2:] == ["2.50x", ">=12.00x"]
    with pytest.raises(InputError, match="not one of the evaluated methods"):
        with_ids_ratio(table, "bytetrack")
