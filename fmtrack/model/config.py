"""Architecture of the VHP-FMVAE appearance model (torch-free: read by sidecars and the CLI).

Defaults are the paper's MOT16 configuration (Chen et al., ICML 2020, "Learning Flat Latent
Manifolds with VAEs", VHP-FMVAE on 64x64 pedestrian crops). ``width`` scales every convolution's
channel count for the reduced configurations used on CPU and in tests.
"""

from __future__ import annotations

import dataclasses
import math
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
        for name in ("image_size", "latent_dim", "hyper_latent_dim"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not math.isfinite(self.width):
            raise ValueError(f"width must be a finite number, got {self.width!r}")
        for name in ("encoder_channels", "decoder_channels", "prior_hidden"):
            value = getattr(self, name)
            empty_allowed = name == "prior_hidden"  # () makes the prior's nets linear
            if (not isinstance(value, tuple) or not (value or empty_allowed)
                    or not all(_is_int(c) and c > 0 for c in value)):
                raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def config_to_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict; unknown keys are an error (they mean a different version)."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as err:  # a comparison of a wrongly typed value deep in __post_init__
        raise ValueError(f"{cls.__name__}: wrongly typed value ({err})") from None
