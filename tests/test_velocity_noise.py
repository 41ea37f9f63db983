"""The Kalman filters' velocity noise factor, and the `fmtrack` preset's scaling of it with 30 / fps."""

from __future__ import annotations

import numpy as np
import pytest
from fmtrack.tracker import Tracker, preset
from fmtrack.tracker.kalman_filter import DeepSortKalman, SortKalman, XywhKalman

BOXES = np.array([[100.0, 50.0, 40.0, 120.0], [300.0, 80.0, 60.0, 150.0]])


@pytest.mark.parametrize("model", [DeepSortKalman, XywhKalman, SortKalman])
def test_velocity_noise_multiplies_the_velocity_standard_deviations_only(model):
    base, scaled = model(), model(2.5)
    mean, cov = base.initiate(base.measure(BOXES))
    mean2, cov2 = scaled.initiate(scaled.measure(BOXES))
    # Initial covariance: velocity variances x 2.5^2, everything else as the model's own.
    np.testing.assert_allclose(cov2[:, 4:, 4:], cov[:, 4:, 4:] * 2.5 ** 2)
    np.testing.assert_allclose(cov2[:, :4, :4], cov[:, :4, :4])
    # One predict from the same state: the added process noise of the velocities x 2.5^2.
    _, predicted = base.predict(mean, cov)
    _, predicted2 = scaled.predict(mean, cov)
    velocity = np.arange(4, 8)  # F leaves the velocity block of P as it is: the rest is process noise
    process = predicted[:, velocity, velocity] - cov[:, velocity, velocity]
    assert (process[:, :3] > 0).all()
    np.testing.assert_allclose(predicted2[:, velocity, velocity] - cov[:, velocity, velocity], process * 2.5 ** 2)
    np.testing.assert_allclose(predicted2[:, :4, :4], predicted[:, :4, :4])
    # The class keeps the model's own noise: a filter made afterwards is unchanged.
    np.testing.assert_allclose(model().initiate(model().measure(BOXES))[1], cov)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "2", True, None])
def test_bad_velocity_noise_is_refused(bad):
    with pytest.raises(ValueError, match="velocity_noise must be a finite number > 0"):
        DeepSortKalman(bad)
    # A config refuses a value of the wrong type ("2", True, None) as not a number, before its range.
    with pytest.raises(ValueError, match="velocity_noise must be a (finite )?number"):
        preset("fmtrack", velocity_noise=bad)


def test_fmtrack_scales_velocity_noise_with_the_frame_interval_and_bytetrack_does_not():
    config = preset("fmtrack")
    assert config.velocity_noise == 1.0 and config.velocity_noise_scales_with_frame_rate
    assert config.at_frame_rate(30).velocity_noise == 1.0  # given for 30 fps: nothing to scale there
    at_10 = config.at_frame_rate(10)
    assert at_10.velocity_noise == pytest.approx(3.0) and not at_10.velocity_noise_scales_with_frame_rate
    assert at_10.at_frame_rate(10) == at_10  # idempotent
    assert Tracker(at_10).kf.velocity_noise == pytest.approx(3.0)
    # The motion-only form scales alike, whichever is applied first.
    assert (config.without_appearance().at_frame_rate(10).velocity_noise
            == config.at_frame_rate(10).without_appearance().velocity_noise == pytest.approx(3.0))
    assert preset("bytetrack").at_frame_rate(10).velocity_noise == 1.0  # ByteTrack's own filter


def test_a_snapshot_restores_the_scaled_filter():
    tracker = Tracker(preset("fmtrack", camera_motion="none").without_appearance().at_frame_rate(7.5))
    for frame in range(3):
        tracker.update(BOXES + frame * 4.0, np.array([0.9, 0.8]))
    restored = Tracker.from_snapshot(tracker.snapshot())
    assert restored.kf.velocity_noise == tracker.kf.velocity_noise == pytest.approx(4.0)
    a = tracker.update(BOXES + 12.0, np.array([0.9, 0.8]))
    b = restored.update(BOXES + 12.0, np.array([0.9, 0.8]))
    def summary(tracks):
        return [(t.track_id, tuple(np.round(t.tlwh, 6))) for t in tracks]

    assert summary(a) == summary(b) and len(a) == 2
