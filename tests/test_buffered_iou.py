"""The C-BIoU buffer of IoU stages: the grown boxes in closed form, and what it buys (a person moving
further than their own width per frame keeps one identity)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fmtrack.tracker import PRESETS, Tracker
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
    stage = dataclasses.replace(PRESETS["bytetrack"].stages[0], iou_buffer=-0.1)
    with pytest.raises(ValueError, match="iou_buffer"):
        PRESETS["bytetrack"].replace(stages=(stage,) + PRESETS["bytetrack"].stages[1:])
