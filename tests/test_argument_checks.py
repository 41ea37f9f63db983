"""Arguments that used to fail deep inside (a ZeroDivisionError, torch's RuntimeError), to do something
else than asked (a calibration of each detection against itself, a method's results overwritten by
another's), or to pass unnoticed: each is now one error naming the argument. Every test here fails on
the code before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmtrack.benchmarks.evaluate import run_methods, score_results_dir
from fmtrack.benchmarks.methods import parse_method
from fmtrack.cli import main
from fmtrack.embedder.calibration import label_free_pairs
from fmtrack.io import InputError, find_sequence, read_detections, read_seqinfo
from fmtrack.tracker import preset


def test_a_zero_appearance_threshold_is_refused_not_divided_by():
    with pytest.raises(ValueError, match="max_dist .* must be a finite distance > 0, got 0.0"):
        preset("fmtrack").with_max_distance(0.0)
    with pytest.raises(ValueError, match="max_dist .* must be a finite distance > 0, got nan"):
        preset("fmtrack").with_max_distance(float("nan"))


def test_calibrate_write_never_changes_the_shipped_model(data_root, capsys):
    """calibrate --features model --write rewrote the package's own sidecar: every later run's default
    threshold changed (TUD-Campus IDF1 49.9 -> 48.7 with --features model)."""
    from fmtrack.pipeline import default_model_path

    sidecar = default_model_path().with_suffix(".json")
    before = sidecar.read_bytes()
    assert main(["calibrate", "--features", "model", "--seq", "TUD-Campus", "--write", "--force",
                 "--data-root", str(data_root)]) == 2
    assert "ships with fmtrack" in capsys.readouterr().err and sidecar.read_bytes() == before


def test_render_of_a_sequence_without_frames_is_refused_before_tracking(data_root, tmp_path, capsys):
    """It tracked, wrote the results, then failed on the missing image folder."""
    out = tmp_path / "res.txt"
    assert main(["run", "--seq", "ADL-Rundle-6", "--data-root", str(data_root), "--render", str(tmp_path / "x.mp4"),
                 "--out", str(out), "--quiet"]) == 2
    assert "--render draws on the frames, and ADL-Rundle-6 has none here" in capsys.readouterr().err
    assert not out.exists()


def test_a_calibration_gap_below_one_frame_is_refused(data_root):
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    detections = read_detections(info.det_path)
    for gap in (0, -3, 1.5):
        with pytest.raises(ValueError, match=f"gap must be a whole number of frames >= 1, got {gap!r}"):
            label_free_pairs(detections, gap)
    same, _ = label_free_pairs(detections, 1)
    assert len(same) and (same[:, 0] != same[:, 1]).all()  # a pair joins two detections, never one twice


def test_calibrate_gap_is_refused_by_the_parser_before_any_embedding(capsys):
    """--gap 0 embedded all 900 frames of MOT16-11 before the error."""
    with pytest.raises(SystemExit):
        main(["calibrate", "--features", "hsv", "--gap", "0"])
    assert "argument --gap: must be 1 or more, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("threads, words", [(0, "threads must be a whole number from 1 to 512"),
                                            (100000, "threads must be a whole number from 1 to 512"),
                                            (True, "threads must be a whole number")])
def test_torch_thread_counts_are_checked_before_torch_sees_them(threads, words):
    from fmtrack.model.device import set_threads

    with pytest.raises(ValueError, match=words):
        set_threads(threads)


def test_run_threads_zero_means_torchs_default_and_negative_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--seq", "TUD-Campus", "--threads", "-2"])
    assert "argument --threads: must be 0 or more, got -2" in capsys.readouterr().err


def test_an_unknown_device_names_the_argument():
    from fmtrack.model.device import resolve_device

    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        resolve_device("tpu")


def test_a_method_spec_setting_one_key_twice_is_refused():
    with pytest.raises(ValueError, match="'high_confidence' is set twice"):
        parse_method("bytetrack@high_confidence=0.5,high_confidence=0.6")


@pytest.mark.parametrize("spec, words", [
    ("fmtrack@max_dist=abc", r"method 'fmtrack@max_dist=abc': max_dist .* must be a number, got 'abc'"),  # float()'s
    ("fmtrack@nosuchkey=1", r"method 'fmtrack@nosuchkey=1': unknown setting 'nosuchkey'"),  # TrackerConfig.__init__'s
])
def test_a_bad_method_spec_names_the_method_and_the_key(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_method(spec)


def test_two_methods_with_one_folder_name_keep_both_results(tmp_path, data_root, monkeypatch):
    """``pre/ok.json`` and ``pre_ok.json`` both make the folder name ``pre_ok.json``: the second used to
    overwrite the first's results and config while the table showed two rows."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pre").mkdir()
    for path, max_age in (("pre/ok.json", 30), ("pre_ok.json", 3)):
        (tmp_path / path).write_text(json.dumps(preset("bytetrack", max_age=max_age).to_dict()))
    evaluation = run_methods(["pre/ok.json", "pre_ok.json"], ["TUD-Campus"], data_root, tmp_path / "ev",
                             progress=False, hota=False)
    assert len(evaluation.table) == 2
    configs = {json.loads((tmp_path / "ev" / name / "config.json").read_text())["tracker"]["max_age"]
               for name in ("pre_ok.json", "pre_ok.json-2")}
    assert configs == {30, 3}
    with pytest.raises(ValueError, match="method 'bytetrack' is given twice"):
        run_methods(["bytetrack", "bytetrack"], ["TUD-Campus"], data_root, tmp_path / "ev2", progress=False)


