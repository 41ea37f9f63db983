"""Regression tests of issue 13's file, cache and CLI-boundary defects: each fails on the code
before the fix (the old behaviour is named in the test's comment)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fmtrack.cli import main
from fmtrack.embedder import HSVEmbedder, cached_features
from fmtrack.pipeline import descriptor_spec, image_embedder
from fmtrack.io import (ImageSequence, InputError, find_sequence, read_detections, read_feature_array,
                        read_ground_truth, read_results, read_seqinfo, write_results)

WIDTH, HEIGHT = 64, 48
DET_ROW = "{f},-1,{x},10,12,20,0.9,-1,-1,-1"


def _sequence(root: Path, name: str = "SYN-01", length: int = 4, ini_name: str | None = None,
              images: bool = True, extra: str = "") -> Path:
    """A data root with one sequence: seqinfo.ini, det.txt (one box a frame) and PNG frames."""
    seq = root / "MOT17" / "train" / name
    (seq / "det").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={ini_name or name}\nimDir=img1\nframeRate=30\nseqLength={length}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.png\n{extra}", encoding="utf8")
    (seq / "det" / "det.txt").write_text(
        "\n".join(DET_ROW.format(f=f, x=5 + 3 * f) for f in range(1, length + 1)) + "\n", encoding="utf8")
    if images:
        (seq / "img1").mkdir()
        rng = np.random.default_rng(0)
        for frame in range(1, length + 1):
            cv2.imwrite(str(seq / "img1" / f"{frame:06d}.png"), rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8))
    return seq


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("fmtrack: warning:")]
    assert len(lines) == 1 and lines[0].startswith("fmtrack: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# -- 1. names from files never become path components -------------------------------------------------------
@pytest.mark.parametrize("name", ["../../../ESCAPED", "a/b", "..", "tab\there", "/abs"])
def test_seqinfo_name_with_path_parts_is_refused(tmp_path, name):
    # Old: name=../../../ESCAPED was accepted and became runs/PRESET/../../../ESCAPED.txt.
    seq = _sequence(tmp_path, ini_name=name, images=False)
    with pytest.raises(InputError) as err:
        read_seqinfo(seq)
    assert err.value.path == str(seq / "seqinfo.ini") and err.value.line == 2
    assert "name=" in str(err.value) and "\n" not in str(err.value)


def test_run_with_escaping_name_writes_nothing_outside(tmp_path, capsys, monkeypatch):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    _sequence(tmp_path / "root", ini_name="../../../ESCAPED", images=False)
    before = _files_under(tmp_path)
    code = main(["run", "--seq", "SYN-01", "--data-root", str(tmp_path / "root"), "--preset", "sort", "--quiet"])
    assert code == 2
    assert "seqinfo.ini:2: name=" in _one_line_error(capsys)
    assert _files_under(tmp_path) == before


def test_img1_linked_outside_the_data_root_warns(tmp_path):
    # Old: no word about frames read from outside the data root.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    seq = _sequence(tmp_path / "root", images=False)
    (seq / "img1").symlink_to(outside, target_is_directory=True)
    with pytest.warns(UserWarning, match="outside the data root"):
        find_sequence("SYN-01", tmp_path / "root")


# -- 2. the atomic rename replaces only what it should --------------------------------------------------------
def test_out_equal_to_det_is_refused_and_det_kept(tmp_path, capsys):
    # Old: --out equal to --det replaced the detections by the results.
    root = tmp_path / "root"
    seq = _sequence(root, images=False)
    det = seq / "det" / "det.txt"
    text = det.read_text()
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--det", str(det), "--out", str(det)])
    assert code == 2
    assert "refusing to overwrite" in _one_line_error(capsys)
    assert det.read_text() == text


def test_out_that_is_a_fifo_or_directory_is_refused(tmp_path, capsys):
    # Old: a fifo (like a device) was replaced by a regular file; a directory gave a traceback.
    root = tmp_path / "root"
    _sequence(root, images=False)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    for out, words in ((fifo, "not a regular file"), (folder, "is a directory")):
        code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                     "--no-score", "--out", str(out)])
        assert code == 2
        line = _one_line_error(capsys)
        assert str(out) in line and words in line
    assert fifo.is_fifo() and folder.is_dir()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_write_error_is_one_input_error_and_leaves_no_temporary(tmp_path, monkeypatch, code):
    # Old: the OSError escaped (a traceback at the CLI).
    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", failing_replace)
    out = tmp_path / "r.txt"
    with pytest.raises(InputError) as err:
        write_results(out, np.array([[1, 1, 0, 0, 5, 5]]))
    assert err.value.path == str(out) and os.strerror(code) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_export_onto_its_own_weights_is_refused(tmp_path, capsys):
    # Old: export --out equal to --weights replaced the fp32 weights by their fp16 export.
    from fmtrack.pipeline import default_model_path

    shipped = default_model_path()
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(shipped.read_bytes())
    (tmp_path / "w.json").write_bytes(shipped.with_suffix(".json").read_bytes())
    code = main(["export", "--weights", str(weights), "--out", str(weights)])
    assert code == 2
    assert "refusing to overwrite" in _one_line_error(capsys)
    assert weights.read_bytes() == shipped.read_bytes()


# -- 3. writers never let a library pick the name ------------------------------------------------------------
def test_embed_out_without_npy_suffix_writes_that_file(tmp_path, capsys):
    # Old: an empty 'feats' and the data in a hidden '.feats.XXXX.tmp.npy'.
    root = tmp_path / "root"
    _sequence(root)
    out = tmp_path / "feats"
    assert main(["embed", "--seq", "SYN-01", "--data-root", str(root), "--out", str(out), "--quiet"]) == 0
    described = read_feature_array(out)
    assert described.features.shape == (4, image_embedder(descriptor_spec("default")).dim)  # the default descriptor
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats", "feats.json", "root"]  # and its sidecar


def test_a_sequence_without_one_usable_detection_tracks_nothing_with_appearance_too(tmp_path, capsys):
    """Every box zero-sized (skipped): the feature cache held an empty table its own reader refused,
    so every appearance run failed, recomputed it and failed again; embed wrote what run refused."""
    root = tmp_path / "root"
    seq = _sequence(root)
    (seq / "det" / "det.txt").write_text("".join(f"{f},-1,5,10,0,20,0.9,-1,-1,-1\n" for f in range(1, 5)))
    for _ in range(2):  # the second run reads the cache the first wrote
        out = tmp_path / "res.txt"
        assert main(["run", "--seq", "SYN-01", "--data-root", str(root), "--features", "hsv", "--out", str(out),
                     "--quiet"]) == 0, capsys.readouterr().err
        assert out.read_text() == "" and "unusable feature cache" not in capsys.readouterr().err
    feats = tmp_path / "feats.npy"
    assert main(["embed", "--seq", "SYN-01", "--data-root", str(root), "--weights", "hsv", "--out", str(feats),
                 "--quiet"]) == 0
    assert main(["run", "--seq", "SYN-01", "--data-root", str(root), "--features", str(feats), "--out",
                 str(tmp_path / "res2.txt"), "--quiet"]) == 0, capsys.readouterr().err


def test_a_features_file_tracks_the_detection_files_own_boxes_and_scores(tmp_path):
    """embed stores rows as float32: run --features f.npy tracked those rounded boxes and scores, so
    a row could differ from --features with the descriptor itself (94.54 against 94.55)."""
    from fmtrack.pipeline import sequence_inputs
    from fmtrack.tracker import preset

    root = tmp_path / "root"
    seq = _sequence(root)
    (seq / "det" / "det.txt").write_text("".join(f"{f},-1,{5.123456789 + f},10.987654321,12.3456789,20.5,"
                                                 f"0.123456789,-1,-1,-1\n" for f in range(1, 5)))
    feats = tmp_path / "f.npy"
    assert main(["embed", "--seq", "SYN-01", "--data-root", str(root), "--weights", "hsv", "--out", str(feats),
                 "--quiet"]) == 0
    info = read_seqinfo(seq)
    inputs = sequence_inputs(preset("deepsort"), str(feats), info, root, progress=False)
    own = read_detections(seq / "det" / "det.txt")
    np.testing.assert_array_equal(inputs.detections.boxes, own.boxes)
    np.testing.assert_array_equal(inputs.detections.scores, own.scores)
    assert inputs.detections.features.shape == (4, 128)


# -- 4. the feature and camera-motion caches -----------------------------------------------------------------
def _hsv_of(info, detections) -> np.ndarray:
    images = ImageSequence(info)
    return np.vstack([HSVEmbedder().embed(images[int(f)], detections.at(int(f))[0]) for f in detections.frames])


def test_feature_cache_misses_when_frames_change(tmp_path):
    # Old: the key held only the descriptor and boxes, so edited frames were served old features.
    seq = _sequence(tmp_path)
    info = read_seqinfo(seq)
    detections = read_detections(info.det_path, info.seq_length)
    first = read_feature_array(cached_features(info, detections, HSVEmbedder(), tmp_path / "cache", False))
    cv2.imwrite(str(seq / "img1" / "000002.png"), np.full((HEIGHT, WIDTH, 3), (0, 0, 255), np.uint8))
    again = read_feature_array(cached_features(info, detections, HSVEmbedder(), tmp_path / "cache", False))
    assert not np.allclose(first.features, again.features)
    np.testing.assert_allclose(again.features, _hsv_of(info, detections), atol=1e-6)


def test_a_cache_root_or_entry_that_is_no_folder_or_file_is_named_before_any_work(tmp_path, monkeypatch, capsys):
    """FMTRACK_CACHE naming a file, or a cache entry replaced by a folder, failed after every frame
    was embedded, naming neither the variable nor the entry."""
    root = tmp_path / "root"
    _sequence(root)
    args = ["run", "--seq", "SYN-01", "--data-root", str(root), "--features", "hsv", "--quiet",
            "--out", str(tmp_path / "r.txt")]
    embedded = []
    monkeypatch.setattr(HSVEmbedder, "embed", lambda self, *a, **k: embedded.append(1) or np.ones((1, 128)))
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "afile"))
    assert main(args) == 2 and "$FMTRACK_CACHE names a file here, not a folder" in _one_line_error(capsys)
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))
    info = read_seqinfo(root / "MOT17" / "train" / "SYN-01")
    from fmtrack.embedder.cache import feature_cache_path

    entry = feature_cache_path(info, read_detections(info.det_path), HSVEmbedder(), tmp_path / "cache" / "features")
    entry.mkdir(parents=True)
    assert main(args) == 2 and "a cache entry's name, taken by something that is not a file" in _one_line_error(capsys)
    assert not embedded
    from fmtrack.io import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FMTRACK_CACHE", "~/tilde")  # was a folder named "~" in the working directory
    assert cache_dir("features") == tmp_path / "tilde" / "features"


def test_an_edit_of_any_frame_that_keeps_its_size_changes_the_fingerprint(tmp_path):
    """Only the sizes and three frames' bytes were hashed: an edit of another frame kept its features."""
    from fmtrack.io.images import frames_fingerprint

    info = read_seqinfo(_sequence(tmp_path, length=7))
    before = frames_fingerprint(info)
    frame = info.image_dir / "000003.png"
    data = bytearray(frame.read_bytes())
    data[len(data) // 2] ^= 0xFF
    frame.write_bytes(bytes(data))
    assert frames_fingerprint(info) != before


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "nan"])
def test_corrupt_feature_cache_is_recomputed_with_a_warning(tmp_path, damage):
    # Old: an empty cache file gave EOFError/an InputError forever, a NaN one was served.
    info = read_seqinfo(_sequence(tmp_path))
    detections = read_detections(info.det_path, info.seq_length)
    path = cached_features(info, detections, HSVEmbedder(), tmp_path / "cache", False)
    good = np.load(path)
    bad = {"empty": b"", "truncated": path.read_bytes()[:200], "garbage": b"\x93NUMPY nonsense" * 5}.get(damage)
    if damage == "nan":
        nan = good.copy()
        nan[1, 9] = np.nan
        np.save(path, nan)
    else:
        path.write_bytes(bad)
    with pytest.warns(UserWarning, match="unusable feature cache"):
        again = cached_features(info, detections, HSVEmbedder(), tmp_path / "cache", False)
    np.testing.assert_array_equal(np.load(again), good)


