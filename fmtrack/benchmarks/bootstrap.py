"""Paired-bootstrap intervals of descriptors' pair AUCs on one sequence, and of their differences.

The protocol's pairs (fmtrack.benchmarks.descriptor_quality) share detections and identities, so they
are far from independent: the resampling unit is the identity (a cluster bootstrap). Identities, not
frame blocks, because the AUC's spread comes from which people a sequence happens to hold (a few
look-alikes or occluded people decide it), and every person spans many frame blocks.

One resample draws the K identities with replacement, giving identity a a multiplicity m_a. A
same-identity pair of a weighs m_a and a pair of identities a != b weighs m_a * m_b: every drawn
copy keeps its own pairs and meets every copy of every other identity, but two copies of one person
are not paired with each other (they would be counted as two people who look exactly alike). Each
pair's expected weight is then about 1, as in the original sample. Every descriptor gets the same
multiplicities, which is what makes the differences paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..tracker.distance import METRICS
from .descriptor_quality import MatchedDetections, PairProtocol, distance_matrix


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> float:
    """P(a positive scores above a negative), ties counted half, each row counted ``weights`` times.

    scores: (P,) float, higher = more likely positive; positive: (P,) bool; weights: (P,) float >= 0
    (None: all 1). nan when either class has no weight. Written in numpy (a weighted Mann-Whitney U)
    because scikit-learn, whose roc_auc_score takes sample weights, is not a dependency.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    weights = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    if scores.ndim != 1 or positive.shape != scores.shape or weights.shape != scores.shape:
        raise ValueError(f"scores, positive and weights must be 1-D of one length, got shapes "
                         f"{scores.shape}, {positive.shape}, {weights.shape}")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise ValueError("weights must be finite and >= 0")
    order = np.argsort(scores, kind="stable")
    return _sorted_auc(weights[order], positive[order], _tie_blocks(scores[order]))


def _tie_blocks(sorted_scores: np.ndarray) -> np.ndarray | None:
    """Start index of every run of equal scores, or None when all differ (no merging needed)."""
    if len(sorted_scores) == 0:
        return None
    new = np.ones(len(sorted_scores), dtype=bool)
    new[1:] = sorted_scores[1:] != sorted_scores[:-1]
    return None if new.all() else np.flatnonzero(new)


def _sorted_auc(weights: np.ndarray, positive: np.ndarray, starts: np.ndarray | None) -> float:
    """Weighted AUC of rows sorted by ascending score; ``starts``: tie runs (see _tie_blocks)."""
    pos = np.where(positive, weights, 0.0)
    neg = weights - pos
    if starts is not None:
        pos, neg = np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    below = np.cumsum(neg) - neg  # negative weight scoring strictly lower than each run
    return float(pos @ (below + 0.5 * neg) / (total_pos * total_neg))


@dataclass(frozen=True)
class BootstrapResult:
    """Paired-bootstrap AUCs of several descriptors on one sequence's pairs.

    descriptors: names, in the order of the columns below. auc: (n,) point AUCs on the sample.
    samples: (B, n) AUC per resample (nan where a resample left a class without weight, identically
    for every descriptor). identities: (K,) gt ids; multiplicities: (B, K) int, how often each
    identity was drawn in each resample. level: the intervals' coverage, e.g. 0.95.
    """

    descriptors: tuple[str, ...]
    auc: np.ndarray
    samples: np.ndarray
    identities: np.ndarray
    multiplicities: np.ndarray
    level: float

    @property
    def valid(self) -> np.ndarray:
        """(B,) bool: resamples in which both classes kept weight."""
        return np.isfinite(self.samples).all(axis=1)

    def _interval(self, values: np.ndarray) -> tuple[float, float]:
        if len(values) == 0:
            return float("nan"), float("nan")
        tail = 100.0 * (1.0 - self.level) / 2.0
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return float(low), float(high)

    def intervals(self) -> pd.DataFrame:
        """One row per descriptor: descriptor, auc, low, high (percentile interval)."""
        kept = self.samples[self.valid]
        return pd.DataFrame([{"descriptor": name, "auc": float(self.auc[k]),
                              **dict(zip(("low", "high"), self._interval(kept[:, k])))}
                             for k, name in enumerate(self.descriptors)])

    def differences(self) -> pd.DataFrame:
        """One row per descriptor pair (listed order): descriptor, versus, difference (AUC of
        descriptor minus versus), low, high, fraction_positive (share of resamples with difference > 0)."""
        kept = self.samples[self.valid]
        rows = []
        for a, b in combinations(range(len(self.descriptors)), 2):
            spread = kept[:, a] - kept[:, b]
            low, high = self._interval(spread)
            rows.append({"descriptor": self.descriptors[a], "versus": self.descriptors[b],
                         "difference": float(self.auc[a] - self.auc[b]), "low": low, "high": high,
                         "fraction_positive": float(np.mean(spread > 0))})
        return pd.DataFrame(rows, columns=["descriptor", "versus", "difference", "low", "high", "fraction_positive"])


def check_resamples(resamples: object, name: str = "resamples") -> None:
    """ValueError unless ``resamples`` is an integer >= 0 (a bool is refused)."""
    if not isinstance(resamples, (int, np.integer)) or isinstance(resamples, bool) or resamples < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {resamples!r}")


