"""Detector scores mapped to [0, 1], so one set of tracker thresholds fits every detector.

MOTChallenge detection files use each detector's own scale: FRCNN and SDP (MOT17) lie in [0, 1],
DPM (MOT16/17) is an unbounded SVM margin that is often negative, and ACF (MOT15) reaches 100+.
ByteTrack-style trackers compare scores with fixed thresholds (0.1, 0.6, ...), which only mean
something on a [0, 1] scale.

Every mapping is applied per file (one sequence's detections) and is monotone non-decreasing, so
the detector's ranking is kept:

- ``none``: identity; the scores must already lie in [0, 1].
- ``minmax``: ``(s - min) / (max - min)``; all-equal scores map to 1.
- ``logistic``: ``1 / (1 + exp(-(s - median) / spread))`` with spread = IQR / (2 ln 3), i.e. the
  file's quartiles map to 0.25 and 0.75 and its median to 0.5. A zero IQR falls back to the
  standard deviation, and a constant file to 0.5 everywhere.
- ``rank``: the empirical CDF ``#{scores <= s} / N``; ties share their highest rank, so the top
  score maps to 1.
- ``auto``: ``none`` when every score already lies in [0, 1], otherwise :data:`AUTO_DEFAULT`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .io import Detections

METHODS = ("none", "minmax", "logistic", "rank", "auto")
# Chosen for scores outside [0, 1] by ``auto``: measured with the bytetrack preset on MOT16-11's DPM
# detections (the training sequence), IDF1 / MOTA: rank 53.6 / 47.1, logistic 52.9 / 47.1,
# minmax 49.8 / 36.6 (its top-heavy outliers push most detections below the 0.45 threshold).
AUTO_DEFAULT = "rank"
# Quartiles of the standard logistic lie at +-ln 3, so this spread maps the IQR onto [0.25, 0.75].
_IQR_TO_SPREAD = 2.0 * np.log(3.0)


def _minmax(scores: np.ndarray) -> np.ndarray:
    low, high = scores.min(), scores.max()
    if high == low:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def _logistic(scores: np.ndarray) -> np.ndarray:
    q1, median, q3 = np.percentile(scores, [25, 50, 75])
    spread = (q3 - q1) / _IQR_TO_SPREAD
    if spread == 0:
        spread = scores.std()
    if spread == 0:
        return np.full_like(scores, 0.5)
    # Written with tanh, which does not overflow for scores far from the median.
    return 0.5 * (1.0 + np.tanh((scores - median) / (2.0 * spread)))


def _rank(scores: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.sort(scores), scores, side="right") / len(scores)


_MAPPINGS = {"none": lambda scores: scores, "minmax": _minmax, "logistic": _logistic, "rank": _rank}


def resolve_method(scores: np.ndarray, method: str) -> str:
    """The concrete mapping ``method`` stands for on these scores (resolves ``auto``)."""
    if method not in METHODS:
        raise ValueError(f"unknown score normalisation {method!r}; choose one of {METHODS}")
    if method != "auto":
        return method
    in_unit_interval = len(scores) == 0 or (scores.min() >= 0.0 and scores.max() <= 1.0)
    return "none" if in_unit_interval else AUTO_DEFAULT


def normalise_scores(scores: np.ndarray, method: str) -> np.ndarray:
    """Map one file's detection scores into [0, 1], keeping their order.

    scores: (N,) real detector scores of one sequence. method: one of :data:`METHODS`.
    Returns (N,) float64 in [0, 1]. Raises ValueError for NaN or infinite scores, and for
    ``none`` when a score lies outside [0, 1].
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be a 1-d array, got shape {scores.shape}")
    bad = ~np.isfinite(scores)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{int(bad.sum())} detection score(s) are NaN or infinite "
                         f"(first at row {first}: {scores[first]})")
    method = resolve_method(scores, method)
    if len(scores) == 0:
        return scores.copy()
    if method == "none" and (scores.min() < 0.0 or scores.max() > 1.0):
        raise ValueError(f"scores span [{scores.min():g}, {scores.max():g}], outside [0, 1]; "
                         "choose a normalisation other than 'none'")
    return np.clip(_MAPPINGS[method](scores), 0.0, 1.0)  # clip only absorbs rounding


def normalise_detections(detections: Detections, method: str) -> Detections:
    """A copy of ``detections`` with :func:`normalise_scores` applied to its scores."""
    try:
        scores = normalise_scores(detections.scores, method)
    except ValueError as err:
        raise ValueError(f"{detections.source or '<detections>'}: {err}") from None
    return dataclasses.replace(detections, scores=scores)
