"""Training loop for the VHP-FMVAE: resumable bit for bit, logged, checkpointed atomically.

Files in ``out_dir``: ``checkpoint.safetensors`` (model, Adam state, RNG states; the rest as JSON in
the safetensors metadata, so nothing is pickled), ``log.csv`` (one row per ``log_every`` steps) and,
when training finishes, ``weights.safetensors`` + ``weights.json`` (see :mod:`.weights`).
``.lock`` is held (flock) while a run trains, so two trainings cannot share a folder.

Checkpoints are written only between steps: every ``checkpoint_every`` steps, after
``checkpoint_minutes`` of wall time, and when SIGINT (Ctrl-C) or SIGTERM arrives (the step under
way finishes first; :class:`TrainingInterrupted` is raised after the checkpoint). A second signal
stops at once, keeping the previous checkpoint. Temporary files a killed run left are deleted at
the next start.

Determinism: batch ``i`` of epoch ``e`` is slice ``i`` of a permutation drawn from a generator seeded
with ``seed * 1_000_003 + e``; every other random draw (reparameterisation, importance samples,
mixup, probes, augmentation) uses torch's global generator, whose state (with numpy's and Python's)
is checkpointed. The tracklet batch of step ``t`` (``tracklet_weight`` > 0) is drawn by numpy's
generator seeded with ``(seed, t)`` alone. A run resumed after kill -9 therefore repeats the
uninterrupted run exactly on CPU.

Tracklet batches: ``tracklet_pairs_per_batch`` distinct tracklets (crops with ``track_id`` >= 0,
grouped by sequence and id), two crops each at least ``tracklet_min_gap`` frames apart, augmented
like reconstruction batches; drawn in groups that share a frame (``tracklet_draw``), the other
tracklets of the batch (or only those sharing a frame: ``tracklet_negatives``) the negatives.
Tracklets spanning fewer frames cannot give a pair and are never drawn.
Mined tracklets (``fmtrack crops --source tracklets``) keep this label-free; ground-truth ids
(``--source gt``) would make the term supervised, an upper bound for ablations only.

Several processes (``shard``, see :mod:`.distributed`): ``batch_size`` is per process, a step's
batch the ``world_size * batch_size`` crops a one-process run with that batch would take, each rank
its block; rank 0 alone holds the lock and writes log, checkpoints and weights (a checkpoint
records ``world_size`` when it is above 1, and resumes only with as many processes). A signal to any
rank stops all of them after the same step. ``accumulate`` = K computes each process's block as K
micro-batches, the ranks of a run on K times the processes (:class:`.distributed.MicroBatches`).

Augmentation (defaults in TrainConfig): random horizontal flip on (pedestrians are left-right
symmetric; identity cues are not), shifts and colour jitter off (colour is the main appearance cue
a label-free descriptor has; jittering it would teach invariance to what tells people apart).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import math
import platform
import random
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..io import InputError, InputWarning, atomic_path, atomic_write, remove_stale_temporaries
from ..model.config import ModelConfig
from ..model.device import autocast_context, resolve_device
from ..model.network import FMVAE
from ..model.normalise import normalise_crops
from ..model.weights import WeightsInfo, save_weights
from .config import TrainConfig
from .crops import CropSet, channel_statistics, load_crops
from .distributed import MicroBatches, MicroShard, ObjectiveModule, Shard, check_divisible
from .objective import BetaController, ObjectiveTerms, objective

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.csv"
WEIGHTS = "weights.safetensors"
LOCK = ".lock"
RUN_FILES = (CHECKPOINT, LOG, WEIGHTS, "weights.json")
LOG_COLUMNS = ["step", "epoch", "initial_phase", "C", "C_ema", "F", "beta", "c2", "R", "tracklet", "loss",
               "crops_per_s", "elapsed_s"]
INT_COLUMNS = ("step", "epoch", "initial_phase")
# Settings that change when checkpoints are written, or how far a run goes, but not its weights.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "checkpoint_minutes", "log_every")


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training between two steps, after a checkpoint at ``step``."""

    def __init__(self, signum: int, step: int, out_dir: Path):
        self.signum, self.step, self.out_dir = signum, step, out_dir
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
        super().__init__(f"{self.signal_name} at step {step}; checkpoint saved in {out_dir}")


