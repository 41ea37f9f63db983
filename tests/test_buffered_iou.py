"""The C-BIoU buffer of IoU stages: the grown boxes in closed form, and what it buys (a person moving
further than their own width per frame keeps one identity)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fmtrack.tracker import PRESETS, Tracker, preset
from fmtrack.tracker.linear_assignment import grow_tlwh, iou_matrix


def test_grow_keeps_centre_and_scales_size():
    boxes = np.array([[10.0, 20.0, 4.0, 8.0], [0.0, 0.0, 1.0, 1.0]])
    grown = grow_tlwh(boxes, 0.5)
    np.testing.assert_allclose(grown, [[8.0, 16.0, 8.0, 16.0], [-0.5, -0.5, 2.0, 2.0]])
    np.testing.assert_allclose(grown[:, :2] + grown[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2)
    np.testing.assert_array_equal(boxes[0], [10.0, 20.0, 4.0, 8.0])  # input untouched


def test_buffered_iou_of_two_unit_squares_in_closed_form():
    # Unit squares 1.5 apart horizontally: no overlap; grown by b = 0.5 they are 2 x 2 squares 1.5
    # apart, overlapping 0.5 x 2 = 1 of a union 4 + 4 - 1 = 7.
    a, b = np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([[1.5, 0.0, 1.0, 1.0]])
    assert iou_matrix(a, b)[0, 0] == 0.0
    assert iou_matrix(grow_tlwh(a, 0.5), grow_tlwh(b, 0.5))[0, 0] == pytest.approx(1.0 / 7.0)


def _ids_of_a_fast_walker(buffer: float) -> list[int]:
    """One person 40 px wide walking 60 px per frame to the right, seen for 20 frames: the reported
    track id in each frame (0: not reported)."""
    stages = tuple(dataclasses.replace(s, iou_buffer=buffer) for s in PRESETS["bytetrack"].stages)
    tracker = Tracker(PRESETS["bytetrack"].replace(stages=stages))
    ids = []
    for frame in range(20):
        tracks = tracker.update(np.array([[100.0 + 60.0 * frame, 200.0, 40.0, 100.0]]), np.array([0.9]))
        ids.append(tracks[0].track_id if tracks else 0)
    return ids


def test_buffer_keeps_the_identity_of_a_person_moving_faster_than_their_width():
    # Plain IoU: the newborn track predicts no motion yet, the next box never overlaps it, and each
    # new track dies tentative, so the walker is reported in the first frame only.
    assert _ids_of_a_fast_walker(0.0)[1:] == [0] * 19
    assert _ids_of_a_fast_walker(1.0) == [1] * 20


def test_buffer_must_be_a_non_negative_fraction():
    for bad in (-0.1, float("nan"), 10.0):  # the stage itself refuses it, before any config holds it
        with pytest.raises(ValueError, match="iou_buffer must be in"):
            dataclasses.replace(PRESETS["bytetrack"].stages[0], iou_buffer=bad)


def test_motion_buffer_scales_with_the_frame_rate_in_motion_only_stages():
    """motion_iou_buffer (given for 30 fps) becomes k x 30 / fps, capped, in the IoU stages without
    appearance credit only; applying at_frame_rate twice scales no further."""
    from fmtrack.tracker.config import MAX_MOTION_BUFFER

    config = preset("fmtrack", motion_iou_buffer=0.1)
    at_10 = config.at_frame_rate(10)
    buffers = {(s.cost, s.appearance_max is None): s.iou_buffer for s in at_10.stages}
    assert buffers[("iou", True)] == pytest.approx(0.3)
    assert buffers[("iou", False)] == 0.0 and buffers[("appearance", True)] == 0.0
    assert at_10.at_frame_rate(10) == at_10 and at_10.motion_iou_buffer == 0.0
    assert at_10.max_age == int(10 / 30 * config.max_age)
    motion = config.without_appearance().at_frame_rate(15)
    assert [s.iou_buffer for s in motion.stages] == pytest.approx([0.2] * len(motion.stages))
    assert {s.iou_buffer for s in config.at_frame_rate(2).stages if s.appearance_max is None
            and s.cost == "iou"} == {MAX_MOTION_BUFFER}
    assert preset("fmtrack", motion_iou_buffer=0.0).at_frame_rate(10).stages == \
        preset("fmtrack", motion_iou_buffer=0.0).stages
    with pytest.raises(ValueError, match="motion_iou_buffer"):
        preset("fmtrack", motion_iou_buffer=0.7)
