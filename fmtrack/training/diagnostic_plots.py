"""Figures for the flatness diagnostics of :mod:`fmtrack.training.diagnostics` (the paper's Figs. 1-4, 8, 9).

Figures are built on :class:`matplotlib.figure.Figure` directly, never through pyplot, so no global
backend state is touched; PNGs are rendered by Agg and written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from fmtrack.io import atomic_path

from .diagnostics import LatentMap2d, ModelFlatness

# (attribute of PointSetFlatness, axis label, log scale): condition number and MF span decades on
# models that are not flat; 1 is the flat value of all three. A singular G gives cond = inf and
# MF = 0, neither of which a log axis can show.
_BOX_METRICS = (
    ("condition_numbers", "condition number of G", True),
    ("normalised_magnification", "normalised magnification factor", True),
    ("straight_line_ratios", "straight-line ratio", False),
)


def plot_flatness_boxes(models: Mapping[str, ModelFlatness], path: str | Path) -> Path:
    """One PNG comparing models, one box per model: rows data / mixup points, columns condition
    number, normalised MF and straight-line ratio. Points with a singular G (cond = inf, MF = 0) are
    left out of the log-scale panels and counted in the panel title. Returns ``path``."""
    names = list(models)
    figure = Figure(figsize=(4.0 * len(_BOX_METRICS), 7.0), layout="constrained")
    axes = figure.subplots(2, len(_BOX_METRICS), squeeze=False)
    for row, set_name in enumerate(("data", "mixup")):
        for column, (attribute, label, log_scale) in enumerate(_BOX_METRICS):
            values = [getattr(getattr(models[name], set_name), attribute) for name in names]
            shown = [v[np.isfinite(v) & (v > 0)] if log_scale else v for v in values]
            dropped = sum(v.size - s.size for v, s in zip(values, shown))
            ax = axes[row, column]
            ax.boxplot(shown)
            ax.set_xticks(range(1, len(names) + 1), names)
            ax.axhline(1.0, color="tab:green", linestyle="--", linewidth=1)
            if log_scale:
                ax.set_yscale("log")
            ax.set_title(f"{set_name} points" + (f" ({dropped} with singular G left out)" if dropped else ""),
                         fontsize=10)
            ax.set_ylabel(label)
    _save(figure, path)
    return Path(path)


def plot_latent_map_2d(latent_map: LatentMap2d, latents: np.ndarray, path: str | Path, *,
                       n_contours: int = 6) -> Path:
    """log MF heatmap of a 2-d latent space with the encodings ``latents`` (B, 2) scattered and
    ``n_contours`` equidistance lines around each centre, evenly spaced up to the distance of the
    nearest grid edge from that centre (so every contour is closed). Returns ``path``."""
    latents = np.asarray(latents)
    figure = Figure(figsize=(7.0, 6.0), layout="constrained")
    ax = figure.subplots()
    spacing = (latent_map.x[1] - latent_map.x[0]) / 2
    extent = (latent_map.x[0] - spacing, latent_map.x[-1] + spacing,
              latent_map.y[0] - spacing, latent_map.y[-1] + spacing)
    image = ax.imshow(latent_map.log_magnification, origin="lower", extent=extent, cmap="viridis",
                      interpolation="nearest")
    figure.colorbar(image, ax=ax, label="log magnification factor")
    ax.scatter(latents[:, 0], latents[:, 1], s=4, c="white", alpha=0.5, linewidths=0)
    for centre, distance in zip(latent_map.centres, latent_map.distances):
        border = min(distance[0].min(), distance[-1].min(), distance[:, 0].min(), distance[:, -1].min())
        if np.isfinite(border) and border > 0:
            levels = np.linspace(0, border, n_contours + 1)[1:]
            ax.contour(latent_map.x, latent_map.y, distance, levels=levels, colors="tab:red", linewidths=1)
        ax.plot(*centre, marker="x", color="tab:red", markersize=8)
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.set_title("log MF and Riemannian equidistance lines")
    _save(figure, path)
    return Path(path)


def _save(figure: Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