class Trainer:
    """One training run in ``out_dir``; ``run()`` trains until ``train_config.steps``."""

    def __init__(self, crops_path: str | Path, train_config: TrainConfig, model_config: ModelConfig,
                 out_dir: str | Path, resume: bool = False, progress: bool = True, overwrite: bool = False,
                 preset: str | None = None, shard: Shard | None = None):
        """``resume``: continue the checkpoint in ``out_dir`` (configs must match it but for
        :data:`RESUMABLE_CHANGES`, and the crops file must be the one it trained on). Without it,
        a folder holding a run is an error unless ``overwrite`` (its run files are deleted when
        :meth:`run` starts). ``preset``: the preset's name, recorded in checkpoints. ``shard``: this
        process's rank in a run of several (its process group joined; see :mod:`.distributed`)."""
        self.shard = shard or Shard()
        if self.shard.distributed or train_config.accumulate > 1:
            check_divisible(self.shard, train_config.regulariser_points,
                            train_config.tracklet_pairs_per_batch if train_config.tracklet_weight > 0 else None,
                            train_config.accumulate)
        self.out_dir = Path(out_dir)
        self.crops_path = Path(crops_path)
        self.progress = progress
        self.overwrite = overwrite and not resume
        self.preset = preset
        if not resume and not overwrite:
            held = [name for name in (CHECKPOINT, WEIGHTS) if (self.out_dir / name).is_file()]
            if held:
                raise InputError(self.out_dir, f"holds a training run ({held[0]}): --resume continues it, "
                                               "--overwrite starts it over, or choose a new --out folder")
        self.crops = load_crops(self.crops_path, model_config.image_size)
        self.crops_sha256 = file_sha256(self.crops_path)
        self.global_batch = train_config.batch_size * self.shard.world_size
        if len(self.crops) < self.global_batch:
            raise InputError(self.crops_path, f"{len(self.crops)} crops, fewer than one batch of "
                                              f"{self.global_batch}")
        self.train_config, self.model_config = train_config, model_config
        self.device = resolve_device(train_config.device)
        if self.shard.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.shard.local_rank)
        if train_config.accumulate > 1 and self.device.type != "cpu":
            raise ValueError(f"accumulate {train_config.accumulate} needs device cpu, not {self.device.type} "
                             "(its micro-batches take turns on the CPU's generator and autograd threads)")
        self.mean, self.std = channel_statistics(self.crops.images)
        self.images = torch.from_numpy(self.crops.images)
        self.batches_per_epoch = len(self.crops) // self.global_batch
        self.step = 0
        self.elapsed_s = 0.0
        self.log_rows: list[dict] = []
        self._epoch_order: tuple[int, torch.Tensor] | None = None
        self.tracklets: list[np.ndarray] = []
        if train_config.tracklet_weight > 0:
            self.tracklets = tracklet_groups(self.crops, train_config.tracklet_min_gap)
            self.shares_frame = shared_frames(self.crops, self.tracklets)
            if (self.crops.source[self.crops.track_id >= 0] == "gt").any():
                warnings.warn(InputWarning(f"{self.crops_path}: the tracklet term pairs crops by ground-truth "
                                           "identity (crops --source gt): this model is trained with labels, not "
                                           "label-free (recorded in its sidecar as crop_sources)"), stacklevel=2)
            if len(self.tracklets) < train_config.tracklet_pairs_per_batch:
                raise InputError(self.crops_path, f"{len(self.tracklets)} tracklets span "
                                 f"{train_config.tracklet_min_gap}+ frames (tracklet_min_gap), fewer than "
                                 f"tracklet_pairs_per_batch={train_config.tracklet_pairs_per_batch}")
        if not resume:
            _seed_everything(train_config.seed)
        self.model = FMVAE(model_config).to(self.device)
        if train_config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.learning_rate)
        self.controller = BetaController.from_config(train_config)
        if resume:
            self._load_checkpoint()
        self._ddp: torch.nn.Module | None = None
        self._micro: MicroBatches | None = None
        if train_config.accumulate > 1:
            # Gradients are summed over micro-batches here and over processes by all-reduce.
            self._micro = MicroBatches(self.shard, train_config.accumulate)
        elif self.shard.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # Without reconstruction the decoder and prior get no gradient.
            self._ddp = DistributedDataParallel(
                ObjectiveModule(self.model), device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=not train_config.reconstruction)

    # -- data -----------------------------------------------------------------------------------
    def batch_indices(self, step: int) -> torch.Tensor:
        """Crop indices of ``step``'s batch (all ranks'): a slice of the seeded permutation of its epoch."""
        epoch, position = divmod(step, self.batches_per_epoch)
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            generator = torch.Generator().manual_seed(self.train_config.seed * 1_000_003 + epoch)
            self._epoch_order = (epoch, torch.randperm(len(self.crops), generator=generator))
        size = self.global_batch
        return self._epoch_order[1][position * size:(position + 1) * size]

    def batch(self, step: int) -> torch.Tensor:
        """(B, 3, S, S) normalised, augmented crops of ``step`` (this rank's block)."""
        indices = self.batch_indices(step)
        if not self.shard.distributed:
            images = normalise_crops(self.images[indices], self.mean, self.std, self.device)
            return augment(images, self.train_config, self.mean, self.std)
        rows = self.shard.rows(len(indices))
        images = normalise_crops(self.images[indices[rows]], self.mean, self.std, self.device)
        return augment(images, self.train_config, self.mean, self.std, of=len(indices), rows=rows)

    def tracklet_indices(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(2P,) crop indices of ``step``'s tracklet batch (rows i and P + i are tracklet i's pair)
        and its (P, P) bool negatives (see :func:`.objective.tracklet_infonce`)."""
        config = self.train_config
        rng = np.random.default_rng((config.seed, step))
        chosen = self._draw_tracklets(rng)
        gap = config.tracklet_min_gap
        first, second = [], []
        for rows in (self.tracklets[i] for i in chosen):
            frames = self.crops.frame[rows]
            # An anchor needs a partner gap frames away; frames are sorted, so the ends decide.
            anchor = rng.choice(np.flatnonzero((frames - frames[0] >= gap) | (frames[-1] - frames >= gap)))
            partner = rng.choice(np.flatnonzero(np.abs(frames - frames[anchor]) >= gap))
            first.append(rows[anchor])
            second.append(rows[partner])
        if config.tracklet_negatives == "shared-frame":
            negatives = self.shares_frame[np.ix_(chosen, chosen)]
        else:
            negatives = ~np.eye(len(chosen), dtype=bool)
        return torch.from_numpy(np.asarray(first + second, dtype=np.int64)), torch.from_numpy(negatives)

    def _draw_tracklets(self, rng: np.random.Generator) -> np.ndarray:
        """(P,) distinct tracklet indices: uniform, or ("shared-frame" draw) groups: a random
        tracklet, then the not yet drawn ones sharing a frame with it, in random order, until P."""
        count = self.train_config.tracklet_pairs_per_batch
        if self.train_config.tracklet_draw == "uniform":
            return rng.choice(len(self.tracklets), count, replace=False)
        drawn = np.zeros(len(self.tracklets), dtype=bool)
        chosen: list[int] = []
        for seed in rng.permutation(len(self.tracklets)):
            if len(chosen) == count:
                break
            if drawn[seed]:
                continue
            group = np.concatenate([[seed], rng.permutation(np.flatnonzero(self.shares_frame[seed] & ~drawn))])
            group = group[:count - len(chosen)]
            drawn[group] = True
            chosen.extend(int(i) for i in group)
        return np.asarray(chosen, dtype=np.int64)

    def tracklet_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(2P, 3, S, S) normalised, augmented crop pairs of ``step`` and their (P, P) negatives;
        see :meth:`tracklet_indices`. With several ranks, this rank's block of n = P / world_size
        tracklets: (2n, 3, S, S), rows i and n + i a pair; the negatives stay (P, P)."""
        indices, negatives = self.tracklet_indices(step)
        if not self.shard.distributed:
            images = normalise_crops(self.images[indices], self.mean, self.std, self.device)
            return augment(images, self.train_config, self.mean, self.std), negatives.to(self.device)
        count = len(negatives)
        block = torch.arange(count)[self.shard.rows(count)]
        rows = torch.cat([block, count + block])
        images = normalise_crops(self.images[indices[rows]], self.mean, self.std, self.device)
        return (augment(images, self.train_config, self.mean, self.std, of=len(indices), rows=rows),
                negatives.to(self.device))

    # -- training -------------------------------------------------------------------------------
    def train_step(self) -> dict:
        """One optimiser step; returns the logged quantities of this batch."""
        config = self.train_config
        self.model.train()
        images = self.batch(self.step) if config.reconstruction else None
        tracklet_images, tracklet_negatives = (self.tracklet_batch(self.step) if config.tracklet_weight > 0
                                               else (None, None))
        if config.channels_last:
            images, tracklet_images = (None if x is None else x.contiguous(memory_format=torch.channels_last)
                                       for x in (images, tracklet_images))
        beta = self.controller.beta
        regularise = self.controller.ramp(config.eta_warmup_steps)
        self.optimizer.zero_grad(set_to_none=True)
        if self._micro is not None:
            terms = self._accumulate(images, beta, regularise, tracklet_images, tracklet_negatives)
        else:
            with autocast_context(self.device, config.precision):
                if self._ddp is None:
                    terms = objective(self.model, images, beta, config, regularise=regularise,
                                      tracklet_images=tracklet_images, tracklet_negatives=tracklet_negatives)
                else:
                    terms = ObjectiveTerms(*self._ddp(images, beta, config, regularise=regularise,
                                                      tracklet_images=tracklet_images,
                                                      tracklet_negatives=tracklet_negatives, shard=self.shard))
            terms.loss.backward()
        if self.controller.initial_phase:
            # The prior nets wait for the constraint (as R does, see objective): a None grad makes
            # Adam skip them entirely.
            for parameter in self.model.prior.parameters():
                parameter.grad = None
        self.optimizer.step()
        if self.shard.distributed:
            # C, F and the loss are this rank's: their mean over ranks is the whole batch's.
            means = self.shard.mean(torch.stack([terms.reconstruction_error, terms.kl_bound, terms.loss.detach()]))
            terms.reconstruction_error, terms.kl_bound, terms.loss = means.unbind()
        initial_phase = self.controller.initial_phase
        if config.reconstruction:
            self.controller.update(float(terms.reconstruction_error))
        self.step += 1
        constraint_ema = self.controller.constraint_ema
        return {"step": self.step, "epoch": (self.step - 1) // self.batches_per_epoch,
                "initial_phase": int(initial_phase), "C": float(terms.reconstruction_error),
                "C_ema": math.nan if constraint_ema is None else constraint_ema, "F": float(terms.kl_bound),
                "beta": beta, "c2": float(terms.metric_scale), "R": float(terms.flatness),
                "tracklet": float(terms.tracklet), "loss": float(terms.loss.detach())}

    def _accumulate(self, images: torch.Tensor | None, beta: float, regularise: float,
                    tracklet_images: torch.Tensor | None, tracklet_negatives: torch.Tensor | None) -> ObjectiveTerms:
        """The objective and gradient of this process's block as ``accumulate`` micro-batches of
        rows (see :class:`.distributed.MicroBatches`); sets each parameter's ``grad`` to the sum over
        micro-batches (and processes) of its gradient / (micro-batches * processes), the order
        DistributedDataParallel sums in. Returns C, F and the loss averaged over the micro-batches."""
        config, count = self.train_config, self.train_config.accumulate

        def micro_step(shard: MicroShard) -> tuple[torch.Tensor, ObjectiveTerms]:
            micro_images = None
            if images is not None:
                share = len(images) // count
                micro_images = images[shard.micro * share:(shard.micro + 1) * share].clone()
            micro_tracklets = None
            if tracklet_images is not None:
                pairs = len(tracklet_images) // 2
                block = torch.arange(shard.micro * pairs // count, (shard.micro + 1) * pairs // count)
                micro_tracklets = tracklet_images[torch.cat([block, pairs + block])]
            with autocast_context(self.device, config.precision):  # autocast is per thread
                terms = objective(self.model, micro_images, beta, config, regularise=regularise,
                                  tracklet_images=micro_tracklets, tracklet_negatives=tracklet_negatives, shard=shard)
            return terms.loss, terms

        # Only the terms over the whole batch gather across micro-batches.
        gathers = config.tracklet_weight > 0 or (config.reconstruction and config.eta > 0 and regularise > 0)
        results = self._micro.backward(micro_step, self.model.parameters(), gathers)
        # The micro-batches' C, F and loss summed in order, as an all-reduce over ranks sums them.
        total = torch.stack([results[0].reconstruction_error, results[0].kl_bound, results[0].loss.detach()])
        for terms in results[1:]:
            total = total + torch.stack([terms.reconstruction_error, terms.kl_bound, terms.loss.detach()])
        terms = results[0]
        terms.reconstruction_error, terms.kl_bound, terms.loss = (total / count).unbind()
        return terms

    def run(self, stop_after: int | None = None) -> Path:
        """Train to ``train_config.steps`` (or stop once ``stop_after`` steps are done in total).

        Returns the exported weights path when training is complete, else the checkpoint path.
        Raises :class:`TrainingInterrupted` after checkpointing when SIGINT or SIGTERM arrives
        (handlers are installed only when called from the main thread), and InputError when
        another process trains in ``out_dir``.
        """
        config = self.train_config
        last = config.steps if stop_after is None else min(stop_after, config.steps)
        writer = self.shard.rank == 0
        start = self.step
        with run_lock(self.out_dir) if writer else contextlib.nullcontext(), _StopSignals() as stop:
            if writer:
                self._prepare_folder()
            # The other ranks must not start before rank 0 holds the folder (or has failed to).
            self.shard.barrier()
            if self.progress and writer and self.step == 0:
                tracklets = f", {len(self.tracklets)} tracklets for the tracklet term" if self.tracklets else ""
                print(f"training on {len(self.crops)} crops from {self.crops_path}{tracklets}")
            bar = tqdm(total=config.steps, initial=self.step, unit="step", disable=not (self.progress and writer),
                       desc="train")
            window_start, window_steps = time.perf_counter(), 0
            last_checkpoint = time.monotonic()
            try:
                while self.step < last:
                    row = self.train_step()
                    window_steps += 1
                    bar.update(1)
                    # Every rank stops after the same step, whichever got the signal.
                    signum = self.shard.maximum(stop.signum or 0)
                    stopping = signum != 0
                    if self.step % config.log_every == 0 or self.step == last or stopping:
                        now = time.perf_counter()
                        self.elapsed_s += now - window_start
                        row["crops_per_s"] = window_steps * self.global_batch / max(now - window_start, 1e-9)
                        row["elapsed_s"] = self.elapsed_s
                        self.log_rows.append(row)
                        if writer:
                            self._write_log()
                        bar.set_postfix(C=f"{row['C_ema']:.3f}", beta=f"{row['beta']:.2e}", c2=f"{row['c2']:.3g}")
                        window_start, window_steps = time.perf_counter(), 0
                    if stopping:
                        if writer:
                            self.save_checkpoint()
                        self.shard.barrier()  # no rank exits (ending the others) before the checkpoint is written
                        raise TrainingInterrupted(signum, self.step, self.out_dir)
                    if writer and (self.step % config.checkpoint_every == 0
                                   or time.monotonic() - last_checkpoint >= 60 * config.checkpoint_minutes):
                        self.save_checkpoint()
                        last_checkpoint = time.monotonic()
            finally:
                bar.close()
                if self._micro is not None:
                    self._micro.close()
            if not writer:
                self.shard.barrier()
                return self.out_dir / (WEIGHTS if self.step >= config.steps else CHECKPOINT)
            if self.step == start and self.step >= config.steps and (self.out_dir / WEIGHTS).is_file():
                # A finished run resumed: nothing was trained, so its weights and their sidecar (with
                # any thresholds `fmtrack calibrate --write` stored there) stay as they are.
                self.shard.barrier()
                return self.out_dir / WEIGHTS
            checkpoint = self.save_checkpoint()
            path = self.export_weights() if self.step >= config.steps else checkpoint
            if (self.step >= config.steps and self.controller.initial_phase and config.eta > 0
                    and self.controller.constraint_ema is not None):  # None: no reconstruction term
                warnings.warn(InputWarning(f"{path}: training ended in its initial phase (reconstruction error "
                                           f"{self.controller.constraint_ema:.3g} still above kappa^2 "
                                           f"{config.kappa ** 2:.3g}), so the flatness term never started: "
                                           "train longer (--steps, --resume continues)"), stacklevel=2)
            self.shard.barrier()
            return path

    def _prepare_folder(self) -> None:
        """Under the lock: remove temporary files a killed run left, and with ``overwrite`` the
        previous run's files."""
        for name in RUN_FILES:  # no other writer: the lock is held
            remove_stale_temporaries(self.out_dir / name)
        if self.overwrite:
            for name in RUN_FILES:
                (self.out_dir / name).unlink(missing_ok=True)
            self.overwrite = False

    # -- persistence ----------------------------------------------------------------------------
    def _write_log(self) -> None:
        buffer = io.StringIO()
        # Rows resumed from a log that predates a column get "nan" there, which reads back as a float.
        writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, restval="nan")
        writer.writeheader()
        writer.writerows(self.log_rows)
        with atomic_write(self.out_dir / LOG) as fh:
            fh.write(buffer.getvalue())

    def save_checkpoint(self) -> Path:
        """Model, optimiser, beta/EMA and RNG states at ``self.step``, in one atomic file."""
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        optim = self.optimizer.state_dict()
        for index, state in optim["state"].items():
            for key, value in state.items():
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        numpy_state = np.random.get_state()
        tensors["rng.numpy"] = torch.from_numpy(numpy_state[1].astype(np.int64))
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        python_state = random.getstate()
        state = {"step": self.step, "elapsed_s": self.elapsed_s, "controller": self.controller.state_dict(),
                 "train_config": self.train_config.to_dict(), "model_config": self.model_config.to_dict(),
                 "crops_path": str(self.crops_path), "crops_sha256": self.crops_sha256, "preset": self.preset,
                 "param_groups": optim["param_groups"],
                 "numpy_rng": [numpy_state[0], *numpy_state[2:]],
                 "python_rng": [python_state[0], list(python_state[1]), python_state[2]]}
        if self.shard.distributed:
            state["world_size"] = self.shard.world_size
        path = self.out_dir / CHECKPOINT
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"state": json.dumps(state)})
        return path

    def _load_checkpoint(self) -> None:
        path = self.out_dir / CHECKPOINT
        state = read_checkpoint_state(self.out_dir)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise InputError(path, f"not a readable checkpoint ({err})") from None
        if state.get("crops_sha256") not in (None, self.crops_sha256):
            raise InputError(self.crops_path, f"is not the crops file this run trained on ({state.get('crops_path')}, "
                                              f"SHA-256 {str(state['crops_sha256'])[:12]}; this file's is "
                                              f"{self.crops_sha256[:12]})")
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.shard.world_size:
            raise InputError(path, f"was written by a run on {saved_world} process(es); resume it with --nproc "
                                   f"{saved_world} (the batch is spread over the processes, so only as many "
                                   f"continue it bit for bit)")
        if self.preset is None:
            self.preset = state.get("preset")
        # Keys a checkpoint predates take their defaults, the values that run trained with.
        for name, saved, given in (("model", {**ModelConfig().to_dict(), **state["model_config"]},
                                    self.model_config.to_dict()),
                                   ("training", {**TrainConfig().to_dict(), **state["train_config"]},
                                    self.train_config.to_dict())):
            changed = sorted(k for k in saved if k not in RESUMABLE_CHANGES and saved[k] != given.get(k))
            if changed:
                raise InputError(path, f"checkpoint's {name} config differs in {', '.join(changed)}")
        try:
            self._restore(state, tensors)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
            raise InputError(path, f"checkpoint does not fit this run ({type(err).__name__}: {err})") from None
        if not 0 <= self.step <= self.train_config.steps:
            raise InputError(path, f"is at step {self.step}, outside this run's 0 to --steps {self.train_config.steps} "
                                   f"(a run is resumed to as many steps as it has done, or more)")
        self.log_rows = [row for row in read_log(self.out_dir / LOG) if row["step"] <= self.step]

    def _restore(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        optim_state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                optim_state.setdefault(int(index), {})[name] = value
        self.optimizer.load_state_dict({"state": optim_state, "param_groups": state["param_groups"]})
        self.controller.load_state_dict(state["controller"])
        self.step, self.elapsed_s = int(state["step"]), float(state["elapsed_s"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        kind, *rest = state["numpy_rng"]
        np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), *rest))
        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))

    def export_weights(self, path: str | Path | None = None, fp16: bool = False) -> Path:
        """Write weights + sidecar (default ``out_dir/weights.safetensors``) with provenance."""
        if self.train_config.channels_last:
            self.model = self.model.to(memory_format=torch.contiguous_format)
        last = self.log_rows[-1] if self.log_rows else {}
        c2 = last.get("c2")
        provenance = {"train_config": self.train_config.to_dict(), "crops_path": str(self.crops_path),
                      "num_crops": len(self.crops), "crop_sources": sorted(set(self.crops.source.tolist())),
                      "steps": self.step,
                      "final_C_ema": self.controller.constraint_ema, "final_beta": self.controller.beta,
                      # None, not NaN (which strict JSON has no word for), before c^2 is first estimated
                      "final_c2": c2 if c2 is not None and math.isfinite(c2) else None,
                      "initial_phase_ended": not self.controller.initial_phase,
                      "train_time_s": self.elapsed_s, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "hardware": hardware_description(self.device), "torch": torch.__version__}
        info = WeightsInfo(self.model_config, self.mean, self.std, provenance)
        return save_weights(self.model, path or self.out_dir / WEIGHTS, info, fp16=fp16)


