"""Objective pieces: flatness regulariser and its estimators, IW bound, beta controller."""

import dataclasses
import math

import pytest
import torch

from fmtrack.training.config import PRESETS
from fmtrack.model.network import FMVAE, HierarchicalPrior
from fmtrack.training.objective import (BetaController, finite_difference_jacobian, flatness_from_metric,
                                        flatness_projection, importance_weighted_kl, metric_tensor,
                                        mixup_points, normalise_flatness, objective)


def linear_decoder(matrix):
    return lambda z: z @ matrix.T


def test_linear_decoder_metric_and_loss_are_exact():
    torch.manual_seed(0)
    A = torch.randn(20, 4, dtype=torch.float64)
    points = torch.randn(3, 4, dtype=torch.float64)
    G = metric_tensor(finite_difference_jacobian(linear_decoder(A), points, 1e-3))
    assert torch.allclose(G, (A.T @ A).expand(3, 4, 4), atol=1e-8)
    loss, scale = flatness_from_metric(G)
    exact_scale = torch.trace(A.T @ A) / 4
    assert scale == pytest.approx(exact_scale.item())
    assert loss.item() == pytest.approx(((A.T @ A - exact_scale * torch.eye(4)) ** 2).sum().item())
    assert loss.item() > 1.0


def test_orthogonal_equal_norm_columns_are_flat():
    Q, _ = torch.linalg.qr(torch.randn(20, 4, dtype=torch.float64))
    G = metric_tensor(finite_difference_jacobian(linear_decoder(3.0 * Q), torch.randn(2, 4, dtype=torch.float64), 1e-3))
    loss, scale = flatness_from_metric(G)
    assert loss.item() < 1e-12
    assert scale.item() == pytest.approx(9.0)


def test_finite_difference_jacobian_matches_autograd():
    torch.manual_seed(0)
    model = FMVAE(PRESETS["tiny"].model).double()
    point = torch.randn(1, 8, dtype=torch.float64)
    fd = finite_difference_jacobian(model.decode, point, 1e-6)[0]
    exact = torch.func.jacfwd(lambda z: model.decode(z[None]).flatten())(point[0])
    assert torch.allclose(fd, exact, atol=1e-4 * exact.abs().max().item())


@pytest.mark.parametrize("jvp_method", ["finite_difference", "autodiff"])
def test_projection_estimator_is_unbiased(jvp_method):
    torch.manual_seed(0)
    A = torch.randn(30, 5, dtype=torch.float64)
    G = (A.T @ A)[None]
    exact_loss, exact_scale = flatness_from_metric(G)
    points = torch.zeros(1, 5, dtype=torch.float64)
    loss, scale = flatness_projection(linear_decoder(A), points, 20000, jvp_method, 1e-4)
    assert scale.item() == pytest.approx(exact_scale.item(), rel=0.03)
    assert loss.item() == pytest.approx(exact_loss.item(), rel=0.05)


def test_relative_flatness_is_scale_free_and_never_pulls_toward_a_smaller_decoder():
    """R / (N_z c^4) = ||G / c^2 - I||^2 / N_z: the same for A and 3A, and its gradient has no
    component along A itself (shrinking the decoder, the trivial flat solution, gains nothing),
    while the raw R's gradient does."""
    torch.manual_seed(0)
    A = torch.randn(20, 4, dtype=torch.float64)
    origin = torch.zeros(1, 4, dtype=torch.float64)
    values = []
    for factor in (1.0, 3.0):
        raw, scale = flatness_from_metric(metric_tensor(finite_difference_jacobian(linear_decoder(factor * A), origin, 1e-4)))
        values.append(normalise_flatness(raw, scale, 4, "relative").item())
    G = A.T @ A
    c2 = torch.trace(G) / 4
    assert values[0] == pytest.approx((((G / c2 - torch.eye(4)) ** 2).sum() / 4).item(), rel=1e-5)
    assert values[1] == pytest.approx(values[0], rel=1e-5)
    B = A.clone().requires_grad_(True)
    raw, scale = flatness_from_metric(metric_tensor(finite_difference_jacobian(linear_decoder(B), origin, 1e-4)))
    g_raw = torch.autograd.grad(raw, B, retain_graph=True)[0]
    g_rel = torch.autograd.grad(normalise_flatness(raw, scale, 4, "relative"), B)[0]
    along = lambda g: (g * A).sum() / (g.norm() * A.norm())  # noqa: E731  cosine with the scale direction
    assert abs(along(g_rel).item()) < 1e-6
    assert along(g_raw).item() > 0.1


def test_detaching_metric_scale_leaves_gradient_unchanged():
    """R is stationary in c^2 at c^2 = mean tr(G)/N, so the c^2 path contributes no gradient."""
    torch.manual_seed(0)
    A = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    points = torch.randn(4, 3, dtype=torch.float64)
    grads = []
    for detach in (True, False):
        loss, _ = flatness_from_metric(metric_tensor(finite_difference_jacobian(linear_decoder(A), points, 1e-4)),
                                       detach_scale=detach)
        grads.append(torch.autograd.grad(loss, A)[0])
    assert grads[0].abs().max() > 1.0
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-8)


def test_mixup_points_lie_on_extended_segments():
    torch.manual_seed(0)
    latents = torch.randn(64, 2)
    points = mixup_points(latents, 0.2)
    assert points.shape == latents.shape
    assert not torch.allclose(points, latents)


