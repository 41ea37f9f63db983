"""How flat is a latent space? Riemannian diagnostics of a decoder (Chen et al., ICML 2020).

The decoder mean f: R^{N_z} -> R^D induces the metric tensor G(z) = J(z)^T J(z), J = df/dz. A flat
model has G = c^2 I everywhere, so latent Euclidean distance times c is the distance between decoded
images. Everything here is written against a plain callable, so it works for any model:

    decode(latents: (B, N_z) float32) -> (B, ...) float32     # the decoder mean, eval mode

Diagnostics (the paper's Table 1 and Figs. 1-4, 8, 9):

* condition number of G: 1 when flat;
* magnification factor MF = sqrt(det G), normalised by its mean over the evaluated points: 1 when flat;
* straight-line ratio: decoded length of a straight latent segment over c * its latent length: 1 when flat;
* for N_z = 2, a log-MF map over a grid and Riemannian distances from a few centres (grid shortest paths).

Everything is computed in float32 (the model's precision); an eigenvalue of G below fp32 resolution
(about 1e-7 * its largest) is unresolved, so condition numbers beyond ~1e7 are lower bounds at best.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from tqdm import tqdm

Decoder = Callable[[torch.Tensor], torch.Tensor]
"""``decode(latents: (B, N_z) float32) -> (B, ...) float32``: the decoder mean, deterministic."""


# ---------------------------------------------------------------------------------------------------
# Metric tensor and its spectral summaries
# ---------------------------------------------------------------------------------------------------

def metric_tensor(decode: Decoder, latents: torch.Tensor, *, chunk_size: int = 8,
                  progress: bool = False) -> torch.Tensor:
    """Exact pull-back metric G = J^T J of ``decode`` at each latent point.

    ``latents``: (B, N_z) float32. Returns (B, N_z, N_z) float32, in (output units / latent unit)^2.
    J is the full (D, N_z) Jacobian by forward-mode autodiff (one JVP per latent direction, vmapped
    over the points). Points are processed ``chunk_size`` at a time: peak memory is about
    ``chunk_size * N_z`` decoder activations, since every point pushes N_z tangents through the net.
    """
    latents = _as_latents(latents)

    def flat_decode(z: torch.Tensor) -> torch.Tensor:  # (N_z,) -> (D,)
        return decode(z.unsqueeze(0)).reshape(-1)

    jacobian = torch.func.vmap(torch.func.jacfwd(flat_decode))  # (b, N_z) -> (b, D, N_z)
    metric = torch.empty(latents.shape[0], latents.shape[1], latents.shape[1], dtype=torch.float32)
    starts = range(0, latents.shape[0], chunk_size)
    # Forward-mode AD is unaffected by no_grad; no_grad stops parameters from recording a graph.
    with torch.no_grad():
        for start in tqdm(starts, desc="metric tensor", unit="chunk", disable=not progress):
            jac = jacobian(latents[start:start + chunk_size]).to(torch.float32)
            metric[start:start + chunk_size] = jac.transpose(1, 2) @ jac
    return metric


def condition_number(metric: torch.Tensor) -> torch.Tensor:
    """S_max / S_min of each symmetric PSD metric. ``metric``: (B, N_z, N_z); returns (B,) float32.

    A metric whose smallest eigenvalue is <= 0 (singular to fp32 precision) gets ``inf``, with a warning.
    """
    eigenvalues = _metric_eigenvalues(metric, consequence="their condition number is inf")
    smallest, largest = eigenvalues[:, 0], eigenvalues[:, -1]
    return torch.where(smallest > 0, largest / smallest, torch.full_like(largest, math.inf))


def log_magnification_factor(metric: torch.Tensor) -> torch.Tensor:
    """log MF = log sqrt(det G) = 1/2 sum_i log S_i, in log space because det G over- or underflows
    for N_z = 128. ``metric``: (B, N_z, N_z); returns (B,) float32, ``-inf`` where G is singular."""
    eigenvalues = _metric_eigenvalues(metric, consequence="their log magnification factor is -inf")
    return torch.where(eigenvalues[:, 0] > 0, 0.5 * eigenvalues.log().sum(dim=1),
                       torch.full_like(eigenvalues[:, 0], -math.inf))


def normalised_magnification_factor(log_mf: torch.Tensor) -> torch.Tensor:
    """MF / mean(MF) over the given points, from log MF (B,); returns (B,), identically 1 when flat.

    The mean is taken as logsumexp(log MF) - log B, so no MF is ever exponentiated on its own.
    """
    log_mean = torch.logsumexp(log_mf, dim=0) - math.log(log_mf.shape[0])
    return torch.exp(log_mf - log_mean)


def metric_scale_sq(metric: torch.Tensor) -> float:
    """c^2 = mean over points of tr(G) / N_z: the squared scale of the flat metric G ~ c^2 I that the
    model approximates. ``metric``: (B, N_z, N_z); units (output units / latent unit)^2."""
    return float(torch.diagonal(metric, dim1=1, dim2=2).sum(dim=1).mean() / metric.shape[-1])


def _metric_eigenvalues(metric: torch.Tensor, *, consequence: str) -> torch.Tensor:
    """Ascending eigenvalues (B, N_z) of symmetric metrics; warns about singular ones."""
    eigenvalues = torch.linalg.eigvalsh(metric.to(torch.float32))
    singular = int((eigenvalues[:, 0] <= 0).sum())
    if singular:
        warnings.warn(f"{singular} of {metric.shape[0]} metric tensors are singular to fp32 precision "
                      f"(smallest eigenvalue <= 0); {consequence}", RuntimeWarning, stacklevel=3)
    return eigenvalues


# ---------------------------------------------------------------------------------------------------
# Straight lines and the points to evaluate on
# ---------------------------------------------------------------------------------------------------

def straight_line_ratio(decode: Decoder, start: torch.Tensor, end: torch.Tensor, *, metric_scale: float,
                        steps: int = 32, max_decode_batch: int = 512, progress: bool = False) -> torch.Tensor:
    """Decoded length of each straight latent segment over ``metric_scale`` * its latent length.

    ``start``, ``end``: (P, N_z) float32, pairwise distinct. ``metric_scale``: c, with c^2 from
    :func:`metric_scale_sq`. The decoded length is sum_k ||f(z(t_{k+1})) - f(z(t_k))|| over ``steps``
    equal steps of z(t) = (1 - t) start + t end: a lower bound on the curve length that converges as
    ``steps`` grows. Returns (P,) float32; 1 for every pair when the model is flat.
    """
    start, end = _as_latents(start), _as_latents(end)
    t = torch.linspace(0.0, 1.0, steps + 1).view(1, -1, 1)
    pairs_per_batch = max(1, max_decode_batch // (steps + 1))
    lengths = []
    with torch.no_grad():
        firsts = range(0, start.shape[0], pairs_per_batch)
        for first in tqdm(firsts, desc="straight lines", unit="batch", disable=not progress):
            a, b = start[first:first + pairs_per_batch], end[first:first + pairs_per_batch]
            path = (a.unsqueeze(1) + t * (b - a).unsqueeze(1)).reshape(-1, a.shape[1])
            decoded = decode(path).reshape(a.shape[0], steps + 1, -1).to(torch.float32)
            lengths.append(decoded.diff(dim=1).norm(dim=2).sum(dim=1))
    return torch.cat(lengths) / (metric_scale * (end - start).norm(dim=1))


def random_pairs(n_points: int, n_pairs: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j), each (n_pairs,) int64, of random ordered pairs of distinct points."""
    if n_points < 2:
        raise ValueError(f"need at least 2 points to form pairs, got {n_points}")
    first = torch.randint(n_points, (n_pairs,), generator=generator)
    # An offset in [1, n_points) makes the second index uniform over the other points.
    second = (first + torch.randint(1, n_points, (n_pairs,), generator=generator)) % n_points
    return first, second


