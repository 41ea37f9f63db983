"""The tracker's fast paths against the general forms they stand in for, and ``fmtrack bench
tracker``'s timing against trackers' ByteTrackTracker."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from fmtrack.benchmarks.tracker_speed import load_frames, peer_comparison
from fmtrack.tracker import Tracker
from fmtrack.tracker.kalman_filter import DeepSortKalman, SortKalman, XywhKalman


def _textbook_update(mean, covariance, measurement, kf):
    """Kalman update with an explicit inverse: K = P Hᵀ S⁻¹, x + K (z - H x), P - K H P."""
    projected, innovation_cov = kf.project(mean, covariance)
    gain = covariance[:, :, :4] @ np.linalg.inv(innovation_cov)
    return (mean + np.einsum("tij,tj->ti", gain, measurement - projected),
            covariance - gain @ covariance[:, :4, :])


def _states(kf, count: int, seed: int, rotate: bool):
    rng = np.random.default_rng(seed)
    boxes = np.column_stack([rng.uniform(0, 900, (count, 2)), rng.uniform(20, 200, (count, 2))])
    mean, covariance = kf.initiate(kf.measure(boxes))
    for _ in range(3):
        mean, covariance = kf.predict(mean, covariance)
        if rotate:  # camera rotation mixes x and y: S is no longer diagonal
            angle = np.deg2rad(5)
            affine = np.array([[np.cos(angle), -np.sin(angle), 3.0], [np.sin(angle), np.cos(angle), -2.0]])
            mean, covariance = kf.warp(mean, covariance, affine)
    return mean, covariance, kf.measure(boxes + rng.normal(0, 3, boxes.shape))


@pytest.mark.parametrize("kf", [DeepSortKalman(), SortKalman(), XywhKalman()], ids=["xyah", "xysr", "xywh"])
@pytest.mark.parametrize("rotate", [False, True], ids=["diagonal", "rotated"])
def test_kalman_update_and_gate_equal_the_explicit_inverse(kf, rotate):
    mean, covariance, measurement = _states(kf, 7, seed=3, rotate=rotate)
    innovation_cov = kf.project(mean, covariance)[1]
    off_diagonal = innovation_cov[:, ~np.eye(4, dtype=bool)]
    assert (np.count_nonzero(off_diagonal) > 0) == rotate  # both paths are exercised
    got_mean, got_covariance = kf.update(mean, covariance, measurement)
    want_mean, want_covariance = _textbook_update(mean, covariance, measurement, kf)
    np.testing.assert_allclose(got_mean, want_mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got_covariance, want_covariance, rtol=1e-10, atol=1e-9)
    projected = kf.project(mean, covariance)[0]
    diff = measurement[None, :, :] - projected[:, None, :]
    want_gate = np.einsum("tni,tij,tnj->tn", diff, np.linalg.inv(innovation_cov), diff)
    np.testing.assert_allclose(kf.gating_distance(mean, covariance, measurement), want_gate, rtol=1e-10)


def test_predict_equals_the_constant_velocity_products():
    kf = DeepSortKalman()
    mean, covariance, _ = _states(kf, 5, seed=4, rotate=True)
    motion = np.eye(8) + np.eye(8, k=4)  # position += velocity
    noise_std = mean[:, 3:4] * kf._process_weight + kf._process_floor
    want_covariance = motion @ covariance @ motion.T + np.stack([np.diag(v) for v in noise_std**2])
    got_mean, got_covariance = kf.predict(mean, covariance)
    np.testing.assert_allclose(got_mean, mean @ motion.T, rtol=1e-14)
    np.testing.assert_allclose(got_covariance, want_covariance, rtol=1e-12)


def test_integer_features_beyond_the_limit_are_refused():
    # 2**50 > 1e15 (the feature limit); integers take the same exact test as floats.
    tracker = Tracker("deepsort")
    with pytest.raises(ValueError, match="features row 0 is out of range"):
        tracker.update(np.array([[10.0, 10, 20, 40]]), np.ones(1), np.full((1, 8), 2**50, dtype=np.int64))


@pytest.mark.parametrize("value", [1e15, -1e15, 3e14])
def test_features_at_the_limit_pass_and_just_beyond_fail(value):
    boxes, scores = np.array([[10.0, 10, 20, 40]]), np.ones(1)
    Tracker("deepsort").update(boxes, scores, np.array([[value, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="out of range"):
        Tracker("deepsort").update(boxes, scores, np.array([[np.nextafter(1e15, np.inf), 1.0, 2.0]]))
    with pytest.raises(ValueError, match="scores row 0 is out of range"):
        Tracker("sort").update(boxes, np.array([np.nextafter(1e6, np.inf)]))


def test_peer_comparison_on_a_few_frames(data_root, capsys):
    pytest.importorskip("trackers")
    frames = load_frames("MOT17-09-FRCNN", data_root)[:80]
    result = peer_comparison(frames, repeats=2)
    printed = capsys.readouterr().out
    assert result is not None
    peer = result["trackers ByteTrackTracker"]
    ours = result["fmtrack --preset bytetrack"]
    # Two ByteTracks on the same detections: the peer reports tracks, about as many rows as ours.
    assert peer["rows"] > 0 and 0.5 < peer["rows"] / ours["rows"] < 2.0
    lines = {m[1].strip(): (float(m[2]), float(m[3]))
             for m in re.finditer(r"^\s+(.+?)\s+(\d+) frames/s\s+([\d.]+)x", printed, re.MULTILINE)}
    assert set(lines) == set(result)
    peer_fps = lines["trackers ByteTrackTracker"][0]
    for name, (fps, ratio) in lines.items():
        # The ratio printed is the two printed rates divided (rates rounded to 1 frame/s, ratio to 0.01).
        assert ratio == pytest.approx(fps / peer_fps, abs=0.006 + 2 * fps / peer_fps / peer_fps)
        assert result[name]["ratio"] == pytest.approx(result[name]["fps"] / peer["fps"])


def test_peer_comparison_skips_with_one_line_without_trackers(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "trackers", None)  # import trackers now raises ImportError
    assert peer_comparison([], repeats=1) is None
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "skipped" in printed[0] and "trackers" in printed[0]


def test_matching_without_conflicts_equals_the_solver():
    """Gated (DeepSORT) mode: the solver-free path (feasible pairs sharing no row or column) returns
    what the Hungarian solver on the clipped costs returns, on random sparse cost matrices. (Not gated,
    SORT takes such pairs as they are by its own rule, whatever the solver would say.)"""
    from scipy.optimize import linear_sum_assignment

    from fmtrack.tracker.linear_assignment import min_cost_matching

    rng = np.random.default_rng(0)
    fast_paths = 0
    for _ in range(2000):
        shape = tuple(rng.integers(1, 7, size=2))
        cost = rng.uniform(0.0, 1.0, size=shape)
        cost[rng.uniform(size=shape) < 0.7] = 5.0  # most pairs infeasible
        max_cost = 0.8
        feasible = cost <= max_cost
        fast_paths += bool(feasible.sum(axis=0).max() <= 1 and feasible.sum(axis=1).max() <= 1)
        rows, cols = linear_sum_assignment(np.minimum(cost, max_cost + 1e-5))
        keep = cost[rows, cols] <= max_cost
        expected = sorted(zip(rows[keep].tolist(), cols[keep].tolist()))
        got_rows, got_cols = min_cost_matching(cost, max_cost, gated=True)
        assert sorted(zip(got_rows.tolist(), got_cols.tolist())) == expected, cost
    assert 200 < fast_paths < 1900  # both paths exercised



def test_appearance_stages_skip_the_gate_only_where_it_changes_nothing():
    """A gated appearance stage applies the Mahalanobis gate only when some pair is under its
    max_cost. On a stream of walkers (with teleports the gate must refuse and look-alikes), the
    fmtrack preset gives the same tracks as a tracker that always applies it, and both cases occur."""
    from fmtrack.tracker.linear_assignment import INFEASIBLE

    calls = {"skipped": 0, "gated": 0}

    class AlwaysGated(Tracker):
        def _cost(self, stage, ti, di, costs, scores):
            cost = super()._cost(stage, ti, di, costs, scores)
            if stage.cost == "appearance":
                calls["skipped" if cost.min() > stage.max_cost else "gated"] += 1
                cost[costs.gate()[ti[:, None], di] > self.config.gating_threshold] = INFEASIBLE
            return cost

    rng = np.random.default_rng(5)
    people = 6
    identity = rng.normal(size=(people, 32))
    position = rng.uniform(0, 800, (people, 2))
    velocity = rng.normal(0, 4, (people, 2))
    size = rng.uniform(40, 120, (people, 1)) * np.array([[0.4, 1.0]])
    plain, gated = Tracker("fmtrack"), AlwaysGated("fmtrack")
    for frame in range(300):
        position += velocity
        jumped = rng.random(people) < 0.02  # far from the prediction: appearance says yes, the gate no
        position[jumped] = rng.uniform(0, 800, (int(jumped.sum()), 2))
        seen = rng.random(people) < 0.8
        boxes = np.column_stack([position[seen] + rng.normal(0, 2, (int(seen.sum()), 2)), size[seen]])
        features = identity[seen] + rng.normal(0, 0.3 if frame % 7 else 2.0, (int(seen.sum()), 32))
        scores = rng.uniform(0.3, 1.0, int(seen.sum()))
        want = [(t.track_id, t.detection) for t in gated.update(boxes, scores, features)]
        got = [(t.track_id, t.detection) for t in plain.update(boxes, scores, features)]
        assert got == want, frame
    assert calls["skipped"] > 0 and calls["gated"] > 0


@pytest.mark.parametrize("kf", [DeepSortKalman(), SortKalman(), XywhKalman()], ids=["xyah", "xysr", "xywh"])
@pytest.mark.parametrize("rotate", [False, True], ids=["diagonal", "rotated"])
def test_a_precomputed_innovation_diagonal_changes_nothing(kf, rotate):
    """The tracker computes S's diagonal once per frame and hands it to the gate and the update: the
    results are bit for bit those computed without it (None after a rotation: the general form)."""
    mean, covariance, measurement = _states(kf, 6, seed=8, rotate=rotate)
    diagonal = kf.innovation_diagonal(mean, covariance)
    assert (diagonal is None) == rotate
    if diagonal is not None:
        s = kf.project(mean, covariance)[1]
        np.testing.assert_array_equal(diagonal, s.diagonal(axis1=1, axis2=2))
    np.testing.assert_array_equal(kf.gating_distance(mean, covariance, measurement, diagonal),
                                  kf.gating_distance(mean, covariance, measurement))
    rows = np.array([4, 1, 2])
    for got, want in zip(kf.update(mean[rows], covariance[rows], measurement[rows],
                                   None if diagonal is None else diagonal[rows]),
                         kf.update(mean[rows], covariance[rows], measurement[rows])):
        np.testing.assert_array_equal(got, want)


def test_iou_matrix_equals_the_pairwise_definition():
    """IoU from areas and the intersection rectangle, pair by pair in plain Python, on random boxes
    that overlap, nest, touch, are disjoint or have zero area."""
    from fmtrack.tracker.linear_assignment import iou_matrix

    rng = np.random.default_rng(2)
    a = np.column_stack([rng.integers(0, 60, (9, 2)), rng.integers(0, 40, (9, 2))]).astype(float)
    b = np.column_stack([rng.integers(0, 60, (7, 2)), rng.integers(0, 40, (7, 2))]).astype(float)
    a[0], b[0] = (5, 5, 0, 10), (5, 5, 10, 10)  # zero width; a box whose edge it lies on
    a[1], b[1] = (0, 0, 10, 10), (10, 0, 10, 10)  # touching: IoU 0
    got = iou_matrix(a, b)
    assert got.shape == (9, 7)
    for i, (ax, ay, aw, ah) in enumerate(a.tolist()):
        for j, (bx, by, bw, bh) in enumerate(b.tolist()):
            inter = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0.0, min(ay + ah, by + bh) - max(ay, by))
            union = aw * ah + bw * bh - inter
            assert got[i, j] == pytest.approx(inter / union if union > 0 else 0.0, abs=1e-12), (i, j)
    assert iou_matrix(a[:0], b).shape == (0, 7) and iou_matrix(a, b[:0]).shape == (9, 0)


def test_the_benchmark_compares_with_the_peer_at_the_sequence_frame_rate(data_root, monkeypatch):
    """The presets in the peer comparison run as configured at the sequence's frame rate (a variable
    once shadowed it with the last preset's frames/s, which scaled max_age by a hundredfold)."""
    from fmtrack.benchmarks import tracker_speed

    seen = {}
    monkeypatch.setattr(tracker_speed, "peer_comparison", lambda frames, repeats, rate: seen.setdefault("rate", rate))
    monkeypatch.setattr(tracker_speed, "video_tracker_overhead", lambda *args, **kwargs: None)
    monkeypatch.setattr(tracker_speed, "time_updates", lambda config, frames, repeats: 1000.0)
    tracker_speed.run_tracker_benchmark("MOT17-09-FRCNN", data_root, repeats=1, stream_frames=0)
    assert seen["rate"] == 30
