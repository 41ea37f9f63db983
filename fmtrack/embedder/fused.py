"""Several label-free descriptors as one: the shipped model beside a colour histogram.

Each part's descriptor is divided by its own label-free threshold as a Euclidean distance (so one
unit is "as far apart as the equal-error point says two people are" in every part), multiplied by
the part's weight, and the parts are concatenated. The Euclidean distance between two fused
vectors is then sqrt(sum_i (w_i d_i / t_i)^2): every part votes in its own calibrated units, and a
pair that sits at every part's threshold is at sqrt(sum_i w_i^2), the fused threshold
(:func:`fused_threshold`). Why and how the weights were chosen: docs/descriptor-fusion.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from ..io import InputWarning
from .base import Embedder


class FusedEmbedder:
    """Concatenated, rescaled descriptors of several embedders: (N, sum of the parts' D) float32.

    parts: (embedder, weight, threshold) triples: a part's features are multiplied by weight /
    threshold, its label-free threshold as a Euclidean distance between its own features. The
    embedders must describe the same boxes of the same frames. ``thresholds``: the fused
    descriptor's own, ``{"euclidean": sqrt(sum w^2)}`` (it is compared by Euclidean distance only).
    """

    def __init__(self, parts: Sequence[tuple[Embedder, float, float]]):
        if len(parts) < 1:
            raise ValueError("a fused descriptor needs at least one part")
        for embedder, weight, threshold in parts:
            for name, value in (("weight", weight), ("threshold", threshold)):
                if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                                   and value > 0):
                    raise ValueError(f"the {name} of fused part {embedder.identity!r} must be a finite number > 0, "
                                     f"got {value!r}")
        self.parts = [(embedder, float(weight), float(threshold)) for embedder, weight, threshold in parts]
        self.dim = sum(embedder.dim for embedder, _, _ in self.parts)
        self.needs_image = any(embedder.needs_image for embedder, _, _ in self.parts)
        self.thresholds = {"euclidean": fused_threshold([weight for _, weight, _ in self.parts])}
        self.identity = "fused-" + "-".join(f"{embedder.identity}x{weight / threshold:.6g}"
                                            for embedder, weight, threshold in self.parts)

    @property
    def needs_colour(self) -> bool:
        """Whether a part is a colour descriptor (HSV), which grey frames leave with nothing to tell."""
        return any(getattr(embedder, "needs_colour", False) for embedder, _, _ in self.parts)

    def without_colour(self) -> FusedEmbedder:
        """The same descriptor for grey frames: the colour parts dropped and the others' weights
        scaled so that sqrt(sum w^2), the threshold, is unchanged (a pair at every remaining part's
        threshold stays at the fused threshold, so a configured tracker needs no change)."""
        kept = [part for part in self.parts if not getattr(part[0], "needs_colour", False)]
        if not kept:
            raise ValueError("every part of this fused descriptor is a colour descriptor: grey frames leave "
                             "it nothing to compare")
        scale = self.thresholds["euclidean"] / fused_threshold([weight for _, weight, _ in kept])
        return FusedEmbedder([(embedder, weight * scale, threshold) for embedder, weight, threshold in kept])

    def embed(self, image: np.ndarray | None, boxes: np.ndarray, frame: int | None = None) -> np.ndarray:
        """Descriptors (N, D) float32 of boxes (N, 4) tlwh pixels: each part's, scaled, side by side."""
        return self.combine([embedder.embed(image, boxes, frame) for embedder, _, _ in self.parts])

    def combine(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """The fused descriptors (N, D) float32 from each part's own features ((N, D_i) each, in
        ``parts`` order): scaled by weight / threshold and concatenated."""
        n = len(features[0]) if len(features) else 0
        out = np.empty((n, self.dim), dtype=np.float32)
        start = 0
        for (embedder, weight, threshold), part in zip(self.parts, features, strict=True):
            part = np.asarray(part)
            if part.shape != (n, embedder.dim):
                raise ValueError(f"fused part {embedder.identity!r} gave features of shape {part.shape}, "
                                 f"expected ({n}, {embedder.dim})")
            out[:, start:start + embedder.dim] = part
            out[:, start:start + embedder.dim] *= weight / threshold
            start += embedder.dim
        return out


def fused_threshold(weights: Sequence[float]) -> float:
    """The fused descriptor's Euclidean threshold: a pair at every part's own threshold, sqrt(sum w^2)."""
    return math.sqrt(sum(w * w for w in weights))


def without_colour_on_grey(embedder: Embedder, grey: Callable[[], bool], which: str) -> Embedder:
    """``embedder``, or, when it is a fused descriptor with a colour part and ``grey()`` says the
    frames carry no colour, the same without that part (:meth:`FusedEmbedder.without_colour`), with
    an InputWarning saying ``which`` frames ("the frames carry", "the first frame carries"). ``grey``
    is called only for such a descriptor."""
    if not (isinstance(embedder, FusedEmbedder) and embedder.needs_colour and grey()):
        return embedder
    warnings.warn(InputWarning(f"{which} no colour, so the descriptor's colour part (HSV) cannot tell people "
                               "apart: it is dropped and its weight moves to the other parts (threshold unchanged)"))
    return embedder.without_colour()


def is_grey(image: np.ndarray, step: int = 8, tolerance: int = 3) -> bool:
    """Whether a BGR frame (H, W, 3) carries no colour: blue, green and red within ``tolerance`` of
    each other on a grid of every ``step``-th row and column (a grey or infrared camera; the
    tolerance absorbs video codecs' rounding of a grey source, which decodes within 1-2 levels)."""
    grid = image[::step, ::step].astype(np.int16)
    return bool(np.abs(grid[..., 0] - grid[..., 1]).max(initial=0) <= tolerance
                and np.abs(grid[..., 1] - grid[..., 2]).max(initial=0) <= tolerance)