def augment(images: torch.Tensor, config: TrainConfig, mean: list[float], std: list[float],
            of: int | None = None, rows: slice | torch.Tensor | None = None) -> torch.Tensor:
    """Random flips, shifts (replicate padding) and per-channel gains of normalised crops (B, 3, S, S).

    ``of``, ``rows``: the crops are rows ``rows`` of a batch of ``of`` spread over several processes;
    the random numbers are drawn for all ``of`` (so every process draws the same) and these rows kept.
    """
    batch = len(images)
    total = batch if of is None else of

    def pick(values: torch.Tensor) -> torch.Tensor:
        return values if of is None else values[rows]

    if config.hflip:
        flip = pick(torch.rand(total, device=images.device)) < 0.5
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    if config.shift_pixels > 0:
        pad = config.shift_pixels
        size = images.shape[-1]
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad), mode="replicate")
        offsets = pick(torch.randint(0, 2 * pad + 1, (total, 2))).tolist()
        images = torch.stack([padded[i, :, dy:dy + size, dx:dx + size] for i, (dy, dx) in enumerate(offsets)])
    if config.colour_jitter > 0:
        # A gain g on raw pixels p is g*(p - mu)/sigma + (g - 1)*mu/sigma in normalised units.
        gain = 1 + (pick(torch.rand(total, 3, 1, 1, device=images.device)) * 2 - 1) * config.colour_jitter
        shift = torch.tensor(mean, device=images.device).view(1, 3, 1, 1) / torch.tensor(std, device=images.device).view(1, 3, 1, 1)
        images = gain * images + (gain - 1) * shift
    return images


