"""What the tracker accepts at the door: boxes (tlwh/xyxy, sizes, magnitudes), features, camera
motion, duplicated and excessive detections, DeepSORT's suppression, and the gate constants."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmtrack.tracker import PRESETS, Tracker, preset
from fmtrack.tracker.boxes import to_tlwh
from fmtrack.tracker.config import CHI2_95
from fmtrack.tracker.detections import non_max_suppression, select_detections

BOXES = np.array([[10.0, 10, 20, 40], [100, 100, 30, 60], [300, 50, 25, 70], [500, 80, 40, 90]])


# =====================================================================================================
# Box formats and values
# =====================================================================================================
def test_to_tlwh_converts_xyxy_by_hand_and_checks_rows():
    xyxy = np.array([[10.0, 20, 40, 80], [0, 0, 0, 5]])
    np.testing.assert_array_equal(to_tlwh(xyxy, "xyxy"), [[10, 20, 30, 60], [0, 0, 0, 5]])
    np.testing.assert_array_equal(to_tlwh(xyxy, "tlwh"), xyxy)
    assert to_tlwh([], "xyxy").shape == (0, 4)
    with pytest.raises(ValueError, match=r"boxes row 1 has x2 < x1 \(5.0 < 7.0\): tlwh given as xyxy\?"):
        to_tlwh([[0.0, 0, 10, 10], [7, 3, 5, 9]], "xyxy")
    with pytest.raises(ValueError, match=r"boxes row 0 has y2 < y1"):
        to_tlwh([[0.0, 8, 10, 2]], "xyxy")
    with pytest.raises(ValueError, match=r"boxes row 0 has negative height -2.0"):
        to_tlwh([[0.0, 8, 10, -2]], "tlwh")
    with pytest.raises(ValueError, match="box_format must be 'tlwh' or 'xyxy'"):
        to_tlwh(xyxy, "xywh")
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\)"):
        to_tlwh(np.ones((2, 5)), "xyxy")


@pytest.mark.parametrize("name", ["sort", "deepsort"])
def test_negative_sizes_are_an_error_naming_the_row(name):
    tracker = Tracker(name)
    boxes = BOXES.copy()
    boxes[3, 2] = -5.0
    with pytest.raises(ValueError, match=r"^boxes row 3 has negative width -5.0 \(xyxy given as tlwh\?\)$"):
        tracker.update(boxes, np.ones(4), np.ones((4, 8)))
    boxes[3, 2], boxes[1, 3] = 5.0, -1e-9
    with pytest.raises(ValueError, match=r"boxes row 1 has negative height"):
        tracker.update(boxes, np.ones(4), np.ones((4, 8)))
    assert tracker.frame_count == 0 and len(tracker.tracks) == 0


@pytest.mark.parametrize("value, column", [(1e308, 2), (2e6, 3), (-1e7, 0), (1.5e6, 1)])
def test_absurd_magnitudes_are_an_error(value, column):
    boxes = BOXES.copy()
    boxes[2, column] = value
    with pytest.raises(ValueError, match=r"boxes row 2 is out of range"):
        Tracker("sort").update(boxes, np.ones(4))
    with pytest.raises(ValueError, match=r"scores row 1 is out of range: 1e\+308"):
        Tracker("sort").update(BOXES, np.array([1.0, 1e308, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"features row 3 is out of range"):
        Tracker("deepsort").update(BOXES, np.ones(4), np.vstack([np.ones((3, 8)), np.full((1, 8), 1e300)]))


def test_features_and_camera_motion_that_are_not_real_numbers_name_the_argument():
    """Text features failed inside numpy (a TypeError), complex ones lost their imaginary part with a
    warning, a ragged or textual camera motion failed in numpy's conversion, naming nothing."""
    tracker = Tracker("deepsort")
    for features, words in ((np.full((4, 8), "a"), "features must be real numbers"),
                            (np.ones((4, 8)) * (1 + 1j), "features must be real numbers"),
                            ([[1.0] * 8] * 3 + [[1.0] * 7], "features must be an array of real numbers")):
        with pytest.raises(ValueError, match=words):
            tracker.update(BOXES, np.ones(4), features)
    for motion, words in (("none", "camera_motion must be real numbers"),
                          ([[1, 0, 0], [0, 1]], "camera_motion must be an array of real numbers")):
        with pytest.raises(ValueError, match=words):
            tracker.update(BOXES, np.ones(4), np.ones((4, 8)), camera_motion=motion)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float16 features: no overflow warning from the range test
        tracker.update(BOXES, np.ones(4), np.ones((4, 8), dtype=np.float16))
    assert tracker.frame_count == 1


