"""The Tracker as users hold it: a required config, ids given at first report, the detection index of
each track, reset(), and snapshot/restore round trips checked against uninterrupted runs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from fmtrack.benchmarks.tracker_speed import load_frames, synthetic_stream
from fmtrack.tracker import PRESETS, Tracker, preset

ALL_PRESETS = sorted(PRESETS)


def _run(tracker: Tracker, frames, motion_every: int = 0, start: int = 0) -> list[list[tuple]]:
    """Every reported track of every frame as a tuple of plain values (tlwh as exact bytes).
    ``frames`` are frames start, start + 1, ... of a stream; every ``motion_every``-th frame of the
    stream gets a camera motion."""
    out = []
    for index, (boxes, scores, feats) in enumerate(frames, start):
        motion = None
        if motion_every and index % motion_every == 0:  # a small pan and zoom now and then
            motion = np.array([[1.001, 0.0, 0.7], [0.0, 1.001, -0.3]])
        tracks = tracker.update(boxes, scores, feats if tracker.config.uses_appearance else None, motion)
        out.append([(t.track_id, t.tlwh.tobytes(), t.confirmed, t.time_since_update, t.hits, t.age, t.score,
                     t.detection) for t in tracks])
    return out


def test_config_is_required():
    with pytest.raises(TypeError):
        Tracker()  # noqa -- no silent default preset
    with pytest.raises(TypeError, match="TrackerConfig or a preset name"):
        Tracker(3)
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        Tracker("nope")
    assert Tracker("sort").config == PRESETS["sort"]


def test_ids_are_contiguous_in_order_of_first_report():
    # DeepSORT confirms after 3 hits. Person A is seen in every frame; a flicker (frames 2-3 only)
    # dies tentative; person B appears from frame 4. Reported ids: A 1 (from frame 3), B 2 (from
    # frame 6): the flicker took no id.
    tracker = Tracker("deepsort")
    first_seen = {}
    for frame in range(1, 9):
        boxes, feats = [[100.0 + frame, 100, 40, 100]], [np.eye(4)[0]]
        if frame in (2, 3):
            boxes.append([400.0, 400, 40, 100])
            feats.append(np.eye(4)[1])
        if frame >= 4:
            boxes.append([800.0, 100, 40, 100])
            feats.append(np.eye(4)[2])
        for track in tracker.update(np.array(boxes), np.ones(len(boxes)), np.array(feats)):
            first_seen.setdefault(track.track_id, frame)
    assert first_seen == {1: 3, 2: 6}


def test_detection_is_the_input_row_of_the_match():
    # The tracker drops rows before association (confidence below 0.3, a zero-width box); the index
    # still names the row of the caller's array.
    tracker = Tracker("deepsort")
    rng = np.random.default_rng(0)
    looks = np.eye(8)[:2]
    for frame in range(6):
        people = np.array([[300.0 + 3 * frame, 100, 40, 100], [600.0 + 3 * frame, 100, 40, 100]])
        # Rows: a low-confidence box, person 1, a zero-width box, person 0; reversed in odd frames.
        order = [0, 1, 2, 3] if frame % 2 == 0 else [3, 2, 1, 0]
        boxes = np.array([[10.0, 10, 20, 40], people[1], [50.0, 50, 0, 10], people[0]])[order]
        scores = np.array([0.1, 0.9, 0.9, 0.9])[order]
        feats = np.vstack([rng.normal(size=8), looks[1], rng.normal(size=8), looks[0]])[order]
        person_row = {0: order.index(3), 1: order.index(1)}
        out = tracker.update(boxes, scores, feats)
        if frame >= 2:  # confirmed and reported from the third frame
            assert len(out) == 2
            for track in out:
                person = int(track.tlwh[0] > 450)
                assert track.detection == person_row[person], (frame, track)
    # A coasting track names no detection.
    out = tracker.update(np.zeros((0, 4)), None, np.zeros((0, 8)))
    assert len(out) == 2 and all(t.detection == -1 and t.time_since_update == 1 for t in out)


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_reset_gives_a_fresh_trackers_output(name):
    first = list(synthetic_stream(120, seed=1, dim=16))
    second = list(synthetic_stream(150, seed=2, dim=16))
    used = Tracker(name)
    _run(used, first)
    used.reset()
    fresh = Tracker(name)
    assert _run(used, second) == _run(fresh, second)
    assert used.frame_count == fresh.frame_count == 150


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a[key].dtype == b[key].dtype, key


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_snapshot_round_trip_on_a_synthetic_stream(name, tmp_path):
    frames = list(synthetic_stream(300, seed=3, dim=16))
    whole = Tracker(name)
    expected = _run(whole, frames, motion_every=7)
    head = Tracker(name)
    got = _run(head, frames[:120], motion_every=7)
    head.save_snapshot(tmp_path / "state")  # no suffix: written where asked, not at state.npz
    assert [p.name for p in tmp_path.iterdir()] == ["state"]  # and no temporary left behind
    resumed = Tracker.load_snapshot(tmp_path / "state")
    got += _run(resumed, frames[120:], motion_every=7, start=120)
    assert got == expected
    _assert_same_state(resumed.snapshot(), whole.snapshot())


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_snapshot_round_trip_mid_stream_on_mot17_09(name, data_root):
    """Snapshot at frame 200 of MOT17-09-FRCNN (DeepSORT features), restore into a new Tracker in a
    bytes buffer as another process would, continue: output identical to the uninterrupted run."""
    frames = load_frames("MOT17-09-FRCNN", data_root)
    config = preset(name, camera_motion="none")
    expected = _run(Tracker(config), frames, motion_every=5)
    first = Tracker(config)
    got = _run(first, frames[:200], motion_every=5)
    buffer = io.BytesIO()
    first.save_snapshot(buffer)
    buffer.seek(0)
    resumed = Tracker.load_snapshot(buffer)
    assert resumed.config == config
    got += _run(resumed, frames[200:], motion_every=5, start=200)
    assert got == expected
    assert sum(len(f) for f in expected) > 1000  # a real run: many tracks reported


def test_snapshot_is_plain_arrays_and_independent_of_the_tracker():
    tracker = Tracker("fmtrack")
    frames = list(synthetic_stream(60, seed=4, dim=16))
    _run(tracker, frames)
    state = tracker.snapshot()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    assert state["config"].dtype == np.uint8 and any(k.startswith("gallery/") for k in state)
    before = {k: v.copy() for k, v in state.items()}
    _run(tracker, frames)  # the tracker moves on; the snapshot does not
    _assert_same_state(state, before)
    # restore() takes the snapshot's config as well as its state.
    other = Tracker("sort")
    other.restore(state)
    assert other.config == tracker.config and other.frame_count == 60


def test_a_snapshot_file_is_written_as_any_other_file_into_a_new_folder(tmp_path):
    """save_snapshot left mkstemp's owner-only mode (0o600), and a path in a missing folder raised
    FileNotFoundError naming the temporary file."""
    tracker = Tracker("bytetrack")
    _run(tracker, list(synthetic_stream(10, seed=2, dim=8)))
    path = tmp_path / "new" / "deeper" / "s.npz"
    tracker.save_snapshot(path)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert Tracker.load_snapshot(path).frame_count == tracker.frame_count
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cannot write a snapshot here"):
        tracker.save_snapshot(tmp_path / "file" / "s.npz")


def test_bad_snapshots_are_one_clear_error(tmp_path):
    good = Tracker("deepsort")
    _run(good, list(synthetic_stream(30, seed=5, dim=8)))
    state = good.snapshot()
    with pytest.raises(ValueError, match="no 'tracks/mean' entry"):
        Tracker.from_snapshot({k: v for k, v in state.items() if k != "tracks/mean"})
    with pytest.raises(ValueError, match="'_next_id' must be one integer"):
        Tracker.from_snapshot({**state, "_next_id": np.array([1.5, 2.0])})
    with pytest.raises(ValueError, match="snapshot version 99"):
        Tracker.from_snapshot({**state, "version": np.array(99)})
    with pytest.raises(ValueError, match="tracks/covariance has shape"):
        Tracker.from_snapshot({**state, "tracks/covariance": np.zeros((len(good.tracks), 4, 4))})
    with pytest.raises(ValueError, match="differ in length"):
        Tracker.from_snapshot({**state, "tracks/score": np.zeros(len(good.tracks) + 1)})
    with pytest.raises(ValueError, match="config is not a TrackerConfig"):
        Tracker.from_snapshot({**state, "config": np.frombuffer(b"{not json", dtype=np.uint8)})
    # Files: garbage, a single .npy array, an .npz holding a pickled object. Each names the file.
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="garbage.npz"):
        Tracker.load_snapshot(garbage)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single.npy: not a tracker snapshot"):
        Tracker.load_snapshot(single)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**state, "config": np.array([{"evil": 1}], dtype=object)})
    with pytest.raises(ValueError, match="pickled.npz"):
        Tracker.load_snapshot(pickled)
    assert zipfile.is_zipfile(pickled)  # the file was a real npz; refused for its pickle
    # A directory is never replaced by a snapshot.
    (tmp_path / "adir").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        good.save_snapshot(tmp_path / "adir")
    assert (tmp_path / "adir").is_dir()
