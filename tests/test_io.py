"""MOTChallenge readers and writers on synthetic files: layouts, validation errors that name the
file and the 1-based line, atomic writes, data-root precedence, and property tests of the det parser."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fmtrack.io.dataroot as dataroot
from fmtrack.io import (Detections, ImageSequence, InputError, InputWarning, find_sequence, read_detections,
                        read_feature_array, read_ground_truth, read_results, read_seqinfo,
                        resolve_data_root, write_results)
from fmtrack.io import atomic as atomic_module

SEQINFO = "[Sequence]\nname={name}\nimDir=img1\nframeRate=30\nseqLength={length}\nimWidth=640\nimHeight=480\nimExt=.jpg\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf8")
    return path


def _assert_error(err: pytest.ExceptionInfo, path: Path, line: int | None, *words: str) -> None:
    """The error is one line ``path:line: problem`` naming the file and the 1-based line."""
    message = str(err.value)
    assert "\n" not in message
    assert err.value.path == str(path)
    assert err.value.line == line
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    assert message.startswith(prefix), message
    for word in words:
        assert word in message, message


# -- det.txt ----------------------------------------------------------------------------------------
def test_det_ten_columns(tmp_path):
    path = _write(tmp_path / "det.txt",
                  "2,-1,10,20,30,40,0.9,-1,-1,-1\n"
                  "1,-1,1.5,2.5,3.5,4.5,-0.25,-1,-1,-1\n"
                  "\n"
                  "2,-1,50,60,70,80,0.1,-1,-1,-1\n")
    det = read_detections(path)
    assert isinstance(det, Detections) and len(det) == 3 and det.skipped == 0
    np.testing.assert_array_equal(det.frames, [1, 2, 2])  # sorted by frame, stable within a frame
    np.testing.assert_array_equal(det.boxes, [[1.5, 2.5, 3.5, 4.5], [10, 20, 30, 40], [50, 60, 70, 80]])
    np.testing.assert_array_equal(det.scores, [-0.25, 0.9, 0.1])
    boxes, scores, feats = det.at(2)
    np.testing.assert_array_equal(boxes, [[10, 20, 30, 40], [50, 60, 70, 80]])
    assert feats is None
    assert len(det.at(3)[0]) == 0 and len(det.at(0)[0]) == 0 and len(det.at(99)[0]) == 0
    assert det.last_frame == 2


def test_det_seven_columns_and_spaces(tmp_path):
    path = _write(tmp_path / "det.txt", "1 -1 5 6 7 8 0.5\n3,-1,1,2,3,4,42.0\n")
    det = read_detections(path)
    np.testing.assert_array_equal(det.frames, [1, 3])
    np.testing.assert_array_equal(det.boxes, [[5, 6, 7, 8], [1, 2, 3, 4]])
    np.testing.assert_array_equal(det.scores, [0.5, 42.0])
    assert len(det.at(2)[0]) == 0


def test_zero_size_detections_are_skipped_and_counted(tmp_path):
    path = _write(tmp_path / "det.txt",
                  "1,-1,0,0,10,10,1,-1,-1,-1\n1,-1,0,0,0,10,1,-1,-1,-1\n2,-1,0,0,10,0,1,-1,-1,-1\n"
                  "2,-1,5,5,1,1,0.5,-1,-1,-1\n")
    det = read_detections(path)
    assert det.skipped == 2
    np.testing.assert_array_equal(det.boxes, [[0, 0, 10, 10], [5, 5, 1, 1]])


BAD_DET = {
    # name: (file text, bad line, words in the message)
    "text": ("1,-1,1,2,3,4,0.5,-1,-1,-1\n1,-1,abc,2,3,4,0.5,-1,-1,-1\n", 2, ["not a number", "abc"]),
    "wrong_count": ("1,-1,1,2,3,4,0.5,-1\n", 1, ["10 or 7", "found 8"]),
    "mixed_counts": ("1,-1,1,2,3,4,0.5,-1,-1,-1\n\n2,-1,1,2,3,4,0.5\n", 3, ["expected 10", "found 7"]),
    "nan": ("1,-1,1,2,3,4,0.5,-1,-1,-1\n2,-1,1,nan,3,4,0.5,-1,-1,-1\n", 2, ["non-finite", "column 4"]),
    "inf": ("1,-1,1,2,3,4,inf,-1,-1,-1\n", 1, ["non-finite", "column 7"]),
    "neg_inf": ("1,-1,1,2,3,4,1,-1,-1,-1\n1,-1,1,2,3,4,1,-1,-1,-1\n1,-1,1,2,3,-inf,1,-1,-1,-1\n", 3, ["non-finite"]),
    "negative_width": ("1,-1,1,2,3,4,1,-1,-1,-1\n2,-1,1,2,-3,4,1,-1,-1,-1\n", 2, ["negative box size"]),
    "negative_height": ("1,-1,1,2,3,-0.5,1,-1,-1,-1\n", 1, ["negative box size"]),
    "frame_zero": ("1,-1,1,2,3,4,1,-1,-1,-1\n0,-1,1,2,3,4,1,-1,-1,-1\n", 2, ["frame 0", "positive integer"]),
    "frame_fraction": ("1.5,-1,1,2,3,4,1,-1,-1,-1\n", 1, ["frame 1.5", "positive integer"]),
    "frame_negative": ("2,-1,1,2,3,4,1,-1,-1,-1\n-3,-1,1,2,3,4,1,-1,-1,-1\n", 2, ["positive integer"]),
    "beyond_length": ("1,-1,1,2,3,4,1,-1,-1,-1\n\n\n11,-1,1,2,3,4,1,-1,-1,-1\n", 4, ["frame 11", "seqLength=10"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DET))
def test_bad_det_file_names_file_and_line(tmp_path, case):
    text, line, words = BAD_DET[case]
    path = _write(tmp_path / "det.txt", text)
    with pytest.raises(InputError) as err:
        read_detections(path, seq_length=10)
    _assert_error(err, path, line, *words)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_det_file(tmp_path, text):
    path = _write(tmp_path / "det.txt", text)
    with pytest.raises(InputError) as err:
        read_detections(path)
    _assert_error(err, path, None, "empty")


def test_missing_det_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_detections(tmp_path / "nope.txt")
    _assert_error(err, tmp_path / "nope.txt", None, "not found")


# -- gt.txt -----------------------------------------------------------------------------------------
def test_gt_nine_columns_mot16(tmp_path):
    path = _write(tmp_path / "gt.txt",
                  "2,1,10,20,30,40,1,1,0.5\n1,2,1,2,3,4,0,7,1.0\n1,1,5,6,7,8,1,1,0.25\n")
    gt = read_ground_truth(path, seq_length=5)
    assert list(gt.index.names) == ["FrameId", "Id"]
    assert list(gt.columns) == ["X", "Y", "Width", "Height", "Confidence", "ClassId", "Visibility"]
    assert list(gt.index) == [(1, 1), (1, 2), (2, 1)]
    np.testing.assert_array_equal(gt.loc[(1, 2)].to_numpy(), [1, 2, 3, 4, 0, 7, 1.0])
    np.testing.assert_array_equal(gt.loc[(2, 1)].to_numpy(), [10, 20, 30, 40, 1, 1, 0.5])


def test_gt_ten_columns_mot15(tmp_path):
    path = _write(tmp_path / "gt.txt", "1,1,10,20,30,40,1,-1,-1,-1\n1,2,1,2,3,4,1,4.5,5.5,0\n")
    gt = read_ground_truth(path)
    # MOT15 has no classes: every row becomes a visible pedestrian; world coordinates are dropped.
    np.testing.assert_array_equal(gt.loc[(1, 1)].to_numpy(), [10, 20, 30, 40, 1, 1, 1])
    np.testing.assert_array_equal(gt.loc[(1, 2)].to_numpy(), [1, 2, 3, 4, 1, 1, 1])


@pytest.mark.parametrize("text, line, words", [
    ("1,1,1,2,3,4,1,1,1\n1,2,1,2,3,4,1,1,1\n1,1,5,5,5,5,1,1,1\n", 3, ["id 1", "twice", "frame 1"]),
    ("1,1,1,2,3,4,1,1\n", 1, ["9 or 10", "found 8"]),
    ("1,1,1,2,3,4,1,1,1\n2,1,1,2,3,4,1,1,x\n", 2, ["not a number"]),
    ("1,1,1,2,3,4,1,1,1\n2,1,1,2,3,4,1,1,1,-1\n", 2, ["expected 9"]),
    ("1,1,1,2,3,4,1,1,nan\n", 1, ["non-finite"]),
    ("0,1,1,2,3,4,1,1,1\n", 1, ["positive integer"]),
    ("1,1,1,2,3,4,1,1,1\n6,1,1,2,3,4,1,1,1\n", 2, ["beyond seqLength=5"]),
])
def test_bad_gt_file(tmp_path, text, line, words):
    path = _write(tmp_path / "gt.txt", text)
    with pytest.raises(InputError) as err:
        read_ground_truth(path, seq_length=5)
    _assert_error(err, path, line, *words)


# -- results ------------------------------------------------------------------------------------------
def test_results_layouts(tmp_path):
    six = read_results(_write(tmp_path / "a.txt", "1,3,1,2,3,4\n2,3,5,6,7,8\n"))
    np.testing.assert_array_equal(six.loc[(2, 3)].to_numpy(), [5, 6, 7, 8, 1.0])
    ten = read_results(_write(tmp_path / "b.txt", "1,3,1,2,3,4,0.25,-1,-1,-1\n"))
    np.testing.assert_array_equal(ten.loc[(1, 3)].to_numpy(), [1, 2, 3, 4, 0.25])
    empty = read_results(_write(tmp_path / "c.txt", ""))
    assert len(empty) == 0 and list(empty.columns) == ["X", "Y", "Width", "Height", "Confidence"]


@pytest.mark.parametrize("text, line, words", [
    ("1,3,1,2,3,4,1,-1,-1,-1\n1,4,1,2,3,4,1,-1,-1,-1\n1,3,9,9,9,9,1,-1,-1,-1\n", 3, ["track id 3", "twice", "frame 1"]),
    ("1,3,1,2,0,4,1,-1,-1,-1\n", 1, ["non-positive box size"]),
    ("1,3,1,2,3,4,1,-1,-1,-1\n12,3,1,2,3,4,1,-1,-1,-1\n", 2, ["beyond seqLength=10"]),
    ("1,3,1,2,3\n", 1, ["found 5"]),
])
def test_bad_results_file(tmp_path, text, line, words):
    path = _write(tmp_path / "r.txt", text)
    with pytest.raises(InputError) as err:
        read_results(path, seq_length=10)
    _assert_error(err, path, line, *words)


def test_write_results_round_trips_and_leaves_no_temporaries(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.column_stack([np.repeat(np.arange(1, 6), 3), np.tile([1, 2, 7], 5),
                            rng.uniform(-50, 1900, (15, 2)), rng.uniform(1, 400, (15, 2))])
    path = write_results(tmp_path / "out" / "SEQ.txt", rows)
    assert os.listdir(tmp_path / "out") == ["SEQ.txt"]
    back = read_results(path, seq_length=5)
    assert list(back.index) == [(int(f), int(i)) for f, i in rows[:, :2]]
    np.testing.assert_allclose(back[["X", "Y", "Width", "Height"]].to_numpy(), rows[:, 2:], atol=0.005 + 1e-9)
    assert (back["Confidence"] == 1).all()
    for line in path.read_text().splitlines():
        assert line.endswith(",1,-1,-1,-1") and len(line.split(",")) == 10


def test_a_box_thinner_than_a_hundredth_of_a_pixel_reads_back(tmp_path):
    """0.004 px was written as 0.00, which the reader (and eval) refuse as a non-positive size."""
    path = write_results(tmp_path / "SEQ.txt", np.array([[1, 1, 10.0, 10.0, 0.004, 20.0], [2, 1, 10, 10, 5, 2e-3],
                                                         [3, 1, 10, 10, 5, 1e-5]]))
    back = read_results(path)  # 1e-5 px: the reader's smallest size, 1e-3
    assert back["Width"].tolist() == [0.004, 5.0, 5.0] and back["Height"].tolist() == [20.0, 0.002, 0.001]


def test_a_killed_writers_temporary_goes_at_the_next_write_a_live_ones_stays(tmp_path):
    """kill -9 mid-render left .k.mp4.XXXX.tmp.mp4 beside the target for good."""
    rows = np.array([[1, 1, 10.0, 10.0, 5.0, 20.0]])
    target = tmp_path / "SEQ.txt"
    dead, live = tmp_path / ".SEQ.txt.abc123.tmp", tmp_path / ".SEQ.txt.def456.tmp.mp4"
    dead.write_text("half")
    live.write_text("being written")
    os.utime(dead, (time.time() - 3600, time.time() - 3600))  # untouched for an hour: its writer is gone
    write_results(target, rows)
    assert sorted(os.listdir(tmp_path)) == [live.name, "SEQ.txt"]


def test_write_results_failure_keeps_previous_file(tmp_path, monkeypatch):
    path = write_results(tmp_path / "SEQ.txt", np.array([[1, 1, 10, 20, 30, 40]]))
    before = path.read_bytes()
    # A bad row part-way: the rows before it are already written to the temporary file.
    with pytest.raises(ValueError):
        write_results(path, np.array([[1, 1, 0, 0, 5, 5], [2, 1, 0, 0, 5, 5], [np.nan, 1, 0, 0, 5, 5]]))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["SEQ.txt"]

    # A failure inside atomic_write itself (after every row is written, before the rename).
    def failing_fsync(fd):
        raise OSError("simulated I/O error")

    monkeypatch.setattr(atomic_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="simulated"):
        write_results(path, np.array([[1, 1, 0, 0, 5, 5], [2, 1, 0, 0, 5, 5]]))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["SEQ.txt"]


# -- feature arrays ---------------------------------------------------------------------------------------
def _feature_rows(n: int, dim: int, rng) -> tuple[np.ndarray, np.ndarray]:
    mot = np.column_stack([rng.integers(1, 6, n), -np.ones(n), rng.uniform(0, 100, (n, 2)),
                           rng.uniform(1, 50, (n, 2)), rng.uniform(0, 1, n)])
    return mot, rng.normal(size=(n, dim))


def test_feature_array_seven_plus_d(tmp_path):
    rng = np.random.default_rng(1)
    mot, feats = _feature_rows(12, 5, rng)
    np.save(tmp_path / "f.npy", np.column_stack([mot, feats]))
    det = read_feature_array(tmp_path / "f.npy", seq_length=5)
    order = np.argsort(mot[:, 0], kind="stable")
    np.testing.assert_array_equal(det.frames, mot[order, 0])
    np.testing.assert_array_equal(det.boxes, mot[order, 2:6])
    np.testing.assert_array_equal(det.scores, mot[order, 6])
    assert det.features.dtype == np.float32 and det.features.shape == (12, 5)
    np.testing.assert_allclose(det.features, feats[order], rtol=1e-6)


def test_feature_array_deepsort_ten_plus_d(tmp_path):
    rng = np.random.default_rng(2)
    mot, feats = _feature_rows(9, 4, rng)
    np.save(tmp_path / "f.npy", np.column_stack([mot, -np.ones((9, 3)), feats]))
    det = read_feature_array(tmp_path / "f.npy")
    order = np.argsort(mot[:, 0], kind="stable")
    assert det.features.shape == (9, 4)  # columns 7-9 (all -1) are not features
    np.testing.assert_allclose(det.features, feats[order], rtol=1e-6)
    np.testing.assert_array_equal(det.boxes, mot[order, 2:6])


def test_feature_array_zero_size_rows_skipped_with_their_features(tmp_path):
    mot = np.array([[1, -1, 0, 0, 10, 10, 1], [1, -1, 0, 0, 0, 10, 1], [2, -1, 0, 0, 3, 3, 1]], float)
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    np.save(tmp_path / "f.npy", np.column_stack([mot, feats]))
    det = read_feature_array(tmp_path / "f.npy")
    assert det.skipped == 1
    np.testing.assert_array_equal(det.features, [[1.0, 0.0], [0.5, 0.5]])


@pytest.mark.parametrize("kind", ["nan_row", "negative", "beyond", "one_d", "too_narrow", "strings", "not_npy"])
def test_bad_feature_array(tmp_path, kind):
    rng = np.random.default_rng(3)
    mot, feats = _feature_rows(6, 3, rng)
    array = np.column_stack([mot, feats])
    path, line, words = tmp_path / "f.npy", None, []
    if kind == "nan_row":
        array[4, 8] = np.nan
        line, words = 5, ["non-finite"]
    elif kind == "negative":
        array[2, 5] = -4
        line, words = 3, ["negative box size"]
    elif kind == "beyond":
        array[3, 0] = 99
        line, words = 4, ["beyond seqLength=5"]
    elif kind == "one_d":
        array = array[:, 0]
        words = ["N x (7 + D)"]
    elif kind == "too_narrow":
        array = array[:, :7]
        words = ["N x (7 + D)"]
    elif kind == "strings":
        array = array.astype(str)
        words = ["numeric"]
    if kind == "not_npy":
        _write(path, "this is not an npy file\n")
        words = ["not a readable .npy"]
    else:
        np.save(path, array)
    with pytest.raises(InputError) as err:
        read_feature_array(path, seq_length=5)
    _assert_error(err, path, line, *words)


# -- seqinfo.ini, sequences, images ------------------------------------------------------------------------
def _sequence(root: Path, bench: str, name: str, length: int = 3) -> Path:
    seq = root / bench / "train" / name
    _write(seq / "seqinfo.ini", SEQINFO.format(name=name, length=length))
    return seq


def test_read_seqinfo(tmp_path):
    seq = _sequence(tmp_path, "MOT17", "SEQ-01", length=7)
    info = read_seqinfo(seq)
    assert (info.name, info.seq_length, info.frame_rate, info.im_width, info.im_height) == ("SEQ-01", 7, 30.0, 640, 480)
    assert info.det_path == seq / "det" / "det.txt" and info.gt_path == seq / "gt" / "gt.txt"
    assert info.image_dir == seq / "img1"


@pytest.mark.parametrize("text, line, words", [
    ("name=x\nseqLength=3\n", None, ["malformed seqinfo.ini"]),  # no [Sequence] header
    ("[Other]\nseqLength=3\n", None, ["malformed seqinfo.ini"]),
    (SEQINFO.format(name="x", length="three"), 5, ["malformed seqinfo.ini", "seqLength"]),
    (SEQINFO.replace("frameRate=30\n", "").format(name="x", length=3), None, ["malformed seqinfo.ini", "frameRate"]),
    (SEQINFO.format(name="x", length=0), 5, ["must be positive"]),
    ("[Sequence]\n[Sequence]\nseqLength=3\n", None, ["malformed seqinfo.ini"]),  # duplicate section
])
def test_malformed_seqinfo(tmp_path, text, line, words):
    ini = _write(tmp_path / "seq" / "seqinfo.ini", text)
    with pytest.raises(InputError) as err:
        read_seqinfo(tmp_path / "seq")
    _assert_error(err, ini, line, *words)


def test_missing_seqinfo(tmp_path):
    with pytest.raises(InputError) as err:
        read_seqinfo(tmp_path)
    _assert_error(err, tmp_path / "seqinfo.ini", None, "missing")


def test_find_sequence_and_unknown_sequence_lists_known_ones(tmp_path):
    a = _sequence(tmp_path, "MOT17", "ALPHA-01")
    b = _sequence(tmp_path, "MOT15", "Beta-Walk")
    assert find_sequence("ALPHA-01", tmp_path) == a
    assert find_sequence("Beta-Walk", tmp_path) == b
    with pytest.raises(InputError) as err:
        find_sequence("GAMMA-09", tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: ") and "'GAMMA-09'" in message
    assert "ALPHA-01, Beta-Walk" in message
    # One name in train and in test was taken from train in silence.
    _write(tmp_path / "MOT17" / "test" / "ALPHA-01" / "seqinfo.ini", SEQINFO.format(name="ALPHA-01", length=3))
    with pytest.raises(InputError, match=r"'ALPHA-01' is in 2 places: MOT17/train/ALPHA-01, MOT17/test/ALPHA-01"):
        find_sequence("ALPHA-01", tmp_path)
    # A flat root (sequences directly under it) is listed too; a sequence folder given as the root says so.
    flat = tmp_path / "flat"
    _write(flat / "Other" / "seqinfo.ini", SEQINFO.format(name="Other", length=3))
    with pytest.raises(InputError, match="sequences under this root: Other$"):
        find_sequence("GAMMA-09", flat)
    with pytest.raises(InputError, match="is itself a sequence folder"):
        find_sequence("GAMMA-09", flat / "Other")


def test_image_sequence_missing_image_and_folder(tmp_path):
    seq = _sequence(tmp_path, "MOT17", "IMG-01", length=3)
    import cv2

    (seq / "img1").mkdir()
    for frame in (1, 2, 3):
        cv2.imwrite(str(seq / "img1" / f"{frame:06d}.jpg"), np.full((8, 12, 3), 200, np.uint8))
    images = ImageSequence(read_seqinfo(seq))
    (seq / "img1" / "000002.jpg").unlink()  # a frame lost after the sequence was opened
    assert len(images) == 3
    assert images[1].shape == (8, 12, 3)
    with pytest.raises(InputError) as err:
        images[2]
    _assert_error(err, seq / "img1" / "000002.jpg", None, "missing image")
    with pytest.raises(InputError) as err:
        images[4]
    assert "outside 1..3" in str(err.value)
    _write(seq / "img1" / "000003.jpg", "not a jpeg")
    with pytest.raises(InputError) as err:
        images[3]
    _assert_error(err, seq / "img1" / "000003.jpg", None, "unreadable")

    other = _sequence(tmp_path, "MOT17", "NOIMG-01")
    with pytest.raises(InputError) as err:
        ImageSequence(read_seqinfo(other))
    _assert_error(err, other / "img1", None, "not found")


# -- data root ----------------------------------------------------------------------------------------------
def test_data_root_precedence(tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    explicit.mkdir()
    env.mkdir()
    fake_repo = tmp_path / "work" / "repo"
    fake_repo.mkdir(parents=True)
    shared = tmp_path / "work" / "shared" / "data"
    shared.mkdir(parents=True)
    monkeypatch.setattr(dataroot, "_REPO_ROOT", fake_repo)
    monkeypatch.chdir(fake_repo)

    monkeypatch.setenv("FMTRACK_DATA", str(env))
    assert resolve_data_root(explicit) == explicit
    assert resolve_data_root(str(explicit)) == explicit
    assert resolve_data_root() == env
    monkeypatch.delenv("FMTRACK_DATA")
    assert resolve_data_root() == shared

    # An explicit or $FMTRACK_DATA root that is not a directory is an error, not a fall-through.
    with pytest.raises(InputError, match="--data-root"):
        resolve_data_root(tmp_path / "missing")
    monkeypatch.setenv("FMTRACK_DATA", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="FMTRACK_DATA"):
        resolve_data_root()

    # Nothing anywhere: a one-line error saying what to do.
    monkeypatch.delenv("FMTRACK_DATA")
    shared.rmdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no data root") as err:
        resolve_data_root()
    assert "\n" not in str(err.value)


# -- property tests of the det parser ----------------------------------------------------------------------
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
size = st.floats(0.01, 5e3, allow_nan=False, allow_infinity=False)
det_row = st.tuples(st.integers(1, 500), finite, finite, size, size, finite)
det_table = st.tuples(st.lists(det_row, min_size=1, max_size=25), st.sampled_from([7, 10]))


def _det_text(rows, ncols: int) -> str:
    lines = []
    for frame, left, top, width, height, conf in rows:
        cells = [str(frame), "-1", f"{left:.6f}", f"{top:.6f}", f"{width:.6f}", f"{height:.6f}", f"{conf:.6f}"]
        lines.append(",".join(cells + ["-1"] * (ncols - 7)))
    return "\n".join(lines) + "\n"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=det_table)
def test_det_round_trip_property(tmp_path, table):
    rows, ncols = table
    path = _write(tmp_path / "prop_det.txt", _det_text(rows, ncols))
    det = read_detections(path, seq_length=500)
    expected = np.array(rows, dtype=float)
    order = np.argsort(expected[:, 0], kind="stable")
    expected = expected[order]
    assert det.skipped == 0 and len(det) == len(rows)
    np.testing.assert_array_equal(det.frames, expected[:, 0].astype(int))
    np.testing.assert_allclose(det.boxes, expected[:, 1:5], rtol=0, atol=5e-7)
    np.testing.assert_allclose(det.scores, expected[:, 5], rtol=0, atol=5e-7)
    for frame in np.unique(det.frames):
        np.testing.assert_allclose(det.at(int(frame))[0], expected[expected[:, 0] == frame, 1:5], atol=5e-7)


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


garbage = st.text(alphabet="abcdefghijklmnopqrstuvwxyzXYZ_#!?:;", min_size=1, max_size=8).filter(_not_a_number)
corruption = st.one_of(garbage, st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity"]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=det_table, where=st.tuples(st.integers(0, 10_000), st.integers(0, 9)), bad=corruption)
def test_det_single_corrupted_cell_names_its_line(tmp_path, table, where, bad):
    rows, ncols = table
    text_lines = _det_text(rows, ncols).splitlines()
    row, col = where[0] % len(rows), where[1] % ncols
    cells = text_lines[row].split(",")
    cells[col] = bad
    text_lines[row] = ",".join(cells)
    path = _write(tmp_path / "prop_bad.txt", "\n".join(text_lines) + "\n")
    with pytest.raises(InputError) as err:
        read_detections(path, seq_length=500)
    assert err.value.line == row + 1
    assert str(err.value).startswith(f"{path}:{row + 1}: ")
    if _not_a_number(bad):
        assert "not a number" in str(err.value)
    else:
        assert "non-finite" in str(err.value) and f"column {col + 1}" in str(err.value)


# -- property tests with extreme finite values: a valid finite result or one InputError naming the file ------
extreme = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e-320, -1e-320, 5e-324, 1e308, -1e308, 0.0, 1e6, 1e9, 2.5]),
                    st.integers(-5, 3000).map(float))
reasonable = st.one_of(st.integers(1, 50).map(float), st.floats(0.5, 500, allow_nan=False))


def _table_text(rows: list[list[float]]) -> str:
    return "".join(",".join(repr(v) for v in row) + "\n" for row in rows)


def _rows(ncols: int):
    """Rows mixing plausible values with extreme finite ones, so both outcomes occur."""
    cell = st.one_of(reasonable, reasonable, extreme)
    return st.lists(st.lists(cell, min_size=ncols, max_size=ncols), min_size=1, max_size=8)


def _valid_or_input_error(path: Path, read) -> object | None:
    """``read()``'s result, or None after checking its InputError names ``path`` on one line; any
    other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)  # duplicated rows are valid input
            return read()
    except InputError as err:
        assert err.path == str(path) and "\n" not in str(err)
        return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.one_of(_rows(9), _rows(10)))
