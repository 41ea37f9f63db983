"""``fmtrack.cli.main``: exit code 2 and a single ``fmtrack: error: ...`` line for bad input; ``run``
and ``eval`` end to end on the small real TUD-Campus sequence (MOT15, 71 frames)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fmtrack.cli import main
from fmtrack.io import find_sequence, read_results, read_seqinfo

# eval's table: the paper's columns, then TrackEval's HOTA, DetA, AssA (on unless --no-hota).
PAPER_COLUMNS = ["IDF1", "IDP", "IDR", "Rcll", "Prcn", "FAR", "MT", "PT", "ML", "FP", "FN", "IDs", "FM",
                 "MOTA", "MOTP", "MOTAL", "HOTA", "DetA", "AssA"]


def _synthetic_root(tmp_path: Path, name: str = "SYN-01", length: int = 5) -> Path:
    """A data root holding one tiny sequence (seqinfo.ini and a valid det.txt; no features)."""
    seq = tmp_path / "root" / "MOT17" / "train" / name
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={length}\n"
        "imWidth=640\nimHeight=480\nimExt=.jpg\n", encoding="utf8")
    rows = [f"{f},-1,{100 + 5 * f},200,40,100,0.9,-1,-1,-1" for f in range(1, length + 1)]
    (seq / "det" / "det.txt").write_text("\n".join(rows) + "\n", encoding="utf8")
    return tmp_path / "root"


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip("\n").split("\n")
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fmtrack: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_unknown_sequence(tmp_path, capsys):
    root = _synthetic_root(tmp_path)
    code = main(["run", "--seq", "NOPE-99", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--out", str(tmp_path / "o.txt")])
    assert code == 2
    line = _one_line_error(capsys)
    assert "unknown sequence 'NOPE-99'" in line and "SYN-01" in line  # lists the known sequences
    assert not (tmp_path / "o.txt").exists()


def test_malformed_det_file_names_file_and_line(tmp_path, capsys):
    root = _synthetic_root(tmp_path)
    det = tmp_path / "bad_det.txt"
    det.write_text("1,-1,1,2,3,4,0.9,-1,-1,-1\n2,-1,1,2,3,4,0.9,-1,-1,-1\n3,-1,1,2,three,4,0.9,-1,-1,-1\n",
                   encoding="utf8")
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--det", str(det), "--preset", "sort",
                 "--quiet", "--out", str(tmp_path / "o.txt")])
    assert code == 2
    line = _one_line_error(capsys)
    assert f"{det}:3: " in line and "three" in line
    assert not (tmp_path / "o.txt").exists()


def test_appearance_preset_without_features(tmp_path, capsys):
    # The sequence has no DeepSORT features in the data root and none are given with --features.
    root = _synthetic_root(tmp_path)
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "deepsort", "--quiet",
                 "--out", str(tmp_path / "o.txt")])
    assert code == 2
    line = _one_line_error(capsys)
    assert "SYN-01" in line and "features" in line
    assert not (tmp_path / "o.txt").exists()


def test_missing_features_file(tmp_path, capsys):
    root = _synthetic_root(tmp_path)
    missing = tmp_path / "none.npy"
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "deepsort",
                 "--features", str(missing), "--quiet", "--out", str(tmp_path / "o.txt")])
    assert code == 2
    assert f"{missing}: file not found" in _one_line_error(capsys)


def test_malformed_seqinfo_is_one_line(tmp_path, capsys):
    root = _synthetic_root(tmp_path)
    ini = root / "MOT17" / "train" / "SYN-01" / "seqinfo.ini"
    ini.write_text("name=SYN-01\nseqLength=5\n", encoding="utf8")  # no [Sequence] header
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--out", str(tmp_path / "o.txt")])
    assert code == 2
    assert f"{ini}: malformed seqinfo.ini" in _one_line_error(capsys)


@pytest.mark.parametrize("spec, words", [
    ("sort@min_confidence", ["expected key=value"]),
    ("nosuchpreset", ["unknown preset 'nosuchpreset'"]),
    ("sort@bogus_field=1", ["unknown setting", "bogus_field"]),
    ("sort@max_dist=0.2", ["no appearance stage"]),
])
def test_bad_methods_spec(tmp_path, capsys, spec, words):
    root = _synthetic_root(tmp_path)
    code = main(["eval", "--methods", spec, "--seqs", "SYN-01", "--data-root", str(root),
                 "--out-dir", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    line = _one_line_error(capsys)
    for word in words:
        assert word in line, line
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_run_on_tud_campus_writes_a_valid_result_file(data_root, tmp_path, capsys):
    out = tmp_path / "runs" / "TUD-Campus.txt"
    code = main(["run", "--seq", "TUD-Campus", "--data-root", str(data_root), "--preset", "sort",
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    results = read_results(out, info.seq_length)  # validates frames, sizes, unique ids per frame
    assert len(results) > 0
    frames = results.index.get_level_values("FrameId")
    assert frames.min() >= 1 and frames.max() <= info.seq_length
    assert ((results["Width"] > 0) & (results["Height"] > 0)).all()
    assert sorted(p.name for p in out.parent.iterdir()) == ["TUD-Campus.txt"]  # no temporaries
    stdout = capsys.readouterr().out
    n_ids = results.index.get_level_values("Id").nunique()
    assert f"TUD-Campus: {len(results)} boxes, {n_ids} tracks" in stdout and str(out) in stdout


def _check_results_folder_outputs(folder: Path, stdout: str) -> None:
    for col in PAPER_COLUMNS:
        assert col in stdout
    assert "TUD-Campus" in stdout and f"wrote {folder / 'summary.csv'}" in stdout
    table = pd.read_csv(folder / "summary.csv", index_col=[0, 1])
    assert list(table.columns) == PAPER_COLUMNS
    assert list(table.index) == [(folder.name, "TUD-Campus")]
    md = (folder / "summary.md").read_text(encoding="utf8")
    assert md.splitlines()[0] == "| Method | Sequence | " + " | ".join(PAPER_COLUMNS) + " |"
    row = table.iloc[0]
    assert 0 < row["Rcll"] <= 100 and row["MT"] + row["PT"] + row["ML"] == 8  # TUD-Campus: 8 people


def _tud_results_folder(data_root: Path, tmp_path: Path, capsys) -> Path:
    folder = tmp_path / "mine"
    assert main(["run", "--seq", "TUD-Campus", "--data-root", str(data_root), "--preset", "sort",
                 "--out", str(folder / "TUD-Campus.txt"), "--quiet"]) == 0
    capsys.readouterr()
    return folder


def test_eval_results_folder(data_root, tmp_path, capsys):
    # `fmtrack eval --results DIR` scores the SEQ.txt files in DIR (--help: "score the SEQ.txt
    # files in this folder"); the folder holds only TUD-Campus.txt.
    folder = _tud_results_folder(data_root, tmp_path, capsys)
    code = main(["eval", "--results", str(folder), "--data-root", str(data_root)])
    assert code == 0, capsys.readouterr().err
    _check_results_folder_outputs(folder, capsys.readouterr().out)


def test_eval_results_folder_with_named_sequence(data_root, tmp_path, capsys):
    folder = _tud_results_folder(data_root, tmp_path, capsys)
    code = main(["eval", "--results", str(folder), "--seqs", "TUD-Campus", "--data-root", str(data_root)])
    assert code == 0, capsys.readouterr().err
    _check_results_folder_outputs(folder, capsys.readouterr().out)


def test_eval_methods_end_to_end(data_root, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "--methods", "sort@min_confidence=0.3", "--seqs", "TUD-Campus", "--data-root",
                 str(data_root), "--out-dir", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    assert "sort@min_confidence=0.3" in stdout and "TUD-Campus" in stdout
    method_dirs = [p for p in out.iterdir() if p.is_dir()]
    assert len(method_dirs) == 1  # one folder per method (its label made file-name safe)
    method_dir = method_dirs[0]
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    results = read_results(method_dir / "TUD-Campus.txt", info.seq_length)
    assert len(results) > 0
    config = json.loads((method_dir / "config.json").read_text(encoding="utf8"))
    assert config["method"] == "sort@min_confidence=0.3"
    assert config["tracker"]["name"] == "sort" and config["tracker"]["min_confidence"] == 0.3
    table = pd.read_csv(out / "summary.csv", index_col=[0, 1])
    assert list(table.index) == [("sort@min_confidence=0.3", "TUD-Campus")]
    assert list(table.columns) == PAPER_COLUMNS
    # The summary agrees with scoring the written result file again.
    assert main(["eval", "--results", str(method_dir), "--seqs", "TUD-Campus", "--data-root", str(data_root),
                 "--out-dir", str(tmp_path / "rescored")]) == 0
    again = pd.read_csv(tmp_path / "rescored" / "summary.csv", index_col=[0, 1])
    for col in ("FP", "FN", "IDs", "MT", "PT", "ML"):
        assert again.iloc[0][col] == table.iloc[0][col], col
    np.testing.assert_allclose(again.iloc[0][["IDF1", "MOTA"]].to_numpy(float),
                               table.iloc[0][["IDF1", "MOTA"]].to_numpy(float), atol=1e-3)