def mixup_latents(latents: torch.Tensor, n_points: int, *, extrapolation: float,
                  generator: torch.Generator) -> torch.Tensor:
    """Mixup points m = (1 - a) z_i + a z_j for random distinct encodings i, j and
    a ~ U(-extrapolation, 1 + extrapolation). ``latents``: (B, N_z); returns (n_points, N_z) float32."""
    latents = _as_latents(latents)
    i, j = random_pairs(latents.shape[0], n_points, generator)
    a = torch.rand(n_points, 1, generator=generator) * (1 + 2 * extrapolation) - extrapolation
    return (1 - a) * latents[i] + a * latents[j]


def _as_latents(latents: torch.Tensor) -> torch.Tensor:
    if latents.ndim != 2:
        raise ValueError(f"latents must be (B, N_z), got shape {tuple(latents.shape)}")
    return latents.detach().to(torch.float32)


# ---------------------------------------------------------------------------------------------------
# Per-model summary and comparison table
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointSetFlatness:
    """Raw flatness diagnostics on one set of latent points (encodings or mixup points)."""

    condition_numbers: np.ndarray          # (P,) condition number of G per point; inf where singular
    normalised_magnification: np.ndarray   # (P,) MF / mean MF per point
    straight_line_ratios: np.ndarray       # (Q,) per random pair of the points
    metric_scale_sq: float                 # c^2 = mean tr(G) / N_z over the points

    def stats(self) -> dict[str, float]:
        """Median & IQR of the condition number, spread of the normalised MF, straight-line ratio
        mean & std, and c^2, keyed by the column names of :func:`format_flatness_table`."""
        return {
            "cond median": float(np.median(self.condition_numbers)),
            "cond IQR": _iqr(self.condition_numbers),
            "MF std": float(np.std(self.normalised_magnification)),
            "MF IQR": _iqr(self.normalised_magnification),
            "line mean": float(np.mean(self.straight_line_ratios)),
            "line std": float(np.std(self.straight_line_ratios)),
            "c^2": self.metric_scale_sq,
        }


