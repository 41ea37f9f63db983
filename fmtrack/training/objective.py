"""The constrained VHP-FMVAE objective: beta*F + C + beta*eta*R (+ w*L_T), with beta set by a constraint on C.

Terms, per crop and averaged over a batch (all computed in fp32, also under autocast):

* **C** (reconstruction error): mean squared error per pixel and channel between the normalised
  crop and the decoder mean. It is the Gaussian negative log-likelihood up to the fixed variance's
  scale and constant, and is readable: sqrt(C) is the RMS error in units of the per-channel pixel
  standard deviation, so a decoder that outputs the mean crop has C ~ 1. The constraint is
  E[C] <= kappa^2 (squared form); with the paper's kappa = 0.8 that is an RMS error of 0.8 std.
* **F** (importance-weighted KL bound, Klushyn et al. 2019):
  F = E_q(z|x)[log q(z|x) - log (1/K) sum_k p(z|zeta_k) p(zeta_k) / q(zeta_k|z)], zeta_k ~ q(zeta|z).
  In nats per crop. F >= KL(q(z|x) || p(z)) in expectation and approaches it as K grows.
* **R** (flatness, Chen et al. 2020): E ||G(m) - c^2 I||_F^2 at mixup points m, G = J^T J the
  metric tensor of the decoder mean (J: d(normalised pixels) / dz, shape (3*S*S, N_z)), c^2 the batch
  mean of tr(G)/N_z. c^2 is detached: R is stationary in c^2 at exactly that value
  (dR/dc^2 = -2 mean tr(G - c^2 I) = 0), so with the exact or finite-difference G the detached and
  attached gradients are identical (tests/test_objective.py checks this); for the projection
  estimator detaching drops a zero-mean noise term.
* **L_T** (tracklet self-supervision, optional, weight w = ``tracklet_weight``): InfoNCE on the latent
  means of two crops each of P label-free tracklets (:mod:`.tracklets`), see :func:`tracklet_infonce`.
  It acts on the descriptor itself (the latent mean the tracker compares) and needs no labels: a
  tracklet's two crops are the same person; the other tracklets of the batch are negatives. Those
  that share a frame with it are surely other people (the trainer draws such groups); the rest
  almost surely (a track cut into pieces gives a few same-person pairs; weights/README.md). With
  ``reconstruction=False`` it is the whole objective (C, F and R are skipped and reported as NaN).

R is weighted by beta*eta, not eta: while the constraint is violated beta falls and reconstruction
keeps priority. Weighted independently of beta, R has a trivial minimum, a decoder that ignores z
(G = 0 = c^2 I), and a probe run collapsed there (C stayed at the data variance, c^2 -> 0).
For the same reason R enters only once the initial phase ends (like the prior nets): at beta_0 it
still outweighed C (R ~ 1e4 at initialisation; a tiny run with R on from step 0 kept C_t ~ 1.03
while c^2 fell 28 -> 3 in 60 steps and never left the initial phase).
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from .config import TrainConfig
from .distributed import Shard
from ..model.network import FMVAE, HierarchicalPrior, gaussian_log_density

Decode = Callable[[torch.Tensor], torch.Tensor]
Gather = Callable[[torch.Tensor], torch.Tensor]
ONE_PROCESS = Shard()


def _identity(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def reconstruction_error(images: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """C per crop: mean squared error over pixels and channels, (B, 3, S, S) x2 -> (B,) fp32."""
    return (images.float() - reconstruction.float()).pow(2).flatten(1).mean(1)


def importance_weighted_kl(latents: torch.Tensor, latent_mean: torch.Tensor, latent_logvar: torch.Tensor,
                           prior: HierarchicalPrior, num_samples: int, shard: Shard = ONE_PROCESS) -> torch.Tensor:
    """F per crop, (B,) nats: log q(z|x) minus the K-sample importance-weighted estimate of log p(z).

    latents: (B, N_z) samples of q(z|x) with the given mean and log-variance. Runs in fp32.
    ``shard``: the samples are drawn for the whole batch over all ranks (see :mod:`.distributed`).
    """
    with torch.autocast(latents.device.type, enabled=False):
        latents, latent_mean, latent_logvar = (_at_least_fp32(t) for t in (latents, latent_mean, latent_logvar))
        log_q_z = gaussian_log_density(latents, latent_mean, latent_logvar)
        hyper_mean, hyper_logvar = prior.hyper_posterior(latents)
        if shard.distributed:
            total = len(hyper_mean) * shard.world_size
            noise = torch.randn((num_samples, total, *hyper_mean.shape[1:]), device=latents.device,
                                dtype=hyper_mean.dtype)[:, shard.rows(total)]
        else:
            noise = torch.randn((num_samples, *hyper_mean.shape), device=latents.device, dtype=hyper_mean.dtype)
        hyper = hyper_mean + torch.exp(0.5 * hyper_logvar) * noise                  # (K, B, H)
        cond_mean, cond_logvar = prior.conditional(hyper)                            # (K, B, N_z)
        log_weights = (gaussian_log_density(latents, cond_mean, cond_logvar)
                       + gaussian_log_density(hyper, torch.zeros_like(hyper), torch.zeros_like(hyper))
                       - gaussian_log_density(hyper, hyper_mean, hyper_logvar))
        log_p_z = torch.logsumexp(log_weights, dim=0) - math.log(num_samples)
    return log_q_z - log_p_z


def _at_least_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> fp32; fp32 and fp64 unchanged."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def mixup_points(latents: torch.Tensor, extrapolation: float, shard: Shard = ONE_PROCESS) -> torch.Tensor:
    """m = (1 - a) z_i + a z_j, a ~ U(-a0, 1 + a0), z_j from a shuffled copy of the batch. (B, N_z).

    With several ranks the batch is every rank's latents (gathered): (world_size * B, N_z)."""
    latents = shard.gather(latents)
    partner = latents[torch.randperm(len(latents), device=latents.device)]
    a = torch.rand((len(latents), 1), device=latents.device) * (1 + 2 * extrapolation) - extrapolation
    return (1 - a) * latents + a * partner