class _NaNEmbedder:
    needs_image = True
    dim = 4
    identity = "nan-descriptor"

    def embed(self, image, boxes, frame=None):
        return np.full((len(boxes), self.dim), np.nan, np.float32)


def test_non_finite_features_are_never_cached(tmp_path):
    # Old: NaN features were written under the descriptor's key and served to every later run.
    info = read_seqinfo(_sequence(tmp_path))
    detections = read_detections(info.det_path, info.seq_length)
    with pytest.raises(InputError, match="nan-descriptor gave non-finite"):
        cached_features(info, detections, _NaNEmbedder(), tmp_path / "cache", False)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_camera_motion_nan_cache_and_nan_estimates_become_usable(tmp_path, monkeypatch):
    # Old: a NaN cache (or a NaN estimate) was returned as is, and every track was dropped.
    import fmtrack.camera_motion as cmc

    info = read_seqinfo(_sequence(tmp_path))
    config = cmc.CameraMotionConfig(method="sof")
    first = cmc.sequence_camera_motion(info, config, tmp_path / "cmc", progress=False)
    (cache,) = (tmp_path / "cmc").iterdir()
    poisoned = first.copy()
    poisoned[2] = np.nan
    np.save(cache, poisoned)
    with pytest.warns(UserWarning, match="unusable camera-motion cache"):
        again = cmc.sequence_camera_motion(info, config, tmp_path / "cmc", progress=False)
    np.testing.assert_array_equal(again, first)
    cache.write_bytes(b"damaged")  # numpy called this "pickled (object) data ... load it unsafely"
    with pytest.warns(UserWarning, match=r"unusable camera-motion cache \(not a readable .npy array"):
        np.testing.assert_array_equal(cmc.sequence_camera_motion(info, config, tmp_path / "cmc", progress=False),
                                      first)

    monkeypatch.setattr(cmc, "_estimate_prepared", lambda *args: np.full((2, 3), np.nan))
    with pytest.warns(UserWarning, match="not finite"):
        estimated = cmc.sequence_camera_motion(info, cmc.CameraMotionConfig(method="ecc"), tmp_path / "cmc2",
                                               progress=False)
    np.testing.assert_array_equal(estimated, np.repeat(np.eye(2, 3)[None], info.seq_length, axis=0))


