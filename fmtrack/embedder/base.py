"""The embedder protocol: the only bridge between images and appearance vectors."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Maps detection boxes in a frame to appearance descriptors.

    dim: descriptor length D. needs_image: False when descriptors do not come from pixels
    (precomputed files), so a pipeline can skip decoding frames. identity: the descriptor's part of
    the feature-cache key (the cache adds the boxes and a fingerprint of the frames). It must change
    whenever the descriptor's output would: recipe version for hand-crafted ones; for learned ones a
    digest of the weights' tensors AND of everything the sidecar feeds the embedding (normalisation
    mean/std, architecture, crop size). Best kept to one file-name component (letters, digits, -_.).
    """

    dim: int
    needs_image: bool
    identity: str

    def embed(self, image: np.ndarray | None, boxes: np.ndarray, frame: int | None = None) -> np.ndarray:
        """Descriptors (N, D) float32 for boxes (N, 4) float, tlwh pixels, in ``image``
        ((H, W, 3) uint8 BGR) at 1-based ``frame``. Image-based embedders ignore ``frame``."""
        ...
