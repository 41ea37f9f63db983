"""Constant-velocity Kalman filters over batches of tracks.

Written here rather than taken from filterpy because every operation runs on all tracks at once
(arrays of shape (T, 8) and (T, 8, 8)): one numpy call per step instead of one per track.

Three noise models share the same linear algebra:

- ``DeepSortKalman`` (state cx, cy, a, h and their velocities; a = w / h): DeepSORT's model, with
  process and measurement noise proportional to the box height (weights 1/20 and 1/160).
- ``XywhKalman`` (state cx, cy, w, h and their velocities): BoT-SORT's model, noise proportional to
  the box width (x, w) or height (y, h).
- ``SortKalman`` (state cx, cy, s, r, their velocities; s = w * h area, r = w / h): SORT's model with
  its fixed noise. SORT has no velocity for r; here that eighth state stays exactly zero because its
  variance and process noise are zero.

Each takes ``velocity_noise``: the standard deviation of the velocity entries' process and initial
noise times this factor (1: the model's own). A velocity is in pixels per frame, so at a lower frame
rate it and its uncertainty are larger; the tracker config scales the factor with 30 / fps.
"""

from __future__ import annotations

import math

import numpy as np

_NDIM = 4
# Constant velocity: position += velocity, one frame per step.
_MOTION = np.eye(2 * _NDIM)
_MOTION[:_NDIM, _NDIM:] = np.eye(_NDIM)
_EYE8 = np.eye(2 * _NDIM)


def _diag(std: np.ndarray) -> np.ndarray:
    """(T, 8) standard deviations -> (T, 8, 8) diagonal covariances."""
    return (std**2)[:, :, None] * _EYE8


