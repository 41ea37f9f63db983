"""The flagship: the default tracker (``fmtrack run`` with no options) scores its reference figure on
a bundled sequence (tests/reference/flagship.csv says where the figure came from)."""

from __future__ import annotations

import csv

import pytest

from fmtrack.benchmarks.scoring import accumulate, protocol_for, summarise
from fmtrack.cli import main
from fmtrack.io import find_sequence, read_ground_truth, read_results, read_seqinfo

from conftest import REFERENCE_DIR

ROWS = list(csv.DictReader(line for line in open(REFERENCE_DIR / "flagship.csv", encoding="utf8")
                           if not line.startswith("#")))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['method']}-{r['sequence']}")
def test_default_tracker_scores_its_reference_figure(row, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))  # computed here, not read from a cache
    out = tmp_path / f"{row['sequence']}.txt"
    assert main(["run", "--seq", row["sequence"], "--data-root", str(data_root), "--preset", row["method"],
                 "--out", str(out), "--quiet", "--no-score"]) == 0
    info = read_seqinfo(find_sequence(row["sequence"], data_root))
    gt = read_ground_truth(info.gt_path, info.seq_length)
    got = summarise([accumulate(gt, read_results(out, info.seq_length), info, protocol_for(info))],
                    [info.name]).loc[info.name]
    where = f"got IDF1 {got['IDF1']:.1f} MOTA {got['MOTA']:.1f} IDs {int(got['IDs'])}; reference {row}"
    assert abs(got["IDF1"] - float(row["idf1"])) <= float(row["idf1_tol"]), where
    assert abs(got["MOTA"] - float(row["mota"])) <= float(row["mota_tol"]), where
    assert abs(int(got["IDs"]) - int(row["ids"])) <= int(row["ids_tol"]), where