def tracklet_groups(crops: CropSet, min_gap: int) -> list[np.ndarray]:
    """Crop indices of each tracklet (sequence and ``track_id`` >= 0) spanning ``min_gap``+ frames,
    each sorted by frame; tracklets in order of (sequence, id)."""
    sequence = np.unique(crops.sequence, return_inverse=True)[1]
    labelled = np.flatnonzero(crops.track_id >= 0)
    labelled = labelled[np.lexsort((crops.frame[labelled], crops.track_id[labelled], sequence[labelled]))]
    new_tracklet = (np.diff(crops.track_id[labelled]) != 0) | (np.diff(sequence[labelled]) != 0)
    groups = np.split(labelled, np.flatnonzero(new_tracklet) + 1)
    return [rows for rows in groups if len(rows) and crops.frame[rows[-1]] - crops.frame[rows[0]] >= min_gap]


def shared_frames(crops: CropSet, tracklets: list[np.ndarray]) -> np.ndarray:
    """(T, T) bool: tracklets ``i`` and ``j`` (crop indices sorted by frame) share a frame of one
    sequence, so they are surely two people. False on the diagonal."""
    first = np.array([crops.frame[rows[0]] for rows in tracklets])
    last = np.array([crops.frame[rows[-1]] for rows in tracklets])
    sequence = np.array([crops.sequence[rows[0]] for rows in tracklets])
    # Tracklets link consecutive frames, so overlapping spans share a frame.
    shared = (first[:, None] <= last[None, :]) & (first[None, :] <= last[:, None]) & (sequence[:, None] == sequence[None, :])
    np.fill_diagonal(shared, False)
    return shared