def finite_difference_jacobian(decode: Decode, points: torch.Tensor, step: float) -> torch.Tensor:
    """J_t = (f(m + s e_t) - f(m)) / s for every latent axis t, in one batched decoder pass.

    points: (B, N_z). Returns (B, D, N_z) in the decoder's output dtype (callers run it in fp32),
    D = the decoder's flattened output size.
    """
    batch, dim = points.shape
    shifted = points[:, None, :] + step * torch.eye(dim, device=points.device, dtype=points.dtype)
    outputs = decode(torch.cat([points, shifted.reshape(batch * dim, dim)])).flatten(1)
    base, moved = outputs[:batch], outputs[batch:].view(batch, dim, -1)
    return ((moved - base[:, None, :]) / step).transpose(1, 2)


def metric_tensor(jacobian: torch.Tensor) -> torch.Tensor:
    """G = J^T J: (B, D, N_z) -> (B, N_z, N_z)."""
    return jacobian.transpose(1, 2) @ jacobian


def flatness_from_metric(metric: torch.Tensor, detach_scale: bool = True,
                         gather: Gather = _identity) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, c^2) from exact metric tensors (B, N_z, N_z): R = mean ||G - c^2 I||_F^2, c^2 = mean tr(G)/N_z.

    ``gather``: per-point values -> those of every rank's points (the means are over all of them)."""
    dim = metric.shape[-1]
    scale = gather(metric.diagonal(dim1=1, dim2=2).sum(-1)).mean() / dim
    target = scale.detach() if detach_scale else scale
    eye = torch.eye(dim, device=metric.device, dtype=metric.dtype)
    return gather((metric - target * eye).pow(2).sum((1, 2))).mean(), scale


