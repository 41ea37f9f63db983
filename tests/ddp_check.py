"""Shared by tests/test_distributed.py: one evaluation of the objective and its gradient, on one
process (the whole batch, at once or as micro-batches) or on each rank of a run (its block,
through DistributedDataParallel), with the same parameters and the same random draws, written to
``out`` for comparison."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from fmtrack.model.config import ModelConfig
from fmtrack.model.network import FMVAE
from fmtrack.training.config import TrainConfig
from fmtrack.training.distributed import MicroBatches, ObjectiveModule, Shard
from fmtrack.training.objective import objective

TERMS = ("loss", "C", "F", "R", "c2", "tracklet")


def objective_and_gradient(shard: Shard, train_config: TrainConfig, model_config: ModelConfig, batch: int,
                           beta: float, out: str, accumulate: int = 1) -> None:
    """``batch`` crops and ``train_config.tracklet_pairs_per_batch`` pairs in all; rank 0 (or the
    single process) writes ``out``: the whole batch's terms and the averaged parameter gradients.
    ``accumulate`` > 1: each process's block as that many micro-batches (:class:`MicroBatches`)."""
    torch.manual_seed(0)
    model = FMVAE(model_config)
    generator = torch.Generator().manual_seed(1)
    size = model_config.image_size
    pairs = train_config.tracklet_pairs_per_batch
    images = torch.randn((batch, 3, size, size), generator=generator)
    tracklets = torch.randn((2 * pairs, 3, size, size), generator=generator)
    negatives = torch.rand((pairs, pairs), generator=generator) < 0.7
    negatives.fill_diagonal_(False)
    torch.manual_seed(2)  # the objective's own draws: reparameterisation, importance samples, mixup, probes
    if accumulate > 1:
        def micro_step(micro):
            block = torch.arange(pairs)[micro.rows(pairs)]
            result = objective(model, images[micro.rows(batch)], beta, train_config, regularise=1.0,
                               tracklet_images=tracklets[torch.cat([block, pairs + block])],
                               tracklet_negatives=negatives, shard=micro)
            return result.loss, result

        micro_batches = MicroBatches(shard, accumulate)
        results = micro_batches.backward(micro_step, model.parameters())
        micro_batches.close()
        total = sum(torch.stack([r.loss.detach(), r.reconstruction_error, r.kl_bound]) for r in results) / accumulate
        terms = [*shard.mean(total).unbind(), results[0].flatness, results[0].metric_scale, results[0].tracklet]
    elif shard.distributed:
        block = torch.arange(pairs)[shard.rows(pairs)]
        module = torch.nn.parallel.DistributedDataParallel(ObjectiveModule(model))
        terms = list(module(images[shard.rows(batch)], beta, train_config, regularise=1.0,
                            tracklet_images=tracklets[torch.cat([block, pairs + block])],
                            tracklet_negatives=negatives, shard=shard))
    else:
        result = objective(model, images, beta, train_config, regularise=1.0, tracklet_images=tracklets,
                           tracklet_negatives=negatives)
        terms = [result.loss, result.reconstruction_error, result.kl_bound, result.flatness, result.metric_scale,
                 result.tracklet]
    if accumulate == 1:
        terms[0].backward()
        # C, F and the loss are each rank's own; R, c^2 and L_T already the whole batch's.
        terms[:3] = shard.mean(torch.stack([t.detach() for t in terms[:3]])).unbind()
    if shard.rank == 0:
        tensors = {f"grad.{name}": p.grad for name, p in model.named_parameters()}
        tensors.update({f"term.{name}": t.detach().reshape(1) for name, t in zip(TERMS, terms)})
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(Path(out)))
