"""fmtrack.VideoTracker: the library's pipeline object against the bare tracker and the command line,
its defaults, and its input checks.

The library-equals-CLI tests feed frames (cv2.imread of img1/*.jpg) and det.txt rows (numpy) through
the public API only and compare with the result file ``fmtrack run`` writes for the same sequence.
"""

from __future__ import annotations

import configparser
import json
import math
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import fmtrack
from fmtrack.cli import main
from fmtrack.embedder import HSVEmbedder
from fmtrack.pipeline import default_model_path
from fmtrack.scores import SCORE_MAPS, ScoreRangeWarning
from fmtrack.tracker import Track, Tracker, preset


def _walkers(seed: int = 0, frames: int = 40, people: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic people moving at constant speed (tlwh boxes), scores in [0.3, 1], 10% dropouts."""
    rng = np.random.default_rng(seed)
    start, velocity = rng.uniform(0, 500, (people, 2)), rng.uniform(-3, 3, (people, 2))
    out = []
    for f in range(frames):
        xy = start + f * velocity + rng.normal(0, 0.5, (people, 2))
        boxes = np.column_stack([xy, np.full(people, 40.0), np.full(people, 100.0)])
        keep = rng.random(people) > 0.1
        out.append((boxes[keep], rng.uniform(0.3, 1.0, people)[keep]))
    return out


def _as_rows(tracks: list[Track]) -> list[tuple]:
    return [(t.track_id, *np.round(t.tlwh, 9)) for t in tracks]


@pytest.mark.parametrize("name", ["bytetrack", "sort", "motion"])
def test_without_descriptor_it_is_the_bare_tracker(name):
    video = fmtrack.VideoTracker(name, descriptor=None, camera_motion="none")
    bare = Tracker(preset(name, camera_motion="none"))
    for boxes, scores in _walkers():
        assert _as_rows(video.update(None, boxes, scores)) == _as_rows(bare.update(boxes, scores))


def test_xyxy_boxes_give_the_tlwh_tracks():
    tlwh = fmtrack.VideoTracker("bytetrack", descriptor=None)
    xyxy = fmtrack.VideoTracker("bytetrack", descriptor=None, box_format="xyxy")
    for boxes, scores in _walkers(1):
        corners = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
        assert _as_rows(tlwh.update(None, boxes, scores)) == _as_rows(xyxy.update(None, corners, scores))


def test_reset_gives_a_fresh_trackers_output():
    video = fmtrack.VideoTracker("bytetrack", descriptor=None)
    first = [_as_rows(video.update(None, b, s)) for b, s in _walkers(2)]
    video.reset()
    assert [_as_rows(video.update(None, b, s)) for b, s in _walkers(2)] == first


@pytest.mark.skipif("detection" not in Track._fields, reason="Track.detection comes with the tracker branch")
def test_track_detection_indexes_the_rows_passed_in():
    # deepsort drops scores below 0.3 before embedding, so the kept rows are not 0..n-1.
    rng = np.random.default_rng(3)
    video = fmtrack.VideoTracker("deepsort", descriptor="deepsort")
    identities = rng.normal(size=(5, 16))
    for boxes, scores in _walkers(3):
        boxes = np.vstack([boxes, [[900.0, 900, 40, 100]]])  # a low-scored stray row first in line
        scores = np.r_[scores, 0.05]
        order = rng.permutation(len(boxes))
        features = np.vstack([identities[: len(boxes) - 1], rng.normal(size=(1, 16))])
        tracks = video.update(None, boxes[order], scores[order], features=features[order])
        for track in tracks:
            if track.detection >= 0:
                assert np.abs(boxes[order][track.detection] - track.tlwh).max() < 5.0


def test_default_is_the_fmtrack_preset_with_the_shipped_model_fused_with_hsv():
    sidecar = json.loads(default_model_path().with_suffix(".json").read_text())
    tracker = fmtrack.VideoTracker()
    config = tracker.config
    assert config.name == "fmtrack" and config.metric == "euclidean"
    # Parts in units of their own thresholds, HSV weighted 3: a pair at both thresholds is at sqrt(1 + 9).
    assert config.appearance_threshold == pytest.approx(math.sqrt(10))
    (model, model_weight, model_threshold), (hsv, hsv_weight, _) = tracker.embedder.parts
    assert model.weights_path == default_model_path() and isinstance(hsv, HSVEmbedder)
    assert (model_weight, hsv_weight) == (1.0, 3.0)
    assert model_threshold == pytest.approx(sidecar["thresholds"]["euclidean"])
    assert config.camera_motion == preset("fmtrack").camera_motion


def test_a_model_without_a_calibrated_threshold_stops_and_names_calibrate(tmp_path, data_root, capsys):
    weights = tmp_path / "fresh.safetensors"
    shutil.copy(default_model_path(), weights)
    sidecar = json.loads(default_model_path().with_suffix(".json").read_text())
    sidecar["thresholds"] = {}
    weights.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match=r"fmtrack calibrate --features .*fresh.safetensors --seq SEQ --write"):
        fmtrack.VideoTracker("fmtrack", descriptor=weights)
    code = main(["run", "--seq", "TUD-Campus", "--data-root", str(data_root), "--features", str(weights),
                 "--out", str(tmp_path / "out.txt"), "--quiet"])
    assert code == 2 and "fmtrack calibrate --features" in capsys.readouterr().err
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("kwargs, words", [
    (dict(preset="fmtrack", descriptor=None), "uses appearance"),
    (dict(preset="sort", descriptor=None, detector="dpm"), "own score scale"),
    (dict(preset="bytetrack", descriptor=None, detector="yolo"), "unknown detector"),
    (dict(preset="bytetrack", descriptor=None, box_format="xywh"), "box_format"),
    (dict(preset="bytetrack", descriptor=None, frame_rate=0), "frame_rate"),
    (dict(preset="bytetrack", descriptor=None, max_agee=3), "unknown setting .max_agee. for preset .bytetrack."),
    (dict(preset="nonesuch", descriptor=None), "unknown preset"),
])
def test_bad_construction_is_one_clear_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        fmtrack.VideoTracker(**kwargs)


@pytest.mark.parametrize("frame, words", [
    (None, "frame is None"),
    (np.zeros((48, 64), np.uint8), r"\(H, W, 3\) uint8"),
    (np.zeros((48, 64, 4), np.uint8), r"\(H, W, 3\) uint8"),
    (np.zeros((48, 64, 3), np.float32), r"\(H, W, 3\) uint8"),
])
def test_frames_are_checked_when_the_descriptor_needs_them(frame, words):
    video = fmtrack.VideoTracker("fmtrack", descriptor="hsv", camera_motion="none")
    with pytest.raises(ValueError, match=words):
        video.update(frame, np.array([[1.0, 1, 10, 20]]), np.array([0.9]))


@pytest.mark.parametrize("boxes, scores, kwargs, words", [
    ([[10, 10, 5, 50]], [0.9], dict(box_format="xyxy"), r"row 0 has x2 < x1 \(5.0 < 10.0\): tlwh given as xyxy"),
    ([[1, 2, -3, 4]], [0.5], {}, r"boxes row 0 has negative width -3.0"),  # was skipped without a word
    ([[1, 2, 3, 4]], [True], {}, "scores must be real numbers, got an array of dtype bool"),
    ([[10, np.nan, 5, 5]], [0.9], {}, "boxes row 0 is not finite"),
    ([[10, 10, 5, 5, 1]], [0.9], {}, r"shape \(N, 4\)"),
    ([[10, 10, 5, 5]], [0.9, 0.8], {}, r"scores must have shape \(N=1,\)"),
    ([[10, 10, 5, 5]], [np.inf], {}, "scores row 0 is not finite"),
])
def test_bad_frame_input_is_one_clear_error(boxes, scores, kwargs, words):
    video = fmtrack.VideoTracker("bytetrack", descriptor=None, **kwargs)
    with pytest.raises(ValueError, match=words):
        video.update(None, np.array(boxes, dtype=float), np.array(scores))


def test_a_wrong_frame_is_refused_where_nothing_reads_it_too():
    """VideoTracker('bytetrack') (no descriptor or camera motion in use) took a float (4, 4) frame."""
    video = fmtrack.VideoTracker("bytetrack")
    with pytest.raises(ValueError, match=r"frame must be an \(H, W, 3\) uint8 BGR image"):
        video.update(np.zeros((4, 4), np.float32), np.array([[10, 10, 20, 40.0]]), np.array([0.9]))
    assert video.frame_index == 0
    video.update(None, np.array([[10, 10, 20, 40.0]]), np.array([0.9]))  # None stays fine where unused


def test_a_negative_box_is_an_error_on_the_appearance_path_too():
    """With a descriptor (or camera motion) the boxes are filtered before the tracker sees them; a
    negative width was dropped there and counted as skipped, with no word, unlike in Tracker."""
    video = fmtrack.VideoTracker("fmtrack", descriptor="hsv", camera_motion="ecc")
    frame = np.full((48, 64, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="boxes row 1 has negative width -3.0"):
        video.update(frame, np.array([[1.0, 1, 10, 20], [1, 2, -3, 4]]), np.array([0.9, 0.5]))
    video.update(frame, np.array([[1.0, 1, 10, 20], [1, 2, 0, 4]]), np.array([0.9, 0.5]))  # zero: skipped
    assert video.skipped_detections == 1


def test_a_refused_frame_changes_nothing_and_the_stream_goes_on():
    """A refused update() still counted a frame (and moved the camera-motion reference and the score
    range): features read by frame number then came from the wrong frame, or the stream died."""
    frames = _walkers(3, frames=12)
    clean = fmtrack.VideoTracker("fmtrack", descriptor="deepsort", camera_motion="ecc", detector="dpm")
    hit = fmtrack.VideoTracker("fmtrack", descriptor="deepsort", camera_motion="ecc", detector="dpm")
    image = np.full((600, 600, 3), 100, np.uint8)
    rng = np.random.default_rng(0)
    for index, (boxes, scores) in enumerate(frames):
        features = rng.normal(size=(len(boxes), 16))
        if index == 5:
            for bad in (dict(class_ids=np.full(len(boxes), 0.5)), dict(features=np.ones((len(boxes), 7))),
                        dict(camera_motion=np.eye(3)[:, :2])):
                arguments = {"features": features, **bad}
                with pytest.raises(ValueError), warnings.catch_warnings():
                    warnings.simplefilter("ignore", ScoreRangeWarning)  # scores beyond dpm's range: not kept
                    hit.update(image, boxes, scores * 9, **arguments)
            assert hit.frame_index == clean.frame_index == 5
        assert _as_rows(hit.update(image, boxes, scores, features=features)) == \
            _as_rows(clean.update(image, boxes, scores, features=features))
    assert hit._scores.high == clean._scores.high and not hit._scores.warned


@pytest.mark.parametrize("kwargs, words", [
    (dict(features=[["a"] * 4]), "features must be real numbers"),  # was numpy's UFuncTypeError
    (dict(features=np.ones((1, 4)) * (1 + 2j)), "features must be real numbers"),  # imaginary part dropped
    (dict(camera_motion="none"), "camera_motion must be real numbers"),  # was "could not convert string"
    (dict(camera_motion=[[1, 0, 0], [0, 1]]), "camera_motion must be an array of real numbers"),  # ragged
    (dict(camera_motion=np.eye(3)[:2] * (1 + 1j)), "camera_motion must be real numbers"),
    (dict(class_ids=[[1, 2], [3]]), "class_ids must be an array of real numbers"),
])
def test_every_per_frame_argument_is_checked_as_boxes_are(kwargs, words):
    video = fmtrack.VideoTracker("deepsort", descriptor="deepsort")
    arguments = {"features": np.ones((1, 4)), **kwargs}
    with pytest.raises(ValueError, match=words):
        video.update(None, np.array([[1.0, 1, 10, 20]]), np.array([0.9]), **arguments)


def test_features_of_another_length_than_the_descriptor_are_refused_on_the_first_frame():
    """Checked only against the tracker's first frame: 5 values a row ran against the default
    descriptor's 256-value threshold."""
    video = fmtrack.VideoTracker("fmtrack", descriptor="hsv")
    frame = np.full((480, 640, 3), 90, np.uint8)
    with pytest.raises(ValueError, match="features have 5 values per row, but this tracker's descriptor gives 128"):
        video.update(frame, np.array([[198.0, 203, 62, 141]]), np.array([0.9]), features=np.ones((1, 5)))
    video.update(frame, np.array([[198.0, 203, 62, 141]]), np.array([0.9]), features=np.ones((1, 128)))


def test_a_caller_reusing_one_frame_buffer_gets_what_fresh_frames_give():
    """The previous frame was kept by reference: a caller decoding into one buffer had camera motion
    estimated between two identical images (track 1 at x 281.26 against 282.0)."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (240, 320, 3), np.uint8)
    fresh = fmtrack.VideoTracker("bytetrack", None, camera_motion="ecc")
    reused = fmtrack.VideoTracker("bytetrack", None, camera_motion="ecc")
    buffer = np.empty_like(texture)
    for f in range(6):
        image = np.roll(texture, 4 * f, axis=1)
        boxes, scores = np.array([[100.0 + 4 * f, 60, 30, 80]]), np.array([0.9])
        buffer[:] = image
        assert _as_rows(reused.update(buffer, boxes, scores)) == _as_rows(fresh.update(image, boxes, scores))
    assert not np.shares_memory(reused.snapshot()["pipeline.previous_frame"], buffer)


def test_a_camera_motion_with_last_row_0_0_1_is_taken_as_the_tracker_takes_it():
    affine = np.array([[1.0, 0, 2], [0, 1, -1]])
    two, three = (fmtrack.VideoTracker("bytetrack", descriptor=None) for _ in range(2))
    for boxes, scores in _walkers(4, frames=10):
        assert _as_rows(two.update(None, boxes, scores, camera_motion=affine)) == \
            _as_rows(three.update(None, boxes, scores, camera_motion=np.vstack([affine, [0, 0, 1]])))


def test_deepsort_descriptor_takes_features_per_frame():
    video = fmtrack.VideoTracker("deepsort", descriptor="deepsort")
    with pytest.raises(ValueError, match="pass features="):
        video.update(None, np.array([[1.0, 1, 10, 20]]), np.array([0.9]))
    video.update(None, np.array([[1.0, 1, 10, 20]]), np.array([0.9]), features=np.ones((1, 8)))


def test_scores_go_through_the_detectors_map_and_a_foreign_range_warns_once():
    dpm = SCORE_MAPS["dpm"]
    video = fmtrack.VideoTracker("bytetrack", descriptor=None, detector="dpm")
    boxes = np.array([[100.0, 100, 40, 100]])
    raw = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say inside the map's range
        for _ in range(3):
            tracks = video.update(None, boxes, np.array([raw]))
    # Closed form: linear between the two knots around the raw score.
    k = int(np.searchsorted(dpm.knots, raw))
    (x0, x1), (y0, y1) = dpm.knots[k - 1:k + 1], dpm.levels[k - 1:k + 1]
    assert tracks[0].score == pytest.approx(y0 + (raw - x0) * (y1 - y0) / (x1 - x0))
    with pytest.warns(ScoreRangeWarning, match=r"span \[2, 55\].*'dpm'") as record:
        video.update(None, boxes, np.array([55.0]))
        video.update(None, boxes, np.array([70.0]))
    assert len(record) == 1


def _seqinfo(sequence_dir: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(sequence_dir / "seqinfo.ini")
    return parser["Sequence"]


def _library_rows(sequence_dir: Path, preset_name: str, features_file: Path | None = None, **kwargs) -> np.ndarray:
    """Public API only: frames read with OpenCV, det.txt (or the features file's rows) with numpy."""
    info = _seqinfo(sequence_dir)
    table = (np.load(features_file) if features_file is not None
             else np.loadtxt(sequence_dir / "det" / "det.txt", delimiter=",", ndmin=2))
    table = table[np.argsort(table[:, 0], kind="stable")]
    video = fmtrack.VideoTracker(preset_name, frame_rate=float(info["frameRate"]), **kwargs)
    needs_frames = video.config.camera_motion != "none" or (video.embedder is not None and video.embedder.needs_image)
    rows = []
    for frame in range(1, int(info["seqLength"]) + 1):
        at = table[table[:, 0] == frame]
        image = cv2.imread(str(sequence_dir / "img1" / f"{frame:06d}.jpg")) if needs_frames else None
        features = at[:, 7:] if features_file is not None else None
        for track in video.update(image, at[:, 2:6], at[:, 6], features=features):
            rows.append([frame, track.track_id, *track.tlwh])
    return np.array(rows).reshape(-1, 6)


def _same_as_cli(tmp_path: Path, data_root: Path, sequence: str, library: np.ndarray, cli_args: list[str]) -> None:
    from fmtrack.io import write_results

    cli_out, lib_out = tmp_path / "cli.txt", tmp_path / "library.txt"
    assert main(["run", "--seq", sequence, "--data-root", str(data_root), "--out", str(cli_out), "--quiet",
                 "--no-score", *cli_args]) == 0
    write_results(lib_out, library)  # the CLI's own format, so both round the same way
    cli_lines, lib_lines = cli_out.read_text().splitlines(), lib_out.read_text().splitlines()
    assert len(cli_lines) > 0
    assert lib_lines == cli_lines


def _sequence_dir(data_root: Path, sequence: str) -> Path:
    from fmtrack.io import find_sequence

    return find_sequence(sequence, data_root)


@pytest.fixture()
def temporary_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))