@dataclass(frozen=True)
class ModelFlatness:
    """Flatness diagnostics of one model on encoded data points and on mixup points."""

    data: PointSetFlatness
    mixup: PointSetFlatness


def point_set_flatness(decode: Decoder, points: torch.Tensor, *, n_pairs: int, line_steps: int,
                       generator: torch.Generator, chunk_size: int = 8,
                       progress: bool = False) -> PointSetFlatness:
    """All diagnostics on ``points`` (P, N_z): G at every point, straight lines between random pairs."""
    metric = metric_tensor(decode, points, chunk_size=chunk_size, progress=progress)
    scale_sq = metric_scale_sq(metric)
    i, j = random_pairs(points.shape[0], n_pairs, generator)
    ratios = straight_line_ratio(decode, points[i], points[j], metric_scale=math.sqrt(scale_sq),
                                 steps=line_steps, progress=progress)
    return PointSetFlatness(
        condition_numbers=condition_number(metric).numpy(),
        normalised_magnification=normalised_magnification_factor(log_magnification_factor(metric)).numpy(),
        straight_line_ratios=ratios.numpy(),
        metric_scale_sq=scale_sq,
    )


def model_flatness(decode: Decoder, latents: torch.Tensor, *, n_points: int = 100, n_pairs: int = 100,
                   line_steps: int = 32, extrapolation: float = 0.2, seed: int = 0, chunk_size: int = 8,
                   progress: bool = True) -> ModelFlatness:
    """Flatness of ``decode`` on ``n_points`` of the encodings ``latents`` (B, N_z) (a seeded random
    subset, or all if B <= n_points) and on ``n_points`` mixup points with a ~ U(-extrapolation,
    1 + extrapolation). Cost is dominated by the 2 * n_points metric tensors (N_z JVPs each)."""
    latents = _as_latents(latents)
    generator = torch.Generator().manual_seed(seed)
    subset = torch.randperm(latents.shape[0], generator=generator)[:n_points]
    data_points = latents[subset]
    mixup_points = mixup_latents(latents, n_points, extrapolation=extrapolation, generator=generator)
    return ModelFlatness(*(
        point_set_flatness(decode, points, n_pairs=n_pairs, line_steps=line_steps, generator=generator,
                           chunk_size=chunk_size, progress=progress)
        for points in (data_points, mixup_points)))


def format_flatness_table(models: Mapping[str, ModelFlatness]) -> str:
    """Plain-text table, one row per (model, point set); flat models read cond 1, MF spread 0, line 1."""
    rows = [(name, set_name, getattr(flatness, set_name).stats())
            for name, flatness in models.items() for set_name in ("data", "mixup")]
    columns = list(rows[0][2]) if rows else []
    name_width = max([len("model")] + [len(name) for name, _, _ in rows])
    lines = [f"{'model':<{name_width}}  {'points':<6}" + "".join(f"  {c:>11}" for c in columns)]
    for name, set_name, stats in rows:
        lines.append(f"{name:<{name_width}}  {set_name:<6}" + "".join(f"  {stats[c]:>11.4g}" for c in columns))
    return "\n".join(lines)


