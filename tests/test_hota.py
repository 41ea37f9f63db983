"""MOT15 zero-marked gt rows and TrackEval's HOTA: fmtrack's py-motmetrics figures against TrackEval's
(an independent implementation of the devkit) and against the devkit figures issues 13 and 15 quote;
HOTA against closed forms (perfect and empty output, pooled detection counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fmtrack.benchmarks import hota
from fmtrack.benchmarks.evaluate import results_frame, score_rows
from fmtrack.benchmarks.methods import load_inputs, parse_method
from fmtrack.benchmarks.scoring import accumulate, protocol_for, summarise
from fmtrack.io import SequenceInfo, find_sequence, read_ground_truth, read_seqinfo
from fmtrack.pipeline import track_sequence


def _track(spec: str, sequence: str, data_root: Path) -> tuple[SequenceInfo, np.ndarray]:
    info = read_seqinfo(find_sequence(sequence, data_root))
    method = parse_method(spec)
    inputs = load_inputs(method, info, data_root, progress=False)
    rows = track_sequence(info, inputs.detections, method.config, inputs.embedder, False, inputs.camera_motion).rows
    rows[:, 2:] = np.round(rows[:, 2:], 2)  # as a result file stores them, so both scorers see the same boxes
    return info, rows


def _both(info: SequenceInfo, rows: np.ndarray) -> tuple[pd.Series, dict]:
    gt = read_ground_truth(info.gt_path, info.seq_length)
    ours = summarise([accumulate(gt, results_frame(rows), info, protocol_for(info))], [info.name]).loc[info.name]
    theirs = hota.evaluate_sequence(info, rows, protocol_for(info), ("HOTA", "CLEAR", "Identity"))
    return ours, theirs


def _assert_agree(ours: pd.Series, theirs: dict) -> None:
    assert ours["IDF1"] == pytest.approx(100 * theirs["Identity"]["IDF1"], abs=1e-9)
    assert ours["MOTA"] == pytest.approx(100 * theirs["CLEAR"]["MOTA"], abs=1e-9)
    assert (ours["IDs"], ours["FP"], ours["FN"]) == (theirs["CLEAR"]["IDSW"], theirs["CLEAR"]["CLR_FP"],
                                                     theirs["CLEAR"]["CLR_FN"])


# -- MOT15: zero-marked rows (issue 13 item 14) ------------------------------------------------------
def _mot15_root(tmp_path: Path, gt_rows: list[str]) -> SequenceInfo:
    seq = tmp_path / "MOT15" / "train" / "SYN-15"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SYN-15\nimDir=img1\nframeRate=25\nseqLength=2\n"
                                     "imWidth=640\nimHeight=480\nimExt=.jpg\n", encoding="utf8")
    (seq / "gt" / "gt.txt").write_text("".join(r + "\n" for r in gt_rows), encoding="utf8")
    return read_seqinfo(seq)


def test_zero_marked_row_is_dropped_so_a_box_on_it_is_a_false_positive(tmp_path):
    # Two people in frame 1; the second is zero-marked (an ignore row). A tracker covering both
    # finds the first (TP) and, with the ignore row gone, reports the second as a false positive.
    info = _mot15_root(tmp_path, ["1,1,10,10,50,100,1,-1,-1,-1", "1,2,300,10,50,100,0,-1,-1,-1",
                                  "2,1,12,10,50,100,1,-1,-1,-1"])
    assert protocol_for(info) == "mot15"
    rows = np.array([[1, 7, 10, 10, 50, 100], [1, 8, 300, 10, 50, 100], [2, 7, 12, 10, 50, 100]], float)
    ours, theirs = _both(info, rows)
    assert (ours["FP"], ours["FN"], ours["IDs"]) == (1, 0, 0)
    assert ours["MOTA"] == pytest.approx(100 * (1 - 1 / 2))  # 2 counted gt rows, one error
    _assert_agree(ours, theirs)


@pytest.mark.parametrize("sequence, idf1", [
    ("KITTI-13", 39.6),  # 167 zero-marked rows; counting them gave 35.4
    pytest.param("ETH-Bahnhof", 54.2, marks=pytest.mark.slow),  # 2,255 zero-marked rows; counting them gave 49.7
])
def test_bytetrack_on_design_set_scores_as_trackeval_and_the_devkit(data_root, sequence, idf1):
    info, rows = _track("bytetrack", sequence, data_root)
    ours, theirs = _both(info, rows)
    _assert_agree(ours, theirs)
    assert round(ours["IDF1"], 1) == idf1  # the devkit figure quoted by issues 13 and 15


# -- HOTA via TrackEval (issue 15 item 2) --------------------------------------------------------------
@pytest.mark.slow
def test_trackeval_and_motmetrics_agree_on_mot17_09_frcnn_bytetrack(data_root):
    info, rows = _track("bytetrack", "MOT17-09-FRCNN", data_root)
    ours, theirs = _both(info, rows)
    _assert_agree(ours, theirs)
    # Issue 15's figures for boxmot's ByteTrack, which this preset reproduces.
    assert (round(ours["IDF1"], 2), round(ours["MOTA"], 2), ours["IDs"]) == (59.38, 54.38, 18)
    assert round(hota.hota_row(theirs)["HOTA"], 1) == 48.1


def _gt_rows(info: SequenceInfo) -> np.ndarray:
    gt = read_ground_truth(info.gt_path, info.seq_length)
    gt = gt[gt["Confidence"] != 0]
    index = gt.index.to_frame().to_numpy(float)
    return np.column_stack([index, gt[["X", "Y", "Width", "Height"]].to_numpy(float)])


def test_hota_is_100_for_the_ground_truth_itself_and_0_for_no_output(data_root):
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    perfect = hota.hota_row(hota.evaluate_sequence(info, _gt_rows(info), "mot15"))
    assert perfect == pytest.approx({"HOTA": 100.0, "DetA": 100.0, "AssA": 100.0})
    empty = hota.hota_row(hota.evaluate_sequence(info, np.zeros((0, 6)), "mot15"))
    assert empty == pytest.approx({"HOTA": 0.0, "DetA": 0.0, "AssA": 0.0})


def test_overall_deta_pools_detection_counts(data_root):
    # DetA at each localisation threshold is TP / (TP + FN + FP); pooled over sequences, the counts add.
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    first = _track("sort", "TUD-Campus", data_root)[1]
    second = _track("bytetrack", "TUD-Campus", data_root)[1]
    results = [hota.evaluate_sequence(info, rows, "mot15") for rows in (first, second)]
    tp, fn, fp = (sum(r["HOTA"][f"HOTA_{k}"] for r in results) for k in ("TP", "FN", "FP"))
    expected = 100 * np.mean(tp / (tp + fn + fp))
    table = summarise([accumulate(read_ground_truth(info.gt_path), results_frame(rows), info, "mot15")
                       for rows in (first, second)], ["a", "b"])
    with_hota = hota.with_hota(table, results)
    assert with_hota.loc["OVERALL", "DetA"] == pytest.approx(expected, rel=1e-12)
    assert with_hota.loc["a", "HOTA"] == pytest.approx(hota.hota_row(results[0])["HOTA"])
    # And HOTA is the geometric mean of DetA and AssA at each threshold (its definition).
    h = results[0]["HOTA"]
    np.testing.assert_allclose(h["HOTA"], np.sqrt(h["DetA"] * h["AssA"]), rtol=1e-12)


def test_score_rows_adds_hota_columns_only_when_asked(data_root):
    info, rows = _track("sort", "TUD-Campus", data_root)
    plain = score_rows(info, rows, "sort")
    assert not set(hota.HOTA_COLUMNS) & set(plain.columns)
    scored = score_rows(info, rows, "sort", hota=True)
    assert list(scored.columns) == list(plain.columns) + list(hota.HOTA_COLUMNS)
    assert scored.iloc[0]["HOTA"] == pytest.approx(hota.hota_row(hota.evaluate_sequence(info, rows, "mot15"))["HOTA"])


def test_with_hota_refuses_a_mismatched_table():
    table = pd.DataFrame({"IDF1": [1.0, 2.0, 3.0]}, index=["a", "b", "OVERALL"])
    with pytest.raises(ValueError, match="1 HOTA results for a table of 3 rows"):
        hota.with_hota(table, [{"HOTA": {}}])


def test_a_results_file_our_reader_takes_gets_the_same_hota_as_its_clean_form(data_root, tmp_path):
    """TrackEval re-read the user's file and failed on what fmtrack's reader takes: a byte-order
    mark, blank lines, the 6-column form. HOTA now scores the rows fmtrack read, values unchanged."""
    info, rows = _track("sort", "TUD-Campus", data_root)
    clean = tmp_path / "clean.txt"
    # More decimals than write_results keeps: the copy TrackEval reads must not round them.
    lines = [f"{int(f)},{int(i)},{l!r},{t!r},{w + 0.123456789:.9f},{h},1,-1,-1,-1"
             for f, i, l, t, w, h in rows.tolist()]
    clean.write_text("\n".join(lines) + "\n", encoding="utf8")
    expected = hota.evaluate_sequence(info, clean, protocol_for(info))["HOTA"]
    variants = {"bom.txt": ("\ufeff" + "\n".join(lines) + "\n", "utf8"),
                "blank.txt": ("\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n\n", "utf8"),
                "six.txt": ("\n".join(",".join(line.split(",")[:6]) for line in lines) + "\n", "utf8")}
    for name, (text, encoding) in variants.items():
        path = tmp_path / name
        path.write_text(text, encoding=encoding)
        got = hota.evaluate_sequence(info, path, protocol_for(info))["HOTA"]
        assert got["HOTA"].mean() == expected["HOTA"].mean(), name
        np.testing.assert_array_equal(got["AssA"], expected["AssA"])