def test_a_sequence_named_twice_is_refused_not_pooled_twice(tmp_path, data_root):
    """eval --seqs A A scored A twice and pooled both copies into OVERALL."""
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / "TUD-Campus.txt").write_text("1,1,10,10,5,20,1,-1,-1,-1\n")
    with pytest.raises(ValueError, match="sequence 'TUD-Campus' is given twice"):
        score_results_dir(folder, ["TUD-Campus", "TUD-Campus"], data_root, hota=False)
    with pytest.raises(ValueError, match="sequence 'TUD-Campus' is given twice"):
        run_methods(["sort"], ["TUD-Campus", "TUD-Campus"], data_root, tmp_path / "ev", progress=False, hota=False)
    from fmtrack.benchmarks.descriptor_quality import evaluate_descriptors

    with pytest.raises(ValueError, match="sequence 'TUD-Campus' is given twice"):
        evaluate_descriptors(["hsv"], ["TUD-Campus", "TUD-Campus"], tmp_path / "ed", None, data_root, progress=False)
    (folder / "notes.txt").write_text("not a result\n")  # a stray file is named, not the data root alone
    with pytest.raises(InputError, match=r"notes.txt: not the result file of a sequence .*--seqs"):
        score_results_dir(folder, None, data_root, hota=False)


def test_a_results_file_given_for_a_results_folder_says_so(tmp_path):
    path = tmp_path / "TUD-Campus.txt"
    path.write_text("1,1,10,10,5,20,1,-1,-1,-1\n")
    with pytest.raises(InputError, match="is a file, not a results folder"):
        score_results_dir(path)
    with pytest.raises(InputError, match="results folder not found"):
        score_results_dir(tmp_path / "missing")


@pytest.mark.parametrize("row, words", [
    ((1, 1, np.nan, 2, 3, 4), "result row 0 is not finite"),
    ((1, 1, 1, 2, -3, 4), "result row 0 has a width or height not above 0"),
    ((-1, 1, 1, 2, 3, 4), "result row 0 has a frame that is not a whole number >= 1"),
    ((1.5, 1, 1, 2, 3, 4), "result row 0 has a frame that is not a whole number >= 1"),  # was written as frame 1
    ((1, 0.5, 1, 2, 3, 4), "result row 0 has a track id that is not a whole number"),  # 0 is read (peers write it)
    ((1, 7, 1, 2, 3, 4), r"result row 1 repeats the \(frame, track id\) of an earlier row"),
])
def test_write_results_refuses_what_read_results_would_refuse(tmp_path, row, words):
    from fmtrack.io import read_results, write_results

    path = tmp_path / "r.txt"
    with pytest.raises(ValueError, match=words):
        write_results(path, [(1, 7, 5, 5, 10, 20), row] if "row 1" in words else [row])
    assert not path.exists()
    written = write_results(path, [(1, 7, 5, 5, 10, 20), (2, 7, 6, 5, 10, 20)])
    assert len(read_results(written)) == 2  # what it writes, the reader takes