def test_wrong_feature_length_for_this_tracker():
    tracker = Tracker("deepsort")
    tracker.update(BOXES, np.ones(4), np.ones((4, 16)))
    with pytest.raises(ValueError, match="features have 12 values per row, but this tracker holds 16-d features"):
        tracker.update(BOXES, np.ones(4), np.ones((4, 12)))
    assert tracker.frame_count == 1
    tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 0)))  # an empty frame may come shapeless
    with pytest.raises(ValueError, match=r"D >= 1"):
        Tracker("deepsort").update(BOXES, np.ones(4), np.ones((4, 0)))


extreme = st.one_of(st.floats(-1e308, 1e308, allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e-320, -1e-320, 5e-324, 1e-7, 1e6, 1e6 + 1, 0.0, 1e308]),
                    st.floats(-2000, 2000, allow_nan=False))


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.filterwarnings("ignore:.*repeat another row:RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(stream=st.lists(st.lists(st.tuples(st.tuples(extreme, extreme, extreme, extreme), extreme, extreme),
                                max_size=6), min_size=1, max_size=12))
def test_extreme_finite_values_give_an_error_or_finite_output(name, stream):
    """Values from 1e-320 to 1e308 anywhere: each frame either raises ValueError (and changes
    nothing) or reports finite boxes; never inf/NaN, a LinAlgError or another exception."""
    tracker = Tracker(name)
    for frame in stream:
        boxes = np.array([row[0] for row in frame], dtype=float).reshape(-1, 4)
        scores = np.array([row[1] for row in frame], dtype=float)
        features = np.array([[row[2], 1.0, -2.0] for row in frame], dtype=float).reshape(-1, 3)
        before = tracker.frame_count
        try:
            out = tracker.update(boxes, scores, features)
        except ValueError:
            assert tracker.frame_count == before
            continue
        for track in out:
            assert np.isfinite(track.tlwh).all() and (track.tlwh[2:] > 0).all(), track
        assert np.isfinite(tracker.tracks.mean).all() and np.isfinite(tracker.tracks.covariance).all()


# =====================================================================================================
# Camera motion
# =====================================================================================================
def _confirmed_tracker(name: str = "bytetrack") -> Tracker:
    tracker = Tracker(preset(name, camera_motion="none"))
    for _ in range(3):
        tracker.update(BOXES, np.ones(4), np.ones((4, 8)))
    return tracker


@pytest.mark.parametrize("motion, pattern", [
    (np.full((2, 3), np.nan), r"camera_motion is not finite"),
    (np.zeros((2, 3)), r"scales by 0 to 0 .*all zeros: no estimate"),
    (np.array([[1.0, 1, 0], [1, 1, 0]]), r"scales by 0 to 2"),  # singular
    (np.array([[1e3, 0, 0], [0, 1e3, 0]]), r"scales by 1e\+03 to 1e\+03"),
    (np.array([[1e200, 0, 0], [0, 1e200, 0]]), r"camera_motion's linear part"),  # squares overflow
    (np.array([[1.0, 0, 2e6], [0, 1, 0]]), r"translates by \(2e\+06, 0\) px"),
    (np.array([[1.0, 0, 5], [0, 1, 3], [1e-4, 0, 1]]),
     r"camera_motion has shape \(3, 3\) with last row \[0.0001, 0.0, 1.0\]: a homography; pass a \(2, 3\) affine"),
    (np.eye(2), r"camera_motion must be a \(2, 3\) affine .* got shape \(2, 2\)"),
])
def test_bad_camera_motion_is_an_error_and_changes_nothing(motion, pattern):
    tracker = _confirmed_tracker()
    before = tracker.snapshot()
    with pytest.raises(ValueError, match=pattern):
        tracker.update(BOXES, np.ones(4), np.ones((4, 8)), motion)
    after = tracker.snapshot()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_affine_given_as_3x3_with_last_row_0_0_1_is_the_same_motion():
    affine = np.array([[1.01, 0.02, 5.0], [-0.02, 1.01, -3.0]])
    a, b = _confirmed_tracker(), _confirmed_tracker()
    out_a = a.update(BOXES + 4, np.ones(4), np.ones((4, 8)), affine)
    out_b = b.update(BOXES + 4, np.ones(4), np.ones((4, 8)), np.vstack([affine, [0, 0, 1]]))
    assert [(t.track_id, t.tlwh.tolist()) for t in out_a] == [(t.track_id, t.tlwh.tolist()) for t in out_b]


