"""The bytetrack and fmtrack presets: parity with boxmot's ByteTrack, the appearance stages, and
the pipeline's camera-motion and score inputs."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from fmtrack.benchmarks.evaluate import results_frame
from fmtrack.benchmarks.methods import load_inputs, parse_method
from fmtrack.benchmarks.scoring import accumulate, summarise
from fmtrack.io import InputError, find_sequence, read_ground_truth, read_seqinfo
from fmtrack.pipeline import track_sequence
from fmtrack.tracker import PRESETS, Tracker


def _peer_rows(reference_dir: Path) -> list[dict]:
    with open(reference_dir / "peer_rows.csv") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def _score(spec: str, sequence: str, data_root: Path):
    info = read_seqinfo(find_sequence(sequence, data_root))
    method = parse_method(spec)
    inputs = load_inputs(method, info, data_root, progress=False)
    result = track_sequence(info, inputs.detections, method.config, inputs.embedder,
                            camera_motion=inputs.camera_motion)
    gt = read_ground_truth(info.gt_path, info.seq_length)
    return summarise([accumulate(gt, results_frame(result.rows), info)], [sequence]).iloc[0]


@pytest.mark.parametrize("sequence", ["MOT17-09-FRCNN", "MOT17-09-SDP"])
def test_bytetrack_matches_boxmot(sequence, data_root, reference_dir):
    row = next(r for r in _peer_rows(reference_dir) if r["sequence"] == sequence)
    got = _score("bytetrack", sequence, data_root)
    assert abs(got["IDF1"] - float(row["idf1"])) <= 1.0, got
    assert abs(got["MOTA"] - float(row["mota"])) <= 1.0, got


def test_fmtrack_preset_runs_with_deepsort_features_and_reports_figures(data_root, reference_dir):
    """Runs the default preset end to end (static camera, no images needed without compensation).

    The issue's target (beat the best peer's IDF1 with no more IDs) is reported in the README with
    the measured figures; what is asserted here is what must always hold: it is a working tracker
    on a par with ByteTrack's MOTA, since appearance only changes which detections are linked.
    """
    row = next(r for r in _peer_rows(reference_dir) if r["sequence"] == "MOT17-09-FRCNN")
    got = _score("fmtrack@features=deepsort,cmc=none", "MOT17-09-FRCNN", data_root)
    assert abs(got["MOTA"] - float(row["mota"])) <= 1.0, got
    assert got["IDs"] <= 2 * int(row["ids"]), got


def _reappearing_person(preset: str) -> tuple[int, int]:
    """A person hidden for 10 frames reappears 70 px from where they vanished (no overlap with the
    track's prediction), next to a differently dressed bystander. Returns (id before, id after)."""
    rng = np.random.default_rng(0)
    person, bystander = rng.normal(size=16), rng.normal(size=16)
    config = PRESETS[preset].replace(camera_motion="none")
    tracker = Tracker(config)
    both = lambda x: (np.array([[x, 100, 50, 150], [400.0, 100, 50, 150]]), np.array([0.9, 0.9]),  # noqa: E731
                      np.stack([person, bystander]))
    for _ in range(20):
        out = tracker.update(*both(100.0))
    before = next(t.track_id for t in out if t.tlwh[0] < 200)
    for _ in range(10):
        tracker.update(np.array([[400.0, 100, 50, 150]]), np.array([0.9]), bystander[None])
    for _ in range(3):  # long enough for a new track to be confirmed and reported
        out = tracker.update(*both(170.0))
    after = next(t.track_id for t in out if t.tlwh[0] < 300)
    return before, after


def test_appearance_reidentifies_after_an_occlusion():
    before, after = _reappearing_person("fmtrack")
    assert after == before
    before, after = _reappearing_person("bytetrack")  # IoU alone cannot: a new identity
    assert after != before


def test_bytetrack_low_confidence_detections_extend_but_never_start_tracks():
    tracker = Tracker("bytetrack")
    box = np.array([[100.0, 100, 50, 150]])
    assert tracker.update(box, np.array([0.3])) == []  # low only: no track is born
    assert len(tracker.tracks) == 0
    for _ in range(3):
        tracker.update(box, np.array([0.9]))
    (track,) = tracker.update(box, np.array([0.3]))  # a low detection keeps it alive and reported
    assert track.time_since_update == 0


def _appearance_after_low_match(config) -> float:
    """Cosine distance between a track's appearance memory and its own first feature, after a
    low-confidence detection carrying an unrelated (occluder's) feature extended it."""
    rng = np.random.default_rng(1)
    person, occluder = rng.normal(size=16), rng.normal(size=16)
    tracker = Tracker(config.replace(camera_motion="none"))
    box = np.array([[100.0, 100, 50, 150]])
    for _ in range(3):
        tracker.update(box, np.array([0.9]), person[None])
    (track,) = tracker.update(box, np.array([0.3]), occluder[None])  # matched by the low stage
    assert track.time_since_update == 0
    return float(tracker.gallery.distance(tracker.tracks.slot, person[None] / np.linalg.norm(person))[0, 0])


def test_low_confidence_matches_leave_the_appearance_memory_alone():
    # BoT-SORT: low detections carry no feature, so they never enter the moving average.
    assert _appearance_after_low_match(PRESETS["fmtrack"]) == pytest.approx(0.0, abs=1e-6)
    low = next(s for s in PRESETS["fmtrack"].stages if s.detections == "low")
    assert not low.updates_appearance
    # The same low stage made to update: the occluder's feature moves the average away (1 - 0.9 weight).
    refreshed = PRESETS["fmtrack"].replace(stages=tuple(
        dataclasses.replace(s, updates_appearance=True) for s in PRESETS["fmtrack"].stages))
    assert _appearance_after_low_match(refreshed) > 1e-3


def test_nan_confidence_is_a_clear_error():
    with pytest.raises(ValueError, match="scores row 1 is not finite"):
        Tracker("bytetrack").update(np.array([[0.0, 0, 10, 20], [5, 5, 10, 20]]), np.array([0.5, np.nan]))


def test_unreadable_frames_with_compensation_name_the_image(tmp_path, data_root):
    """A sequence whose frames are missing fails, when compensation is on, with the image's path."""
    source = find_sequence("TUD-Campus", data_root)
    copy = tmp_path / "TUD-Campus"
    shutil.copytree(source, copy)
    (copy / "img1" / "000005.jpg").unlink()
    info = read_seqinfo(copy)
    method = parse_method("bytetrack@cmc=sof")
    with pytest.raises(InputError, match="000005.jpg"):
        load_inputs(method, info, data_root, progress=False)


def _same_box_next_frame(config, cosine_distance: float) -> bool:
    """A confirmed track, then a detection on exactly its box (IoU 1) whose feature lies at
    ``cosine_distance`` from the track's: does the track take it?"""
    tracker = Tracker(config.replace(camera_motion="none"))
    box, score = np.array([[100.0, 100, 50, 150]]), np.array([0.9])
    first = np.array([[1.0, 0.0]])
    angle = np.arccos(1.0 - cosine_distance)
    (track,) = tracker.update(box, score, first)  # born in frame 1: confirmed at once (ByteTrack)
    out = tracker.update(box, score, np.array([[np.cos(angle), np.sin(angle)]]))
    return any(t.track_id == track.track_id and t.time_since_update == 0 for t in out)


def test_the_fused_stage_lets_appearance_veto_a_perfect_overlap():
    """fmtrack's fused stage: IoU alone matches a detection whose appearance gets no credit (beyond
    the threshold 0.2), unless the descriptor is sure it is someone else (beyond 1.5 x 0.2 = 0.3).
    Without the veto (BoT-SORT) IoU matches any distance."""
    config = PRESETS["fmtrack"]
    fused = config.stages[1]
    assert (fused.appearance_max, fused.appearance_veto) == (0.2, 1.5)
    assert _same_box_next_frame(config, 0.05)  # credit: matched
    assert _same_box_next_frame(config, 0.25)  # no credit, no veto: IoU matches
    assert not _same_box_next_frame(config, 0.35)  # vetoed
    no_veto = config.replace(stages=(config.stages[0], dataclasses.replace(fused, appearance_veto=None),
                                     *config.stages[2:]))
    assert _same_box_next_frame(no_veto, 0.35) and _same_box_next_frame(no_veto, 1.0)
    # The veto follows the descriptor's threshold: with a threshold twice as large, 0.35 passes.
    assert _same_box_next_frame(config.with_max_distance(0.4), 0.35)
    # Motion alone has no descriptor to veto with.
    assert all(s.appearance_veto is None for s in config.without_appearance().stages)
    with pytest.raises(ValueError, match="appearance_veto"):
        config.replace(stages=(config.stages[0], dataclasses.replace(fused, appearance_veto=0.5), *config.stages[2:]))