def test_frame_rates_are_checked_alike_everywhere(tmp_path):
    """seqinfo.ini's frameRate is refused beyond 10,000; --fps and the library took 1e9, and the
    config's own scaling divided by zero."""
    import fmtrack
    from fmtrack.pipeline.video_run import frame_rate

    for bad in (0, -1, float("nan"), 1e9, True):
        with pytest.raises(ValueError, match=r"frame_rate must be a frame rate in \(0, 10000\]"):
            fmtrack.VideoTracker("bytetrack", None, frame_rate=bad)
        with pytest.raises(ValueError, match=r"frame_rate must be a frame rate in \(0, 10000\]"):
            preset("fmtrack").at_frame_rate(bad)  # 1e9 gave max_age 2,000,000,000
        if not isinstance(bad, bool):  # --fps is parsed as a float
            with pytest.raises(ValueError, match=r"--fps must be a frame rate in \(0, 10000\]"):
                frame_rate(None, bad)
    assert fmtrack.VideoTracker("bytetrack", None, frame_rate=np.float32(14)).config.max_age == 12
    from fmtrack.io.motchallenge import MAX_FRAME_RATE as IO_LIMIT
    from fmtrack.tracker.config import MAX_FRAME_RATE as TRACKER_LIMIT

    assert IO_LIMIT == TRACKER_LIMIT  # one bound, written twice only because the tracker does not import io


def test_a_text_file_given_as_a_video_is_refused(tmp_path):
    from fmtrack.video import open_frames

    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n" * 50)
    with pytest.raises(InputError, match="is a text file, not a video"):
        open_frames(path)


def test_library_arguments_of_the_wrong_kind_name_the_argument(tmp_path, data_root):
    import fmtrack

    with pytest.raises(ValueError, match="descriptor must be a name .* got int 5"):
        fmtrack.VideoTracker("fmtrack", descriptor=5)
    with pytest.raises(ValueError, match=r"camera_motion must be 'none', 'sof' or 'ecc' \(a per-frame affine"):
        fmtrack.VideoTracker("bytetrack", None, camera_motion=np.eye(3))
    video = fmtrack.VideoTracker("fmtrack", descriptor="hsv", camera_motion="none")
    with pytest.raises(ValueError, match=r"frame is empty: shape \(0, 0, 3\)"):
        video.update(np.zeros((0, 0, 3), np.uint8), np.array([[1.0, 1, 10, 20]]), np.array([0.9]))
    with pytest.raises(ValueError, match="path must be a file path, got NoneType None"):
        read_detections(None)
    detections = read_detections(read_seqinfo(find_sequence("TUD-Campus", data_root)).det_path)
    for frame in (1.5, "1"):
        with pytest.raises(ValueError, match="frame must be a whole frame number"):
            detections.at(frame)
    assert len(detections.at(np.int64(1))[0]) == len(detections.at(1)[0]) > 0
    assert len(detections.at(0)[0]) == 0  # frames are 1-based: frame 0 holds nothing


@pytest.mark.parametrize("text, words", [("[Other]\nx=1\n", r"no \[Sequence\] section"),
                                         ("[Sequence]\nname=S\nseqLength=5\nimWidth=9\nimHeight=9\n",
                                          r"no frameRate= in its \[Sequence\] section")])
def test_a_seqinfo_missing_a_section_or_key_says_which(tmp_path, text, words):
    (tmp_path / "seqinfo.ini").write_text(text)
    with pytest.raises(InputError, match=words):
        read_seqinfo(tmp_path)


def test_a_crops_file_of_another_kind_is_named_as_such(tmp_path):
    from fmtrack.training.crops import load_crops

    for name, write in (("h.npy", lambda p: np.save(p, np.zeros((2, 3)))),  # was: no context manager protocol
                        ("det.txt", lambda p: p.write_text("1,-1,1,2,3,4,1,-1,-1,-1\n"))):  # was: "allow_pickle=..."
        path = tmp_path / name
        write(path)
        with pytest.raises(InputError, match="not a crops file: a crops file is the .npz `fmtrack crops` writes"):
            load_crops(path)