def test_descriptor_quality_takes_scores_from_the_detections_not_from_whoever_filled_the_cache(
        data_root, tmp_path, monkeypatch):
    # Old: calibrate fills the feature cache with mapped scores (the key holds no scores), and
    # eval-descriptor then filtered on those: TUD-Campus kept 190 matched detections, not 229.
    from fmtrack.benchmarks.descriptor_quality import descriptor_quality
    from fmtrack.benchmarks.methods import calibrate_descriptor

    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "fresh"))
    before = descriptor_quality("hsv", "TUD-Campus", data_root, progress=False)
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "filled-by-calibrate"))
    with pytest.raises(ValueError, match="too few label-free pairs"):  # 71 frames: but the cache is filled
        calibrate_descriptor("hsv", "TUD-Campus", data_root=data_root)
    after = descriptor_quality("hsv", "TUD-Campus", data_root, progress=False)
    assert after == before and after.matched_detections == 229


# -- 5. a features file must match the sequence --------------------------------------------------------------
def _features_file(path: Path, xs: list[float]) -> Path:
    rows = np.array([[f, -1, x, 10, 12, 20, 0.9, 1.0, 0.0] for f, x in enumerate(xs, start=1)])
    np.save(path, rows)
    return path


def test_features_of_another_sequence_are_refused(tmp_path, capsys):
    # Old: the features' rows silently replaced the sequence's detections.
    root = tmp_path / "root"
    _sequence(root, images=False)
    good = _features_file(tmp_path / "good.npy", [5 + 3 * f for f in range(1, 5)])
    other = _features_file(tmp_path / "other.npy", [5 + 3 * f for f in range(1, 3)] + [40.0, 41.0])
    args = ["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "deepsort", "--quiet", "--no-score"]
    assert main(args + ["--features", str(good), "--out", str(tmp_path / "a.txt")]) == 0
    capsys.readouterr()
    assert main(args + ["--features", str(other), "--out", str(tmp_path / "b.txt")]) == 2
    line = _one_line_error(capsys)
    assert f"{other}: does not match" in line and "detection 3" in line and "frame 3" in line
    short = _features_file(tmp_path / "short.npy", [5 + 3 * f for f in range(1, 4)])
    assert main(args + ["--features", str(short), "--out", str(tmp_path / "c.txt")]) == 2
    assert "3 detections here, 4 there" in _one_line_error(capsys)


def test_det_beside_features_is_checked_not_ignored(tmp_path, capsys):
    # Old: --det was silently ignored beside --features F.npy, even a path that does not exist.
    root = tmp_path / "root"
    _sequence(root, images=False)
    good = _features_file(tmp_path / "good.npy", [5 + 3 * f for f in range(1, 5)])
    missing = tmp_path / "missing.txt"
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "deepsort", "--quiet",
                 "--features", str(good), "--det", str(missing), "--out", str(tmp_path / "a.txt")])
    assert code == 2
    assert f"{missing}: file not found" in _one_line_error(capsys)