def flatness_projection(decode: Decode, points: torch.Tensor, num_probes: int, jvp_method: str,
                        step: float, detach_scale: bool = True,
                        shard: Shard = ONE_PROCESS) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, c^2) by random projection: ||(G - c^2 I) v||^2 with v ~ N(0, I) is unbiased for R.

    Jv comes from a forward finite difference or a JVP (torch.func.jvp); J^T (Jv) from one VJP taken
    at a zero offset so the graph reaches the points (and the encoder) as well as the decoder.
    c^2 = mean ||Jv||^2 / N_z, since E||Jv||^2 = tr(G). ``shard``: ``points`` are this rank's block;
    probes are drawn for all ranks' points and both means run over all of them.
    """
    repeated = points.repeat_interleave(num_probes, dim=0)
    probes = shard.randn(repeated)
    offset = torch.zeros_like(repeated, requires_grad=True)
    inputs = repeated + offset
    if jvp_method == "autodiff":
        outputs, jvp = torch.func.jvp(decode, (inputs,), (probes,))
    else:
        outputs = decode(torch.cat([inputs, inputs + step * probes]))
        outputs, moved = outputs.chunk(2)
        jvp = (moved.float() - outputs.float()) / step
    jvp = jvp.float()
    jtjv = torch.autograd.grad(outputs, offset, grad_outputs=jvp.to(outputs.dtype), create_graph=True)[0].float()
    dim = points.shape[-1]
    scale = shard.gather(jvp.flatten(1).pow(2).sum(1)).mean() / dim
    target = scale.detach() if detach_scale else scale
    return shard.gather((jtjv - target * probes.float()).pow(2).sum(1)).mean(), scale


def flatness(decode: Decode, points: torch.Tensor, config: TrainConfig,
             shard: Shard = ONE_PROCESS) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, c^2) with the configured Jacobian estimator and normalisation; with several ranks
    ``points`` are this rank's block and R, c^2 are over all ranks' points.

    Finite differences run in fp32 with autocast off: in bf16, (f(m + s e) - f(m)) / s cancels to
    noise. The autodiff JVP has no cancellation and runs under the caller's autocast.
    """
    if config.jacobian == "projection" and config.projection_jvp == "autodiff":
        raw, scale = flatness_projection(decode, points, config.projection_probes, "autodiff", config.fd_step,
                                         shard=shard)
    else:
        with torch.autocast(points.device.type, enabled=False):
            points = points.float()
            if config.jacobian == "projection":
                raw, scale = flatness_projection(decode, points, config.projection_probes, "finite_difference",
                                                 config.fd_step, shard=shard)
            else:
                raw, scale = flatness_from_metric(metric_tensor(finite_difference_jacobian(decode, points,
                                                                                           config.fd_step)),
                                                  gather=shard.gather)
    return normalise_flatness(raw, scale, points.shape[-1], config.flatness_normalisation), scale


def normalise_flatness(raw: torch.Tensor, scale: torch.Tensor, latent_dim: int, normalisation: str) -> torch.Tensor:
    """The regulariser the objective uses, from the paper's R = E||G - c^2 I||_F^2 and c^2 (not detached).

    ``relative``: R / (N_z c^4) = E||G / c^2 - I||_F^2 / N_z, a dimensionless flatness: 0 for a flat
    decoder at any scale, unchanged when pixel units, image size or N_z change, and invariant to
    scaling the decoder, so shrinking it toward the trivial flat solution G = 0 gains nothing. The
    gradient must flow through c^2 in the denominator: with it detached, G -> 0 lowers the value
    (runs collapsed that way). With c^2 attached, the gradient has no component along the decoder's
    scale (tested). Unnormalised, R's scale dwarfs C's and the decoder collapses to G ~ 0
    (docs/design-decisions.md has the measured runs).
    ``none``: the paper's raw R (c^2 inside it is a constant: R is stationary in c^2).
    """
    if normalisation == "none":
        return raw
    return raw / (latent_dim * scale.clamp_min(1e-12) ** 2)