def test_ground_truth_reader_property(tmp_path, rows):
    path = _write(tmp_path / "gt.txt", _table_text(rows))
    gt = _valid_or_input_error(path, lambda: read_ground_truth(path, seq_length=3000))
    if gt is not None:
        values = gt.to_numpy(dtype=float)
        assert np.isfinite(values).all() and (np.abs(values[:, :4]) <= 1e6).all()
        frames, ids = (gt.index.get_level_values(k).to_numpy() for k in ("FrameId", "Id"))
        assert (frames >= 1).all() and (frames <= 3000).all() and np.isfinite(ids).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.one_of(_rows(6), _rows(10)))
def test_results_reader_property(tmp_path, rows):
    path = _write(tmp_path / "res.txt", _table_text(rows))
    results = _valid_or_input_error(path, lambda: read_results(path, seq_length=3000))
    if results is not None:
        values = results.to_numpy(dtype=float)
        assert np.isfinite(values).all() and (np.abs(values[:, :4]) <= 1e6).all()
        assert (values[:, 2:4] >= 1e-3).all()  # width and height usable by IoU


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.one_of(reasonable, reasonable, extreme), min_size=9, max_size=9),
                     min_size=1, max_size=8))
def test_feature_array_reader_property(tmp_path, rows):
    path = tmp_path / "f.npy"
    np.save(path, np.array(rows, dtype=np.float64))
    detections = _valid_or_input_error(path, lambda: read_feature_array(path, seq_length=3000))
    if detections is not None:
        assert np.isfinite(detections.features).all() and np.isfinite(detections.boxes).all()
        assert (np.abs(detections.boxes) <= 1e6).all() and (detections.boxes[:, 2:] >= 1e-3).all()
        # Squared distances of the float32 features stay finite.
        assert np.isfinite((detections.features.astype(np.float32) ** 2).sum(axis=1)).all()


