"""KalmanFilter.warp: camera motion applied to Kalman states, against closed forms and OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fmtrack.tracker.kalman_filter import DeepSortKalman, SortKalman, XywhKalman


def random_states(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = np.column_stack([rng.uniform(0, 1000, (count, 2)), rng.uniform(0.3, 0.6, count),
                            rng.uniform(50, 300, count), rng.normal(0, 3, (count, 4))])
    factors = rng.normal(size=(count, 8, 8))
    covariance = factors @ factors.transpose(0, 2, 1) + np.eye(8)
    return mean, covariance


@pytest.mark.parametrize("kf", [DeepSortKalman(), SortKalman(), XywhKalman()])
def test_identity_warp_is_a_no_op(kf):
    mean, covariance = random_states(5)
    new_mean, new_covariance = kf.warp(mean.copy(), covariance, np.eye(2, 3))
    np.testing.assert_array_equal(new_mean, mean)
    np.testing.assert_array_equal(new_covariance, covariance)


@pytest.mark.parametrize("kf", [DeepSortKalman(), SortKalman(), XywhKalman()])
def test_translation_moves_only_the_centre(kf):
    mean, covariance = random_states(4)
    new_mean, new_covariance = kf.warp(mean.copy(), covariance, np.array([[1, 0, 12.5], [0, 1, -3.0]]))
    np.testing.assert_allclose(new_mean[:, :2], mean[:, :2] + [12.5, -3.0])
    np.testing.assert_array_equal(new_mean[:, 2:], mean[:, 2:])
    np.testing.assert_allclose(new_covariance, covariance)


def test_rotation_turns_velocities_and_keeps_covariance_psd():
    mean, covariance = random_states(6, seed=1)
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    affine = np.column_stack([rotation, [5.0, 7.0]])
    new_mean, new_covariance = DeepSortKalman().warp(mean.copy(), covariance, affine)
    np.testing.assert_allclose(new_mean[:, :2], mean[:, :2] @ rotation.T + [5.0, 7.0])
    np.testing.assert_allclose(new_mean[:, 4:6], mean[:, 4:6] @ rotation.T)
    np.testing.assert_allclose(new_mean[:, [2, 3, 6, 7]], mean[:, [2, 3, 6, 7]])  # scale 1
    np.testing.assert_allclose(new_covariance, new_covariance.transpose(0, 2, 1))
    assert np.linalg.eigvalsh(new_covariance).min() > 0
    # A rotation only re-expresses the position uncertainty: its total variance is unchanged.
    np.testing.assert_allclose(np.trace(new_covariance[:, :2, :2], axis1=1, axis2=2),
                               np.trace(covariance[:, :2, :2], axis1=1, axis2=2))


def test_zoom_scales_sizes_as_boxes_do():
    mean, covariance = random_states(3, seed=2)
    zoom = cv2.getRotationMatrix2D((500, 400), 0.0, 1.1)
    xyah, _ = DeepSortKalman().warp(mean.copy(), covariance, zoom)
    np.testing.assert_allclose(xyah[:, 3], 1.1 * mean[:, 3])  # h
    np.testing.assert_allclose(xyah[:, 2], mean[:, 2])  # a = w / h
    np.testing.assert_allclose(xyah[:, 7], 1.1 * mean[:, 7])  # vh
    xysr, _ = SortKalman().warp(mean.copy(), covariance, zoom)
    np.testing.assert_allclose(xysr[:, 2], 1.21 * mean[:, 2])  # area scales with zoom squared
    np.testing.assert_allclose(xysr[:, 3], mean[:, 3])  # aspect unchanged
    # The centre lands where OpenCV moves that point, and the warped box is the warped corners' box.
    np.testing.assert_allclose(xyah[:, :2], cv2.transform(mean[:, None, :2], zoom)[:, 0])
    kf = DeepSortKalman()
    tlwh = kf.to_tlwh(mean)
    corners = np.stack([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]], axis=1)
    warped = cv2.transform(corners, zoom)
    np.testing.assert_allclose(kf.to_tlwh(xyah), np.column_stack([warped[:, 0], warped[:, 1] - warped[:, 0]]))
