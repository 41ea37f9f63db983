"""Flatness diagnostics against closed forms: linear decoders, exp-scaled decoders, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fmtrack.training.diagnostic_plots import plot_flatness_boxes, plot_latent_map_2d
from fmtrack.training.diagnostics import (
    ModelFlatness, PointSetFlatness, condition_number, format_flatness_table, latent_map_2d,
    log_magnification_factor, metric_scale_sq, metric_tensor, mixup_latents, model_flatness,
    normalised_magnification_factor, random_pairs, straight_line_ratio)

# Longest 8-neighbour grid path over the straight-line distance, attained 22.5 degrees off an axis:
# (1 + (sqrt 2 - 1) tan 22.5) / sqrt(1 + tan^2 22.5) = sqrt(4 - 2 sqrt 2).
OCTILE_EXCESS = math.sqrt(4 - 2 * math.sqrt(2))


def linear_decoder(matrix: torch.Tensor):
    """f(z) = A z, returned as (B, 2, D/2) so that non-flat output shapes are exercised."""
    def decode(z: torch.Tensor) -> torch.Tensor:
        return (z @ matrix.T).reshape(z.shape[0], 2, -1)
    return decode


def random_matrix(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


def scaled_orthonormal(rows: int, cols: int, scale: float, seed: int) -> torch.Tensor:
    """A = c Q with orthonormal columns: an isometry up to the scale c, so G = c^2 I."""
    q, _ = torch.linalg.qr(random_matrix(rows, cols, seed).double())
    return (scale * q).float()


# --- linear decoder: G = A^T A and its spectrum ----------------------------------------------------

def test_metric_of_linear_decoder_is_gram_matrix_everywhere():
    a = random_matrix(12, 5, seed=0)
    z = random_matrix(7, 5, seed=1) * 3
    metric = metric_tensor(linear_decoder(a), z, chunk_size=3)
    expected = (a.T @ a).expand(7, 5, 5)
    assert metric.shape == (7, 5, 5) and metric.dtype == torch.float32
    torch.testing.assert_close(metric, expected, rtol=1e-5, atol=1e-5)


def test_condition_number_and_log_mf_of_linear_decoder_match_singular_values():
    a = random_matrix(12, 5, seed=2)
    sigma = np.linalg.svd(a.double().numpy(), compute_uv=False)
    metric = metric_tensor(linear_decoder(a), random_matrix(4, 5, seed=3))
    np.testing.assert_allclose(condition_number(metric).numpy(), (sigma[0] / sigma[-1]) ** 2, rtol=1e-4)
    np.testing.assert_allclose(log_magnification_factor(metric).numpy(), np.log(sigma).sum(), rtol=1e-5)
    np.testing.assert_allclose(normalised_magnification_factor(log_magnification_factor(metric)).numpy(),
                               1.0, rtol=1e-6)


def test_log_mf_does_not_overflow_in_128_dimensions():
    # det G = 10^(2*128) overflows float32 (and float64's exponent for larger scales); log MF does not.
    metric = torch.diag_embed(torch.full((3, 128), 100.0))
    np.testing.assert_allclose(log_magnification_factor(metric).numpy(), 128 * math.log(10.0), rtol=1e-6)
    np.testing.assert_allclose(normalised_magnification_factor(log_magnification_factor(metric)).numpy(), 1.0)


def test_singular_metric_gives_infinite_condition_number_and_says_so():
    metric = torch.stack([torch.diag(torch.tensor([4.0, 1.0])), torch.diag(torch.tensor([1.0, 0.0]))])
    with pytest.warns(RuntimeWarning, match="1 of 2 metric tensors are singular"):
        cond = condition_number(metric)
    assert cond[0] == pytest.approx(4.0) and cond[1] == math.inf
    with pytest.warns(RuntimeWarning, match="singular"):
        log_mf = log_magnification_factor(metric)
    assert log_mf[0] == pytest.approx(math.log(2.0)) and log_mf[1] == -math.inf


def test_metric_scale_is_mean_trace_over_latent_dim():
    a = random_matrix(12, 5, seed=4)
    metric = metric_tensor(linear_decoder(a), random_matrix(3, 5, seed=5))
    assert metric_scale_sq(metric) == pytest.approx(float((a ** 2).sum()) / 5, rel=1e-5)


# --- straight-line ratio -----------------------------------------------------------------------------

def test_straight_line_ratio_is_one_for_scaled_isometry():
    c = 2.5
    a = scaled_orthonormal(16, 6, c, seed=6)
    metric = metric_tensor(linear_decoder(a), random_matrix(5, 6, seed=7))
    assert metric_scale_sq(metric) == pytest.approx(c ** 2, rel=1e-5)
    ratio = straight_line_ratio(linear_decoder(a), random_matrix(20, 6, seed=8), random_matrix(20, 6, seed=9),
                                metric_scale=math.sqrt(metric_scale_sq(metric)), steps=7)
    np.testing.assert_allclose(ratio.numpy(), 1.0, atol=1e-5)


def test_straight_line_ratio_of_general_linear_decoder():
    a = random_matrix(16, 6, seed=10)
    start, end = random_matrix(20, 6, seed=11), random_matrix(20, 6, seed=12)
    c = math.sqrt(float((a.double() ** 2).sum()) / 6)  # documented c^2 = mean tr(G) / N_z = ||A||_F^2 / N_z
    ratio = straight_line_ratio(linear_decoder(a), start, end, metric_scale=c, steps=5, max_decode_batch=13)
    delta = (end - start).double()
    expected = (delta @ a.double().T).norm(dim=1) / (c * delta.norm(dim=1))
    np.testing.assert_allclose(ratio.numpy(), expected.numpy(), rtol=1e-5)
    assert expected.std() > 0.05  # a general A is not flat, so the check above is not about ratio == 1


def test_straight_line_ratio_measures_curved_decoder_length():
    # f(z) = (cos z0, sin z0): a straight segment of length L in z0 maps to an arc of length L, but
    # with only one step the polygon is the chord 2 sin(L/2).
    decode = lambda z: torch.stack([torch.cos(z[:, 0]), torch.sin(z[:, 0])], dim=1)  # noqa: E731
    start, end = torch.zeros(1, 1), torch.full((1, 1), 2.0)
    assert straight_line_ratio(decode, start, end, metric_scale=1.0, steps=1).item() == pytest.approx(math.sin(1.0))
    assert straight_line_ratio(decode, start, end, metric_scale=1.0, steps=200).item() == pytest.approx(1.0, abs=1e-4)


# --- nonlinear decoder: jacfwd against independent Jacobians -----------------------------------------

def mlp_decoder(dtype: torch.dtype):
    w1, w2 = random_matrix(9, 4, seed=13).to(dtype), random_matrix(15, 9, seed=14).to(dtype) / 3
    b1 = random_matrix(1, 9, seed=15).to(dtype)[0]
    return lambda z: torch.tanh(torch.tanh(z @ w1.T + b1) @ w2.T).reshape(z.shape[0], 3, 5)


def test_metric_of_nonlinear_decoder_matches_finite_differences_and_autograd():
    z = random_matrix(6, 4, seed=16)
    metric = metric_tensor(mlp_decoder(torch.float32), z, chunk_size=4)

    # Central differences in float64: truncation error O(h^2) ~ 1e-10, far below the fp32 tolerance.
    decode64, h = mlp_decoder(torch.float64), 1e-5
    basis = torch.eye(4, dtype=torch.float64)
    for point, g in zip(z.double(), metric):
        columns = [(decode64((point + h * e)[None]) - decode64((point - h * e)[None])).reshape(-1) / (2 * h)
                   for e in basis]
        jac_fd = torch.stack(columns, dim=1)
        torch.testing.assert_close(g.double(), jac_fd.T @ jac_fd, rtol=1e-4, atol=1e-5)

        jac_ad = torch.autograd.functional.jacobian(lambda p: mlp_decoder(torch.float32)(p[None]).reshape(-1),
                                                    point.float())
        torch.testing.assert_close(g, jac_ad.T @ jac_ad, rtol=1e-5, atol=1e-6)


def test_metric_of_module_decoder_does_not_leak_gradients():
    decoder = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 10))
    z = torch.randn(5, 3, requires_grad=True)
    metric = metric_tensor(decoder, z, chunk_size=2)
    ratio = straight_line_ratio(decoder, z[:2], z[2:4], metric_scale=1.0)
    assert not metric.requires_grad and not ratio.requires_grad
    assert all(p.grad is None for p in decoder.parameters())


# --- magnification factor of a decoder whose scale varies -------------------------------------------

def test_magnification_factor_of_exp_scaled_decoder():
    # f(z) = exp(z0) z in 2-d: J = exp(z0) (I + z e0^T), det J = exp(2 z0) (1 + z0).
    decode = lambda z: torch.exp(z[:, :1]) * z  # noqa: E731
    z = torch.tensor([[-0.5, 0.3], [0.0, -1.0], [0.4, 2.0], [1.2, 0.0]])
    log_mf = log_magnification_factor(metric_tensor(decode, z))
    z0 = z[:, 0].double().numpy()
    expected = 2 * z0 + np.log1p(z0)
    np.testing.assert_allclose(log_mf.numpy(), expected, rtol=1e-5, atol=1e-5)
    normalised = normalised_magnification_factor(log_mf).numpy()
    np.testing.assert_allclose(normalised, np.exp(expected) / np.exp(expected).mean(), rtol=1e-5)
    assert normalised.std() > 1.0  # not flat: MF spans a factor of ~40 over these points


# --- sampling -------------------------------------------------------------------------------------

def test_random_pairs_are_distinct_and_cover_all_points():
    i, j = random_pairs(5, 2000, torch.Generator().manual_seed(0))
    assert (i != j).all()
    assert set(i.tolist()) == set(j.tolist()) == set(range(5))


def test_mixup_points_lie_on_extended_segments_and_are_seeded():
    z = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    mix = mixup_latents(z, 500, extrapolation=0.2, generator=torch.Generator().manual_seed(1))
    again = mixup_latents(z, 500, extrapolation=0.2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(mix, again)
    coefficient = mix[:, 0]  # each point is coefficient * z1, with coefficient a or 1 - a
    torch.testing.assert_close(mix, coefficient[:, None] * z[1])
    assert coefficient.min() >= -0.2 and coefficient.max() <= 1.2
    assert coefficient.min() < -0.1 and coefficient.max() > 1.1  # extrapolates beyond the pair


# --- per-model summary ------------------------------------------------------------------------------

def test_model_flatness_of_isometry_is_flat_and_of_exp_decoder_is_not():
    z = random_matrix(30, 2, seed=17) * 0.5
    flat = model_flatness(linear_decoder(scaled_orthonormal(6, 2, 3.0, seed=18)), z, n_points=20,
                          n_pairs=15, line_steps=4, progress=False)
    curved = model_flatness(lambda v: torch.exp(v[:, :1]) * v, z, n_points=20, n_pairs=15, line_steps=4,
                            progress=False)
    for points in (flat.data, flat.mixup):
        stats = points.stats()
        assert stats["cond median"] == pytest.approx(1.0, abs=1e-4) and stats["cond IQR"] < 1e-4
        assert stats["MF std"] < 1e-5 and stats["line mean"] == pytest.approx(1.0, abs=1e-5)
        assert stats["c^2"] == pytest.approx(9.0, rel=1e-5)
        assert points.condition_numbers.shape == (20,) and points.straight_line_ratios.shape == (15,)
    assert curved.data.stats()["cond median"] > 1.1 and curved.data.stats()["MF std"] > 0.1
    table = format_flatness_table({"isometry": flat, "exp-scaled": curved})
    lines = table.splitlines()
    assert len(lines) == 5 and "cond median" in lines[0] and lines[1].startswith("isometry")
    assert lines[4].split()[:2] == ["exp-scaled", "mixup"]


# --- 2-d map ----------------------------------------------------------------------------------------

def test_latent_map_of_scaled_isometry_has_constant_mf_and_euclidean_grid_distances():
    c = 1.7
    decode = linear_decoder(scaled_orthonormal(6, 2, c, seed=19))
    z = random_matrix(50, 2, seed=20)
    latent_map = latent_map_2d(decode, z, z[:2], resolution=33)
    assert latent_map.log_magnification.shape == (33, 33) and latent_map.distances.shape == (2, 33, 33)
    np.testing.assert_allclose(latent_map.log_magnification, 2 * math.log(c), rtol=1e-5)
    assert np.allclose(np.diff(latent_map.x), np.diff(latent_map.y))  # square cells

    xs, ys = np.meshgrid(latent_map.x, latent_map.y)  # [y, x] like the map
    for centre, distance in zip(latent_map.centres, latent_map.distances):
        euclidean = c * np.hypot(xs - centre[0], ys - centre[1])
        away = euclidean > 0
        ratio = distance[away] / euclidean[away]
        # A flat metric's 8-neighbour path is the octile distance: never shorter than the straight
        # line, at most OCTILE_EXCESS longer, exact along axes and diagonals (checked via the min).
        assert ratio.min() == pytest.approx(1.0, abs=1e-5)
        assert ratio.max() <= OCTILE_EXCESS + 1e-5
        assert ratio.max() > OCTILE_EXCESS - 0.01  # the bound is attained, so it is the right tolerance
        assert distance[~away].max() == 0.0


def test_latent_map_distances_follow_a_varying_metric():
    # f(z) = (exp(z0), 3 z1): G = diag(exp(2 z0), 9), log MF = z0 + log 3. In u = exp(z0) the metric
    # is flat, so the geodesic from the origin to (1, 0) runs along the z0 axis with length e - 1; the
    # grid sums it by the trapezoid rule, relative error ~ h^2 / 12 = 8e-4 for h = 0.1.
    decode = lambda z: torch.stack([torch.exp(z[:, 0]), 3 * z[:, 1]], dim=1)  # noqa: E731
    z = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    latent_map = latent_map_2d(decode, z, torch.zeros(1, 2), resolution=21, margin=0.0)
    np.testing.assert_allclose(latent_map.x, np.linspace(-1, 1, 21), atol=1e-6)
    np.testing.assert_allclose(latent_map.centres, [[0.0, 0.0]], atol=1e-6)
    distance = latent_map.distances[0]  # [y, x]; the centre is at row 10, column 10
    np.testing.assert_allclose(distance[10, -1], math.e - 1, rtol=1e-3)
    np.testing.assert_allclose(distance[10, 0], 1 - math.exp(-1), rtol=1e-3)
    np.testing.assert_allclose(distance[-1, 10], 3.0, rtol=1e-5)
    np.testing.assert_allclose(latent_map.log_magnification,
                               np.broadcast_to(latent_map.x + math.log(3.0), (21, 21)), atol=1e-5)


# --- plots ------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_point_set(rng: np.random.Generator, spread: float) -> PointSetFlatness:
    return PointSetFlatness(
        condition_numbers=np.append(np.exp(rng.normal(0, spread, 40)) + 1, np.inf),
        normalised_magnification=np.append(np.exp(rng.normal(0, spread, 40)), 0.0),  # 0: singular G
        straight_line_ratios=1 + np.abs(rng.normal(0, spread / 10, 30)),
        metric_scale_sq=2.0,
    )


def assert_png(path, min_bytes: int):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > min_bytes
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_flatness_box_plot_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    models = {name: ModelFlatness(fake_point_set(rng, s), fake_point_set(rng, 2 * s))
              for name, s in (("VAE", 2.0), ("VHP-FMVAE", 0.3))}
    path = tmp_path / "flatness.png"
    assert plot_flatness_boxes(models, path) == path
    assert_png(path, min_bytes=20_000)


def test_latent_map_plot_writes_png(tmp_path):
    z = random_matrix(40, 2, seed=21)
    latent_map = latent_map_2d(lambda v: torch.exp(v[:, :1]) * v, z, z[:2], resolution=24)
    path = tmp_path / "map.png"
    assert plot_latent_map_2d(latent_map, z.numpy(), path) == path
    assert_png(path, min_bytes=20_000)