def tracklet_infonce(first: torch.Tensor, second: torch.Tensor, temperature: float,
                     negatives: torch.Tensor | None = None) -> torch.Tensor:
    """L_T: symmetric InfoNCE (NT-Xent) of P positive pairs, a scalar in nats (fp32).

    first, second: (P, N_z) latent means; row i of each is one crop of tracklet i. Every one of the
    2P crops is an anchor once: its positive is its partner, its negatives both crops of every
    tracklet j with ``negatives[i, j]`` ((P, P) bool; None: every other tracklet); logits are
    -||m_a - m_b||^2 / temperature (squared Euclidean, the distance the tracker uses; temperature in
    squared latent units). The mean cross-entropy over all anchors is symmetric in the two views.
    Minimum 0 (also for an anchor with no negative); log(2P - 1) when all distances are equal and
    every other tracklet is a negative.
    """
    count = len(first)
    if negatives is None:
        negatives = ~torch.eye(count, dtype=torch.bool, device=first.device)
    with torch.autocast(first.device.type, enabled=False):
        means = torch.cat([first, second]).float()                                  # (2P, N_z)
        logits = -(means[:, None, :] - means[None, :, :]).pow(2).sum(-1) / temperature
        partner = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(means.device)
        candidate = negatives.to(means.device).repeat(2, 2)                          # (2P, 2P)
        candidate[torch.arange(2 * count, device=means.device), partner] = True
        logits = logits.masked_fill(~candidate, -math.inf)
        return torch.nn.functional.cross_entropy(logits, partner)


@dataclass
class ObjectiveTerms:
    """One batch's objective: ``loss`` to minimise and its batch-mean parts (scalars, fp32)."""

    loss: torch.Tensor
    reconstruction_error: torch.Tensor   # C
    kl_bound: torch.Tensor               # F, nats per crop
    flatness: torch.Tensor               # R (NaN when not computed: eta = 0 or regularise off)
    metric_scale: torch.Tensor           # c^2 (NaN likewise)
    tracklet: torch.Tensor               # L_T, nats (NaN when tracklet_weight = 0)


def objective(model: FMVAE, images: torch.Tensor | None, beta: float, config: TrainConfig,
              regularise: float = 1.0, tracklet_images: torch.Tensor | None = None,
              tracklet_negatives: torch.Tensor | None = None, shard: Shard = ONE_PROCESS) -> ObjectiveTerms:
    """beta*F + C + beta*eta*R (+ tracklet_weight * L_T) on batches of normalised crops (B, 3, S, S).

    ``regularise`` scales eta (0 drops R, reported as NaN): the trainer keeps it 0 during the initial
    phase and then ramps it to 1 over ``config.eta_warmup_steps``. ``tracklet_images``: (2P, 3, S, S),
    rows i and P + i two crops of tracklet i; needed when ``config.tracklet_weight`` > 0.
    ``tracklet_negatives``: (P, P) bool, which tracklets are negatives of which (see
    :func:`tracklet_infonce`; None: all others). ``images`` is unused (may be None) when
    ``config.reconstruction`` is False.

    ``shard``: with several ranks (see :mod:`.distributed`), ``images`` and ``tracklet_images`` are
    this rank's block (tracklet rows i and n + i one tracklet's pair, n = P / world_size) while
    ``tracklet_negatives`` is the whole step's (P, P); C, F and ``loss`` are this rank's (their mean
    over ranks is the whole batch's), R, c^2 and L_T the whole batch's.
    """
    if config.tracklet_weight > 0 and tracklet_images is None:
        raise ValueError("tracklet_weight > 0 needs tracklet_images")
    if config.reconstruction:
        terms = _vae_objective(model, images, beta, config, regularise, shard)
    else:
        nan = torch.full((), math.nan, device=tracklet_images.device)
        terms = ObjectiveTerms(torch.zeros((), device=nan.device), nan, nan, nan, nan, nan)
    if config.tracklet_weight > 0:
        first, second = (shard.gather(half) for half in model.encode(tracklet_images)[0].chunk(2))
        tracklet = tracklet_infonce(first, second, config.tracklet_temperature, tracklet_negatives)
        terms.loss = terms.loss + config.tracklet_weight * tracklet
        terms.tracklet = tracklet.detach()
    return terms