# -- 6. frame sizes, duplicated rows, absurd values ----------------------------------------------------------
def test_frame_of_another_size_warns_once_per_sequence(tmp_path):
    # Old: frames of any size were used without a word.
    seq = _sequence(tmp_path)
    for frame in (2, 3):
        cv2.imwrite(str(seq / "img1" / f"00000{frame}.png"), np.zeros((HEIGHT * 2, WIDTH, 3), np.uint8))
    images = ImageSequence(read_seqinfo(seq))
    images[1]
    with pytest.warns(UserWarning) as record:
        images[2]
        images[3]
    assert len(record) == 1
    message = str(record[0].message)
    assert "000002.png" in message and f"{WIDTH}x{HEIGHT * 2}" in message and f"{WIDTH}x{HEIGHT}" in message


def test_a_byte_order_mark_reads_on_either_parser_and_python_only_numbers_are_refused(tmp_path):
    """A BOM read on the fast path but failed on the line reader (a file with a blank line);
    float() took '1_0' and Arabic-Indic digits, which no MOTChallenge tool writes."""
    det = tmp_path / "det.txt"
    rows = ["1,-1,5,6,7,8,0.9,-1,-1,-1", "2,-1,5,6,7,8,0.9,-1,-1,-1"]
    det.write_text("\ufeff" + rows[0] + "\n\n" + rows[1] + "\n", encoding="utf8")
    assert read_detections(det).frames.tolist() == [1, 2]
    for bad in ("1_0", "\u0661\u0660"):
        det.write_text(rows[0].replace("5", bad, 1) + "\n", encoding="utf8")
        with pytest.raises(InputError, match=f"det.txt:1: not a number: '{bad}'"):
            read_detections(det)
    ini = _sequence(tmp_path / "root") / "seqinfo.ini"
    ini.write_text("\ufeff" + ini.read_text(encoding="utf8"), encoding="utf8")
    assert read_seqinfo(ini.parent).name == "SYN-01"
    blank = tmp_path / "SEQ.txt"
    blank.write_text("\n\n", encoding="utf8")  # a result file of blank lines is empty, as a 0-byte one
    assert len(read_results(blank)) == 0