def test_library_equals_cli_on_tud_campus_with_the_defaults(data_root, tmp_path, temporary_cache):
    library = _library_rows(_sequence_dir(data_root, "TUD-Campus"), "fmtrack", detector="acf")
    _same_as_cli(tmp_path, data_root, "TUD-Campus", library, [])


@pytest.mark.slow
@pytest.mark.parametrize("preset_name", ["fmtrack", "bytetrack"])
def test_library_equals_cli_on_mot16_09(preset_name, data_root, tmp_path, temporary_cache):
    library = _library_rows(_sequence_dir(data_root, "MOT16-09"), preset_name, detector="dpm")
    _same_as_cli(tmp_path, data_root, "MOT16-09", library, ["--preset", preset_name])


@pytest.mark.slow
def test_library_equals_cli_for_deepsort_with_its_features_on_mot17_09_frcnn(data_root, tmp_path):
    from fmtrack.io import deepsort_features_path

    sequence = "MOT17-09-FRCNN"
    library = _library_rows(_sequence_dir(data_root, sequence), "deepsort",
                            deepsort_features_path(sequence, data_root), descriptor="deepsort")
    _same_as_cli(tmp_path, data_root, sequence, library, ["--preset", "deepsort"])


def test_the_overhead_over_the_bare_tracker_is_measured_and_printed(capsys):
    """VideoTracker's own per-frame work is a benchmark figure (``fmtrack bench tracker`` prints it;
    README "Speed"), not a timed assertion: here, that the benchmark times both on the same frames
    and says so."""
    from fmtrack.benchmarks.tracker_speed import video_tracker_overhead

    frames = [(boxes, scores, None) for boxes, scores in _walkers(4, frames=50, people=10)]
    rates = video_tracker_overhead(frames, repeats=1, presets=("bytetrack",))
    bare, wrapped = rates["bytetrack"]
    assert bare > 0 and wrapped > 0
    printed = capsys.readouterr().out
    assert f"bytetrack: Tracker.update {bare:.0f} frames/s, VideoTracker.update {wrapped:.0f} frames/s (overhead" in printed