def _iqr(values: np.ndarray) -> float:
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1)


# ---------------------------------------------------------------------------------------------------
# Two-dimensional latent spaces: magnification map and Riemannian distances on a grid
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatentMap2d:
    """log MF and grid-geodesic distances over a square grid covering 2-d encodings."""

    x: np.ndarray                  # (R,) grid coordinates along latent axis 0
    y: np.ndarray                  # (R,) grid coordinates along latent axis 1, same spacing as x
    log_magnification: np.ndarray  # (R, R) log MF, indexed [y, x]
    centres: np.ndarray            # (K, 2) grid points the distances are measured from
    distances: np.ndarray          # (K, R, R) Riemannian distance from each centre, indexed [k, y, x]


def latent_map_2d(decode: Decoder, latents: torch.Tensor, centres: torch.Tensor, *, resolution: int = 64,
                  margin: float = 0.1, chunk_size: int = 64, progress: bool = False) -> LatentMap2d:
    """Magnification map and equidistance fields for a 2-d latent space (the paper's Figs. 1, 3, 8).

    The grid is ``resolution`` x ``resolution`` square cells over the bounding square of ``latents``
    (B, 2), widened by ``margin`` of its side on every edge. Each ``centres`` (K, 2) point is snapped
    to its nearest grid point. Distances are shortest paths on the 8-neighbour grid graph whose edge
    weight is the metric length of the step dz, averaged over its two ends (trapezoid rule):
    (sqrt(dz^T G_p dz) + sqrt(dz^T G_q dz)) / 2. Grid paths only move along axes and diagonals, so
    even for a flat metric they overestimate the straight-line distance by up to sqrt(4 - 2 sqrt 2)
    (about 8.2 %, for directions at 22.5 degrees to an axis).
    """
    latents, centres = _as_latents(latents), _as_latents(centres)
    if latents.shape[1] != 2:
        raise ValueError(f"latent_map_2d needs 2-d latents, got N_z = {latents.shape[1]}")
    low, high = latents.min(dim=0).values, latents.max(dim=0).values
    middle, side = (low + high) / 2, float((high - low).max()) * (1 + 2 * margin)
    offsets = torch.linspace(-side / 2, side / 2, resolution)
    ys, xs = torch.meshgrid(middle[1] + offsets, middle[0] + offsets, indexing="ij")
    grid = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)  # (R*R, 2), row-major over [y, x]

    metric = metric_tensor(decode, grid, chunk_size=chunk_size, progress=progress)
    graph = _grid_graph(metric.numpy().astype(np.float64), resolution, float(offsets[1] - offsets[0]))
    centre_nodes = torch.cdist(centres, grid).argmin(dim=1).numpy()
    distances = dijkstra(graph, directed=False, indices=centre_nodes)
    return LatentMap2d(
        x=(middle[0] + offsets).numpy(),
        y=(middle[1] + offsets).numpy(),
        log_magnification=log_magnification_factor(metric).numpy().reshape(resolution, resolution),
        centres=grid[centre_nodes].numpy(),
        distances=distances.reshape(len(centre_nodes), resolution, resolution),
    )


def _grid_graph(metric: np.ndarray, resolution: int, spacing: float) -> coo_matrix:
    """Sparse 8-neighbour graph over a row-major [y, x] grid with trapezoid metric-length weights.

    ``metric``: (R*R, 2, 2). Each undirected edge is listed once; four offsets (right, up, and the two
    diagonals going up) cover all eight neighbours.
    """
    index = np.arange(resolution * resolution).reshape(resolution, resolution)
    sources, targets, weights = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        step = np.array([dx, dy], dtype=np.float64) * spacing
        src = index[:resolution - dy, max(0, -dx):resolution - max(0, dx)].reshape(-1)
        dst = index[dy:, max(0, dx):resolution + min(0, dx)].reshape(-1)
        line_element = np.sqrt(np.einsum("i,nij,j->n", step, metric, step).clip(min=0))
        sources.append(src)
        targets.append(dst)
        weights.append((line_element[src] + line_element[dst]) / 2)
    n = resolution * resolution
    return coo_matrix((np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))), shape=(n, n))