def test_duplicated_detection_rows_warn_with_a_count(tmp_path):
    # Old: duplicated rows silently doubled tracks.
    det = tmp_path / "det.txt"
    row = "1,-1,5,6,7,8,0.9,-1,-1,-1\n"
    det.write_text(row * 3 + "2,-1,5,6,7,8,0.9,-1,-1,-1\n")
    with pytest.warns(UserWarning, match="2 duplicated detection rows"):
        assert len(read_detections(det)) == 4


@pytest.mark.parametrize("reader, text, line, words", [
    (read_detections, "1,-1,5,6,7,8,0.9,-1,-1,-1\n2,-1,5,6,1e308,8,0.9,-1,-1,-1\n", 2, ["box value", "column 5"]),
    (read_detections, "1,-1,-1e7,6,7,8,0.9,-1,-1,-1\n", 1, ["box value"]),
    (read_ground_truth, "1,1,5,6,7,8,1,1,1\n2,1,5,6,7,1e308,1,1,1\n", 2, ["box value"]),
    (read_results, "1,1,5,6,7,8,1,-1,-1,-1\n2,1,5,6,1e-320,8,1,-1,-1,-1\n", 2, ["below"]),
    (read_results, "1,1,5,6,7,8,1,-1,-1,-1\n2,1,1e300,6,7,8,1,-1,-1,-1\n", 2, ["box value"]),
    (read_ground_truth, "1,1,5,6,7,8,1,1,1\n1,2.5,5,6,7,8,1,1,1\n", 2, ["must be an integer"]),
])
def test_absurd_values_name_file_and_line(tmp_path, reader, text, line, words):
    # Old: accepted, giving -inf/nan boxes in results (or 'id 2 appears twice' for id 2.5).
    path = tmp_path / "table.txt"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        reader(path)
    assert err.value.path == str(path) and err.value.line == line
    for word in words:
        assert word in str(err.value)