ini_value = st.one_of(extreme.map(repr), st.integers(-3, 10**9).map(str), st.sampled_from(["nan", "inf", "-inf", "", "1e3"]))
ini_name = st.one_of(st.sampled_from(["SEQ-01", "../x", "a/b", "..", ".", " x", "ok name"]),
                     st.text(min_size=0, max_size=12))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=ini_name, rate=ini_value, length=ini_value, width=ini_value, height=ini_value)
def test_seqinfo_reader_property(tmp_path, name, rate, length, width, height):
    seq = tmp_path / "seq"
    ini = seq / "seqinfo.ini"
    text = (f"[Sequence]\nname={name}\nimDir=img1\nframeRate={rate}\nseqLength={length}\n"
            f"imWidth={width}\nimHeight={height}\nimExt=.jpg\n")
    seq.mkdir(exist_ok=True)
    ini.write_bytes(text.encode("utf8", errors="surrogatepass"))
    info = _valid_or_input_error(ini, lambda: read_seqinfo(seq))
    if info is not None:
        assert 0 < info.frame_rate <= 1e4 and np.isfinite(info.frame_rate)
        assert 1 <= info.seq_length <= 10_000_000 and 1 <= info.im_width <= 1e6 and 1 <= info.im_height <= 1e6
        assert Path(info.name).name == info.name and info.name not in (".", "..")
        assert (tmp_path / "out" / f"{info.name}.txt").parent == tmp_path / "out"


def test_a_seq_length_that_is_not_a_whole_number_names_the_argument(tmp_path):
    """seq_length="71" failed inside numpy (UFuncTypeError), naming nothing."""
    det = tmp_path / "det.txt"
    det.write_text("1,-1,5,6,7,8,0.9,-1,-1,-1\n")
    for reader in (read_detections, read_results):
        for bad in ("71", 7.5, True, -1):
            with pytest.raises(ValueError, match="seq_length must be a whole number of frames"):
                reader(det, seq_length=bad)
    assert len(read_detections(det, seq_length=np.int64(3))) == 1
