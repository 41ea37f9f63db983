"""Embedders: detection boxes in an image -> appearance descriptors (N, D)."""

from .base import Embedder
from .precomputed import PrecomputedFeatures

__all__ = ["Embedder", "PrecomputedFeatures"]