def test_sigterm_removes_a_write_in_progress_as_ctrl_c_does(tmp_path, monkeypatch, capsys):
    """A SIGTERM mid-write left the hidden temporary (``.r.txt.XXXX.tmp``) behind; Ctrl-C did not."""
    import os
    import signal
    import time

    from fmtrack import cli
    from fmtrack.io import atomic_write

    out = tmp_path / "r.txt"

    def terminated_mid_write(args):
        with atomic_write(out, "w") as fh:
            fh.write("partial")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises in here

    monkeypatch.setattr(cli, "cmd_run", terminated_mid_write)
    assert cli.main(["run", "--seq", "TUD-Campus", "--out", str(out)]) == 143
    assert list(tmp_path.iterdir()) == [] and "fmtrack: terminated (nothing half-written is left)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is not cli._terminate  # put back as it was


def test_all_zero_features_in_a_file_are_refused_and_some_warned(tmp_path):
    """A file of zero features tracked with no word (every detection a new track: 60 tracks of 67 boxes)."""
    from fmtrack.io import InputWarning, read_feature_array

    rows = np.column_stack([np.arange(1, 5), -np.ones(4), np.full((4, 4), 10.0), np.ones(4), np.zeros((4, 8))])
    np.save(tmp_path / "zero.npy", rows)
    with pytest.raises(InputError, match="zero.npy: every feature is all zeros"):
        read_feature_array(tmp_path / "zero.npy")
    rows[1:, 7:] = 1.0
    np.save(tmp_path / "some.npy", rows)
    with pytest.warns(InputWarning, match=r"some.npy:1: 1 of 4 features are all zeros"):
        assert len(read_feature_array(tmp_path / "some.npy")) == 4


def test_an_output_under_a_file_says_so_and_a_pathless_error_has_no_placeholder(tmp_path):
    from fmtrack.io import check_output

    (tmp_path / "TUD.txt").write_text("x")
    with pytest.raises(InputError, match=r"x.txt: cannot write: .*TUD.txt is a file, not a folder"):
        check_output(tmp_path / "TUD.txt" / "sub" / "x.txt")  # was: cannot write (File exists)
    assert str(InputError(None, "calibrate needs a descriptor")) == "calibrate needs a descriptor"  # was "<input>: ..."
    assert str(InputError("a.txt", "bad", 3)) == "a.txt:3: bad"


def test_tab_separated_detections_read_as_space_separated_ones_do(tmp_path):
    rows = ["1,-1,10,20,30,40,0.9,-1,-1,-1", "2,-1,11,21,30,40,0.8,-1,-1,-1"]
    read = {}
    for name, separator in (("comma", ","), ("space", " "), ("tab", "\t")):
        path = tmp_path / f"{name}.txt"
        path.write_text("\n".join(r.replace(",", separator) for r in rows) + "\n")
        read[name] = read_detections(path)
    for name in ("space", "tab"):  # tab-separated was "expected 10 or 7 comma-separated columns, found 1"
        np.testing.assert_array_equal(read[name].boxes, read["comma"].boxes)


def test_export_refuses_a_name_whose_sidecar_would_be_itself(tmp_path):
    """``export --out m.json`` wrote the weights to m.json, then the sidecar over them (and over
    m.safetensors' sidecar), and reported success."""
    import shutil

    from fmtrack.pipeline import default_model_path

    weights = tmp_path / "w.safetensors"
    shutil.copy(default_model_path(), weights)
    shutil.copy(default_model_path().with_suffix(".json"), weights.with_suffix(".json"))
    for out in ("m.json", "m.pt", "m"):
        assert main(["export", "--weights", str(weights), "--out", str(tmp_path / out)]) == 2
        assert not (tmp_path / out).exists()
    assert main(["export", "--weights", str(weights), "--out", str(tmp_path / "m.safetensors")]) == 0


def test_diagnose_labels_two_runs_weights_apart():
    from fmtrack.training.diagnose import model_labels

    assert model_labels(["B/weights.safetensors", "C/weights.safetensors", "x/m.safetensors"]) == [
        "B/weights", "C/weights", "m"]  # both were "weights": the second overwrote the first's row
    with pytest.raises(ValueError, match="given twice"):
        model_labels(["B/w.safetensors", "./B/w.safetensors"])


def test_diagnose_points_beyond_the_encoded_crops_are_refused_before_any_model_loads(tmp_path, capsys):
    """--points 100000 ran for over ten minutes: only the mixup points grew past the 1,000 encodings."""
    from fmtrack.training.diagnose import diagnose

    with pytest.raises(ValueError, match=r"points per model must be 1 to 1000 \(the crops encoded\), got 100000"):
        diagnose(["missing.safetensors"], "missing.npz", tmp_path, n_points=100_000)
    for points in ("0", "-3"):
        with pytest.raises(SystemExit):
            main(["diagnose", "--weights", "w.safetensors", "--crops", "c.npz", "--points", points])
        assert "must be 1 or more" in capsys.readouterr().err