def _add_to_diagonal(matrices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Add ``values`` (T, K) or (K,) to the diagonals of ``matrices`` (T, K, K), in place; returns them.

    The same numbers as adding a diagonal matrix (its zeros add exactly), without building it.
    """
    k = matrices.shape[-1]
    matrices.reshape(len(matrices), k * k)[:, ::k + 1] += values
    return matrices


def _innovation_diagonal(covariance: np.ndarray, variance: np.ndarray) -> np.ndarray | None:
    """The diagonals (T, 4) of the innovation covariances S = P[:4, :4] + R when every S is diagonal,
    else None. R is diagonal, so S is exactly when P's position block has no nonzero off-diagonal
    entry (so without camera rotation: the four coordinates never mix)."""
    block = covariance[:, :_NDIM, :_NDIM]
    diagonal = block.diagonal(axis1=1, axis2=2)
    return diagonal + variance if np.count_nonzero(block) == np.count_nonzero(diagonal) else None


def check_velocity_noise(velocity_noise: object) -> float:
    """``velocity_noise`` as a float, or ValueError unless it is a finite number > 0."""
    if (isinstance(velocity_noise, bool) or not isinstance(velocity_noise, (int, float))
            or not (math.isfinite(velocity_noise) and velocity_noise > 0)):
        raise ValueError(f"velocity_noise must be a finite number > 0, got {velocity_noise!r}")
    return float(velocity_noise)


class KalmanFilter:
    """Batched Kalman filter on an 8-d state whose first four entries are the measurement."""

    # Noise arrays (attribute name, 1 for standard deviations or 2 for variances) whose entries 4:8
    # are the velocities': what velocity_noise multiplies.
    _velocity_noise_arrays: tuple[tuple[str, int], ...] = ()

    def __init__(self, velocity_noise: float = 1.0) -> None:
        """velocity_noise: factor (> 0) on the standard deviation of the velocities' process and initial noise."""
        self.velocity_noise = check_velocity_noise(velocity_noise)
        if self.velocity_noise != 1.0:
            for name, power in self._velocity_noise_arrays:
                values = np.array(getattr(type(self), name), dtype=np.float64)
                values[_NDIM:] *= self.velocity_noise ** power
                setattr(self, name, values)  # on the instance: the class keeps the model's own

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start tracks from measurements (T, 4). Returns mean (T, 8) and covariance (T, 8, 8)."""
        mean = np.zeros((len(measurement), 2 * _NDIM))
        mean[:, :_NDIM] = measurement
        return mean, self._initial_covariance(measurement)

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead: mean (T, 8), covariance (T, 8, 8) (new arrays; the inputs are unchanged)."""
        noise = self._process_variance(mean)
        return mean @ _MOTION.T, _add_to_diagonal(_MOTION @ covariance @ _MOTION.T, noise)

    def project(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space mean (T, 4) and innovation covariance (T, 4, 4)."""
        return (mean[:, :_NDIM].copy(),
                _add_to_diagonal(covariance[:, :_NDIM, :_NDIM].copy(), self._measurement_variance(mean)))

    def innovation_diagonal(self, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray | None:
        """The diagonals (T, 4) of the innovation covariances S = H P Hᵀ + R when every S is
        diagonal (always, unless a camera rotation has mixed the coordinates), else None. Pass it
        to :meth:`update` and :meth:`gating_distance` for the same state to skip computing it twice."""
        return _innovation_diagonal(covariance, self._measurement_variance(mean))

    def update(self, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray,
               diagonal: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track (row) with its own measurement (T, 4). diagonal: this state's
        :meth:`innovation_diagonal` when known (None: computed here)."""
        # Kalman gain K = P Hᵀ S⁻¹ with S = H P Hᵀ + R (a well-conditioned 4x4: measurement noise
        # > 0), and P - K S Kᵀ = P - K H P.
        if diagonal is None:
            diagonal = self.innovation_diagonal(mean, covariance)
        # A diagonal S: its inverse is the reciprocals (LAPACK's own result there), and the product
        # with it a broadcast scaling (the matrix product's other terms are exact zeros).
        gain = covariance[:, :, :_NDIM] * (1.0 / diagonal)[:, None, :] if diagonal is not None \
            else covariance[:, :, :_NDIM] @ np.linalg.inv(self.project(mean, covariance)[1])
        innovation = measurement - mean[:, :_NDIM]
        mean = mean + np.einsum("tij,tj->ti", gain, innovation)
        covariance = covariance - gain @ covariance[:, :_NDIM, :]
        return mean, covariance

    def warp(self, mean: np.ndarray, covariance: np.ndarray,
             affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move states (T, 8), (T, 8, 8) by a camera motion ``affine`` (2, 3), previous -> current pixels.

        The centre is rotated and translated, its velocity rotated: ``mean' = J mean + t`` and
        ``P' = J P Jᵀ``. Sizes scale by s = sqrt(|det L|) (``_size_exponents`` says which entries and
        how), exact for the similarity transforms the estimators fit. BoT-SORT instead multiplies the
        (w, h) pair by L as if it were a vector, which mixes width into height under rotation.
        """
        linear = np.asarray(affine, dtype=np.float64)[:, :2]
        scale = np.sqrt(abs(np.linalg.det(linear)))
        jacobian = np.eye(2 * _NDIM)
        jacobian[0:2, 0:2] = linear
        jacobian[4:6, 4:6] = linear
        for index, exponent in self._size_exponents.items():
            jacobian[index, index] = scale**exponent
        mean = mean @ jacobian.T
        mean[:, 0:2] += np.asarray(affine, dtype=np.float64)[:, 2]
        return mean, jacobian @ covariance @ jacobian.T

    def gating_distance(self, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray,
                        diagonal: np.ndarray | None = None) -> np.ndarray:
        """Squared Mahalanobis distance (T, N) of measurements (N, 4) to each track's projection.
        diagonal: this state's :meth:`innovation_diagonal` when known (None: computed here)."""
        diff = measurement[None, :, :] - mean[:, None, :_NDIM]
        if diagonal is None:
            diagonal = self.innovation_diagonal(mean, covariance)
        if diagonal is not None:  # the same sum as the full form below, without its zero terms
            return np.einsum("tni,ti,tni->tn", diff, 1.0 / diagonal, diff)
        # One batched 4x4 inverse per track; S is well conditioned (measurement noise > 0).
        return np.einsum("tni,tij,tnj->tn", diff, np.linalg.inv(self.project(mean, covariance)[1]), diff)

    # Box conversions, noise and how sizes scale under zoom: model-specific.
    _size_exponents: dict[int, int] = {}

    def measure(self, tlwh: np.ndarray) -> np.ndarray:
        """(N, 4) tlwh pixels -> (N, 4) measurements."""
        raise NotImplementedError

    def to_tlwh(self, mean: np.ndarray) -> np.ndarray:
        """(T, 8) states -> (T, 4) tlwh pixels (NaN where the state is not a valid box)."""
        raise NotImplementedError

    def _initial_covariance(self, measurement: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _process_variance(self, mean: np.ndarray) -> np.ndarray:
        """Diagonal of the process noise covariance: (T, 8), or (8,) when the same for every track."""
        raise NotImplementedError

    def _measurement_variance(self, mean: np.ndarray) -> np.ndarray:
        """Diagonal of the measurement noise covariance: (T, 4), or (4,) when the same for every track."""
        raise NotImplementedError


class DeepSortKalman(KalmanFilter):
    """DeepSORT's filter on (cx, cy, aspect, height): noise scales with the box height."""

    std_weight_position = 1.0 / 20
    std_weight_velocity = 1.0 / 160
    # Standard deviations are height * weight + floor; the aspect ratio gets fixed noise.
    _wp, _wv = std_weight_position, std_weight_velocity
    _initial_weight = np.array([2 * _wp, 2 * _wp, 0, 2 * _wp, 10 * _wv, 10 * _wv, 0, 10 * _wv])
    _initial_floor = _process_floor = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
    _process_weight = np.array([_wp, _wp, 0, _wp, _wv, _wv, 0, _wv])
    _measurement_weight = np.array([_wp, _wp, 0, _wp])
    _measurement_floor = np.array([0, 0, 1e-1, 0])
    _size_exponents = {3: 1, 7: 1}  # h and its velocity scale with zoom; aspect does not
    _velocity_noise_arrays = (("_process_weight", 1), ("_initial_weight", 1), ("_process_floor", 1),
                              ("_initial_floor", 1))

    def measure(self, tlwh: np.ndarray) -> np.ndarray:
        out = np.array(tlwh, dtype=np.float64, copy=True)
        out[:, :2] += out[:, 2:] / 2
        out[:, 2] /= out[:, 3]
        return out

    def to_tlwh(self, mean: np.ndarray) -> np.ndarray:
        out = mean[:, :4].copy()
        out[:, 2] *= out[:, 3]
        out[:, :2] -= out[:, 2:] / 2
        return out

    def _initial_covariance(self, measurement: np.ndarray) -> np.ndarray:
        return _diag(measurement[:, 3:4] * self._initial_weight + self._initial_floor)

    def _process_variance(self, mean: np.ndarray) -> np.ndarray:
        return (mean[:, 3:4] * self._process_weight + self._process_floor) ** 2

    def _measurement_variance(self, mean: np.ndarray) -> np.ndarray:
        return (mean[:, 3:4] * self._measurement_weight + self._measurement_floor) ** 2


class SortKalman(KalmanFilter):
    """SORT's filter on (cx, cy, area, aspect) with SORT's fixed noise (filterpy defaults scaled)."""

    # SORT: P = 10 I with velocities x1000; Q = I with velocities x0.01 and area velocity x1e-4;
    # R = I with area and aspect x10. The eighth entry (aspect velocity) does not exist in SORT.
    initial_var = np.array([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4, 0.0])
    process_var = np.array([1.0, 1.0, 1.0, 1.0, 1e-2, 1e-2, 1e-4, 0.0])
    measurement_var = np.array([1.0, 1.0, 10.0, 10.0])
    _size_exponents = {2: 2, 6: 2}  # area and its velocity scale with zoom squared
    _velocity_noise_arrays = (("process_var", 2), ("initial_var", 2))

    def measure(self, tlwh: np.ndarray) -> np.ndarray:
        tlwh = np.asarray(tlwh, dtype=np.float64)
        w, h = tlwh[:, 2], tlwh[:, 3]
        return np.column_stack([tlwh[:, 0] + w / 2, tlwh[:, 1] + h / 2, w * h, w / h])

    def to_tlwh(self, mean: np.ndarray) -> np.ndarray:
        area, aspect = mean[:, 2], mean[:, 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.sqrt(area * aspect)
            h = area / w
        return np.column_stack([mean[:, 0] - w / 2, mean[:, 1] - h / 2, w, h])

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # SORT stops an area velocity that would make the area non-positive.
        shrinking = mean[:, 6] + mean[:, 2] <= 0
        if shrinking.any():
            mean = mean.copy()
            mean[shrinking, 6] = 0.0
        return super().predict(mean, covariance)

    def _initial_covariance(self, measurement: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.diag(self.initial_var), (len(measurement), 8, 8)).copy()

    def _process_variance(self, mean: np.ndarray) -> np.ndarray:
        return self.process_var

    def _measurement_variance(self, mean: np.ndarray) -> np.ndarray:
        return self.measurement_var


class XywhKalman(KalmanFilter):
    """BoT-SORT's filter on (cx, cy, w, h): width and height each have a velocity, and the noise of
    an x-like entry (cx, w) scales with the box width, of a y-like one (cy, h) with its height
    (DeepSORT's weights 1/20 and 1/160), so a box's shape follows the person instead of a fixed aspect."""

    _wp, _wv = DeepSortKalman.std_weight_position, DeepSortKalman.std_weight_velocity
    _initial_weight = np.array([2 * _wp] * 4 + [10 * _wv] * 4)
    _process_weight = np.array([_wp] * 4 + [_wv] * 4)
    _measurement_weight = np.array([_wp] * 4)
    _size_exponents = {2: 1, 3: 1, 6: 1, 7: 1}  # w, h and their velocities scale with zoom
    _velocity_noise_arrays = (("_process_weight", 1), ("_initial_weight", 1))

    def measure(self, tlwh: np.ndarray) -> np.ndarray:
        out = np.array(tlwh, dtype=np.float64, copy=True)
        out[:, :2] += out[:, 2:] / 2
        return out

    def to_tlwh(self, mean: np.ndarray) -> np.ndarray:
        out = mean[:, :4].copy()
        out[:, :2] -= out[:, 2:] / 2
        return out

    def _initial_covariance(self, measurement: np.ndarray) -> np.ndarray:
        return _diag(np.tile(measurement[:, 2:4], 4) * self._initial_weight)

    def _process_variance(self, mean: np.ndarray) -> np.ndarray:
        return (np.tile(mean[:, 2:4], 4) * self._process_weight) ** 2

    def _measurement_variance(self, mean: np.ndarray) -> np.ndarray:
        return (np.tile(mean[:, 2:4], 2) * self._measurement_weight) ** 2


MOTION_MODELS: dict[str, type[KalmanFilter]] = {"xyah": DeepSortKalman, "xysr": SortKalman, "xywh": XywhKalman}
