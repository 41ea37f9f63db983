"""Embedders: detection boxes in an image -> appearance descriptors (N, D)."""

from .base import Embedder
from .cache import cached_features, embed_sequence, export_features
from .fused import FusedEmbedder
from .hsv import HSVEmbedder
from .precomputed import PrecomputedFeatures

__all__ = ["Embedder", "FusedEmbedder", "HSVEmbedder", "PrecomputedFeatures", "cached_features", "embed_sequence",
           "export_features"]
