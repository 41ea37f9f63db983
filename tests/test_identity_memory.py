"""identity_memory: a deleted track's id returns to the person the descriptor recognises in a new track."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fmtrack.benchmarks.methods import load_inputs, parse_method
from fmtrack.io import find_sequence, read_seqinfo
from fmtrack.pipeline import track_sequence
from fmtrack.tracker import Tracker, preset

MAX_AGE = 5
A, B = np.eye(4)[0], np.eye(4)[1]  # two people's descriptors, cosine distance 1 apart


def _config(memory: int, factor: float = 1.0):
    # The fmtrack preset at 30 fps with short ages, so that gaps of a few frames delete tracks.
    return preset("fmtrack", max_age=MAX_AGE, identity_memory=memory, identity_factor=factor,
                  camera_motion="none", max_age_scales_with_frame_rate=False)


def _run(tracker: Tracker, frames) -> list[dict[int, np.ndarray]]:
    """frames: per frame a list of (tlwh, feature); returns per frame {track id: reported box}."""
    out = []
    for people in frames:
        boxes = np.array([box for box, _ in people], dtype=float).reshape(-1, 4)
        features = np.array([feature for _, feature in people], dtype=float).reshape(-1, 4)
        tracks = tracker.update(boxes, np.full(len(boxes), 0.9), features)
        out.append({t.track_id: t.tlwh for t in tracks})
    return out


def _walk(x0: float, n: int, feature: np.ndarray, y: float = 100.0) -> list[list]:
    return [[((x0 + 2.0 * i, y, 40.0, 100.0), feature)] for i in range(n)]


def _absent(n: int) -> list[list]:
    return [[] for _ in range(n)]


def test_a_person_back_after_max_age_takes_their_id_back_elsewhere_in_the_frame():
    # Seen 10 frames, gone 20 (> max_age 5: the track is deleted), back 400 px away.
    frames = _walk(100, 10, A) + _absent(20) + _walk(500, 10, A)
    with_memory = _run(Tracker(_config(memory=40)), frames)
    without = _run(Tracker(_config(memory=0)), frames)
    assert set(with_memory[5]) == {1} and set(with_memory[-1]) == {1}
    assert set(without[5]) == {1} and set(without[-1]) == {2}
    # Only the id changes: the boxes are the same tracks' boxes.
    for a, b in zip(with_memory, without):
        assert [box.tolist() for box in a.values()] == [box.tolist() for box in b.values()]


def test_another_person_or_a_return_after_the_memory_gets_a_new_id():
    stranger = _run(Tracker(_config(memory=40)), _walk(100, 10, A) + _absent(20) + _walk(500, 10, B))
    assert set(stranger[-1]) == {2}
    late = _run(Tracker(_config(memory=20)), _walk(100, 10, A) + _absent(25) + _walk(500, 10, A))
    assert set(late[-1]) == {2}  # last seen 26 frames before its return: beyond the memory of 20


def test_identity_factor_scales_the_descriptor_threshold():
    # Cosine distance 1 - cos(A, C) = 0.15: within the fmtrack threshold (0.2), not within 0.5 x 0.2.
    c = np.array([0.85, np.sqrt(1 - 0.85 ** 2), 0.0, 0.0])
    frames = _walk(100, 10, A) + _absent(20) + _walk(500, 10, c)
    assert set(_run(Tracker(_config(memory=40)), frames)[-1]) == {1}
    assert set(_run(Tracker(_config(memory=40, factor=0.5)), frames)[-1]) == {2}


def test_two_people_back_in_swapped_places_each_take_their_own_id():
    both = [[((100.0, 100.0, 40.0, 100.0), A), ((600.0, 100.0, 40.0, 100.0), B)] for _ in range(10)]
    swapped = [[((600.0, 100.0, 40.0, 100.0), A), ((100.0, 100.0, 40.0, 100.0), B)] for _ in range(10)]
    out = _run(Tracker(_config(memory=40)), both + _absent(20) + swapped)
    first = {int(box[0]): tid for tid, box in out[9].items()}
    last = {int(round(box[0])): tid for tid, box in out[-1].items()}
    assert last[600] == first[100] and last[100] == first[600]  # A's id went with A, B's with B


def test_departed_slots_are_released_when_forgotten_or_claimed():
    tracker = Tracker(_config(memory=20))
    _run(tracker, _walk(100, 10, A) + _absent(8))
    assert len(tracker.departed["track_id"]) == 1 and len(tracker.tracks) == 0
    held = len(tracker.gallery.state()["count"]) - len(tracker.gallery.state()["free"])
    assert held == 1  # the departed track's appearance is kept
    _run(tracker, _absent(20))  # beyond the memory
    assert len(tracker.departed["track_id"]) == 0
    assert len(tracker.gallery.state()["free"]) == len(tracker.gallery.state()["count"])  # nothing leaks


def test_snapshot_during_a_gap_resumes_to_the_same_ids():
    frames = _walk(100, 10, A) + _absent(20) + _walk(500, 10, A)
    whole = _run(Tracker(_config(memory=40)), frames)
    head = Tracker(_config(memory=40))
    _run(head, frames[:20])
    assert len(head.departed["track_id"]) == 1
    buffer = io.BytesIO()
    head.save_snapshot(buffer)
    buffer.seek(0)
    resumed = Tracker.load_snapshot(buffer)
    assert [set(f) for f in _run(resumed, frames[20:])] == [set(f) for f in whole[20:]]


def test_a_snapshot_without_departed_entries_still_loads():
    tracker = Tracker(_config(memory=40))
    _run(tracker, _walk(100, 10, A))
    state = {key: value for key, value in tracker.snapshot().items() if not key.startswith("departed/")}
    assert len(Tracker.from_snapshot(state).departed["slot"]) == 0


def test_a_snapshot_with_bad_departed_entries_is_refused():
    tracker = Tracker(_config(memory=40))
    _run(tracker, _walk(100, 10, A) + _absent(8))
    state = tracker.snapshot()
    state["departed/slot"] = np.array([9999])
    with pytest.raises(ValueError, match="departed/slot points outside the gallery"):
        Tracker.from_snapshot(state)
    state["departed/slot"] = np.array([0, 1])
    with pytest.raises(ValueError, match="departed columns differ in length"):
        Tracker.from_snapshot(state)


def test_identity_memory_is_given_for_30_fps_with_max_age():
    config = preset("fmtrack")
    assert config.identity_memory == 100
    assert config.at_frame_rate(15).identity_memory == 50
    assert config.at_frame_rate(15).max_age == 30
    assert preset("fmtrack", max_age_scales_with_frame_rate=False).at_frame_rate(15).identity_memory == 100


@pytest.mark.parametrize("field, bad", [("identity_memory", -1), ("identity_memory", 1.5), ("identity_memory", True),
                                        ("identity_factor", 0.0), ("identity_factor", float("nan")),
                                        ("identity_factor", "1")])
def test_bad_identity_settings_are_refused(field, bad):
    with pytest.raises(ValueError, match=field):
        preset("fmtrack", **{field: bad})


def test_on_mot17_05_only_ids_change_and_each_merges_whole_tracks(data_root):
    """Real data (DeepSORT features, 14 fps): the memory relabels, never moves a box; every track of
    the run without it keeps one id with it, and fewer ids are used."""
    info = read_seqinfo(find_sequence("MOT17-05-FRCNN", data_root))
    method = parse_method("fmtrack@features=deepsort")
    inputs = load_inputs(method, info, data_root, progress=False)

    def rows(memory: int) -> np.ndarray:
        config = method.config.replace(identity_memory=memory)
        result = track_sequence(info, inputs.detections, config, inputs.embedder, camera_motion=inputs.camera_motion)
        rows = result.rows  # (N, 6) frame, id, tlwh; ordered by frame, box, so both runs align row for row
        return rows[np.lexsort((rows[:, 5], rows[:, 4], rows[:, 3], rows[:, 2], rows[:, 0]))]

    on, off = rows(100), rows(0)
    np.testing.assert_array_equal(on[:, [0, 2, 3, 4, 5]], off[:, [0, 2, 3, 4, 5]])
    pairs = set(zip(off[:, 1].tolist(), on[:, 1].tolist()))
    assert len({old for old, _ in pairs}) == len(pairs)  # each old id maps to one new id
    assert len({new for _, new in pairs}) < len(pairs)  # and some were merged


def test_a_long_stream_of_passers_by_keeps_memory_bounded():
    """3,000 frames, a new person every 5 frames, each seen 10 frames: the departed table holds only
    the tracks deleted within the memory, and the gallery pool stops growing."""
    rng = np.random.default_rng(0)
    tracker = Tracker(_config(memory=40))
    people: list[tuple[int, np.ndarray]] = []  # (first frame, feature)
    largest = 0
    for frame in range(3000):
        if frame % 5 == 0:
            people.append((frame, rng.normal(size=4)))
        here = [(start, feature) for start, feature in people if frame - start < 10]
        boxes = np.array([[50.0 + 60 * (start // 5 % 10), 100.0, 40.0, 100.0] for start, _ in here]).reshape(-1, 4)
        tracker.update(boxes, np.full(len(here), 0.9), np.array([f for _, f in here]).reshape(-1, 4))
        largest = max(largest, len(tracker.departed["track_id"]))
    # Tracks die MAX_AGE + 1 frames after their last update and are forgotten 40 frames after it:
    # at most one death every 5 frames in between.
    assert 0 < largest <= (40 - MAX_AGE) // 5 + 1
    assert len(tracker.gallery.state()["count"]) <= 32  # the initial pool was never outgrown


def test_fmtrack_run_identity_memory_flag(data_root, tmp_path):
    from fmtrack.cli import main
    from fmtrack.io import read_results

    ids = {}
    for memory in ("0", "100"):
        out = tmp_path / f"memory{memory}.txt"
        assert main(["run", "--seq", "MOT17-05-FRCNN", "--data-root", str(data_root), "--features", "deepsort",
                     "--identity-memory", memory, "--out", str(out), "--quiet", "--no-score"]) == 0
        ids[memory] = read_results(out).index.get_level_values(1).nunique()
    assert ids["100"] < ids["0"]