def test_input_errors_survive_pickling_as_ray_sends_them():
    """A worker's InputError reached the driver as Ray's 'Failed to deserialize exception': pickle
    rebuilt it from its message alone, and the constructor takes (path, problem, line)."""
    import pickle

    from fmtrack.pipeline.sequence import MethodUnavailable

    for err in (InputError("img1/000030.jpg", "unreadable image", 3), InputError(None, "no data"),
                MethodUnavailable("x.npy", "no features for this sequence")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and (back.path, back.line) == (err.path, err.line)


def test_bench_counts_and_train_flag_pairs_are_refused_before_any_work(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "tracker", "--repeats", "0"])  # timed every preset, then ZeroDivisionError
    assert "argument --repeats: must be 1 or more, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--crops", "c.npz", "--out", "run", "--resume", "--overwrite"])  # --overwrite was ignored
    assert "--resume continues the run in --out and --overwrite starts it over" in capsys.readouterr().err


def test_a_tune_storage_optuna_cannot_open_is_named(tmp_path, data_root, capsys):
    pytest.importorskip("optuna")
    not_a_journal = tmp_path / "best.json"
    not_a_journal.write_text('{"a":\n')
    for storage in ("bogus://x", str(not_a_journal)):  # were SQLAlchemy's NoSuchModuleError, a bare JSON error
        assert main(["tune", "--preset", "bytetrack", "--seqs", "TUD-Campus", "--trials", "1", "--quiet",
                     "--out", str(tmp_path / "b.json"), "--storage", storage, "--data-root", str(data_root)]) == 2
        assert "--storage: not an Optuna journal file or RDB URL" in capsys.readouterr().err
    assert not_a_journal.read_text() == '{"a":\n' and not (tmp_path / "b.json").exists()


def _snapshot_after_a_few_frames():
    from fmtrack.tracker import Tracker

    tracker = Tracker(preset("bytetrack"))
    for f in range(4):
        tracker.update(np.array([[10.0 + 3 * f, 10, 20, 40], [200, 50, 30, 60]]), np.array([0.9, 0.8]))
    return tracker.snapshot()


@pytest.mark.parametrize("key, change, words", [
    ("tracks/mean", lambda v: v * np.nan, "tracks/mean is not finite"),  # every track vanished at the next frame
    ("tracks/track_id", lambda v: np.ones_like(v), "track ids .* repeat"),  # two tracks reported as id 1
    ("_next_id", lambda v: np.array(1), "track ids .* not below _next_id"),
    ("tracks/slot", lambda v: np.full_like(v, -7), "tracks/slot must be -1"),
    ("frame_count", lambda v: np.array(-100), "'frame_count' is -100, below 0"),
    ("tracks/hits", lambda v: np.zeros_like(v), "tracks/hits holds 0, below 1"),
])
def test_a_tampered_tracker_snapshot_is_refused_at_restore(key, change, words):
    from fmtrack.tracker import Tracker

    state = _snapshot_after_a_few_frames()
    Tracker.from_snapshot(state)  # the untouched one restores
    with pytest.raises(ValueError, match=words):
        Tracker.from_snapshot({**state, key: change(state[key])})


def test_a_video_tracker_snapshot_is_checked_at_restore():
    import fmtrack

    video = fmtrack.VideoTracker("bytetrack", None)
    for f in range(3):
        video.update(None, np.array([[10.0 + 3 * f, 10, 20, 40]]), np.array([0.9]))
    state = video.snapshot()
    with pytest.raises(ValueError, match="snapshot must be the dict of arrays"):
        video.restore([1, 2])  # was AttributeError: 'list' object has no attribute 'items'
    with pytest.raises(ValueError, match="taken with the 'bytetrack' configuration; this VideoTracker runs 'sort'"):
        fmtrack.VideoTracker("sort", None).restore(state)  # was accepted, failing frames later
    with pytest.raises(ValueError, match="pipeline.frame_index must be one whole number"):
        video.restore({**state, "pipeline.frame_index": np.array(["x"], dtype=object)})
    assert video.frame_index == 0  # a failed restore leaves the stream as after reset()
    video.restore(state)
    assert video.frame_index == 3
