"""Appearance distances: the one definition of fmtrack's two metrics, used by the tracker's
galleries, the label-free calibration and the descriptor-quality benchmark.

``cosine``: 1 - cos(a, b), in [0, 2]. ``euclidean``: the true L2 distance ||a - b|| (not squared).
Written here rather than taken from scipy.spatial.distance: the tracker needs no scipy there, and its hot
path needs the inner-product form with squared norms it has already stored.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Metric = Literal["cosine", "euclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean")


def check_metric(metric: str) -> None:
    """ValueError unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a float (N, D) array (float32 stays float32, anything else becomes float64)."""
    x = np.asarray(x)
    x = x.astype(x.dtype if x.dtype in (np.float32, np.float64) else np.float64, copy=False)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {x.shape}")
    return x


def squared_norms(x: np.ndarray) -> np.ndarray:
    """Squared L2 norms (N,) of the rows of ``x`` (N, D), in ``x``'s dtype."""
    return np.einsum("nd,nd->n", x, x)  # einsum: np.linalg.norm's overhead dominates at tracker sizes


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (N, D) with each row scaled to unit L2 norm (all-zero rows stay zero), same dtype."""
    return x / np.maximum(np.sqrt(squared_norms(x)), 1e-12)[:, None]


def from_inner_products(dots: np.ndarray, metric: Metric, sq_a: np.ndarray | float = 0.0,
                        sq_b: np.ndarray | float = 0.0) -> np.ndarray:
    """Distances from inner products ``dots`` of two sets of vectors, any broadcastable shape.

    cosine: the vectors must be unit-normalised (:func:`normalise_rows`); ``sq_a``, ``sq_b`` are unused.
    euclidean: ``sq_a``, ``sq_b`` are the vectors' squared norms, shaped to broadcast against
    ``dots``; the result is clipped at 0 where rounding makes ``|a|^2 + |b|^2 - 2 a.b`` negative.
    """
    if metric == "cosine":
        return 1.0 - dots
    check_metric(metric)
    return np.sqrt(np.maximum(sq_a + sq_b - 2.0 * dots, 0.0))


def pairwise_distance(a: np.ndarray, b: np.ndarray, metric: Metric, sq_a: np.ndarray | None = None,
                      sq_b: np.ndarray | None = None) -> np.ndarray:
    """Distances (N, M) between every row of ``a`` (N, D) and every row of ``b`` (M, D).

    sq_a, sq_b: optional precomputed squared norms (N,), (M,) for euclidean. float32 inputs give
    float32 distances, anything else float64.
    """
    check_metric(metric)
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same feature length, got {a.shape[1]} and {b.shape[1]}")
    if metric == "cosine":
        return from_inner_products(normalise_rows(a) @ normalise_rows(b).T, metric)
    sq_a = squared_norms(a) if sq_a is None else np.asarray(sq_a)
    sq_b = squared_norms(b) if sq_b is None else np.asarray(sq_b)
    return from_inner_products(a @ b.T, metric, sq_a[:, None], sq_b[None, :])


def paired_distance(a: np.ndarray, b: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances (N,) between row i of ``a`` (N, D) and row i of ``b`` (N, D).

    Euclidean is taken from the difference vectors, which avoids the cancellation of the
    inner-product form for near pairs.
    """
    check_metric(metric)
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if metric == "cosine":
        return from_inner_products(np.einsum("nd,nd->n", normalise_rows(a), normalise_rows(b)), metric)
    return np.sqrt(squared_norms(a - b))
