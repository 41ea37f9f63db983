"""Training and embedding throughput of the FMVAE (crops/s), with the machine's GEMM rate for scale.

Run ``fmtrack bench training [--full] [--embedding-only]``. Figures are measured in this run on
synthetic 64x64 crops; nothing is asserted. Training uses N_z = 128 at quarter width by default
(``--full`` adds full width, minutes per estimator on 2 CPU cores). The embedding bound assumes
VGG16 at 64x64 costs ~2.5 GFLOP per crop at full width (x width^2 when reduced).

The shipped default model's embedding rate is measured at 1 and 2 torch threads, fp32 and bf16,
on the CPU as found and beside a busy loop per core (what a tracker meets on a loaded machine: with more
threads than free cores, every layer waits for its slowest thread).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

import torch

from ..model.config import ModelConfig
from ..model.device import autocast_context
from ..model.network import Encoder
from ..training.config import TrainConfig
from ..training.crops import save_crops, synthetic_crops
from ..training.trainer import Trainer

VGG16_GFLOP_PER_CROP = 2.5
ESTIMATORS = {"finite_difference": {"jacobian": "finite_difference"},
              "projection_fd": {"jacobian": "projection", "projection_jvp": "finite_difference"},
              "projection_jvp": {"jacobian": "projection", "projection_jvp": "autodiff"}}


def gemm_gflops(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 10,
                device: str = "cpu") -> float:
    """Measured matrix-multiply rate (GFLOP/s) for square ``size`` matrices of ``dtype``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def training_crops_per_second(model_config: ModelConfig, train_config: TrainConfig, steps: int = 3) -> float:
    """Training throughput after one warm-up step, synthetic crops, in a throwaway directory."""
    with tempfile.TemporaryDirectory() as tmp:
        crops = save_crops(synthetic_crops(train_config.batch_size * 2), Path(tmp) / "crops.npz")
        trainer = Trainer(crops, train_config, model_config, tmp, progress=False)
        trainer.controller.initial_phase = False  # measure the full objective, regulariser included
        trainer.train_step()
        _sync(trainer.device.type)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        _sync(trainer.device.type)
        return steps * train_config.batch_size / (time.perf_counter() - start)


@torch.no_grad()
def embedding_crops_per_second(model_config: ModelConfig, precision: str, device: str = "cpu",
                               batch: int = 64, repeats: int = 3) -> float:
    """Encoder throughput (latent means only) with autocast ``precision``, channels_last."""
    torch_device = torch.device(device)
    encoder = Encoder(model_config).to(torch_device, memory_format=torch.channels_last).eval()
    images = torch.randn(batch, 3, 64, 64, device=torch_device).contiguous(memory_format=torch.channels_last)
    with autocast_context(torch_device, precision):
        encoder(images)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            encoder(images)
        _sync(device)
    return repeats * batch / (time.perf_counter() - start)


@contextlib.contextmanager
def cpu_load(processes: int | None = None) -> Iterator[None]:
    """A busy-loop Python process per core (or ``processes``) while the block runs; killed after."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(processes or os.cpu_count() or 1)]
    try:
        time.sleep(0.5)  # let the scheduler spread them
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def shipped_embedding_rates(weights: str | Path | None = None, crops: int = 256,
                            threads: tuple[int, ...] = (1, 2)) -> list[dict[str, object]]:
    """Embedding crops/s (cut crops to latent means, batches of 256) of the shipped default model
    (or ``weights``) per (load, threads, precision), on CPU; rows of a table."""
    from ..embedder.fmvae import FMVAEEmbedder
    from .methods import DEFAULT_MODEL

    weights = Path(weights or DEFAULT_MODEL)
    images = np.random.default_rng(0).integers(0, 256, size=(crops, 64, 64, 3), dtype=np.uint8)
    embedders = {p: FMVAEEmbedder(weights, device="cpu", precision=p, threads=None) for p in ("fp32", "bf16")}
    previous = torch.get_num_threads()
    rows = []
    try:
        for load in ("as found", "busy"):
            with cpu_load() if load == "busy" else contextlib.nullcontext():
                for count in threads:
                    torch.set_num_threads(count)
                    for precision, embedder in embedders.items():
                        embedder.embed_crops(images[:32])  # warm-up: load, first-call kernels
                        start = time.perf_counter()
                        embedder.embed_crops(images)
                        rate = crops / (time.perf_counter() - start)
                        rows.append({"cpu": load, "threads": count, "precision": precision, "crops_per_s": rate})
    finally:
        torch.set_num_threads(previous)
    return rows


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(full_width: bool = False, embedding_only: bool = False) -> dict[str, float]:
    """Measure and print every figure; returns them by name."""
    figures: dict[str, float] = {}
    print(f"shipped default model, embedding on CPU ({os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} before; busy = plus a busy loop per core):")
    for row in shipped_embedding_rates():
        name = f"shipped_{str(row['cpu']).replace(' ', '_')}_{row['threads']}t_{row['precision']}"
        figures[name] = float(row["crops_per_s"])  # type: ignore[arg-type]
        print(f"  {row['cpu']:8s} CPU, {row['threads']} thread(s), {row['precision']}: {figures[name]:7.0f} crops/s")
    if embedding_only:
        return figures
    widths = [0.25, 1.0] if full_width else [0.25]
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        figures[f"gemm_gflops_{name}"] = gemm_gflops(dtype)
        print(f"CPU GEMM {name}: {figures[f'gemm_gflops_{name}']:.0f} GFLOP/s")
    for width in widths:
        model = ModelConfig(width=width)
        for precision in ("fp32", "bf16"):
            rate = embedding_crops_per_second(model, precision)
            bound = figures[f"gemm_gflops_{precision}"] / (VGG16_GFLOP_PER_CROP * width ** 2)
            figures[f"embed_w{width}_{precision}"] = rate
            print(f"embed width {width} {precision}: {rate:.0f} crops/s (GEMM bound {bound:.0f} crops/s)")
        for name, options in ESTIMATORS.items():
            config = dataclasses.replace(TrainConfig(device="cpu", batch_size=32, regulariser_points=8,
                                                     projection_probes=2, precision="bf16"), **options)
            rate = training_crops_per_second(model, config)
            figures[f"train_w{width}_{name}"] = rate
            print(f"train N_z=128 width {width} bf16, {name} (8 mixup points of 32): {rate:.1f} crops/s")
    if torch.cuda.is_available():
        for precision in ("fp32", "bf16", "fp16"):
            rate = embedding_crops_per_second(ModelConfig(), precision, device="cuda", batch=512)
            figures[f"embed_cuda_{precision}"] = rate
            print(f"embed CUDA full width {precision}: {rate:.0f} crops/s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also measure full width (slow on CPU)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    run(full_width=args.full)


if __name__ == "__main__":
    main()
