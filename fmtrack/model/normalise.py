"""The model's input normalisation: uint8 BGR crops to standardised RGB tensors."""

from __future__ import annotations

import numpy as np
import torch


def normalise_crops(images: np.ndarray | torch.Tensor, mean: list[float], std: list[float],
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float32 RGB, standardised per channel, on ``device``."""
    batch = torch.as_tensor(images).to(device)
    batch = batch.flip(-1).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, device=batch.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t