@pytest.mark.parametrize("name", ["sort", "deepsort", "fmtrack"])
@pytest.mark.parametrize("zoom", [100.0, 0.01])
def test_repeated_extreme_zoom_ends_tracks_without_non_finite_values(name, zoom):
    # The largest and smallest scale a camera motion may have, every frame, while the tracks coast
    # for up to 1000 frames: they must end (their boxes leave the valid range), never turn to inf/NaN.
    tracker = _confirmed_tracker(name)
    tracker.config = tracker.config.replace(max_age=1000)
    motion = np.array([[zoom, 0.0, 0.0], [0.0, zoom, 0.0]])
    for _ in range(400):
        out = tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 8)), motion)
        assert all(np.isfinite(t.tlwh).all() for t in out)
    assert len(tracker.tracks) == 0


# =====================================================================================================
# Duplicates and too many detections
# =====================================================================================================
def test_duplicated_detections_warn_once_with_a_count():
    tracker = Tracker("sort")
    boxes = np.vstack([BOXES, BOXES[1], BOXES[1], BOXES[3]])  # rows 4, 5 repeat row 1; row 6 repeats row 3
    with pytest.warns(RuntimeWarning, match=r"frame 1: 3 detection row\(s\) repeat another row") as record:
        for _ in range(3):
            tracker.update(boxes, np.ones(7))
    assert len([w for w in record if "repeat another row" in str(w.message)]) == 1
    assert tracker.duplicate_detections == 9


def test_more_than_max_detections_keeps_the_highest_scoring_with_a_warning():
    rng = np.random.default_rng(0)
    n, cap = 15, 10
    boxes = np.column_stack([np.arange(n) * 100.0, np.zeros(n), np.full(n, 40.0), np.full(n, 90.0)])
    scores = rng.permutation(n) / n
    tracker = Tracker(preset("sort", max_detections=cap))
    with pytest.warns(RuntimeWarning, match=r"15 detections in one frame: keeping the 10 highest-scoring"):
        out = tracker.update(boxes, scores)  # SORT reports every new track in its first frames
    top = set(np.argsort(scores)[-cap:].tolist())
    assert {t.detection for t in out} == top
    with pytest.raises(ValueError, match="max_detections must be >= 1"):
        preset("sort", max_detections=0)


def test_many_detections_make_no_tracks_x_detections_x_depth_temporaries():
    """T = N = 1000 with 128-d features and DeepSORT's gallery of 100: a (T, N, D) float32 or a
    (T, N, 8, 8) float64 temporary would alone take 512 MB; the update must peak far below."""
    rng = np.random.default_rng(0)
    n, dim = 1000, 128
    boxes = np.column_stack([rng.uniform(0, 1900, n), rng.uniform(0, 1000, n), rng.uniform(20, 80, n),
                             rng.uniform(50, 200, n)])
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    tracker = Tracker("deepsort")
    for step in range(3):  # confirmed tracks with 3 features each
        tracker.update(boxes + step, np.ones(n), feats)
    tracemalloc.start()
    tracker.update(boxes + 3, np.ones(n), feats)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    one_big_temporary = n * n * dim * 4
    assert peak < one_big_temporary / 4, f"peak {peak / 2**20:.0f} MiB"


# =====================================================================================================
# Non-maximum suppression (DeepSORT's rule)
# =====================================================================================================
def _overlap(kept: np.ndarray, other: np.ndarray) -> float:
    """DeepSORT's overlap of ``other`` with ``kept``: pixel-inclusive intersection / other's area
    (the intersection at most the other box itself, whatever the rounding of x + w)."""
    (x, y, w, h), (u, v, p, q) = (float(a) for a in kept), (float(a) for a in other)
    iw = max(0.0, min(min(x + w, u + p) - max(x, u), p) + 1.0)
    ih = max(0.0, min(min(y + h, v + q) - max(y, v), q) + 1.0)
    return iw * ih / ((p + 1.0) * (q + 1.0))


