"""FMVAE appearance descriptor: the 128-d latent mean of q(z|x) of a trained VHP-FMVAE.

Implements the embedder protocol of :mod:`.base`; a whole sequence is embedded with the generic
:func:`fmtrack.embedder.cache.embed_sequence` (``N x (7 + D)`` layout).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..model.crops import cut_crops
from ..model.device import autocast_context, check_threads, resolve_device, resolve_precision, set_threads
from ..model.normalise import normalise_crops
from ..model.weights import WeightsInfo, existing_weights, load_weights, read_weights_info


class FMVAEEmbedder:
    """Latent means of crops cut from a BGR frame.

    Boxes are tlwh pixels, clipped to the image; a box entirely outside it is embedded from the
    nearest one-pixel border strip, so rows always line up with boxes. ``precision`` is the autocast
    dtype ("fp32", "bf16", "fp16" on CUDA, or "auto": bf16 on CUDA and AMX CPUs, else fp32);
    outputs are float32 either way. ``threads``: torch's intra-op threads, set (process-wide) when
    the model loads; the default 1 because on a CPU other processes keep busy, torch's threads wait
    on each other at every layer and embedding slows by an order of magnitude (``fmtrack bench
    training`` measures it); None leaves torch's setting alone. ``identity`` names the descriptor in
    feature caches: a SHA-256 prefix of the tensor bytes, the sidecar's architecture and
    normalisation and the resolved precision, everything that changes the features. The model
    itself is loaded on the first crop to embed, so a run served from the feature cache never builds it.
    """

    needs_image = True

    def __init__(self, weights_path: str | Path, device: str = "auto", batch_size: int = 256,
                 precision: str = "fp32", threads: int | None = 1):
        threads = check_threads(threads)
        self.weights_path = existing_weights(weights_path)
        self.device = resolve_device(device)
        self.info = read_weights_info(self.weights_path)
        self._encoder: torch.nn.Module | None = None
        self.size = self.info.model_config.image_size
        self.dim = self.info.model_config.latent_dim
        self.batch_size = batch_size
        self.precision = resolve_precision(precision, self.device)
        self.threads = threads
        self.identity = descriptor_identity(self.weights_path, self.info, self.precision)

    @property
    def encoder(self) -> torch.nn.Module:
        """The model's encoder, loaded (and checked against the sidecar) on first use."""
        if self._encoder is None:
            set_threads(self.threads)
            self._encoder = load_weights(self.weights_path, self.device)[0].encoder
        return self._encoder

    @torch.no_grad()
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 BGR crops -> (N, dim) float32 latent means."""
        out = np.empty((len(crops), self.dim), np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = normalise_crops(crops[start:start + self.batch_size], self.info.mean, self.info.std, self.device)
            with autocast_context(self.device, self.precision):
                latent_mean, _ = self.encoder(batch)
            out[start:start + len(batch)] = latent_mean.float().cpu().numpy()
        return out

    def embed(self, image: np.ndarray, boxes: np.ndarray, frame: int | None = None) -> np.ndarray:
        """(H, W, 3) uint8 BGR image, (N, 4) tlwh boxes -> (N, dim) float32. ``frame`` is unused."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_crops(cut_crops(image, boxes, (self.size, self.size)))


def descriptor_identity(weights_path: Path, info: WeightsInfo, precision: str) -> str:
    """``fmvae-`` + 16 hex digits of SHA-256 over the tensor file's bytes, the sidecar's model
    config and normalisation, and the autocast precision (bf16 features differ from fp32)."""
    digest = hashlib.sha256(weights_path.read_bytes())
    described = {"model_config": info.model_config.to_dict(), "mean": info.mean, "std": info.std,
                 "precision": precision}
    digest.update(json.dumps(described, sort_keys=True).encode())
    return f"fmvae-{digest.hexdigest()[:16]}"
