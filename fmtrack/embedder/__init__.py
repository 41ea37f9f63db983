"""Embedders: detection boxes in an image -> appearance descriptors (N, D)."""

from .base import Embedder
from .cache import cached_features, embed_sequence, export_features
from .hsv import HSVEmbedder
from .precomputed import PrecomputedFeatures

__all__ = ["Embedder", "HSVEmbedder", "PrecomputedFeatures", "cached_features", "embed_sequence", "export_features"]