def test_nms_hand_example_where_the_rule_is_not_iou():
    boxes = np.array([[0.0, 0, 99, 99],  # A, area 100 x 100 pixels
                      [10, 10, 19, 19],  # B inside A: 400 / 400 = 1.0 of B overlaps A (IoU 0.04)
                      [80, 0, 99, 99],  # C: 20 x 100 = 2000 / 10000 = 0.2 of C overlaps A
                      [150, 0, 30, 99]])  # D: 30 x 100 = 3000 / 10000 = 0.3 of C overlaps D
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [0, 2, 3]  # B goes; IoU NMS would keep it
    # B scoring above A: A's overlap with B is 400 / 10000 = 0.04, so both stay.
    assert non_max_suppression(boxes, np.array([0.8, 0.9, 0.7, 0.95]), 0.5).tolist() == [0, 1, 2, 3]
    assert non_max_suppression(boxes, scores, 0.25).tolist() == [0, 3]  # C (0.3 of it under D) goes too
    # Identical boxes overlap exactly 1.0: kept at 1.0 (off), suppressed below; a tie keeps the later row.
    same = np.array([[5.0, 5, 10, 10]] * 2)
    assert non_max_suppression(same, np.ones(2), 1.0).tolist() == [0, 1]
    assert non_max_suppression(same, np.ones(2), 0.99).tolist() == [1]


box_st = st.tuples(st.floats(0, 300), st.floats(0, 300), st.floats(1, 120), st.floats(1, 120))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(box_st, min_size=1, max_size=12),
       scores=st.lists(st.floats(0, 1), min_size=12, max_size=12, unique=True),
       threshold=st.floats(0.05, 1.0))
def test_nms_properties(rows, scores, threshold):
    boxes = np.array(rows)
    scores = np.array(scores[:len(rows)])
    kept = non_max_suppression(boxes, scores, threshold).tolist()
    assert kept == sorted(set(kept))
    assert int(np.argmax(scores)) in kept  # the highest score always survives
    for j in range(len(boxes)):
        stronger = [i for i in kept if scores[i] > scores[j]]
        if j in kept:  # never overlapping a stronger kept box above the threshold, by DeepSORT's rule
            assert all(_overlap(boxes[i], boxes[j]) <= threshold for i in stronger)
        else:  # and suppressed only by one that does
            assert any(_overlap(boxes[i], boxes[j]) > threshold for i in stronger)
    assert non_max_suppression(boxes, scores, 1.0).tolist() == list(range(len(boxes)))


def test_tracker_with_nms_below_one_runs_and_suppresses():
    # The regression: --nms 0.7 crashed inside OpenCV 5's NMSBoxes.
    config = preset("sort", nms_max_overlap=0.7)
    boxes = np.vstack([BOXES, BOXES[0] + [2, 2, 0, 0]])  # row 4 mostly inside row 0
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.5])
    assert select_detections(boxes, scores, config).tolist() == [0, 1, 2, 3]
    out = Tracker(config).update(boxes, scores)
    assert sorted(t.detection for t in out) == [0, 1, 2, 3]


def test_cli_run_with_nms(data_root, tmp_path, capsys):
    from fmtrack.cli import main

    out = tmp_path / "TUD-Campus.txt"
    code = main(["run", "--seq", "TUD-Campus", "--data-root", str(data_root), "--preset", "sort",
                 "--nms", "0.7", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.stat().st_size > 0


# =====================================================================================================
# Gate constants and imports
# =====================================================================================================
def test_chi_square_quantiles_match_scipy():
    from scipy.stats import chi2

    for dof, value in CHI2_95.items():
        assert value == pytest.approx(float(chi2.ppf(0.95, dof)), rel=1e-12)
    assert PRESETS["deepsort"].gating_threshold == CHI2_95[4]


def test_importing_the_tracker_loads_no_scipy_stats():
    code = "import sys, fmtrack.tracker; print(sorted(m for m in sys.modules if m.startswith('scipy.stats')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("angle", [0.0, 3.8771904655732214e-4, 0.01, 0.3])
def test_a_rotation_is_valid_camera_motion(angle):
    """A rotation's singular values are equal up to rounding (ECC returned this one on TUD-Campus),
    so the check must not order them strictly."""
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))  # ECC estimates in float32
    motion = np.array([[cos, sin, 1.5], [-sin, cos, -0.5]], dtype=np.float32)
    tracker = Tracker("bytetrack")
    tracker.update(np.array([[10.0, 10.0, 20.0, 40.0]]), np.array([0.9]))
    tracker.update(np.array([[11.0, 10.0, 20.0, 40.0]]), np.array([0.9]), camera_motion=motion)