def gaussian_prior(latent_dim=2):
    """VHP prior with linear-Gaussian p(z|zeta) = N(A zeta + b, s^2 I): p(z) = N(b, A A^T + s^2 I)."""
    prior = HierarchicalPrior(dataclasses.replace(PRESETS["tiny"].model, latent_dim=latent_dim,
                                                  hyper_latent_dim=latent_dim, prior_hidden=())).double()
    A = torch.tensor([[1.0, 0.5], [0.0, 0.8]], dtype=torch.float64)
    b = torch.tensor([0.3, -0.2], dtype=torch.float64)
    log_s2 = math.log(0.3)
    with torch.no_grad():
        cond = prior.conditional.net[0]
        cond.weight.zero_(); cond.bias.zero_()
        cond.weight[:2] = A; cond.bias[:2] = b; cond.bias[2:] = log_s2
        post = prior.hyper_posterior.net[0]  # a deliberately imperfect q(zeta|z): mean 0.5 z, var 0.5
        post.weight.zero_(); post.bias.zero_()
        post.weight[:2] = 0.5 * torch.eye(2); post.bias[2:] = math.log(0.5)
    cov = A @ A.T + 0.3 * torch.eye(2, dtype=torch.float64)
    return prior, b, cov


def test_importance_weighted_bound_approaches_kl_from_above():
    torch.manual_seed(0)
    prior, b, cov = gaussian_prior()
    q_mean = torch.tensor([0.5, 0.1], dtype=torch.float64)
    q_var = torch.tensor([0.2, 0.4], dtype=torch.float64)
    marginal = torch.distributions.MultivariateNormal(b, cov)
    posterior = torch.distributions.MultivariateNormal(q_mean, torch.diag(q_var))
    closed_form = torch.distributions.kl_divergence(posterior, marginal).item()
    n = 20000
    latents = posterior.sample((n,))
    mc_kl = (posterior.log_prob(latents) - marginal.log_prob(latents)).mean().item()
    assert mc_kl == pytest.approx(closed_form, abs=0.02)
    mean, logvar = q_mean.expand(n, 2), q_var.log().expand(n, 2)
    bounds = [importance_weighted_kl(latents, mean, logvar, prior, k).mean().item() for k in (1, 8, 128)]
    gaps = [bound - mc_kl for bound in bounds]
    assert gaps[0] > gaps[1] > gaps[2] > -1e-3      # above the KL, shrinking with K
    assert gaps[0] > 0.05 and gaps[2] < 0.02


def test_beta_controller_initial_phase_ends_exactly_when_ema_below_kappa_squared():
    controller = BetaController(kappa=0.5, nu=1.0, tau=3.0, ema_decay=0.5, beta=1e-3)
    history = []
    for error in [1.0, 0.5, 0.2, 0.2, 0.2]:
        controller.update(error)
        history.append((controller.constraint_ema, controller.initial_phase, controller.beta))
    # EMAs: 1.0, 0.75, 0.475, 0.3375 (first < 0.25? no), 0.26875, ...
    assert [h[0] for h in history] == pytest.approx([1.0, 0.75, 0.475, 0.3375, 0.26875])
    assert all(h[1] for h in history) and all(h[2] == 1e-3 for h in history)
    controller.update(0.2)  # EMA 0.234375 < 0.25: the phase ends on this very update
    assert not controller.initial_phase
    assert controller.beta > 1e-3


def test_beta_falls_while_violated_and_relaxes_toward_one():
    controller = BetaController(kappa=0.5, nu=1.0, tau=3.0, ema_decay=0.0, beta=0.1, initial_phase=False)
    controller.update(0.45)                       # violated by 0.2: beta * exp(-0.2)
    assert controller.beta == pytest.approx(0.1 * math.exp(-0.2))
    for _ in range(2000):
        controller.update(0.05)                   # met: beta climbs toward 1, never past it
        assert controller.beta <= 1.0
    assert controller.beta > 0.95


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("jacobian", ["finite_difference", "projection"])
def test_objective_terms_are_fp32_and_finite(precision, jacobian):
    torch.manual_seed(0)
    model = FMVAE(PRESETS["tiny"].model)
    config = dataclasses.replace(PRESETS["tiny"].train, jacobian=jacobian, eta=300.0)
    images = torch.randn(4, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        terms = objective(model, images, 1e-3, config)
    terms.loss.backward()
    for value in (terms.loss, terms.reconstruction_error, terms.kl_bound, terms.flatness, terms.metric_scale):
        assert value.dtype == torch.float32 and torch.isfinite(value)
    assert terms.metric_scale > 0
    assert model.decoder.project.weight.grad.abs().sum() > 0


def test_eta_ramp_is_zero_in_the_initial_phase_then_linear_to_one():
    controller = BetaController(kappa=0.5, nu=1.0, tau=3.0, ema_decay=0.0, beta=1e-4)
    assert controller.ramp(4) == 0.0
    controller.update(0.3)  # C_t = 0.3 >= 0.25: still initial
    assert controller.initial_phase and controller.ramp(4) == 0.0
    controller.update(0.2)  # C_t < kappa^2 ends it
    ramps = [controller.ramp(4)]
    for _ in range(5):
        controller.update(0.2)
        ramps.append(controller.ramp(4))
    assert ramps == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