def paired_bootstrap(features: Mapping[str, np.ndarray], frames: np.ndarray, identity: np.ndarray,
                     metric: str = "euclidean", resamples: int = 200, seed: int = 0,
                     protocol: PairProtocol = PairProtocol(), level: float = 0.95,
                     progress: bool = False) -> BootstrapResult:
    """Bootstrap the pair AUC of every descriptor in ``features`` over identities (module docstring).

    features: name -> (N, D) descriptors of the SAME N detections; frames: (N,) int; identity: (N,)
    int gt ids. Pairs are those ``protocol.min_gap..max_gap`` frames apart; the score is the negated
    ``metric`` distance. ``resamples``: B >= 0; ``seed``: numpy default_rng seed.
    """
    frames, identity = np.asarray(frames), np.asarray(identity)
    check_resamples(resamples)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if frames.ndim != 1 or identity.shape != frames.shape:
        raise ValueError(f"frames and identity must be 1-D of one length, got {frames.shape} and {identity.shape}")
    if not features:
        raise ValueError("features: no descriptors given")
    for name, vectors in features.items():
        if np.ndim(vectors) != 2 or len(vectors) != len(frames):
            raise ValueError(f"features[{name!r}] has shape {np.shape(vectors)}, expected ({len(frames)}, D): "
                             f"every descriptor must describe the same detections as frames")
    gap = np.abs(frames[:, None] - frames[None, :])
    first, second = np.nonzero(np.triu((gap >= protocol.min_gap) & (gap <= protocol.max_gap), k=1))
    del gap
    identities, code = np.unique(identity, return_inverse=True)
    k = len(identities)
    low, high = np.minimum(code[first], code[second]), np.maximum(code[first], code[second])
    group = low * k + high  # index into the (K, K) table of identity-pair weights
    positive = low == high
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(resamples, k))
    multiplicities = np.bincount((draws + k * np.arange(resamples)[:, None]).ravel(),
                                 minlength=resamples * k).reshape(resamples, k)
    # Sorting each descriptor's scores once makes a resample a gather, a cumulative sum and a dot.
    prepared, point = [], []
    for vectors in features.values():
        score = -distance_matrix(vectors, metric)[first, second]
        order = np.argsort(score, kind="stable")
        starts = _tie_blocks(score[order])
        prepared.append((group[order], positive[order], starts))
        point.append(_sorted_auc(np.ones(len(order)), positive[order], starts))
    samples = np.empty((resamples, len(prepared)))
    for r in tqdm(range(resamples), desc="bootstrap", unit="resample", disable=not progress):
        m = multiplicities[r].astype(np.float64)
        table = np.outer(m, m)
        np.fill_diagonal(table, m)
        table = table.ravel()
        for d, (pair_group, pair_positive, starts) in enumerate(prepared):
            samples[r, d] = _sorted_auc(table[pair_group], pair_positive, starts)
    return BootstrapResult(tuple(features), np.array(point), samples, identities, multiplicities, level)


def bootstrap_matched(matched: Mapping[str, MatchedDetections], resamples: int = 200, seed: int = 0,
                      metric: str = "euclidean", protocol: PairProtocol = PairProtocol(),
                      progress: bool = False) -> pd.DataFrame:
    """:func:`paired_bootstrap` of descriptors that matched the same detections of one sequence.

    Returns the rows of ``bootstrap.csv``: sequence, metric, descriptor, versus ("" for a descriptor's
    own AUC), estimate, low, high, fraction_positive (difference rows only), resamples (valid), seed.
    """
    if not matched:
        raise ValueError("matched: no descriptors given")
    # Canonical order (frame, box) so that descriptors read from differently ordered files line up.
    aligned = {}
    for name, described in matched.items():
        order = np.lexsort((*described.boxes.T[::-1], described.frames))
        aligned[name] = (described.frames[order], described.boxes[order], described.identity[order],
                         described.features[order])
    (reference_name, (frames, boxes, identity, _)), *_ = aligned.items()
    for name, (other_frames, other_boxes, other_identity, _) in aligned.items():
        if (other_frames.shape != frames.shape or not np.array_equal(other_frames, frames)
                or not np.allclose(other_boxes, boxes, atol=1e-3) or not np.array_equal(other_identity, identity)):
            raise ValueError(f"matched[{name!r}]: its matched detections differ from {reference_name!r}'s "
                             f"({len(other_frames)} vs {len(frames)}); a paired bootstrap needs the same detections")
    sequences = {described.sequence for described in matched.values()}
    if len(sequences) != 1:
        raise ValueError(f"matched: descriptors come from several sequences {sorted(sequences)}")
    result = paired_bootstrap({name: value[3] for name, value in aligned.items()}, frames, identity, metric,
                              resamples, seed, protocol, progress=progress)
    common = {"sequence": sequences.pop(), "metric": metric}
    own = result.intervals().rename(columns={"auc": "estimate"}).assign(versus="", fraction_positive=np.nan)
    pairs = result.differences().rename(columns={"difference": "estimate"})
    table = pd.concat([own, pairs], ignore_index=True).assign(**common, resamples=int(result.valid.sum()),
                                                              seed=seed)
    return table[["sequence", "metric", "descriptor", "versus", "estimate", "low", "high", "fraction_positive",
                  "resamples", "seed"]]


def format_bootstrap(table: pd.DataFrame, level: float = 0.95) -> str:
    """The rows of :func:`bootstrap_matched` as text, one block per sequence and metric."""
    lines = []
    for (sequence, metric), block in table.groupby(["sequence", "metric"], sort=False):
        lines.append(f"{sequence}: {metric} AUC, {level:.0%} paired-bootstrap interval over identities "
                     f"({block['resamples'].iloc[0]} resamples, seed {block['seed'].iloc[0]})")
        for row in block.itertuples():
            if row.versus == "":
                lines.append(f"  {row.descriptor}: {row.estimate:.4f} [{row.low:.4f}, {row.high:.4f}]")
            else:
                lines.append(f"  {row.descriptor} - {row.versus}: {row.estimate:+.4f} [{row.low:+.4f}, "
                             f"{row.high:+.4f}], > 0 in {row.fraction_positive:.0%} of resamples")
    return "\n".join(lines)
