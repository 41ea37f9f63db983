"""The VHP-FMVAE network: VGG16 encoder q(z|x), deconvolutional decoder p(x|z), hierarchical prior.

Shapes: images enter as (B, 3, S, S) float tensors of normalised RGB pixels (S = 64); latents are
(B, N_z). Every Gaussian is diagonal and given by its mean and log-variance (natural log).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..io import InputError
from .config import ModelConfig

# Log-variances are clamped to +-LOGVAR_LIMIT (std in [e^-5, e^5]): once beta is small nothing else
# bounds a posterior variance, and a tiny run drove one to exp(-logvar) = inf, turning F into NaN.
LOGVAR_LIMIT = 10.0

# torchvision's VGG16 "D" configuration: channel counts per conv layer, "M" = 2x2 max-pool.
_VGG16_LAYOUT = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16_features(config: ModelConfig) -> nn.Sequential:
    """VGG16's 13 conv3x3+ReLU and 5 max-pools, indexed exactly as torchvision's ``features``.

    Conv layers sit at indices 0,2,5,7,10,12,14,17,19,21,24,26,28 and pools at 4,9,16,23,30, so
    ImageNet ``features.*`` weights load at width 1 (see :func:`load_vgg16_features`).
    """
    layers: list[nn.Module] = []
    in_channels = 3
    for stage, stage_layout in enumerate(_VGG16_LAYOUT):
        out_channels = config.scaled(config.encoder_channels[stage])
        for _ in stage_layout:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """q(z|x): VGG16 features, flattened, then linear heads to the mean and log-variance of z."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features = vgg16_features(config)
        side = config.image_size // 2 ** len(config.encoder_channels)
        flat = config.scaled(config.encoder_channels[-1]) * side * side
        self.latent_mean = nn.Linear(flat, config.latent_dim)
        self.latent_logvar = nn.Linear(flat, config.latent_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.features(images).flatten(1)
        return self.latent_mean(hidden), self.latent_logvar(hidden).clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)


class Decoder(nn.Module):
    """Mean of p(x|z): linear to a (C0, S/32, S/32) map, then five upsampling blocks to (3, S, S).

    Each block is ConvTranspose2d(4x4, stride 2) + ReLU + Conv2d(3x3) + ReLU; a final 3x3 conv
    gives the mean in normalised pixel units (no output non-linearity: pixels are standardised).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels = [config.scaled(c) for c in config.decoder_channels]
        self.side = config.image_size // 2 ** len(channels)
        self.start_channels = channels[0]
        self.project = nn.Linear(config.latent_dim, channels[0] * self.side * self.side)
        blocks: list[nn.Module] = []
        in_channels = channels[0]
        for out_channels in channels:
            blocks += [nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1),
                       nn.ReLU(inplace=True),
                       nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
                       nn.ReLU(inplace=True)]
            in_channels = out_channels
        blocks.append(nn.Conv2d(in_channels, 3, kernel_size=3, padding=1))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.project(latents))
        return self.blocks(hidden.view(-1, self.start_channels, self.side, self.side))


class GaussianMLP(nn.Module):
    """An MLP (ReLU hidden layers) whose output is a diagonal Gaussian: (mean, logvar)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        layers.append(nn.Linear(in_dim, 2 * out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.net(inputs).chunk(2, dim=-1)
        return mean, logvar.clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)


class HierarchicalPrior(nn.Module):
    """VHP prior p(z) = integral of p(z|zeta) N(zeta; 0, I) dzeta, with its variational q(zeta|z)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.hyper_posterior = GaussianMLP(config.latent_dim, config.prior_hidden, config.hyper_latent_dim)
        self.conditional = GaussianMLP(config.hyper_latent_dim, config.prior_hidden, config.latent_dim)


class FMVAE(nn.Module):
    """Encoder, decoder and hierarchical prior of the VHP-FMVAE."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.prior = HierarchicalPrior(config)
        self.apply(_he_init)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) normalised RGB -> latent mean and log-variance, each (B, N_z)."""
        return self.encoder(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, N_z) -> (B, 3, S, S) decoder mean in normalised pixel units."""
        return self.decoder(latents)


def _he_init(module: nn.Module) -> None:
    """He-normal convolutions, zero biases (as torchvision's VGG).

    PyTorch's default init shrinks the signal by about 1/sqrt(6) per ReLU layer; through the
    decoder's eleven layers its output barely depends on z at start (c^2 ~ 1e-9), which is the
    trivial flat solution the regulariser must not start from. A stride-2 4x4 transposed conv
    feeds each output pixel from 2x2 taps per input channel, hence fan_in = 4 * in_channels.
    """
    if isinstance(module, nn.ConvTranspose2d):
        nn.init.normal_(module.weight, std=math.sqrt(2.0 / (4 * module.in_channels)))
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    else:
        return
    nn.init.zeros_(module.bias)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))) summed over the last dimension, in nats."""
    return -0.5 * (((x - mean) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def load_vgg16_features(encoder: Encoder, state_dict: Mapping[str, torch.Tensor], source: str = "<state dict>") -> None:
    """Copy ImageNet VGG16 ``features.*`` tensors (torchvision names) into a full-width encoder.

    Raises InputError naming the first missing key or mismatched shape; nothing is copied then.
    """
    own = encoder.features.state_dict()
    prefixed = {k.removeprefix("features."): v for k, v in state_dict.items() if k.startswith("features.")}
    for key, tensor in own.items():
        if key not in prefixed:
            raise InputError(source, f"missing VGG16 tensor features.{key}")
        if tuple(prefixed[key].shape) != tuple(tensor.shape):
            raise InputError(source, f"features.{key} has shape {tuple(prefixed[key].shape)}, "
                                     f"this encoder needs {tuple(tensor.shape)} (width must be 1)")
    encoder.features.load_state_dict({k: prefixed[k] for k in own})
