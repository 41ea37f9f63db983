"""Architecture of the VHP-FMVAE appearance model (torch-free: read by sidecars and the CLI).

Defaults are the paper's MOT16 configuration (Chen et al., ICML 2020, "Learning Flat Latent
Manifolds with VAEs", VHP-FMVAE on 64x64 pedestrian crops). ``width`` scales every convolution's
channel count for the reduced configurations used on CPU and in tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. Channel counts are the full-width values; ``width`` multiplies them."""

    image_size: int = 64                      # crops are image_size x image_size x 3
    latent_dim: int = 128                     # N_z, the descriptor's dimension
    hyper_latent_dim: int = 128               # dimension of the hierarchical prior's zeta
    width: float = 1.0                        # channel multiplier (0.25 = quarter-width VGG16)
    encoder_channels: tuple[int, ...] = (64, 128, 256, 512, 512)    # VGG16's five stages
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)      # one upsampling block each
    prior_hidden: tuple[int, ...] = (512, 512)                       # q(zeta|z) and p(z|zeta) MLPs

    def __post_init__(self) -> None:
        if self.image_size % 2 ** len(self.encoder_channels) != 0:
            raise ValueError(f"image_size {self.image_size} must be divisible by 2^{len(self.encoder_channels)}")
        if len(self.decoder_channels) != len(self.encoder_channels):
            raise ValueError("the decoder needs one upsampling block per encoder pooling stage")
        if self.width <= 0 or self.latent_dim <= 0 or self.hyper_latent_dim <= 0:
            raise ValueError("width, latent_dim and hyper_latent_dim must be positive")

    def scaled(self, channels: int) -> int:
        """A channel count after the width multiplier (at least 1)."""
        return max(1, round(channels * self.width))

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return config_from_dict(cls, data)


def config_to_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict; unknown keys are an error (they mean a different version)."""
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)
