"""Tracker core against independent references: textbook Kalman filters written out per track,
hand-computed IoUs, brute-force assignments and nearest neighbours, lifecycle rules of the original
SORT and DeepSORT, and property tests over random detection streams."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmtrack.benchmarks.tracker_speed import synthetic_stream
from fmtrack.tracker import PRESETS, Tracker, preset
from fmtrack.tracker.kalman_filter import DeepSortKalman, SortKalman, XywhKalman
from fmtrack.tracker.linear_assignment import iou_matrix, min_cost_matching
from fmtrack.tracker.nn_matching import FeatureGallery

# =====================================================================================================
# Kalman filters
# =====================================================================================================
# DeepSORT (nwojke/deep_sort kalman_filter.py), written out for one track at a time.
WP, WV = 1.0 / 20, 1.0 / 160
F8 = np.eye(8)
for _i in range(4):
    F8[_i, 4 + _i] = 1.0
H8 = np.eye(4, 8)


def ds_initiate(z):
    h = z[3]
    std = [2 * WP * h, 2 * WP * h, 1e-2, 2 * WP * h, 10 * WV * h, 10 * WV * h, 1e-5, 10 * WV * h]
    return np.r_[z, np.zeros(4)], np.diag(np.square(std))


def ds_predict(x, P):
    h = x[3]
    Q = np.diag(np.square([WP * h, WP * h, 1e-2, WP * h, WV * h, WV * h, 1e-5, WV * h]))
    return F8 @ x, F8 @ P @ F8.T + Q


def ds_innovation(x, P):
    h = x[3]
    R = np.diag(np.square([WP * h, WP * h, 1e-1, WP * h]))
    return H8 @ x, H8 @ P @ H8.T + R


def ds_update(x, P, z):
    zhat, S = ds_innovation(x, P)
    K = P @ H8.T @ np.linalg.inv(S)
    return x + K @ (z - zhat), P - K @ S @ K.T


def tlwh_to_xyah(b):
    return np.array([b[0] + b[2] / 2, b[1] + b[3] / 2, b[2] / b[3], b[3]])


def random_boxes(rng, n):
    return np.column_stack([rng.uniform(0, 1800, n), rng.uniform(0, 900, n),
                            rng.uniform(10, 120, n), rng.uniform(40, 300, n)])


def test_deepsort_kalman_measure_and_to_tlwh_by_hand():
    kf = DeepSortKalman()
    np.testing.assert_allclose(kf.measure(np.array([[10.0, 20.0, 30.0, 60.0]])), [[25.0, 50.0, 0.5, 60.0]])
    state = np.array([[25.0, 50.0, 0.5, 60.0, 1, 2, 3, 4]])
    np.testing.assert_allclose(kf.to_tlwh(state), [[10.0, 20.0, 30.0, 60.0]])


def test_deepsort_kalman_matches_textbook_per_track():
    rng = np.random.default_rng(0)
    kf = DeepSortKalman()
    boxes = random_boxes(rng, 6)
    mean, cov = kf.initiate(kf.measure(boxes))
    ref = [ds_initiate(tlwh_to_xyah(b)) for b in boxes]
    for t in range(6):
        np.testing.assert_allclose(mean[t], ref[t][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cov[t], ref[t][1], rtol=1e-12, atol=1e-12)
    for step in range(8):
        mean, cov = kf.predict(mean, cov)
        ref = [ds_predict(x, P) for x, P in ref]
        boxes = boxes + np.column_stack([rng.normal(3, 2, (6, 2)), rng.normal(0, 1, (6, 2))])
        z = kf.measure(boxes)
        # Only some tracks are updated each step, as in the tracker.
        upd = np.flatnonzero(rng.random(6) < 0.7)
        mean[upd], cov[upd] = kf.update(mean[upd], cov[upd], z[upd])
        for t in upd:
            ref[t] = ds_update(*ref[t], tlwh_to_xyah(boxes[t]))
        for t in range(6):
            np.testing.assert_allclose(mean[t], ref[t][0], rtol=1e-9, atol=1e-9, err_msg=f"step {step} track {t}")
            np.testing.assert_allclose(cov[t], ref[t][1], rtol=1e-9, atol=1e-9, err_msg=f"step {step} track {t}")
        # And the projection (innovation) itself.
        zhat, S = kf.project(mean, cov)
        for t in range(6):
            rz, rS = ds_innovation(*ref[t])
            np.testing.assert_allclose(zhat[t], rz, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(S[t], rS, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kf", [DeepSortKalman(), SortKalman(), XywhKalman()], ids=["deepsort", "sort", "botsort"])
def test_gating_distance_is_explicit_mahalanobis(kf):
    rng = np.random.default_rng(1)
    mean, cov = kf.initiate(kf.measure(random_boxes(rng, 4)))
    mean[:, 4:6] = rng.normal(0, 3, (4, 2))
    mean, cov = kf.predict(mean, cov)
    z = kf.measure(random_boxes(rng, 5))
    got = kf.gating_distance(mean, cov, z)
    assert got.shape == (4, 5)
    for t in range(4):
        # S = H P Hᵀ + R, written out independently for each model.
        if isinstance(kf, DeepSortKalman):
            zhat, S = ds_innovation(mean[t], cov[t])
        elif isinstance(kf, XywhKalman):  # BoT-SORT: std 1/20 of the width (cx, w) or height (cy, h)
            w, h = mean[t, 2], mean[t, 3]
            zhat, S = mean[t, :4], cov[t, :4, :4] + np.diag([(w / 20) ** 2, (h / 20) ** 2, (w / 20) ** 2, (h / 20) ** 2])
        else:
            zhat, S = mean[t, :4], cov[t, :4, :4] + np.diag([1.0, 1.0, 10.0, 10.0])
        for n in range(5):
            d = z[n] - zhat
            assert got[t, n] == pytest.approx(float(d @ np.linalg.inv(S) @ d), rel=1e-9)


# SORT (abewley/sort with filterpy's KalmanFilter(dim_x=7, dim_z=4)), written out.
F7 = np.eye(7)
F7[0, 4] = F7[1, 5] = F7[2, 6] = 1.0
H7 = np.eye(4, 7)
P0 = np.diag([10.0, 10, 10, 10, 1e4, 1e4, 1e4])
Q7 = np.diag([1.0, 1, 1, 1, 0.01, 0.01, 1e-4])
R7 = np.diag([1.0, 1, 10, 10])


def sort_z(b):
    return np.array([b[0] + b[2] / 2, b[1] + b[3] / 2, b[2] * b[3], b[2] / b[3]])


def sort_predict(x, P):
    x = x.copy()
    if x[6] + x[2] <= 0:
        x[6] = 0.0
    return F7 @ x, F7 @ P @ F7.T + Q7


def sort_update(x, P, z):
    # filterpy: K = P Hᵀ S⁻¹, Joseph-form covariance.
    S = H7 @ P @ H7.T + R7
    K = P @ H7.T @ np.linalg.inv(S)
    IKH = np.eye(7) - K @ H7
    return x + K @ (z - H7 @ x), IKH @ P @ IKH.T + K @ R7 @ K.T


def test_sort_kalman_measure_and_to_tlwh_by_hand():
    kf = SortKalman()
    np.testing.assert_allclose(kf.measure(np.array([[10.0, 20.0, 30.0, 60.0]])), [[25.0, 50.0, 1800.0, 0.5]])
    np.testing.assert_allclose(kf.to_tlwh(np.array([[25.0, 50.0, 1800.0, 0.5, 0, 0, 0, 0]])),
                               [[10.0, 20.0, 30.0, 60.0]])


def test_sort_kalman_matches_filterpy_style_textbook():
    rng = np.random.default_rng(2)
    kf = SortKalman()
    boxes = random_boxes(rng, 5)
    mean, cov = kf.initiate(kf.measure(boxes))
    ref = [(sort_z(b).tolist() + [0.0, 0.0, 0.0], P0.copy()) for b in boxes]
    ref = [(np.array(x), P) for x, P in ref]
    for step in range(10):
        mean, cov = kf.predict(mean, cov)
        ref = [sort_predict(x, P) for x, P in ref]
        # Boxes shrink fast for some tracks, so SORT's area-velocity clamp is exercised.
        boxes = boxes * np.array([1, 1, 0.6, 0.6]) + np.column_stack([rng.normal(4, 2, (5, 2)), np.zeros((5, 2))])
        upd = np.flatnonzero(rng.random(5) < 0.6)
        mean[upd], cov[upd] = kf.update(mean[upd], cov[upd], kf.measure(boxes[upd]))
        for t in upd:
            ref[t] = sort_update(*ref[t], sort_z(boxes[t]))
        for t in range(5):
            scale = np.maximum(np.abs(ref[t][1]), 1.0)
            np.testing.assert_allclose(mean[t, :7], ref[t][0], rtol=1e-9, atol=1e-9, err_msg=f"step {step}")
            assert np.all(np.abs(cov[t, :7, :7] - ref[t][1]) <= 1e-9 * scale), f"step {step} track {t}"
            # The eighth state (aspect velocity) does not exist in SORT: it stays exactly zero.
            assert mean[t, 7] == 0.0 and np.all(cov[t, 7, :] == 0) and np.all(cov[t, :, 7] == 0)


def test_sort_kalman_clamps_area_velocity_like_sort():
    kf = SortKalman()
    mean, cov = kf.initiate(kf.measure(np.array([[0.0, 0.0, 10.0, 10.0]])))
    mean[0, 6] = -150.0  # area 100 would go to -50
    new, _ = kf.predict(mean, cov)
    assert new[0, 2] == 100.0 and new[0, 6] == 0.0
    mean[0, 6] = -50.0  # stays positive: no clamp
    new, _ = kf.predict(mean, cov)
    assert new[0, 2] == 50.0 and new[0, 6] == -50.0


# =====================================================================================================
# IoU and assignment
# =====================================================================================================
def test_iou_matrix_hand_values():
    a = np.array([[0.0, 0, 10, 10], [100, 100, 20, 40]])
    b = np.array([[5.0, 5, 10, 10],  # overlap 5x5 = 25, union 175
                  [10.0, 0, 5, 5],  # touches a[0] along an edge
                  [2.0, 2, 4, 4],  # inside a[0]: 16 / 100
                  [0.0, 0, 10, 10],  # equal to a[0]
                  [110.0, 90, 20, 40]])  # a[1]: overlap 10x30 = 300, union 1600 - 300
    expected = np.array([[25 / 175, 0, 16 / 100, 1, 0],
                         [0, 0, 0, 0, 300 / 1300]])
    np.testing.assert_allclose(iou_matrix(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(iou_matrix(b, a), expected.T, rtol=1e-12)
    # Degenerate boxes: zero union gives 0, not NaN.
    assert iou_matrix(np.array([[1.0, 1, 0, 0]]), np.array([[1.0, 1, 0, 0]]))[0, 0] == 0.0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 5)


def test_gated_and_ungated_matching_differ_as_designed():
    # max_cost 0.5. Both pairs of the anti-diagonal are feasible (total 0.9); the diagonal has one
    # feasible pair (0.1) and one infeasible (0.9).
    cost = np.array([[0.1, 0.45], [0.45, 0.9]])
    # DeepSORT clips 0.9 to 0.50001: the diagonal costs 0.60001 < 0.9, so it wins and its
    # infeasible pair is dropped: one match.
    rows, cols = min_cost_matching(cost, 0.5, gated=True)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0)]
    # SORT solves on raw costs: the diagonal costs 1.0 > 0.9, so both anti-diagonal pairs match.
    rows, cols = min_cost_matching(cost, 0.5, gated=False)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


def test_ungated_takes_a_one_to_one_feasible_set_as_is():
    # abewley/sort: when the feasible pairs already form a one-to-one matching they are used as
    # they are. Here only (0, 0) is feasible; the raw Hungarian optimum is the anti-diagonal
    # (0.6 + 0.7 < 0.4 + 10), both of whose pairs are infeasible, so solving would match nothing.
    cost = np.array([[0.4, 0.6], [0.7, 10.0]])
    rows, cols = min_cost_matching(cost, 0.5, gated=False)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0)]
    cost = np.array([[0.1, 0.9], [2.0, 0.05], [0.9, 0.9]])
    rows, cols = min_cost_matching(cost, 0.5, gated=False)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 0), (1, 1)]


def _assignments(n_rows: int, n_cols: int):
    """Every maximum-size one-to-one assignment, as lists of (row, col)."""
    if n_rows <= n_cols:
        for perm in itertools.permutations(range(n_cols), n_rows):
            yield list(zip(range(n_rows), perm))
    else:
        for perm in itertools.permutations(range(n_rows), n_cols):
            yield list(zip(perm, range(n_cols)))


def brute_force_matching(cost: np.ndarray, max_cost: float, gated: bool) -> set:
    feasible = cost <= max_cost
    if not gated and feasible.sum(axis=0).max() <= 1 and feasible.sum(axis=1).max() <= 1:
        return set(zip(*np.nonzero(feasible)))
    solve_on = np.minimum(cost, max_cost + 1e-5) if gated else cost
    best = min(_assignments(*cost.shape), key=lambda pairs: sum(solve_on[r, c] for r, c in pairs))
    return {(r, c) for r, c in best if cost[r, c] <= max_cost}


@pytest.mark.parametrize("gated", [True, False])
def test_min_cost_matching_equals_brute_force(gated):
    rng = np.random.default_rng(3)
    for trial in range(300):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)))
        cost = rng.uniform(0, 1, shape)
        if trial % 3 == 0:
            cost[rng.random(shape) < 0.3] = 1e5  # gated-out pairs, as the tracker marks them
        max_cost = float(rng.uniform(0.2, 0.8))
        rows, cols = min_cost_matching(cost, max_cost, gated)
        got = set(zip(rows.tolist(), cols.tolist()))
        assert got == brute_force_matching(cost, max_cost, gated), (trial, cost, max_cost)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert all(cost[r, c] <= max_cost for r, c in got)


# =====================================================================================================
# Feature gallery
# =====================================================================================================
def _as_stored(features, metric: str) -> np.ndarray:
    """Features as the gallery takes them: float32, L2-normalised for cosine (idempotent, so this
    holds whether or not the gallery normalises its inputs itself)."""
    features = np.asarray(features, dtype=np.float32)
    if metric == "cosine":
        features = features / np.linalg.norm(features, axis=1, keepdims=True)
    return features


def _reference_distance(gallery_list, queries, metric):
    out = np.full((len(gallery_list), len(queries)), np.inf)
    for k, stored in enumerate(gallery_list):
        for n, q in enumerate(queries):
            if not stored:
                continue
            if metric == "cosine":
                out[k, n] = min(1.0 - (s / np.linalg.norm(s)) @ (q / np.linalg.norm(q)) for s in stored)
            else:
                out[k, n] = min(np.sqrt(((s - q) ** 2).sum()) for s in stored)
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_gallery_nearest_neighbour_with_budget_eviction(metric):
    rng = np.random.default_rng(4)
    dim, budget = 6, 3
    gallery = FeatureGallery(dim, budget, metric, capacity=2)
    slots = [gallery.allocate() for _ in range(5)]  # grows past capacity 2
    assert gallery._count.shape[0] >= 5
    reference = {s: [] for s in slots}
    for step in range(12):
        chosen = np.array(sorted(rng.choice(slots, size=int(rng.integers(1, 5)), replace=False)))
        feats = rng.normal(size=(len(chosen), dim))
        gallery.add(chosen, _as_stored(feats, metric))
        for s, f in zip(chosen, feats):
            reference[int(s)] = (reference[int(s)] + [f])[-budget:]  # the last `budget` features
        queries = rng.normal(size=(4, dim))
        got = gallery.distance(np.array(slots), _as_stored(queries, metric))
        expected = _reference_distance([reference[s] for s in slots], queries, metric)
        assert got.shape == (5, 4)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-5, atol=1e-5)


def test_euclidean_is_true_distance_not_squared():
    gallery = FeatureGallery(2, 5, "euclidean")
    slot = gallery.allocate()
    gallery.add(np.array([slot]), np.array([[0.0, 0.0]]))
    assert gallery.distance(np.array([slot]), np.array([[3.0, 4.0]]))[0, 0] == pytest.approx(5.0, rel=1e-6)
    gallery = FeatureGallery(2, 5, "cosine")
    slot = gallery.allocate()
    gallery.add(np.array([slot]), _as_stored([[2.0, 0.0]], "cosine"))
    queries = _as_stored([[0.0, 5.0], [-1.0, 0.0], [3.0, 3.0]], "cosine")
    np.testing.assert_allclose(gallery.distance(np.array([slot]), queries), [[1.0, 2.0, 1.0 - np.sqrt(0.5)]], rtol=1e-6)


def test_gallery_slots_recycle_and_capacity_grows():
    gallery = FeatureGallery(3, 4, "cosine", capacity=2)
    a, b = gallery.allocate(), gallery.allocate()
    assert {a, b} == {0, 1} and gallery._count.shape[0] == 2
    gallery.add(np.array([a, b]), np.eye(3)[:2])
    gallery.release(np.array([a]))
    c = gallery.allocate()
    assert c == a and gallery._count.shape[0] == 2  # recycled, no growth
    # A recycled slot starts empty: infinitely far from everything.
    assert np.isinf(gallery.distance(np.array([c]), np.eye(3))).all()
    assert gallery.distance(np.array([b]), np.eye(3)[1:2])[0, 0] == pytest.approx(0.0, abs=1e-6)
    d = gallery.allocate()
    assert d not in (b, c) and gallery._count.shape[0] == 4  # doubled
    # b's features survive the growth.
    assert gallery.distance(np.array([b]), np.eye(3)[1:2])[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_gallery_ema_memory():
    gallery = FeatureGallery(2, 100, "cosine", ema_alpha=0.9)
    slot = gallery.allocate()
    gallery.add(np.array([slot]), np.array([[1.0, 0.0]]))
    gallery.add(np.array([slot]), np.array([[0.0, 1.0]]))
    blended = np.array([0.9, 0.1]) / np.linalg.norm([0.9, 0.1])
    q = np.array([[0.6, 0.8]])
    assert gallery.distance(np.array([slot]), q)[0, 0] == pytest.approx(1 - blended @ q[0], rel=1e-5)


# =====================================================================================================
# Tracker behaviour
# =====================================================================================================
def _walker(frame: int, x0=100.0, y0=200.0, vx=4.0, vy=1.0, w=40.0, h=100.0):
    return np.array([[x0 + vx * frame, y0 + vy * frame, w, h]])


def _update(tracker, boxes, features=None, scores=None):
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    if features is None and tracker.config.uses_appearance:
        features = np.tile(np.eye(8)[0], (len(boxes), 1))
    return tracker.update(boxes, np.ones(len(boxes)) if scores is None else scores, features)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_constant_velocity_object_keeps_one_id(name):
    tracker = Tracker(name)
    ids, last = set(), None
    for frame in range(1, 61):
        truth = _walker(frame)
        for track in _update(tracker, truth):
            ids.add(track.track_id)
            last = (frame, track.tlwh)
    assert ids == {1}
    assert last[0] == 60
    np.testing.assert_allclose(last[1], _walker(60)[0], atol=1.0)


def test_deepsort_reports_only_after_n_init_hits():
    tracker = Tracker("deepsort")
    assert tracker.config.n_init == 3
    reported = [len(_update(tracker, _walker(f))) for f in range(1, 6)]
    assert reported == [0, 0, 1, 1, 1]
    assert len(tracker.tracks) == 1 and bool(tracker.tracks.confirmed[0])


def test_tentative_track_dies_on_a_miss():
    tracker = Tracker("deepsort")
    _update(tracker, _walker(1))
    _update(tracker, _walker(2))
    assert len(tracker.tracks) == 1 and not tracker.tracks.confirmed[0]
    _update(tracker, np.zeros((0, 4)))
    assert len(tracker.tracks) == 0
    _update(tracker, _walker(4))
    assert tracker.tracks.age.tolist() == [1]  # a new track, not the old one
    _update(tracker, _walker(5))
    # The tentative track that died unreported took no id: the first track reported is 1.
    assert [t.track_id for t in _update(tracker, _walker(6))] == [1]


@pytest.mark.parametrize("name", ["deepsort", "motion"])
def test_confirmed_track_survives_max_age_misses_then_dies(name):
    tracker = Tracker(name)
    max_age = tracker.config.max_age
    for f in range(1, 4):
        _update(tracker, _walker(f, vx=0, vy=0))
    assert tracker.tracks.confirmed.tolist() == [True]
    reported_while_missed = []
    for _ in range(max_age):
        reported_while_missed.append(len(_update(tracker, np.zeros((0, 4)))))
        assert len(tracker.tracks) == 1
    # Reported (as its prediction) only in the first missed frame.
    assert reported_while_missed == [1] + [0] * (max_age - 1)
    _update(tracker, np.zeros((0, 4)))
    assert len(tracker.tracks) == 0


@pytest.mark.parametrize("name", ["deepsort", "motion"])
def test_confirmed_track_is_refound_after_max_age_minus_one_misses(name):
    tracker = Tracker(name)
    for f in range(1, 4):
        _update(tracker, _walker(f, vx=0, vy=0))
    for _ in range(tracker.config.max_age - 1):
        _update(tracker, np.zeros((0, 4)))
    out = _update(tracker, _walker(0, vx=0, vy=0))
    assert [t.track_id for t in out] == [1]


def test_sort_reporting_rule_hit_streak_or_first_three_frames():
    tracker = Tracker("sort")
    a_frames = [f for f in range(1, 21) if f != 8]  # object A is missed in frame 8
    b_start = 10  # object B appears in frame 10, far from A
    reported = {}
    for frame in range(1, 21):
        boxes = []
        if frame in a_frames:
            boxes.append(_walker(frame)[0])
        if frame >= b_start:
            boxes.append(_walker(frame, x0=1200, y0=600, vx=-2)[0])
        reported[frame] = sorted(t.track_id for t in _update(tracker, np.array(boxes).reshape(-1, 4)))
    # A: frames 1-3 by warm-up, then hit streak 3 from frame 4. Missed in 8 (not reported, kept:
    # max_age 1); the streak restarts at 9, so reported again from 11 (streak 3), same id.
    # B: born in 10 (streak 0), reported from 13 (streak 3).
    for frame in range(1, 21):
        expected = []
        if frame in a_frames and (frame <= 7 or frame >= 11):
            expected.append(1)
        if frame >= 13:
            expected.append(2)
        assert reported[frame] == expected, (frame, reported[frame])


def _two_people(scenario: str, frames: int = 60, speed: float = 4.0):
    """Two people at the same height walking towards each other; features orthogonal (plus noise).

    ``cross``: they pass through each other. ``turn``: they meet (boxes coincide in frame 30) and
    both walk back the way they came, which constant-velocity motion alone cannot foresee (the
    motion preset swaps their ids here; measured).
    """
    rng = np.random.default_rng(0)
    for frame in range(1, frames + 1):
        step = frame if scenario == "cross" else min(frame, 30) - max(0, frame - 30)
        a = [100 + speed * step, 300, 50, 120]
        b = [100 + speed * 60 - speed * step, 300, 50, 120]
        feats = np.eye(16)[:2] + 0.05 * rng.normal(size=(2, 16))
        yield np.array([a, b], dtype=float), feats


@pytest.mark.parametrize("scenario", ["cross", "turn"])
@pytest.mark.filterwarnings("ignore:.*repeat another row:RuntimeWarning")  # they meet exactly
def test_two_people_keep_ids_with_appearance(scenario):
    tracker = Tracker("deepsort")
    owner = {}  # track id -> the people (0, 1) its reported boxes were on
    for boxes, feats in _two_people(scenario):
        out = tracker.update(boxes, np.ones(2), feats)
        if abs(boxes[0, 0] - boxes[1, 0]) < 30:
            continue  # boxes nearly coincide: position cannot tell who is who
        for track in out:
            person = int(np.argmin(np.abs(boxes[:, 0] - track.tlwh[0])))
            assert abs(boxes[person, 0] - track.tlwh[0]) < 10
            owner.setdefault(track.track_id, set()).add(person)
    assert len(owner) == 2, owner
    assert all(len(people) == 1 for people in owner.values()), owner
    assert {next(iter(people)) for people in owner.values()} == {0, 1}


@pytest.mark.parametrize("scenario", ["cross", "turn"])
@pytest.mark.filterwarnings("ignore:.*repeat another row:RuntimeWarning")  # they meet exactly
def test_two_people_under_motion_only_stay_sane(scenario):
    # Without appearance the ids may swap where the people meet; the output must still be sane.
    tracker = Tracker("motion")
    for boxes, _ in _two_people(scenario):
        out = tracker.update(boxes, np.ones(2))
        assert len({t.track_id for t in out}) == len(out) <= 2


# -- property tests -----------------------------------------------------------------------------
coord = st.floats(-200, 2000, allow_nan=False)
extent = st.one_of(st.floats(1e-3, 1.0), st.floats(1.0, 600.0))
box = st.tuples(coord, coord, extent, extent)
frame_st = st.tuples(st.lists(st.tuples(box, st.floats(-2.0, 2.0, allow_nan=False)), max_size=15), st.booleans())
stream_st = st.lists(frame_st, min_size=1, max_size=25)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.filterwarnings("ignore:.*repeat another row:RuntimeWarning")
@settings(max_examples=50, deadline=None)
@given(stream=stream_st, seed=st.integers(0, 2**16))
def test_random_streams_give_sane_output(name, stream, seed):
    rng = np.random.default_rng(seed)
    tracker = Tracker(name)
    needs = tracker.config.uses_appearance
    seen_ids: set[int] = set()
    for dets, with_features in stream:
        boxes = np.array([d[0] for d in dets], dtype=float).reshape(-1, 4)
        scores = np.array([d[1] for d in dets], dtype=float)
        features = rng.normal(size=(len(dets), 8)) if (needs or with_features) else None
        out = tracker.update(boxes, scores, features)
        ids = [t.track_id for t in out]
        assert len(ids) == len(set(ids))
        matched = [t.detection for t in out if t.detection >= 0]
        assert len(matched) == len(set(matched))  # one detection feeds one track at most
        for t in out:
            assert t.tlwh.shape == (4,)
            assert np.isfinite(t.tlwh).all(), t
            assert t.tlwh[2] > 0 and t.tlwh[3] > 0, t
            # Matched in this frame exactly when it names an input row, and that row is a real box.
            assert (t.detection >= 0) == (t.time_since_update == 0), t
            if t.detection >= 0:
                assert boxes[t.detection, 2] > 0 and boxes[t.detection, 3] > 0
        seen_ids.update(ids)
        # Ids are 1, 2, 3, ... in order of first report, with no gaps.
        assert seen_ids == set(range(1, len(seen_ids) + 1))
        reported_once = tracker.tracks.track_id[tracker.tracks.track_id > 0].tolist()
        assert len(reported_once) == len(set(reported_once))


# -- bad input ----------------------------------------------------------------------------------------
GOOD_BOXES = np.array([[10.0, 10, 20, 40], [100, 100, 30, 60]])


@pytest.mark.parametrize("what, bad, pattern", [
    ("boxes", np.nan, r"boxes row 1 is not finite"),
    ("boxes", np.inf, r"boxes row 1 is not finite"),
    ("scores", np.nan, r"scores row 1 is not finite"),
    ("scores", -np.inf, r"scores row 1 is not finite"),
    ("features", np.nan, r"features row 1 is not finite"),
    ("features", np.inf, r"features row 1 is not finite"),
])
@pytest.mark.parametrize("name", ["deepsort", "sort"])
def test_non_finite_input_raises_value_error(name, what, bad, pattern):
    tracker = Tracker(name)
    boxes, scores, feats = GOOD_BOXES.copy(), np.ones(2), np.ones((2, 4))
    {"boxes": boxes, "scores": scores, "features": feats}[what][1, ...] = bad
    if what == "boxes":
        boxes[1, 1:] = 5.0  # only one bad value in the row
        boxes[1, 0] = bad
    with pytest.raises(ValueError, match=pattern):
        tracker.update(boxes, scores, feats)
    assert tracker.frame_count == 0 and len(tracker.tracks) == 0  # nothing half-applied


@pytest.mark.parametrize("boxes, scores, feats, pattern", [
    (np.ones((2, 3)), np.ones(2), np.ones((2, 4)), r"boxes must have shape \(N, 4\)"),
    (np.ones(4), np.ones(1), np.ones((1, 4)), r"boxes must have shape \(N, 4\)"),
    (np.ones((2, 4)), np.ones(3), np.ones((2, 4)), r"scores must have shape \(N=2,\) for 2 boxes, got shape \(3,\)"),
    (np.ones((4, 4)), np.ones((2, 2)), np.ones((4, 4)), r"scores must have shape \(N=4,\)"),  # was flattened
    (np.ones((2, 4)), np.ones(2), np.ones((3, 4)), r"features must have shape \(N=2, D\)"),
    (np.ones((2, 4)), np.ones(2), np.ones(8), r"features must have shape \(N=2, D\)"),
    (np.ones((2, 4)), np.ones(2), None, r"uses appearance: pass features"),
])
def test_wrong_shapes_raise_value_error(boxes, scores, feats, pattern):
    with pytest.raises(ValueError, match=pattern):
        Tracker("deepsort").update(boxes, scores, feats)


def test_zero_and_sub_micropixel_sizes_are_dropped_and_counted():
    tracker = Tracker("sort")
    boxes = np.array([[0.0, 0, 0, 10], [5, 5, 10, 1e-7], [50, 50, 20, 40], [9, 9, 1e-320, 3]])
    out = tracker.update(boxes, np.ones(4))
    assert tracker.skipped_detections == 3
    assert len(tracker.tracks) == 1  # only the valid box started a track
    np.testing.assert_allclose(out[0].tlwh, [50, 50, 20, 40])
    assert out[0].detection == 2  # the row in the caller's array, not in the filtered one
    tracker.update(np.array([[0.0, 0, 5, 0]]), np.ones(1))
    assert tracker.skipped_detections == 4


# -- memory ------------------------------------------------------------------------------------------
def test_long_stream_memory_is_structurally_bounded():
    tracker = Tracker(preset("deepsort"))
    most_tracks = 0
    for boxes, scores, feats in synthetic_stream(3000, seed=0, dim=32):
        tracker.update(boxes, scores, feats)
        most_tracks = max(most_tracks, len(tracker.tracks))
    # About 8 walkers at a time: live tracks (active plus lost ones kept max_age frames) stay small,
    # and the gallery pool only ever grows to the largest number of live tracks.
    assert tracker._next_id > 30  # many tracks were born and died over the stream
    assert most_tracks <= 40, most_tracks
    assert tracker.gallery._count.shape[0] <= 64
    assert len(tracker.gallery._free) + len(tracker.tracks) == tracker.gallery._count.shape[0]


def test_xywh_filter_round_trips_boxes_and_follows_a_changing_shape():
    """BoT-SORT's (cx, cy, w, h) state: tlwh -> state -> tlwh is exact, and a box whose width grows
    while its height stays is followed in both (an aspect-ratio state would have to trade one for the other)."""
    kf = XywhKalman()
    rng = np.random.default_rng(4)
    boxes = random_boxes(rng, 6)
    np.testing.assert_allclose(kf.to_tlwh(kf.initiate(kf.measure(boxes))[0]), boxes, rtol=1e-12)
    mean, cov = kf.initiate(kf.measure(np.array([[100.0, 50.0, 40.0, 100.0]])))
    for step in range(1, 30):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, kf.measure(np.array([[100.0, 50.0, 40.0 + 2 * step, 100.0]])))
    predicted = kf.to_tlwh(kf.predict(mean, cov)[0])[0]
    assert predicted[2] == pytest.approx(40.0 + 2 * 30, abs=1.0)  # width velocity learnt
    assert predicted[3] == pytest.approx(100.0, abs=0.5)  # height unchanged
    assert Tracker(preset("bytetrack", motion_model="xywh")).kf.__class__ is XywhKalman


def test_every_motion_model_a_config_may_name_has_a_filter():
    from fmtrack.tracker.config import MOTION_MODEL_NAMES, TrackerConfig
    from fmtrack.tracker.kalman_filter import MOTION_MODELS

    assert set(MOTION_MODEL_NAMES) == set(MOTION_MODELS)
    stage = PRESETS["sort"].stages
    for given in ({"motion_model": "xyxy"}, {"motion_only": {"motion_model": "xyxy"}}):
        with pytest.raises(ValueError, match="unknown motion_model 'xyxy'"):
            TrackerConfig(stages=stage, **given)