def _vae_objective(model: FMVAE, images: torch.Tensor, beta: float, config: TrainConfig,
                   regularise: float, shard: Shard = ONE_PROCESS) -> ObjectiveTerms:
    """beta*F + C + beta*eta*R; see :func:`objective`."""
    latent_mean, latent_logvar = model.encode(images)
    latent_mean, latent_logvar = latent_mean.float(), latent_logvar.float()
    latents = latent_mean + torch.exp(0.5 * latent_logvar) * shard.randn(latent_mean)
    recon = reconstruction_error(images, model.decode(latents)).mean()
    kl_bound = importance_weighted_kl(latents, latent_mean, latent_logvar, model.prior,
                                      config.importance_samples, shard).mean()
    loss = beta * kl_bound + recon
    flat = scale = torch.full((), math.nan, device=images.device)
    if regularise > 0 and config.eta > 0:
        points = mixup_points(latents, config.mixup_extrapolation, shard)[: config.regulariser_points]
        if shard.distributed:
            points = points[shard.rows(len(points))]
        flat, scale = flatness(model.decode, points, config, shard)
        loss = loss + beta * config.eta * regularise * flat
    return ObjectiveTerms(loss, recon.detach(), kl_bound.detach(), flat.detach(), scale.detach(),
                          torch.full((), math.nan, device=images.device))


def heaviside(x: float) -> float:
    """H(x) = 1 for x > 0, else 0 (a constraint met with equality counts as met)."""
    return 1.0 if x > 0 else 0.0


@dataclass
class BetaController:
    """beta of ``beta*F + C``, driven by the constraint E[C] <= kappa^2 (Klushyn et al. 2019, Alg. 1).

    C_t is an exponential moving average of the batch C. While ``initial_phase`` holds, beta stays
    at its initial value and only the encoder and decoder train; the phase ends at the first update
    with C_t < kappa^2. From then on each update sets, with d = C_t - kappa^2,
    beta <- beta * exp(nu * f(beta, d) * d), f(beta, d) = (1 - H(d)) tanh(tau (beta - 1)) - H(d):
    a violated constraint (d > 0) lowers beta by exp(-nu d); a met one (d < 0) raises beta toward 1,
    slowing as tanh(tau (beta - 1)) -> 0, so beta never passes 1. beta = 1/lambda of the paper,
    whose "lambda >> 1" start is our beta_0 << 1.
    """

    kappa: float
    nu: float
    tau: float
    ema_decay: float
    beta: float
    constraint_ema: float | None = None
    initial_phase: bool = True
    constrained_steps: int = 0  # updates since the initial phase ended

    def ramp(self, warmup_steps: int) -> float:
        """0 during the initial phase, then rising linearly to 1 over ``warmup_steps`` updates."""
        if self.initial_phase:
            return 0.0
        return min(1.0, (self.constrained_steps + 1) / max(warmup_steps, 1))

    @classmethod
    def from_config(cls, config: TrainConfig) -> "BetaController":
        return cls(config.kappa, config.nu, config.tau, config.ema_decay, config.beta_init)

    def update(self, reconstruction_error: float) -> None:
        """Fold one batch's C into C_t, then end the initial phase or update beta."""
        if self.constraint_ema is None:
            self.constraint_ema = reconstruction_error
        else:
            self.constraint_ema = self.ema_decay * self.constraint_ema + (1 - self.ema_decay) * reconstruction_error
        violation = self.constraint_ema - self.kappa ** 2
        if self.initial_phase:
            if violation >= 0:
                return
            self.initial_phase = False
        else:
            self.constrained_steps += 1
        step = heaviside(violation)
        gain = (1 - step) * math.tanh(self.tau * (self.beta - 1)) - step
        self.beta *= math.exp(self.nu * gain * violation)

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        """Every field :meth:`state_dict` wrote, of its type; KeyError or TypeError otherwise (a
        partial state would silently restart beta and the constraint's average)."""
        kinds = typing.get_type_hints(type(self))
        if set(state) != set(kinds):
            raise KeyError(f"controller state must hold {sorted(kinds)}, got {sorted(state)}")
        for key, value in state.items():
            allowed = typing.get_args(kinds[key]) or (kinds[key],)  # float | None -> (float, NoneType)
            ok = (value is None and type(None) in allowed) or (
                isinstance(value, bool) if bool in allowed else
                not isinstance(value, bool) and isinstance(value, (int, float) if float in allowed else int))
            if not ok:
                raise TypeError(f"controller {key} must be {getattr(kinds[key], '__name__', kinds[key])}, got {value!r}")
            setattr(self, key, value)