def hardware_description(device: torch.device) -> str:
    """A one-line description of where training ran."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def read_log(path: Path) -> list[dict[str, Any]]:
    """Rows of a run's ``log.csv`` (none if it is absent): step, epoch and initial_phase as int,
    the rest as float. InputError naming the file and line for anything else."""
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, encoding="utf8", newline="") as fh:
            reader = csv.DictReader(fh)
            if "step" not in (reader.fieldnames or []):
                raise InputError(path, "not a training log: no 'step' column", line=1)
            for line, row in enumerate(reader, start=2):
                try:
                    # int(float()) also reads "5.0", which older versions wrote on resume.
                    rows.append({k: int(float(v)) if k in INT_COLUMNS else float(v)
                                 for k, v in row.items() if k in LOG_COLUMNS})
                except (TypeError, ValueError, OverflowError) as err:
                    raise InputError(path, f"unreadable log row ({err})", line=line) from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"unreadable training log ({err})") from None
    return rows


def read_checkpoint_state(out_dir: str | Path) -> dict[str, Any]:
    """The JSON state in the metadata of ``out_dir``'s checkpoint (step, configs, crops file...);
    InputError naming the checkpoint when there is none or it is unreadable."""
    path = Path(out_dir) / CHECKPOINT
    if not path.is_file():
        if _lock_held(Path(out_dir)):  # a run still before its first checkpoint
            raise InputError(out_dir, "another training is running in this folder (it holds .lock) and has "
                                      "written no checkpoint yet")
        raise InputError(path, "no checkpoint to resume from")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
    except (SafetensorError, OSError) as err:
        raise InputError(path, f"not a readable checkpoint ({err})") from None
    if not metadata or "state" not in metadata:
        raise InputError(path, "no training state in its metadata: not a checkpoint of fmtrack train")
    try:
        state = json.loads(metadata["state"])
    except json.JSONDecodeError as err:
        raise InputError(path, f"malformed training state in its metadata ({err})") from None
    missing = [key for key in ("step", "elapsed_s", "controller", "train_config", "model_config", "param_groups",
                               "numpy_rng", "python_rng") if not isinstance(state, dict) or key not in state]
    if missing:
        raise InputError(path, f"training state in its metadata lacks {', '.join(missing)}")
    if not isinstance(state["train_config"], dict) or not isinstance(state["model_config"], dict):
        raise InputError(path, "training state's configs are not JSON objects")
    for name, kind in (("train_config", TrainConfig), ("model_config", ModelConfig)):
        try:  # keys the checkpoint predates take their defaults, as when it is resumed
            kind.from_dict({**kind().to_dict(), **state[name]})
        except (TypeError, ValueError) as err:
            raise InputError(path, f"training state's {name} does not load ({err})") from None
    return state


def resumed_configs(state: dict[str, Any], preset: str | None, train_overrides: dict[str, Any],
                    model_overrides: dict[str, Any]) -> tuple[TrainConfig, ModelConfig]:
    """The configuration a resumed run continues with: the checkpoint's (``state``, see
    :func:`read_checkpoint_state`), with fields its version predates at their defaults. Overrides
    may change only :data:`RESUMABLE_CHANGES`; any other that differs, or a ``preset`` other than
    the one recorded, is a ValueError naming the field and both values."""
    if preset is not None and state.get("preset") not in (None, preset):
        raise ValueError(f"the run in this folder was started with preset {state['preset']!r}, not {preset!r}")
    configs = []
    for cls, saved, overrides in ((TrainConfig, state["train_config"], train_overrides),
                                  (ModelConfig, state["model_config"], model_overrides)):
        values = {**cls().to_dict(), **saved}
        for field, value in overrides.items():
            if field not in RESUMABLE_CHANGES and value != values[field]:
                raise ValueError(f"{field} {value!r} differs from the checkpoint's {values[field]!r} "
                                 f"(leave it out to continue the run as it was started)")
        configs.append(cls.from_dict({**values, **overrides}))
    return configs[0], configs[1]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``out_dir/.lock``; InputError at once if another process holds it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fh = open(out_dir / LOCK, "a")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(out_dir, "another training is running in this folder (it holds .lock)") from None
        yield
    finally:
        fh.close()  # closing releases the lock


def _lock_held(out_dir: Path) -> bool:
    """Whether another process holds ``out_dir/.lock`` now (probed without waiting or creating it)."""
    if not (out_dir / LOCK).is_file():
        return False
    with open(out_dir / LOCK, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False  # closing released the probe's lock


class _StopSignals:
    """While active (main thread only), SIGINT and SIGTERM set ``signum`` instead of stopping the
    process, so the loop can finish its step and checkpoint; a second one raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def train(crops_path: str | Path, train_config: TrainConfig, model_config: ModelConfig, out_dir: str | Path,
          resume: bool = False, progress: bool = True, overwrite: bool = False, preset: str | None = None,
          shard: Shard | None = None) -> Path:
    """Train (or resume) a run in ``out_dir``; returns the exported ``weights.safetensors`` path.
    See :class:`Trainer` for ``overwrite``, ``preset`` and ``shard``."""
    return Trainer(crops_path, train_config, model_config, out_dir, resume=resume, progress=progress,
                   overwrite=overwrite, preset=preset, shard=shard).run()


def train_processes(nproc: int, crops_path: str | Path, train_config: TrainConfig, model_config: ModelConfig,
                    out_dir: str | Path, resume: bool = False, progress: bool = True, overwrite: bool = False,
                    preset: str | None = None) -> Path:
    """:func:`train` on ``nproc`` processes of this machine (DistributedDataParallel; see
    :mod:`.distributed`). ``nproc`` = 1 is :func:`train` itself. Raises :class:`TrainingInterrupted`
    when SIGINT or SIGTERM stopped the run (after rank 0's checkpoint), else the first error a
    process met (InputError and ValueError as raised there)."""
    from .distributed import launch

    if nproc == 1:
        return train(crops_path, train_config, model_config, out_dir, resume, progress, overwrite, preset)
    kwargs = dict(crops_path=crops_path, train_config=train_config, model_config=model_config, out_dir=out_dir,
                  resume=resume, progress=progress, overwrite=overwrite, preset=preset)
    code = launch(nproc, train, kwargs, train_config.device)
    out_dir = Path(out_dir)
    if code:
        raise TrainingInterrupted(code - 128, int(read_checkpoint_state(out_dir)["step"]), out_dir)
    return out_dir / WEIGHTS