@pytest.mark.skipif(not hasattr(Tracker, "snapshot"), reason="Tracker.snapshot comes with the tracker branch")
def test_snapshot_restore_mid_stream_continues_identically():
    stream = _walkers(5, frames=60)
    video = fmtrack.VideoTracker("bytetrack", descriptor=None)
    for boxes, scores in stream[:30]:
        video.update(None, boxes, scores)
    state = video.snapshot()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    moved = fmtrack.VideoTracker("bytetrack", descriptor=None)
    moved.restore(state)
    for boxes, scores in stream[30:]:
        assert _as_rows(moved.update(None, boxes, scores)) == _as_rows(video.update(None, boxes, scores))


def test_run_says_which_model_where_features_are_cached_and_time_by_part(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))
    args = ["run", "--seq", "TUD-Campus", "--data-root", str(data_root), "--out", str(tmp_path / "r.txt"),
            "--quiet", "--no-score"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert (f"descriptor: {default_model_path().stem}+hsv*3 (the default: the shipped model fused with HSV "
            f"histograms), euclidean distance, threshold 3.162 ({default_model_path()}+hsv*3)") in first
    assert f"features: computed and cached in {tmp_path / 'cache' / 'features'}" in first
    assert all(part in first for part in ("embedding", "camera motion", "tracking", "frames/s end to end"))
    assert main(args) == 0
    assert "features: read from the cache" in capsys.readouterr().out
