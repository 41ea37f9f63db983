"""Height-modulated IoU stages (Hybrid-SORT's HMIoU): the height IoU in closed form, and the choice it
changes (a detection that agrees with the track's height and foot row wins over one that overlaps
more but is shifted vertically)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fmtrack.tracker import PRESETS, Stage, Tracker, TrackerConfig
from fmtrack.tracker.linear_assignment import height_iou_matrix


def _pairwise_height_iou(a: np.ndarray, b: np.ndarray) -> float:
    """The definition, one pair at a time: vertical overlap over vertical union."""
    top, bottom = max(a[1], b[1]), min(a[1] + a[3], b[1] + b[3])
    return max(bottom - top, 0.0) / (max(a[1] + a[3], b[1] + b[3]) - min(a[1], b[1]))


def test_height_iou_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(0, 100, 7), rng.uniform(0, 100, 7), rng.uniform(1, 50, 7), rng.uniform(1, 80, 7)])
    b = np.column_stack([rng.uniform(0, 100, 5), rng.uniform(0, 100, 5), rng.uniform(1, 50, 5), rng.uniform(1, 80, 5)])
    got = height_iou_matrix(a, b)
    assert got.shape == (7, 5)
    want = np.array([[_pairwise_height_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    assert ((got >= 0) & (got <= 1)).all()
    np.testing.assert_allclose(height_iou_matrix(b, a), got.T, rtol=0, atol=1e-15)  # symmetric


def test_height_iou_closed_forms():
    box = np.array([[0.0, 10.0, 5.0, 20.0]])
    assert height_iou_matrix(box, box)[0, 0] == 1.0
    # Any horizontal shift leaves it at 1: only the vertical extents count.
    assert height_iou_matrix(box, box + [[300.0, 0, 0, 0]])[0, 0] == 1.0
    # Shifted down by a quarter of the height: overlap 15 of a span 25.
    assert height_iou_matrix(box, box + [[0, 5.0, 0, 0]])[0, 0] == pytest.approx(15 / 25)
    # Touching or apart vertically: 0.
    assert height_iou_matrix(box, box + [[0, 20.0, 0, 0]])[0, 0] == 0.0
    assert height_iou_matrix(box, box + [[0, 50.0, 0, 0]])[0, 0] == 0.0
    # Degenerate: two zero-height boxes on one row give 0, not NaN.
    flat = np.array([[0.0, 10.0, 5.0, 0.0]])
    assert height_iou_matrix(flat, flat)[0, 0] == 0.0


def _second_frame_match(height_modulated: bool) -> int:
    """A track at (0, 0, 10, 20), then two detections: A shifted down by 5 px (IoU 0.6, height IoU 0.6)
    and B shifted right by 4 px (IoU 0.43, height IoU 1). Which detection row does track 1 take?"""
    stage = Stage("iou", max_cost=0.8, height_modulated=height_modulated)
    tracker = Tracker(TrackerConfig(stages=(stage,), n_init=1, max_age=5, motion_model="xywh"))
    tracker.update(np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9]))
    tracks = tracker.update(np.array([[0.0, 5.0, 10.0, 20.0], [4.0, 0.0, 10.0, 20.0]]), np.array([0.9, 0.9]))
    return next(t.detection for t in tracks if t.track_id == 1)


def test_height_modulation_prefers_the_detection_of_the_same_height_and_foot_row():
    assert _second_frame_match(False) == 0  # plain IoU: the larger overlap (0.6 against 0.43)
    assert _second_frame_match(True) == 1  # 0.6 x 0.6 = 0.36 against 0.43 x 1


def test_height_modulated_needs_an_iou_stage():
    with pytest.raises(ValueError, match="height_modulated needs an iou cost"):
        TrackerConfig(stages=(Stage("mahalanobis", max_cost=1.0, height_modulated=True),))


def test_fmtrack_preset_modulates_every_iou_stage_in_both_forms():
    config = PRESETS["fmtrack"]
    iou_stages = [s for s in config.stages if s.cost == "iou"]
    assert iou_stages and all(s.height_modulated for s in iou_stages)
    assert all(s.height_modulated for s in config.without_appearance().stages)
    # The reproductions stay as published.
    for name in ("sort", "deepsort", "bytetrack", "motion"):
        assert not any(s.height_modulated for s in PRESETS[name].stages)


def test_preset_files_without_the_field_read_as_plain_iou():
    data = PRESETS["fmtrack"].to_dict()
    for stage in data["stages"]:
        del stage["height_modulated"]
    config = TrackerConfig.from_dict(data)
    assert not any(s.height_modulated for s in config.stages)
    assert dataclasses.replace(config.stages[1], height_modulated=True) == PRESETS["fmtrack"].stages[1]