def test_subnormal_detection_size_is_skipped_like_zero(tmp_path):
    # Old: a 1e-320 px wide box became a detection, and its Kalman state went non-finite.
    det = tmp_path / "det.txt"
    det.write_text("1,-1,5,6,1e-320,8,0.9,-1,-1,-1\n1,-1,5,6,7,8,0.9,-1,-1,-1\n")
    detections = read_detections(det)
    assert len(detections) == 1 and detections.skipped == 1


# -- 7, 8. one line naming the file, never a traceback --------------------------------------------------------
@pytest.mark.parametrize("key, value, words", [
    ("frameRate", "inf", ["frameRate=inf"]), ("frameRate", "nan", ["frameRate=nan"]),
    ("seqLength", "100000000", ["seqLength=100000000", "maximum"]),
    ("seqLength", "9", ["holds only 4"]),
])
def test_implausible_seqinfo_values_name_the_key_and_line(tmp_path, key, value, words):
    # Old: inf/nan passed (OverflowError / 'cannot convert float NaN' later); 1e8 frames ran for minutes.
    seq = _sequence(tmp_path)
    ini = seq / "seqinfo.ini"
    lines = ini.read_text().splitlines()
    lineno = next(i for i, text in enumerate(lines, start=1) if text.startswith(key + "="))
    lines[lineno - 1] = f"{key}={value}"
    ini.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        read_seqinfo(seq)
    assert err.value.path == str(ini) and err.value.line == lineno
    for word in words:
        assert word in str(err.value)


def test_npz_and_huge_header_as_features_are_input_errors(tmp_path):
    # Old: AttributeError for a .npz; an attempt to allocate the header's shape (MemoryError).
    npz = tmp_path / "f.npz"
    np.savez(npz, a=np.zeros((2, 9)))
    with pytest.raises(InputError, match="expected a .npy array"):
        read_feature_array(npz)
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 9)})
        fh.write(b"\0" * 72)
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_feature_array(huge)


def test_feature_value_beyond_float32_names_its_row(tmp_path):
    # Old: 1e308 passed the finiteness check and became inf in float32, reported at another row.
    rows = np.array([[f, -1, 5, 6, 7, 8, 0.9, 0.5, 0.5] for f in (3, 1, 2)])
    rows[0, 8] = 1e308
    np.save(tmp_path / "f.npy", rows)
    with pytest.raises(InputError) as err:
        read_feature_array(tmp_path / "f.npy")
    assert err.value.line == 1 and "feature value" in str(err.value)


