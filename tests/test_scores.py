"""Score normalisation: properties of every mapping plus closed-form values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fmtrack.io import Detections
from fmtrack.scores import AUTO_DEFAULT, normalise_detections, normalise_scores, resolve_method

MAPPINGS = ["minmax", "logistic", "rank", "auto"]
# DPM margins and ACF scores alike: any finite real of detector-like magnitude.
real_scores = arrays(np.float64, st.integers(1, 60),
                     elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@pytest.mark.parametrize("method", MAPPINGS)
@given(scores=real_scores)
def test_output_lies_in_unit_interval(method, scores):
    mapped = normalise_scores(scores, method)
    assert mapped.shape == scores.shape
    assert np.all((mapped >= 0.0) & (mapped <= 1.0))


@pytest.mark.parametrize("method", MAPPINGS)
@given(scores=real_scores)
def test_order_is_preserved(method, scores):
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(normalise_scores(scores, method)[order]) >= 0)


@pytest.mark.parametrize("method", MAPPINGS + ["none"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_rejected(method, bad):
    with pytest.raises(ValueError, match="NaN or infinite .*row 1"):
        normalise_scores(np.array([0.2, bad, 0.5]), method)


def test_none_is_identity_inside_and_an_error_outside_unit_interval():
    scores = np.array([0.0, 0.3, 1.0])
    np.testing.assert_array_equal(normalise_scores(scores, "none"), scores)
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        normalise_scores(np.array([-0.5, 2.0]), "none")


def test_minmax_closed_form():
    np.testing.assert_allclose(normalise_scores(np.array([-2.0, 0.0, 6.0]), "minmax"), [0, 0.25, 1])
    np.testing.assert_array_equal(normalise_scores(np.array([3.0, 3.0]), "minmax"), [1, 1])


def test_logistic_maps_quartiles_to_quarter_and_three_quarters():
    scores = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])  # quartiles -1, 1; median 0
    mapped = normalise_scores(scores, "logistic")
    np.testing.assert_allclose(mapped[1:4], [0.25, 0.5, 0.75])
    np.testing.assert_array_equal(normalise_scores(np.array([4.0, 4.0]), "logistic"), [0.5, 0.5])


def test_logistic_is_shift_and_scale_invariant():
    scores = np.random.default_rng(0).normal(size=50)
    np.testing.assert_allclose(normalise_scores(scores, "logistic"),
                               normalise_scores(7.0 * scores - 30.0, "logistic"))


def test_rank_is_the_empirical_cdf_with_ties():
    np.testing.assert_allclose(normalise_scores(np.array([5.0, -1.0, 5.0, 2.0]), "rank"),
                               [1.0, 0.25, 1.0, 0.5])


def test_auto_keeps_unit_scores_and_maps_others_with_the_default():
    unit = np.array([0.1, 0.9])
    assert resolve_method(unit, "auto") == "none"
    np.testing.assert_array_equal(normalise_scores(unit, "auto"), unit)
    dpm = np.array([-1.5, -0.2, 0.4, 2.0])
    assert resolve_method(dpm, "auto") == AUTO_DEFAULT
    np.testing.assert_array_equal(normalise_scores(dpm, "auto"), normalise_scores(dpm, AUTO_DEFAULT))


def test_unknown_method_and_empty_input():
    with pytest.raises(ValueError, match="unknown score normalisation"):
        normalise_scores(np.array([0.5]), "softmax")
    assert normalise_scores(np.array([]), "rank").shape == (0,)


def test_detections_get_new_scores_and_keep_everything_else():
    detections = Detections(frames=np.array([1, 1, 2]), boxes=np.ones((3, 4)),
                            scores=np.array([-1.0, 3.0, 1.0]), source="det.txt")
    normalised = normalise_detections(detections, "minmax")
    np.testing.assert_allclose(normalised.scores, [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(detections.scores, [-1.0, 3.0, 1.0])  # original untouched
    np.testing.assert_array_equal(normalised.boxes, detections.boxes)
    assert normalised.source == "det.txt" and normalised.at(2)[1].tolist() == [0.5]


def test_detection_errors_name_the_file():
    detections = Detections(frames=np.array([1]), boxes=np.ones((1, 4)), scores=np.array([7.0]),
                            source="MOT15/ETH-Bahnhof/det/det.txt")
    with pytest.raises(ValueError, match="ETH-Bahnhof/det/det.txt: .*outside"):
        normalise_detections(detections, "none")
