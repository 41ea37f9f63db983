"""``fmtrack diagnose``: how flat is a trained model's latent space, compared across models.

Encodes a seeded sample of crops with each model, measures the decoder's metric tensor on those
encodings and on mixup points between them (fmtrack.training.diagnostics), prints one table and
writes box plots; a model with a 2-d latent space also gets its magnification-factor map with
equidistance contours around a few encodings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.normalise import normalise_crops
from ..model.weights import load_weights
from .crops import load_crops
from .diagnostic_plots import plot_flatness_boxes, plot_latent_map_2d
from .diagnostics import ModelFlatness, format_flatness_table, latent_map_2d, model_flatness


@torch.no_grad()
def encode_sample(weights_path: str | Path, crops_path: str | Path, n_crops: int, seed: int = 0
                  ) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model (fp32, CPU, eval) and the latent means (n, N_z) of a seeded sample of crops."""
    model, info = load_weights(weights_path, "cpu")
    crops = load_crops(crops_path, info.model_config.image_size)
    order = np.random.default_rng(seed).permutation(len(crops))[:n_crops]
    latents = torch.cat([model.encode(normalise_crops(crops.images[np.sort(order[i:i + 256])], info.mean, info.std))[0]
                         for i in range(0, len(order), 256)])
    return model, latents


def model_labels(weights_paths: list[str | Path]) -> list[str]:
    """A table label per model: its file stem, or ``folder/stem`` where stems repeat (two training
    runs' ``weights.safetensors``); ValueError for one file given twice."""
    paths = [Path(p) for p in weights_paths]
    resolved = [p.resolve() for p in paths]
    twice = next((p for p, r in zip(paths, resolved) if resolved.count(r) > 1), None)
    if twice is not None:
        raise ValueError(f"--weights {twice} is given twice")
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def diagnose(weights_paths: list[str | Path], crops_path: str | Path, out_dir: str | Path,
             n_points: int = 100, n_crops: int = 1000, seed: int = 0, progress: bool = True) -> dict[str, ModelFlatness]:
    """Flatness of each model on ``n_points`` of its encodings of ``n_crops`` sampled crops and as many
    mixup points; prints the table, writes ``flatness.png`` (and ``latent_map_<name>.png``)."""
    if not 1 <= n_points <= n_crops:  # beyond the encodings, only the mixup points would grow (and the time)
        raise ValueError(f"points per model must be 1 to {n_crops} (the crops encoded), got {n_points}")
    out_dir = Path(out_dir)
    results: dict[str, ModelFlatness] = {}
    for path, name in zip(weights_paths, model_labels(weights_paths)):
        model, latents = encode_sample(path, crops_path, n_crops, seed)
        with torch.no_grad():
            results[name] = model_flatness(model.decode, latents, n_points=n_points, n_pairs=n_points,
                                           seed=seed, progress=progress)
            if latents.shape[1] == 2:
                centres = latents[torch.randperm(len(latents), generator=torch.Generator().manual_seed(seed))[:3]]
                plot_latent_map_2d(latent_map_2d(model.decode, latents, centres, progress=progress),
                                   latents.numpy(), out_dir / f"latent_map_{name.replace('/', '_')}.png")
    print(format_flatness_table(results))
    plot_flatness_boxes(results, out_dir / "flatness.png")
    return results