@pytest.mark.parametrize("error, words", [
    (PermissionError(errno.EACCES, "Permission denied", "/some/det.txt"), ["/some/det.txt: Permission denied"]),
    (MemoryError("Unable to allocate 5.0 GiB"), ["out of memory", "5.0 GiB"]),
    (OverflowError("cannot convert float infinity to integer"), ["out of range"]),
    (cv2.error("OpenCV(5.0.0) nms.cpp:28: error: (-215:Assertion failed) score_threshold >= 0\n"),
     ["unexpected error", "score_threshold"]),
    (KeyError("step"), ["unexpected KeyError", "FMTRACK_DEBUG=1"]),
])
def test_cli_boundary_turns_any_exception_into_one_line(tmp_path, capsys, monkeypatch, error, words):
    # Old: only ValueError was caught; these ended in tracebacks.
    import fmtrack.pipeline as pipeline

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "sequence_inputs", failing)
    monkeypatch.delenv("FMTRACK_DEBUG", raising=False)
    root = tmp_path / "root"
    _sequence(root, images=False)
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--out", str(tmp_path / "o.txt")])
    assert code in (1, 2)
    line = _one_line_error(capsys)
    for word in words:
        assert word in line, line
    monkeypatch.setenv("FMTRACK_DEBUG", "1")
    main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
          "--out", str(tmp_path / "o.txt")])
    assert "Traceback" in capsys.readouterr().err


