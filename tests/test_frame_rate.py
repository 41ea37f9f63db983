"""A sequence at 1 / step of its frame rate (fmtrack.benchmarks.frame_rate), checked against the original."""

from __future__ import annotations

import numpy as np
import pytest
from fmtrack.benchmarks.frame_rate import subsample_sequence
from fmtrack.cli import main
from fmtrack.io import (InputError, deepsort_features_path, find_sequence, read_detections, read_ground_truth,
                        read_seqinfo)


def test_step_one_is_the_sequence_itself(data_root, tmp_path):
    """Tracked from the copy, a sequence gives byte for byte the original's result file."""
    copy = tmp_path / "copy"
    subsample_sequence("TUD-Campus", 1, copy, data_root)
    outs = []
    for root, name in ((copy, "copy.txt"), (data_root, "original.txt")):
        assert main(["run", "--seq", "TUD-Campus", "--preset", "bytetrack", "--data-root", str(root), "--quiet",
                     "--no-score", "--out", str(tmp_path / name)]) == 0
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 1000


def test_every_third_frame_keeps_frames_rows_and_images_in_step(data_root, tmp_path):
    source = read_seqinfo(find_sequence("TUD-Campus", data_root))
    target = read_seqinfo(subsample_sequence("TUD-Campus", 3, tmp_path, data_root))
    assert target.seq_length == -(-source.seq_length // 3) == 24
    assert target.frame_rate == pytest.approx(source.frame_rate / 3, rel=1e-5)
    assert (target.im_width, target.im_height) == (source.im_width, source.im_height)
    det_s = read_detections(source.det_path, source.seq_length)
    det_t = read_detections(target.det_path, target.seq_length)
    gt_s = read_ground_truth(source.gt_path, source.seq_length).index.get_level_values("FrameId")
    gt_t = read_ground_truth(target.gt_path, target.seq_length).index.get_level_values("FrameId")
    for new in range(1, target.seq_length + 1):
        old = 3 * (new - 1) + 1  # frame `new` of the copy is frame `old` of the source
        np.testing.assert_array_equal(det_t.at(new)[0], det_s.at(old)[0])
        np.testing.assert_array_equal(det_t.at(new)[1], det_s.at(old)[1])
        assert (target.image_dir / f"{new:06d}.jpg").read_bytes() == (source.image_dir / f"{old:06d}.jpg").read_bytes()
        assert (gt_t == new).sum() == (gt_s == old).sum()
    assert len(det_t) == sum(len(det_s.at(f)[0]) for f in range(1, source.seq_length + 1, 3))


def test_deepsort_features_follow_their_detections(data_root, tmp_path):
    """MOT17-05-FRCNN's precomputed features, cut like its detections: same rows, frames renumbered."""
    original = np.load(deepsort_features_path("MOT17-05-FRCNN", data_root))
    subsample_sequence("MOT17-05-FRCNN", 2, tmp_path, data_root)
    cut = np.load(deepsort_features_path("MOT17-05-FRCNN", tmp_path))
    kept = original[(original[:, 0].astype(int) - 1) % 2 == 0]
    np.testing.assert_array_equal(cut[:, 1:], kept[:, 1:])
    np.testing.assert_array_equal(cut[:, 0], (kept[:, 0] - 1) // 2 + 1)
    info = read_seqinfo(find_sequence("MOT17-05-FRCNN", tmp_path))
    assert len(read_detections(info.det_path, info.seq_length)) == len(cut)


def test_bad_steps_and_an_out_root_inside_the_data_root_are_refused(data_root, tmp_path):
    for step in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="step must be an integer >= 1"):
            subsample_sequence("TUD-Campus", step, tmp_path, data_root)
    with pytest.raises(ValueError, match="inside the data root"):
        subsample_sequence("TUD-Campus", 2, data_root, data_root)
    with pytest.raises(InputError, match="unknown sequence"):
        subsample_sequence("No-Such-Sequence", 2, tmp_path, data_root)


def test_a_bad_frame_number_names_the_file_and_line(tmp_path):
    from fmtrack.benchmarks.frame_rate import _keep_rows

    det = tmp_path / "det.txt"
    det.write_text("1,-1,1,2,3,4,0.9\n2,-1,1,2,3,4,0.9\nframe,-1,1,2,3,4,0.9\n")
    with pytest.raises(InputError, match=r"det\.txt:3: first column .frame. is not a frame number"):
        _keep_rows(det, 2)
    det.write_text("1,-1,1,2,3,4,0.9\n2,-1,1,2,3,4,0.9\n3,-1,5,6,7,8,0.5\n")
    assert _keep_rows(det, 2) == "1,-1,1,2,3,4,0.9\n2,-1,5,6,7,8,0.5\n"


def test_frame_rate_check_scores_the_default_at_half_rate_as_eval_does(data_root, tmp_path, monkeypatch):
    """benchmarks/frame_rate_check.py on KITTI-13 (text only: motion alone) at 1/2: its CSV row for the
    default is what `fmtrack eval` gives the `fmtrack` preset on the half-rate copy it wrote."""
    import importlib.util
    from pathlib import Path

    import pandas as pd

    from fmtrack.benchmarks.evaluate import run_methods

    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "frame_rate_check.py"
    spec = importlib.util.spec_from_file_location("frame_rate_check", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    work = tmp_path / "work"
    assert module.main(["--steps", "2", "--seqs", "KITTI-13", "--work-dir", str(work), "--data-root",
                        str(data_root), "--no-peers", "--no-hota"]) == 0
    table = pd.read_csv(work / "frame_rate.csv").set_index("Method")
    assert set(table.index) == {"default", "bytetrack"} and (table["step"] == 2).all()
    half = read_seqinfo(find_sequence("KITTI-13", work / "step2" / "data"))
    assert half.frame_rate == read_seqinfo(find_sequence("KITTI-13", data_root)).frame_rate / 2
    again = run_methods(["fmtrack"], ["KITTI-13"], work / "step2" / "data", tmp_path / "eval", progress=False,
                        hota=False).table.loc[("fmtrack", "KITTI-13")]
    assert table.loc["default", "IDF1"] == pytest.approx(again["IDF1"], abs=0.006)
    assert table.loc["default", "IDs"] == again["IDs"]
