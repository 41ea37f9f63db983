"""Per-track appearance galleries and nearest-neighbour distances.

All galleries live in one preallocated pool ``(capacity, budget, D)``: a track owns a slot, its
features go into a ring buffer there, and a distance query for many tracks is one batched product.
The pool grows by doubling, so memory is bounded by the largest number of live tracks.
"""

from __future__ import annotations

import numpy as np

from .distance import Metric, from_inner_products, normalise_rows, squared_norms

# Largest (slots x depth x queries) block of inner products formed at once (float32 elements,
# 16 MiB): many tracks against many detections are done in slices of slots instead.
_BLOCK = 1 << 22


def prepare_features(features: np.ndarray, metric: str) -> np.ndarray:
    """float32 features (N, D) as the gallery stores them: L2-normalised for cosine, as given otherwise."""
    features = np.asarray(features, dtype=np.float32)
    return normalise_rows(features) if metric == "cosine" else features


class FeatureGallery:
    """Ring buffers of the last ``budget`` features of each track, or one moving average.

    metric: as defined in :mod:`fmtrack.tracker.distance`; for ``cosine`` features are stored
    L2-normalised, for ``euclidean`` with their squared norms.
    ema_alpha: when set, each track keeps a single feature, ``alpha * old + (1 - alpha) * new``
    (re-normalised for cosine), as BoT-SORT does; ``budget`` is then 1.
    """

    def __init__(self, dim: int, budget: int, metric: Metric, capacity: int = 32,
                 ema_alpha: float | None = None):
        if ema_alpha is not None:
            budget = 1
        self.dim, self.budget, self.metric, self.ema_alpha = dim, budget, metric, ema_alpha
        self._features = np.zeros((capacity, budget, dim), dtype=np.float32)
        self._sq_norms = np.zeros((capacity, budget), dtype=np.float32)
        self._count = np.zeros(capacity, dtype=np.int64)  # features stored, up to budget
        self._next = np.zeros(capacity, dtype=np.int64)  # ring write position
        self._free = list(range(capacity - 1, -1, -1))

    def allocate(self) -> int:
        """A fresh empty slot for a new track."""
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self._count[slot] = 0
        self._next[slot] = 0
        return slot

    def release(self, slots: np.ndarray) -> None:
        self._free.extend(int(s) for s in slots)

    def add(self, slots: np.ndarray, features: np.ndarray) -> None:
        """Append one feature (row of ``features`` (K, D), from :func:`prepare_features`) to each slot."""
        if len(slots) == 0:
            return
        if self.ema_alpha is not None:
            # One feature per slot: blend into it where there is one already.
            count = self._count.take(slots)  # take: a third of a fancy index's cost at these sizes
            if count.all():  # the usual case: every slot already holds its one feature, no masks needed
                features = self._blend(self._features[:, 0].take(slots, axis=0), features)
            else:
                seen = count > 0
                if seen.any():
                    features = features.copy()
                    features[seen] = self._blend(self._features[slots[seen], 0], features[seen])
                self._count[slots] = 1
            pos = 0
        else:
            pos = self._next[slots]
            self._next[slots] = (pos + 1) % self.budget
            self._count[slots] = np.minimum(self._count[slots] + 1, self.budget)
        self._features[slots, pos] = features
        if self.metric == "euclidean":  # squared norms serve the Euclidean distance only
            self._sq_norms[slots, pos] = squared_norms(features)

    def _blend(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """The moving average of stored features ``old`` (K, D, a copy: overwritten) with ``new``
        (K, D), as stored."""
        old *= self.ema_alpha
        old += (1 - self.ema_alpha) * new
        return prepare_features(old, self.metric)

    def stored(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The features the ``slots`` (K,) hold, as queries for :meth:`distance`: (Q, D), and (Q,) the
        index into ``slots`` of each row's owner (a slot with no feature owns no row)."""
        count = self._count.take(slots)
        owner = np.repeat(np.arange(len(slots)), count)
        depth = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        return self._features[slots[owner], depth], owner

    def distance(self, slots: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Smallest distance (K, N) from each slot's gallery to each query feature (N, D), the
        queries from :func:`prepare_features`. A slot with no features yet is at infinite distance.
        """
        if len(slots) == 0 or len(features) == 0:
            return np.full((len(slots), len(features)), np.inf)
        count = self._count.take(slots)
        # einsum, not matmul: a GEMM this size makes a multi-threaded BLAS spin up threads, which
        # costs far more than the product itself on a busy machine (docs/design-decisions.md).
        if self.budget == 1:  # one feature per slot (EMA): no minimum over a gallery to take
            stored_sq_norms = None if self.metric == "cosine" else self._sq_norms[slots, 0, None]
            dist = self._distance(np.einsum("kd,nd->kn", self._features[:, 0].take(slots, axis=0), features),
                                  stored_sq_norms, features)
            if not count.all():  # a tracker's slots all hold a feature: skip the mask then
                dist[count == 0] = np.inf
            return dist.astype(np.float64)
        depth = int(count.max())
        if depth == 0:
            return np.full((len(slots), len(features)), np.inf)
        step = max(1, _BLOCK // (depth * len(features)))
        if step >= len(slots):
            return self._nearest(slots, count, depth, features)
        return np.concatenate([self._nearest(slots[i:i + step], count[i:i + step], depth, features)
                               for i in range(0, len(slots), step)])

    def _nearest(self, slots: np.ndarray, count: np.ndarray, depth: int, features: np.ndarray) -> np.ndarray:
        """Smallest distance (K, N) over the first ``depth`` stored features of each slot."""
        dots = np.einsum("kbd,nd->kbn", self._features[slots, :depth], features)  # (K, depth, N)
        dist = self._distance(dots, self._sq_norms[slots, :depth, None], features)
        dist[np.arange(depth)[None, :] >= count[:, None]] = np.inf
        return dist.min(axis=1).astype(np.float64)

    def _distance(self, dots: np.ndarray, stored_sq_norms: np.ndarray | None, features: np.ndarray) -> np.ndarray:
        """Distances from inner products ``dots`` (..., N) of stored features with the queries
        (``stored_sq_norms``: their squared norms, euclidean only)."""
        if self.metric == "cosine":
            return from_inner_products(dots, "cosine")
        return from_inner_products(dots, "euclidean", stored_sq_norms, squared_norms(features))

    def state(self) -> dict[str, np.ndarray]:
        """The pool as plain arrays (copies), for :meth:`from_state`."""
        return {"features": self._features.copy(), "sq_norms": self._sq_norms.copy(),
                "count": self._count.copy(), "next": self._next.copy(),
                "free": np.array(self._free, dtype=np.int64)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], metric: Metric,
                   ema_alpha: float | None) -> FeatureGallery:
        """The gallery :meth:`state` described; ValueError when its arrays do not fit together."""
        features = np.asarray(state["features"], dtype=np.float32)
        if features.ndim != 3 or len(features) == 0:
            raise ValueError(f"gallery features must have shape (capacity, budget, D), got {features.shape}")
        capacity, budget, dim = features.shape
        gallery = cls(dim, budget, metric, capacity=capacity, ema_alpha=ema_alpha)
        if gallery.budget != budget:
            raise ValueError(f"gallery budget {budget} does not fit the moving-average memory (1)")
        for name, attribute, dtype, shape in (("sq_norms", "_sq_norms", np.float32, (capacity, budget)),
                                              ("count", "_count", np.int64, (capacity,)),
                                              ("next", "_next", np.int64, (capacity,))):
            value = np.asarray(state[name], dtype=dtype)
            if value.shape != shape:
                raise ValueError(f"gallery {name} must have shape {shape}, got {value.shape}")
            setattr(gallery, attribute, value.copy())
        free = np.asarray(state["free"], dtype=np.int64).reshape(-1)
        if len(free) and (free.min() < 0 or free.max() >= capacity):
            raise ValueError(f"gallery free slots must lie in [0, {capacity}), got {free.tolist()}")
        gallery._features = features.copy()
        gallery._free = free.tolist()
        return gallery

    def _grow(self) -> None:
        old = len(self._count)
        self._features = np.concatenate([self._features, np.zeros_like(self._features)])
        self._sq_norms = np.concatenate([self._sq_norms, np.zeros_like(self._sq_norms)])
        self._count = np.concatenate([self._count, np.zeros_like(self._count)])
        self._next = np.concatenate([self._next, np.zeros_like(self._next)])
        self._free.extend(range(2 * old - 1, old - 1, -1))