# -- 9. bounded memory --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_detection_parser_peak_memory_is_a_small_multiple_of_the_file(tmp_path):
    # Old: ~13x the file size (Python lists of floats); measured in a fresh process.
    rng = np.random.default_rng(0)
    count = 200_000
    table = np.column_stack([np.repeat(np.arange(1, 2001), count // 2000), -np.ones(count),
                             rng.uniform(1, 1800, (count, 4)).round(2), rng.uniform(0, 1, count).round(4),
                             -np.ones((count, 3))])
    det = tmp_path / "det.txt"
    np.savetxt(det, table, fmt="%g", delimiter=",")
    size = det.stat().st_size
    script = ("import resource, sys; from fmtrack.io import read_detections; "
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; d = read_detections(sys.argv[1]); "
              "print(len(d), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    import fmtrack

    env = {**os.environ, "PYTHONPATH": str(Path(fmtrack.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", script, str(det)], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    assert int(out[0]) == count
    growth = int(out[1]) * 1024  # ru_maxrss is in KiB on Linux
    assert growth < 4 * size, f"parsing a {size / 1e6:.1f} MB file grew the peak RSS by {growth / 1e6:.1f} MB"


# -- 10. help and silently ignored flags ---------------------------------------------------------------------
def _all_parsers():
    import argparse

    from fmtrack.cli import build_parser

    parser = build_parser()
    todo = [("fmtrack", parser)]
    while todo:
        name, current = todo.pop()
        yield name, current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend((f"{name} {k}", child) for k, child in action.choices.items())


def test_every_flag_has_help_and_shows_its_default():
    # Old: --repeats, --frames, --steps, --seqs and others had no help; defaults were not shown.
    import argparse

    for name, parser in _all_parsers():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, False) and action.option_strings:
                shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
                assert " ".join(shown.split()) in text, f"{name} {action.option_strings}: default {shown} not shown"


def test_run_features_help_names_the_shipped_model():
    # Old: said the fmtrack preset defaults to hsv.
    run = dict(_all_parsers())["fmtrack run"]
    text = " ".join(run.format_help().split())
    assert "fmvae-tracklets-strict.safetensors" in text and "hsv for --preset fmtrack" not in text


def test_eval_results_with_methods_is_an_error(tmp_path, capsys):
    # Old: --methods was silently ignored beside --results.
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--results", str(tmp_path), "--methods", "sort"])
    assert exit_.value.code == 2
    assert "--methods would be ignored" in capsys.readouterr().err


# -- 11. embed uses the cache; tests use a temporary one ------------------------------------------------------
def test_embed_fills_and_reuses_the_feature_cache(tmp_path, capsys, monkeypatch):
    # Old: fmtrack embed always recomputed and never filled the cache fmtrack run reads.
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "root"
    _sequence(root)
    args = ["embed", "--seq", "SYN-01", "--data-root", str(root), "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a.npy")]) == 0
    # The default descriptor's two parts, one file each, as run caches them (embed cached the fused
    # whole under a third name, which run never read, and run's parts served embed nothing).
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 2

    def no_embedding(self, *args, **kwargs):
        raise AssertionError("embedded although the cache holds these features")

    from fmtrack.embedder.fmvae import FMVAEEmbedder

    monkeypatch.setattr(HSVEmbedder, "embed", no_embedding)
    monkeypatch.setattr(FMVAEEmbedder, "embed", no_embedding)
    assert main(args + ["--out", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert main(["run", "--seq", "SYN-01", "--data-root", str(root), "--quiet", "--out", str(tmp_path / "r.txt")]) == 0
    assert "computed and cached" not in capsys.readouterr().out


def test_suite_runs_with_a_temporary_feature_cache():
    cache = Path(os.environ["FMTRACK_CACHE"]).resolve()
    assert not cache.is_relative_to(Path.home() / ".cache"), cache


@pytest.mark.slow
def test_ci_without_data_root_fails_instead_of_skipping(tmp_path):
    # Old: every data test was skipped, so a CI run without data passed.
    test = tmp_path / "test_needs_data.py"
    test.write_text("def test_it(data_root):\n    pass\n")
    (tmp_path / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text())
    import fmtrack

    env = {**os.environ, "CI": "true", "FMTRACK_DATA": str(tmp_path / "no-such-root"),
           "PYTHONPATH": str(Path(fmtrack.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 1 and "CI=true but no MOTChallenge data root" in done.stdout, done.stdout
    env["CI"] = "false"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout


def test_unreadable_det_file_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    # Old: PermissionError traceback (root reads anything, so the refusal is simulated at open()).
    import builtins

    root = tmp_path / "root"
    seq = _sequence(root, images=False)
    det = seq / "det" / "det.txt"
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(det):
            raise PermissionError(errno.EACCES, "Permission denied", str(det))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--out", str(tmp_path / "o.txt")])
    assert code == 2
    assert f"fmtrack: error: {det}: cannot read (Permission denied)" == _one_line_error(capsys)


def test_huge_seqlength_without_frames_is_bounded_by_the_detections(tmp_path, capsys):
    # Old: seqLength=200,000 with detections in 4 frames looped over every empty frame (~40 s; 1e8: hours).
    root = tmp_path / "root"
    seq = _sequence(root, length=4, images=False)
    ini = seq / "seqinfo.ini"
    ini.write_text(ini.read_text().replace("seqLength=4", "seqLength=200000"))
    code = main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--out", str(tmp_path / "o.txt")])
    assert code == 2
    line = _one_line_error(capsys)
    assert f"{ini}:5: seqLength=200000" in line and "end at frame 4" in line
    ini.write_text(ini.read_text().replace("seqLength=200000", "seqLength=40"))  # a short empty tail is fine
    assert main(["run", "--seq", "SYN-01", "--data-root", str(root), "--preset", "sort", "--quiet",
                 "--no-score", "--out", str(tmp_path / "o.txt")]) == 0


def test_method_specs_read_true_and_false_as_switches():
    from fmtrack.benchmarks.methods import parse_method

    assert parse_method("bytetrack@confirm_first_frame=false").config.confirm_first_frame is False
    assert parse_method("fmtrack@freeze_lost_height=False").config.freeze_lost_height is False
    assert parse_method("sort@confirm_first_frame=true").config.confirm_first_frame is True
    with pytest.raises(ValueError, match="confirm_first_frame must be true or false, got 1"):
        parse_method("bytetrack@confirm_first_frame=1")
