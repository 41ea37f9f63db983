"""Training configuration of the FMVAE appearance model, and the named (architecture, training) presets.

Defaults are the paper's MOT16 configuration (Chen et al., ICML 2020, "Learning Flat Latent
Manifolds with VAEs", VHP-FMVAE on 64x64 pedestrian crops). ``width`` scales every convolution's
channel count for the reduced configurations used on CPU and in tests; see :data:`PRESETS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model.config import ModelConfig, config_from_dict, config_to_dict

JACOBIAN_ESTIMATORS = ("finite_difference", "projection")
JVP_METHODS = ("finite_difference", "autodiff")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
TRACKLET_DRAWS = ("shared-frame", "uniform")
TRACKLET_NEGATIVES = ("batch", "shared-frame")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, constrained-objective and regulariser settings.

    Units: ``kappa`` is an RMS reconstruction error in units of the per-channel pixel standard
    deviation (the constraint is C <= kappa^2 with C the per-pixel mean squared error of normalised
    pixels). ``beta_init`` is the initial weight of the KL-like term F in ``beta*F + C + beta*eta*R``.

    Tracklet self-supervision (see :func:`.objective.tracklet_infonce`): ``tracklet_weight`` > 0 adds
    ``tracklet_weight * L_T`` to the loss, L_T the InfoNCE of ``tracklet_pairs_per_batch`` tracklets'
    crop pairs, at least ``tracklet_min_gap`` frames apart, from the crops with a tracklet id
    (``track_id`` >= 0). The default gap, 9 frames (0.3 s at 30 fps), is the span of the shortest
    tracklet mining keeps (10 detections), so every tracklet can give a pair.
    ``tracklet_temperature`` is in squared latent units (the logits are -||m_i - m_j||^2 / temperature;
    1 is the prototypical-network choice, Snell et al. 2017). ``tracklet_draw``: "shared-frame"
    (default) draws a batch as groups of tracklets that share a frame (a random tracklet, then those
    sharing a frame with it), so each anchor meets people seen against the same background and
    cannot tell them apart by the scene; "uniform" draws tracklets at random.
    ``tracklet_negatives``: "batch" (default) takes every other tracklet of the batch as a negative,
    though some are the same person (a track cut into several tracklets); "shared-frame" takes only
    those sharing a frame (surely other people), which leaves an anchor few negatives, so the term
    saturates. The defaults (gap, draw, negatives) and how they were chosen: weights/README.md.
    ``accumulate`` = K > 1 computes each process's ``batch_size`` crops as K micro-batches of
    ``batch_size / K``, exactly as K times as many processes with that batch would (terms over the
    whole batch, such as mixup, c^2, R and the InfoNCE, still see all of it; see
    :mod:`.distributed`): a step is the same computation, so one process with ``accumulate=2``
    follows a 2-process run, and its gradient is summed in the same order.
    ``reconstruction=False`` drops C, F and R (the tracklet term alone then trains the encoder mean:
    the ablation without a generative model).
    """

    seed: int = 0
    steps: int = 100_000
    batch_size: int = 64                      # crops per step and process
    accumulate: int = 1                       # micro-batches a step's batch is computed in (see below)
    learning_rate: float = 3e-5               # Adam, paper's MOT16 value
    kappa: float = 0.8                        # paper's MOT16 value
    nu: float = 1.0                           # beta update rate, paper's value
    tau: float = 3.0                          # slope of the relaxation toward beta = 1
    beta_init: float = 1e-4                   # beta_0 << 1 (lambda_0 = 1/beta_0 >> 1 in the paper); see BetaController
    ema_decay: float = 0.99                   # of the constraint estimate C_t
    importance_samples: int = 8               # K of the importance-weighted bound
    eta: float = 300.0                        # flatness weight; 0 gives the VHP-VAE baseline
    eta_warmup_steps: int = 1000              # eta ramps up linearly over this many steps after the initial phase
    mixup_extrapolation: float = 0.2          # a ~ U(-a0, 1 + a0)
    regulariser_points: int | None = None     # mixup points per step; None = the whole batch
    jacobian: str = "finite_difference"       # or "projection"
    fd_step: float = 0.01                     # finite-difference step in latent units
    projection_probes: int = 1                # probes v ~ N(0, I) per point (projection only)
    projection_jvp: str = "finite_difference"  # or "autodiff" (torch.func.jvp)
    flatness_normalisation: str = "relative"  # R / (N_z c^4), dimensionless; "none": the paper's raw R
    hflip: bool = True                        # augmentation: random horizontal flip
    shift_pixels: int = 0                     # augmentation: random translation up to this many px
    colour_jitter: float = 0.0                # augmentation: random per-channel gain in 1 +- this
    tracklet_weight: float = 0.0              # 0 = off: the VAE objective exactly
    tracklet_temperature: float = 1.0         # squared latent units
    tracklet_pairs_per_batch: int = 32        # P tracklets per step, two crops each
    tracklet_min_gap: int = 9                 # frames between a positive pair's two crops
    tracklet_draw: str = "shared-frame"       # or "uniform": how a batch's tracklets are drawn
    tracklet_negatives: str = "batch"         # or "shared-frame": which tracklets are negatives
    reconstruction: bool = True               # False: tracklet term alone (needs tracklet_weight > 0)
    device: str = "auto"                      # "auto", "cpu", "cuda", "cuda:N"
    precision: str = "fp32"                   # autocast: "fp32" (off), "bf16", "fp16" (CUDA), "auto" (model.device)
    channels_last: bool = True
    log_every: int = 10
    checkpoint_every: int = 500               # steps between checkpoints
    checkpoint_minutes: float = 5.0           # and at most this much wall time between them

    def __post_init__(self) -> None:
        if self.jacobian not in JACOBIAN_ESTIMATORS:
            raise ValueError(f"jacobian must be one of {JACOBIAN_ESTIMATORS}, got {self.jacobian!r}")
        if self.projection_jvp not in JVP_METHODS:
            raise ValueError(f"projection_jvp must be one of {JVP_METHODS}, got {self.projection_jvp!r}")
        if self.flatness_normalisation not in ("relative", "none"):
            raise ValueError(f"flatness_normalisation must be 'relative' or 'none', got {self.flatness_normalisation!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (mixup pairs points within a batch)")
        if self.accumulate < 1 or self.batch_size % self.accumulate:
            raise ValueError(f"accumulate must be a positive divisor of batch_size {self.batch_size}, "
                             f"got {self.accumulate}")
        if min(self.steps, self.importance_samples, self.log_every, self.checkpoint_every) < 1:
            raise ValueError("steps, importance_samples, log_every and checkpoint_every must be positive")
        if not self.checkpoint_minutes > 0:
            raise ValueError(f"checkpoint_minutes must be positive, got {self.checkpoint_minutes}")
        if self.kappa <= 0 or self.beta_init <= 0 or self.eta < 0:
            raise ValueError("kappa and beta_init must be positive and eta non-negative")
        if self.tracklet_weight < 0 or self.tracklet_temperature <= 0 or self.tracklet_min_gap < 0:
            raise ValueError("tracklet_weight and tracklet_min_gap must be non-negative, tracklet_temperature positive")
        if self.tracklet_pairs_per_batch < 2:
            raise ValueError("tracklet_pairs_per_batch must be at least 2 (a positive needs a negative)")
        if self.tracklet_draw not in TRACKLET_DRAWS:
            raise ValueError(f"tracklet_draw must be one of {TRACKLET_DRAWS}, got {self.tracklet_draw!r}")
        if self.tracklet_negatives not in TRACKLET_NEGATIVES:
            raise ValueError(f"tracklet_negatives must be one of {TRACKLET_NEGATIVES}, got {self.tracklet_negatives!r}")
        if not self.reconstruction and self.tracklet_weight <= 0:
            raise ValueError("reconstruction=False leaves nothing to train unless tracklet_weight > 0")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class Preset:
    """A named pair of configurations."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS: dict[str, Preset] = {
    # Chen et al. 2020, MOT16: full-width VGG16, N_z = 128, K = 8, kappa = 0.8, eta = 300; run the
    # way a CPU affords it: the projection estimator on 16 mixup points with 2 probes, bf16 where
    # the CPU has AMX, 1,500 steps (about 2 hours on 2 AMX cores: docs/training-runs.md), a
    # checkpoint every 5 minutes.
    "paper": Preset(ModelConfig(),
                    TrainConfig(jacobian="projection", projection_probes=2, regulariser_points=16,
                                precision="auto", steps=1_500, checkpoint_minutes=5.0)),
    # CPU: quarter-width VGG16, bf16 autocast (AMX), projection estimator with 2 probes and the
    # regulariser on 16 mixup points per step, which keeps a 2-core machine near 100 crops/s.
    "cpu": Preset(ModelConfig(width=0.25),
                  TrainConfig(precision="bf16", jacobian="projection", projection_probes=2,
                              regulariser_points=16, steps=20_000)),
    # Tests: ~50k parameters, a step takes ~50 ms on 2 cores (channels_last only slows tiny convs).
    "tiny": Preset(ModelConfig(width=1 / 8, latent_dim=8, hyper_latent_dim=8, prior_hidden=(32, 32)),
                   TrainConfig(batch_size=16, steps=50, learning_rate=1e-3, ema_decay=0.8,
                               regulariser_points=4, log_every=5, checkpoint_every=10,
                               channels_last=False)),
}
