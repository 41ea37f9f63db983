"""Detector scores mapped to [0, 1], so one set of tracker thresholds fits every detector.

MOTChallenge detection files use each detector's own scale: FRCNN and SDP (MOT17) lie in [0, 1],
DPM (MOT16/17) is an unbounded SVM margin that is often negative, and ACF (MOT15) reaches 100+.
ByteTrack-style trackers compare scores with fixed thresholds (0.1, 0.45, ...), which only mean
something on a [0, 1] scale.

Streaming (the default, frame by frame): :class:`ScoreMap`, a fixed monotone piecewise-linear map
per detector from the named table :data:`SCORE_MAPS` (package data ``fmtrack/data/score_maps.json``:
knots at quantiles of a sample of that detector's scores, with where the sample came from;
docs/score_maps.md). :class:`ScoreStream` applies one and warns once when scores leave its range.

Whole-file (kept for reference runs; they need every score of a sequence first), each monotone
non-decreasing, so the detector's ranking is kept:

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
import json
import warnings
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from .io import Detections

METHODS = ("none", "minmax", "logistic", "rank", "auto")
# The whole-file mapping ``auto`` picks for scores outside [0, 1] (chosen on MOT16-11; docs/score_maps.md).
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


@dataclass(frozen=True)
class ScoreMap:
    """A fixed monotone map from one detector's scores to [0, 1], applied score by score.

    knots: (K,) strictly increasing detector scores; levels: (K,) non-decreasing values in [0, 1]
    they map to; linear in between, ``levels[0]`` below the first knot and ``levels[-1]`` above the
    last. valid_range: (low, high) detector scores this map expects; source: where it came from.
    """

    name: str
    knots: tuple[float, ...]
    levels: tuple[float, ...]
    valid_range: tuple[float, float]
    source: str = ""

    def __post_init__(self) -> None:
        knots, levels = np.asarray(self.knots, dtype=np.float64), np.asarray(self.levels, dtype=np.float64)
        if knots.ndim != 1 or len(knots) < 2 or knots.shape != levels.shape:
            raise ValueError(f"score map {self.name!r}: knots and levels must be two equal 1-d sequences (>= 2)")
        if not (np.diff(knots) > 0).all() or not (np.diff(levels) >= 0).all():
            raise ValueError(f"score map {self.name!r}: knots must increase and levels must not decrease")
        if levels[0] < 0 or levels[-1] > 1 or not self.valid_range[0] < self.valid_range[1]:
            raise ValueError(f"score map {self.name!r}: levels must lie in [0, 1] and valid_range be (low, high)")

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """(N,) detector scores -> (N,) float64 in [0, 1]."""
        return np.interp(np.asarray(scores, dtype=np.float64), self.knots, self.levels)

    def to_dict(self) -> dict:
        return {"knots": list(self.knots), "levels": list(self.levels), "valid_range": list(self.valid_range),
                "source": self.source}


def fit_score_map(name: str, scores: np.ndarray, source: str, quantiles: int = 21, sample: int = 2000,
                  seed: int = 0) -> ScoreMap:
    """A :class:`ScoreMap` through ``quantiles`` evenly spaced quantiles of a random sample of ``scores``.

    Knot i is the sample's i / (quantiles - 1) quantile and maps to that level, so on scores drawn
    like the sample the map approximates the ``rank`` mapping (the empirical CDF). Tied knots keep
    their highest level. valid_range: the sample's span widened by half its width on each side
    (not below 0 when every sampled score is >= 0).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) < 2 or not np.isfinite(scores).all():
        raise ValueError(f"score map {name!r}: need at least two finite scores, got {len(scores)}")
    rng = np.random.default_rng(seed)
    drawn = rng.choice(scores, size=min(sample, len(scores)), replace=False)
    levels = np.linspace(0.0, 1.0, quantiles)
    knots = np.quantile(drawn, levels)
    keep = np.r_[np.diff(knots) > 0, True]  # of tied knots, the last (highest level) stays
    low, high = float(drawn.min()), float(drawn.max())
    pad = (high - low) / 2.0
    valid = (max(low - pad, 0.0) if low >= 0 else low - pad, high + pad)
    return ScoreMap(name, tuple(float(k) for k in knots[keep]), tuple(float(v) for v in levels[keep]),
                    valid, source)


