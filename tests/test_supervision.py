"""The supervision adapter against the real ``supervision`` package: which rows come back and with
what (trackers' convention), bad input, and on MOT17-09-FRCNN the same score as the native
``fmtrack.VideoTracker`` (skipped until that object exists)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

sv = pytest.importorskip("supervision")

import fmtrack  # noqa: E402
from fmtrack.integrations.supervision import SupervisionTracker, attach_tracker_ids  # noqa: E402

needs_video_tracker = pytest.mark.skipif(not hasattr(fmtrack, "VideoTracker"),
                                         reason="fmtrack.VideoTracker is not in this checkout yet")


def _detections() -> "sv.Detections":
    """Four rows with every optional field, so each one can be checked after the adapter."""
    xyxy = np.array([[0, 0, 10, 20], [30, 0, 45, 25], [60, 5, 70, 30], [90, 0, 99, 9]], dtype=np.float64)
    mask = np.zeros((4, 40, 100), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(xyxy.astype(int)):
        mask[i, y1:y2, x1:x2] = True
    return sv.Detections(xyxy=xyxy, mask=mask, confidence=np.array([0.9, 0.3, 0.8, 0.6]),
                         class_id=np.array([0, 2, 0, 5]), data={"name": np.array(["a", "b", "c", "d"])},
                         metadata={"camera": "north"})


def _tracks(*pairs: tuple[int, int]) -> list[SimpleNamespace]:
    """Tracks as fmtrack reports them: (track_id, detection row or -1 when coasting)."""
    return [SimpleNamespace(track_id=track_id, tlwh=np.zeros(4), detection=row) for track_id, row in pairs]


def test_matched_rows_keep_every_field_in_input_order():
    detections = _detections()
    # Track 7 matched row 2, track 5 row 0, track 9 coasts (no row); rows 1 and 3 are untracked.
    out = attach_tracker_ids(detections, _tracks((7, 2), (5, 0), (9, -1)))
    assert out.tracker_id.dtype == np.int64 and out.tracker_id.tolist() == [5, 7]
    np.testing.assert_array_equal(out.xyxy, detections.xyxy[[0, 2]])
    np.testing.assert_array_equal(out.mask, detections.mask[[0, 2]])
    np.testing.assert_array_equal(out.confidence, [0.9, 0.8])
    np.testing.assert_array_equal(out.class_id, [0, 0])
    assert out.data["name"].tolist() == ["a", "c"] and out.metadata == {"camera": "north"}
    assert detections.tracker_id is None  # the input is not modified


def test_keep_untracked_is_trackers_convention():
    out = attach_tracker_ids(_detections(), _tracks((7, 2), (5, 0), (9, -1)), keep_untracked=True)
    assert out.tracker_id.tolist() == [5, -1, 7, -1]
    assert out.class_id.tolist() == [0, 2, 0, 5]


def test_empty_frames():
    out = attach_tracker_ids(sv.Detections.empty(), _tracks((3, -1)))
    assert len(out) == 0 and out.tracker_id.shape == (0,) and out.tracker_id.dtype == np.int64
    out = attach_tracker_ids(_detections(), [])
    assert len(out) == 0 and out.tracker_id.shape == (0,)


def test_tracks_without_a_detection_index():
    with pytest.raises(ValueError, match="detection"):
        attach_tracker_ids(_detections(), [SimpleNamespace(track_id=1, tlwh=np.zeros(4))])
    with pytest.raises(ValueError, match="row 4"):
        attach_tracker_ids(_detections(), _tracks((1, 4)))


class _Untouchable:
    """A tracker that must not be reached: the adapter rejects the input first."""

    box_format = "xyxy"

    def update(self, *args, **kwargs):
        raise AssertionError("bad input reached the tracker")


def test_bad_input_named():
    with pytest.raises(ValueError, match="detections: expected supervision.Detections"):
        SupervisionTracker(_Untouchable()).update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="box_format: supervision boxes are xyxy"):
        SupervisionTracker({"box_format": "tlwh"})
    with pytest.raises(ValueError, match="tracker: expected a VideoTracker"):
        SupervisionTracker(object())
    with pytest.raises(ValueError, match="not both"):
        SupervisionTracker(_Untouchable(), preset="sort")
    # Around a tlwh VideoTracker the adapter converts: an inverted xyxy box is named as xyxy, not
    # as "negative width (xyxy given as tlwh?)".
    inverted = sv.Detections(xyxy=np.array([[20.0, 0, 10, 30]]), confidence=np.array([0.9]))
    with pytest.raises(ValueError, match=r"row 0 has x2 < x1 \(10.0 < 20.0\)"):
        SupervisionTracker(fmtrack.VideoTracker("bytetrack", None)).update(inverted)


# --- against the native API ------------------------------------------------------------------

def _score(info, rows):
    from fmtrack.benchmarks.evaluate import score_rows

    return score_rows(info, np.asarray(rows, dtype=np.float64).reshape(-1, 6), "x")


@needs_video_tracker
@pytest.mark.parametrize("preset", ["deepsort", "bytetrack"])
def test_same_score_as_native_api_on_mot17_09_frcnn(data_root, preset):
    from fmtrack.io import deepsort_features_path, find_sequence, read_feature_array, read_seqinfo

    info = read_seqinfo(find_sequence("MOT17-09-FRCNN", data_root))
    detections = read_feature_array(deepsort_features_path(info.name, data_root), info.seq_length)
    options = dict(preset=preset, descriptor="deepsort" if preset == "deepsort" else None, frame_rate=info.frame_rate)
    native = fmtrack.VideoTracker(**options)  # tlwh
    adapter = SupervisionTracker(options)
    native_rows, matched_rows, adapter_rows = [], [], []
    for frame in range(1, info.seq_length + 1):
        boxes, scores, features = detections.at(frame)
        for track in native.update(None, boxes, scores, features=features):
            native_rows.append((frame, track.track_id, *track.tlwh))
            if track.detection >= 0:
                matched_rows.append((frame, track.track_id, *boxes[track.detection]))
        xyxy = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
        out = adapter.update(sv.Detections(xyxy=xyxy, confidence=scores, class_id=np.zeros(len(boxes), int)),
                             None, features)
        assert out.class_id.tolist() == [0] * len(out)
        adapter_rows += [(frame, i, x1, y1, x2 - x1, y2 - y1) for i, (x1, y1, x2, y2) in zip(out.tracker_id, out.xyxy)]
    # The adapter's ids are the native tracks' ids on the detections those tracks matched.
    key = lambda rows: sorted(tuple(np.round(r, 6)) for r in rows)  # noqa: E731
    assert key(adapter_rows) == key(matched_rows)
    adapter_table, native_table = _score(info, adapter_rows), _score(info, matched_rows)
    for column in ("IDF1", "MOTA", "IDs", "FP", "FN"):
        assert adapter_table[column].iloc[0] == pytest.approx(native_table[column].iloc[0]), column
    # Against the native Kalman boxes (coasting rows included) the identities agree closely.
    kalman = _score(info, native_rows)["IDF1"].iloc[0]
    print(f"{preset} IDF1: adapter {adapter_table['IDF1'].iloc[0]:.2f}, native Kalman boxes {kalman:.2f}")
    assert abs(adapter_table["IDF1"].iloc[0] - kalman) <= 1.0
