"""The one appearance-distance helper (fmtrack.tracker.distance) against scipy's cdist, and its three
users (tracker gallery, label-free calibration, descriptor quality) against the helper's definition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from fmtrack.benchmarks.descriptor_quality import distance_matrix
from fmtrack.embedder.calibration import pair_distances
from fmtrack.tracker.distance import from_inner_products, paired_distance, pairwise_distance, squared_norms
from fmtrack.tracker.nn_matching import FeatureGallery, prepare_features

METRICS = ["cosine", "euclidean"]


def _sets(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(9, 6)) * 3.0 + 1.0, rng.normal(size=(5, 6))


@pytest.mark.parametrize("metric", METRICS)
def test_pairwise_distance_equals_scipy_cdist(metric):
    a, b = _sets()
    got = pairwise_distance(a, b, metric)
    assert got.shape == (9, 5) and got.dtype == np.float64
    np.testing.assert_allclose(got, cdist(a, b, metric), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("metric", METRICS)
def test_paired_distance_equals_the_diagonal_of_scipy_cdist(metric):
    a, _ = _sets(1)
    b = a[::-1] + np.random.default_rng(2).normal(size=a.shape) * 0.1
    np.testing.assert_allclose(paired_distance(a, b, metric), np.diag(cdist(a, b, metric)), rtol=1e-12, atol=1e-12)


def test_euclidean_is_clipped_at_zero_where_rounding_goes_negative():
    x = np.random.default_rng(3).normal(size=(40, 64)).astype(np.float32) * 1e3
    sq = squared_norms(x)
    raw = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    assert (raw < 0).any()  # the case exists at this scale, so the clip is exercised
    distance = pairwise_distance(x, x, "euclidean")
    assert np.isfinite(distance).all() and (distance >= 0).all()
    # The diagonal is the square root of the round-off of |x|^2 + |x|^2 - 2|x|^2: a few float32 ulps.
    assert np.diag(distance).max() <= np.sqrt(8 * np.finfo(np.float32).eps * sq.max())


def test_precomputed_squared_norms_give_the_same_distances_and_are_used():
    a, b = _sets(4)
    sq_a, sq_b = squared_norms(a), squared_norms(b)
    np.testing.assert_array_equal(pairwise_distance(a, b, "euclidean", sq_a, sq_b),
                                  pairwise_distance(a, b, "euclidean"))
    # Squared norms one larger give sqrt(d^2 + 1): the argument is read, not recomputed.
    shifted = pairwise_distance(a, b, "euclidean", sq_a + 1.0, sq_b)
    np.testing.assert_allclose(shifted, np.sqrt(cdist(a, b, "sqeuclidean") + 1.0), rtol=1e-12)


def test_dtype_follows_the_input_and_zero_rows_are_at_cosine_distance_one():
    a, b = _sets(5)
    assert pairwise_distance(a.astype(np.float32), b.astype(np.float32), "cosine").dtype == np.float32
    assert paired_distance(a[:5].astype(np.float32), b.astype(np.float32), "euclidean").dtype == np.float32
    assert pairwise_distance(np.arange(6).reshape(2, 3), np.ones((1, 3), dtype=int), "euclidean").dtype == np.float64
    a[0] = 0.0  # cdist gives NaN here; the helper's convention is "orthogonal to everything"
    np.testing.assert_array_equal(pairwise_distance(a, b, "cosine")[0], 1.0)


@pytest.mark.parametrize("call, pattern", [
    (lambda: pairwise_distance(np.ones((2, 3)), np.ones((2, 3)), "manhattan"), "metric must be"),
    (lambda: paired_distance(np.ones((2, 3)), np.ones((2, 3)), "sqeuclidean"), "metric must be"),
    (lambda: from_inner_products(np.ones(2), "l1"), "metric must be"),
    (lambda: pairwise_distance(np.ones((2, 3)), np.ones((2, 4)), "cosine"), "same feature length, got 3 and 4"),
    (lambda: pairwise_distance(np.ones(3), np.ones((2, 3)), "cosine"), r"a must have shape \(N, D\)"),
    (lambda: paired_distance(np.ones((2, 3)), np.ones((3, 3)), "euclidean"), "same shape"),
])
def test_bad_arguments_raise_one_value_error_naming_the_problem(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("metric", METRICS)
def test_the_three_users_agree_with_scipy(metric):
    a, b = _sets(6)
    # Label-free calibration: distances of index pairs.
    features = np.concatenate([a, b])
    pairs = np.array([[0, 9], [3, 12], [8, 13], [2, 2]])
    np.testing.assert_allclose(pair_distances(features, pairs, metric),
                               [cdist(features[i:i + 1], features[j:j + 1], metric)[0, 0] for i, j in pairs],
                               rtol=1e-12, atol=1e-12)
    # Descriptor quality: the full matrix of one set.
    np.testing.assert_allclose(distance_matrix(a, metric), cdist(a, a, metric), atol=1e-6)
    # Tracker gallery, one feature per track (float32): each track against each query.
    gallery = FeatureGallery(a.shape[1], 1, metric, capacity=4)
    slots = np.array([gallery.allocate() for _ in range(len(a))])
    gallery.add(slots, prepare_features(a, metric))
    got = gallery.distance(slots, prepare_features(b, metric))
    np.testing.assert_allclose(got, cdist(a, b, metric), rtol=1e-5, atol=1e-5)