def _load_table() -> dict[str, ScoreMap]:
    text = files("fmtrack").joinpath("data", "score_maps.json").read_text(encoding="utf8")
    return {name: ScoreMap(name, tuple(entry["knots"]), tuple(entry["levels"]), tuple(entry["valid_range"]),
                           entry["source"])
            for name, entry in json.loads(text)["maps"].items()}


# The named per-detector maps (``--detector`` / ``detector=``).
SCORE_MAPS: dict[str, ScoreMap] = _load_table()
# Scores already in [0, 1] (detector=None): identity, with [0, 1] as the expected range.
UNIT = ScoreMap("unit", (0.0, 1.0), (0.0, 1.0), (0.0, 1.0), "identity")


def score_map(detector: str | None) -> ScoreMap:
    """The named map of ``detector`` (a key of :data:`SCORE_MAPS`), or :data:`UNIT` for None."""
    if detector is None:
        return UNIT
    if detector not in SCORE_MAPS:
        raise ValueError(f"unknown detector {detector!r} for score mapping; choose one of {', '.join(SCORE_MAPS)}")
    return SCORE_MAPS[detector]


class ScoreRangeWarning(UserWarning):
    """Detector scores outside the range the chosen score map expects."""


class ScoreStream:
    """Applies one :class:`ScoreMap` to a stream of frames; warns once, naming the range seen so
    far, when a score falls outside the map's ``valid_range``."""

    def __init__(self, mapping: ScoreMap, hint: str = "choose the detector= (--detector) that made these scores"):
        self.mapping = mapping
        self.hint = hint
        # Knots equal to their levels map every score of the knots' span to itself.
        self._identity = (tuple(mapping.knots) == tuple(mapping.levels)
                          and tuple(mapping.valid_range) == (mapping.knots[0], mapping.knots[-1]))
        self.low, self.high = np.inf, -np.inf
        self.warned = False

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """(N,) finite detector scores -> (N,) float64 in [0, 1]."""
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores):
            seen_low, seen_high = float(scores.min()), float(scores.max())
            self.low, self.high = min(self.low, seen_low), max(self.high, seen_high)
            low, high = self.mapping.valid_range
            if self._identity and low <= seen_low and seen_high <= high:
                return scores  # the identity map inside its range: nothing to compute
            if not self.warned and (self.low < low or self.high > high):
                self.warned = True
                warnings.warn(f"detector scores seen span [{self.low:g}, {self.high:g}], outside the "
                              f"{self.mapping.name!r} score map's range [{low:g}, {high:g}]: {self.hint}",
                              ScoreRangeWarning, stacklevel=3)
        return self.mapping(scores)


def guess_detector(sequence: str, scores: np.ndarray) -> str | None:
    """The score map a MOTChallenge sequence's detection file needs (command line only: it looks at
    the name and at the whole file). ``MOT17-NN-DPM|FRCNN|SDP`` by suffix, ``MOT16-*`` DPM; else None
    when every score lies in [0, 1], else the first table entry whose range holds every score.
    Raises ValueError when none does."""
    suffix = sequence.rsplit("-", 1)[-1].lower()
    if sequence.startswith("MOT17-") and suffix in SCORE_MAPS:
        return suffix
    if sequence.startswith("MOT16-"):
        return "dpm"
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0 or (scores.min() >= 0.0 and scores.max() <= 1.0):
        return None
    for name, mapping in SCORE_MAPS.items():
        if mapping.valid_range[0] <= scores.min() and scores.max() <= mapping.valid_range[1]:
            return name
    raise ValueError(f"scores span [{scores.min():g}, {scores.max():g}], which no score map expects; "
                     f"name the detector (one of {', '.join(SCORE_MAPS)})")
