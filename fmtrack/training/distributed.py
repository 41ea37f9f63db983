"""Training on several processes: PyTorch DistributedDataParallel (gloo on CPU, nccl on GPUs).

Each of ``N`` processes (ranks) takes a contiguous block of every step's global batch of
``N * batch_size`` crops (rank ``r`` rows ``r*B .. (r+1)*B - 1``, so the ranks' crops together are the
one-process batch of ``N*B``) and, with the tracklet term, block ``r`` of the step's ``P``
tracklets. Every rank holds the same torch generator state and draws every random tensor at the
global batch's shape, keeping its own rows: augmentation, reparameterisation, importance samples,
mixup and probes are the numbers a one-process run with batch ``N*B`` draws. Terms that are not
sums over crops see the whole batch through a differentiable all-gather (:meth:`Shard.gather`):
mixup pairs latents across ranks, c^2 and R are means over all mixup points, the InfoNCE runs
over all tracklets, and C (driving beta) is averaged over ranks, so every rank takes the same beta
step. Each rank computes those global terms on its block of the mixup points; the gather's
backward sums their gradients over ranks and DDP averages, which gives the one-process gradient.
Only rank 0 writes (lock, log, checkpoints, weights).

Gradient accumulation (``accumulate`` = K > 1, :class:`MicroBatches`): each process computes its
block as K micro-batches, each a rank of a run of ``world_size * K`` ranks (:class:`MicroShard`), so
one process with K micro-batches is the computation K processes do, down to the order of the
gradient sums. The micro-batches run in K threads that take turns, passing the turn at every
gather, each resuming its own torch generator state; a gather concatenates the micro-batches'
pieces (then all-gathers over processes), its backward sums their gradients (then all-reduces).
A step with no term over the whole batch needs no turns: its micro-batches run one after the
other in the calling thread, each freeing its graph before the next (with turns, every micro-batch's
graph lives until the backward, so memory does not fall with K).

Launch: :func:`launch` (``fmtrack train --nproc N``) spawns the ranks on this machine;
``torchrun --nproc-per-node N [--nnodes M ...] -m fmtrack.cli train ...`` sets ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` and :func:`shard_from_environment` joins its process group.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch
import torch.distributed as dist

from ..io import InputError

INTERRUPT_CODES = (128 + signal.SIGINT, 128 + signal.SIGTERM)


@dataclass(frozen=True)
class Shard:
    """This process's place in a run of ``world_size`` processes; ``Shard()`` is a one-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def rows(self, total: int) -> slice:
        """This rank's contiguous block of ``total`` rows (``total`` divisible by ``world_size``)."""
        share = total // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` (n, ...) stacked in rank order, (world_size * n, ...); gradients
        flow back to each rank's piece (summed over the ranks that used it). Identity for one process."""
        if not self.distributed:
            return tensor
        return _AllGather.apply(tensor, self)

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise for this rank's rows of a batch spread over the ranks: drawn at the
        global shape (world_size * n, ...) so all ranks consume the same numbers, then sliced."""
        if not self.distributed:
            return torch.randn_like(like)
        total = len(like) * self.world_size
        noise = torch.randn((total, *like.shape[1:]), dtype=like.dtype, device=like.device)
        return noise[self.rows(total)]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of ``values`` (no gradient)."""
        if not self.distributed:
            return values
        values = values.detach().clone()
        dist.all_reduce(values)
        return values / self.world_size

    def maximum(self, value: int) -> int:
        """The largest ``value`` any rank passed (a collective: every rank must call it)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=_collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


class _AllGather(torch.autograd.Function):
    """Differentiable all-gather along dim 0: torch's own (torch.distributed.nn) is deprecated in
    favour of a private module, and its gloo backward needs all-to-all; this one needs all-reduce only."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, shard: Shard) -> torch.Tensor:
        ctx.shard = shard
        pieces = [torch.empty_like(tensor) for _ in range(shard.world_size)]
        dist.all_gather(pieces, tensor.contiguous())
        return torch.cat(pieces)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        # Every rank used the gathered tensor: this piece's gradient is the sum of theirs.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.shard.rows(len(grad))], None


T = TypeVar("T")


@dataclass(frozen=True)
class MicroShard(Shard):
    """Micro-batch ``micro`` of a process's step computed in ``group``'s micro-batches: the rank
    ``process_rank * K + micro`` of ``world_size * K`` that a run with K times the processes would be."""

    micro: int = 0
    group: "MicroBatches | None" = field(default=None, compare=False, repr=False)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return _MicroGather.apply(tensor, self)


class _MicroGather(torch.autograd.Function):
    """:class:`_AllGather` among the micro-batches of one process (and then over processes)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, shard: MicroShard) -> torch.Tensor:
        ctx.shard = shard
        return shard.group.exchange(shard.micro, tensor, shard.group.concatenate).clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        shard = ctx.shard
        total = shard.group.exchange(shard.micro, grad.contiguous(), shard.group.add)
        return total[shard.rows(len(total))].clone(), None


class _Aborted(Exception):
    """Another micro-batch failed: this one stops where it waits."""


class MicroBatches:
    """A process's step as ``count`` micro-batches (:class:`MicroShard`), run by :meth:`run` in
    ``count`` threads that take turns in micro-batch order: one thread runs at a time, until its
    next gather or its end, so the shared torch generator gives each micro-batch the numbers it would
    draw as a rank of its own. CPU only: on CUDA the autograd engine runs every backward on one
    device thread, where the micro-batches' gathers could not wait for each other."""

    def __init__(self, shard: Shard, count: int):
        self.process, self.count = shard, count
        self.shards = [MicroShard(shard.rank * count + k, shard.world_size * count, shard.local_rank, micro=k,
                                  group=self) for k in range(count)]
        self._condition = threading.Condition()
        self._turn = 0
        self._finished = 0
        self._error: BaseException | None = None
        self._rng: list[torch.Tensor | None] = [None] * count
        self._pieces: list[torch.Tensor | None] = [None] * count
        self._combined: torch.Tensor | None = None
        self._results: list[Any] = [None] * count
        self._jobs: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(count)]
        self._threads: list[threading.Thread] = []
        self._sequential = False

    def close(self) -> None:
        """End the threads (the next :meth:`run` starts new ones). A thread still in a step (after
        an interrupt) ends after it, on its own queue."""
        for jobs in self._jobs:
            jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self._jobs = [queue.SimpleQueue() for _ in range(self.count)]

    def backward(self, loss_of: Callable[[MicroShard], tuple[torch.Tensor, T]],
                 parameters: Sequence[torch.nn.Parameter], gathers: bool = True) -> list[T]:
        """Each micro-batch's ``(loss, extra) = loss_of(shard)``; sets every parameter's ``grad`` to
        the sum over micro-batches, then processes, of d loss / d parameter * 1 / (micro-batches *
        processes), as DistributedDataParallel averages (a parameter no micro-batch uses keeps
        ``grad`` None, so Adam skips it). Returns the extras in micro-batch order. ``gathers``: see
        :meth:`run`."""
        parameters = list(parameters)

        def loss_and_gradients(shard: MicroShard) -> tuple[T, tuple[torch.Tensor | None, ...]]:
            loss, extra = loss_of(shard)
            return extra, torch.autograd.grad(loss, parameters, allow_unused=True)

        results = self.run(loss_and_gradients, gathers)
        scale = 1.0 / (self.count * self.process.world_size)
        with_grad = []
        for index, parameter in enumerate(parameters):
            gradients = [grads[index] for _, grads in results]
            if all(gradient is None for gradient in gradients):
                continue  # unused in this configuration, so on every process
            total = None
            for gradient in gradients:
                part = (torch.zeros_like(parameter) if gradient is None else gradient) * scale
                total = part if total is None else total + part
            parameter.grad = total
            with_grad.append(parameter)
        if self.process.distributed and with_grad:
            flat = torch.cat([parameter.grad.flatten() for parameter in with_grad])
            dist.all_reduce(flat)
            for parameter, gradient in zip(with_grad, flat.split([p.numel() for p in with_grad])):
                parameter.grad = gradient.view_as(parameter).clone()
        return [extra for extra, _ in results]

    def run(self, function: Callable[[MicroShard], T], gathers: bool = True) -> list[T]:
        """``function(shard)`` for every micro-batch's shard, in turns; their results in order. The
        torch generator ends where each micro-batch left it (the same state for all, checked).
        ``gathers=False`` promises that ``function`` gathers nothing: the micro-batches then run one
        after the other in this thread, each freeing its graph before the next (threads would each
        keep their own allocator arena)."""
        if not gathers:
            return self._run_here(function)
        if not self._threads:
            # Threads are kept between steps: a new thread each step would start a new OpenMP team.
            self._threads = [threading.Thread(target=self._work, args=(k, self._jobs[k]), daemon=True,
                                              name=f"fmtrack-micro-batch-{k}") for k in range(self.count)]
            for thread in self._threads:
                thread.start()
        with self._condition:
            state = torch.get_rng_state()
            self._rng = [state] * self.count
            self._turn, self._finished, self._error = 0, 0, None
            self._results = [None] * self.count
        for jobs in self._jobs:
            jobs.put(function)
        with self._condition:
            self._condition.wait_for(lambda: self._finished == self.count)
            error, states = self._error, self._rng
        if error is not None:
            raise error
        if any(not torch.equal(state, states[0]) for state in states[1:]):
            raise RuntimeError("micro-batches drew different random numbers: their steps diverged")
        torch.set_rng_state(states[0])
        return list(self._results)

    def _run_here(self, function: Callable[[MicroShard], T]) -> list[T]:
        start, results, ends = torch.get_rng_state(), [], []
        self._sequential = True
        try:
            for shard in self.shards:
                torch.set_rng_state(start)
                results.append(function(shard))
                ends.append(torch.get_rng_state())
        finally:
            self._sequential = False
        if any(not torch.equal(end, ends[0]) for end in ends[1:]):
            raise RuntimeError("micro-batches drew different random numbers: their steps diverged")
        return results

    def exchange(self, micro: int, piece: torch.Tensor,
                 combine: Callable[[Sequence[torch.Tensor]], torch.Tensor]) -> torch.Tensor:
        """A collective among the micro-batches (called by each in its turn): ``combine`` of all
        their pieces, in micro-batch order, computed by the last one to arrive."""
        if self._sequential:
            raise RuntimeError("a gather in micro-batches run with gathers=False")
        self._pieces[micro] = piece
        if micro == self.count - 1:
            self._combined = combine(list(self._pieces))
            self._pieces = [None] * self.count
        self._pass_turn(micro, finished=False)
        self._wait_turn(micro)
        return self._combined

    def concatenate(self, pieces: Sequence[torch.Tensor]) -> torch.Tensor:
        """The micro-batches' pieces stacked, then every process's stack in rank order."""
        local = torch.cat(list(pieces))
        if not self.process.distributed:
            return local
        stacks = [torch.empty_like(local) for _ in range(self.process.world_size)]
        dist.all_gather(stacks, local.contiguous())
        return torch.cat(stacks)

    def add(self, gradients: Sequence[torch.Tensor]) -> torch.Tensor:
        """The micro-batches' gradients summed in order, then over processes."""
        total = gradients[0].clone()
        for gradient in gradients[1:]:
            total += gradient
        if self.process.distributed:
            dist.all_reduce(total)
        return total

    def _work(self, micro: int, jobs: queue.SimpleQueue) -> None:
        while True:
            function = jobs.get()
            if function is None:
                return
            result = None
            try:
                self._wait_turn(micro)
                result = function(self.shards[micro])
            except _Aborted:
                pass
            except BaseException as err:  # noqa: BLE001 -- handed to run(), which raises it
                with self._condition:
                    if self._error is None:
                        self._error = err
                    self._condition.notify_all()
            self._results[micro] = result
            self._pass_turn(micro, finished=True)

    def _wait_turn(self, micro: int) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._turn == micro or self._error is not None)
            if self._error is not None:
                raise _Aborted
            torch.set_rng_state(self._rng[micro])

    def _pass_turn(self, micro: int, finished: bool) -> None:
        with self._condition:
            self._rng[micro] = torch.get_rng_state()
            self._turn = (micro + 1) % self.count
            self._finished += finished
            self._condition.notify_all()


def _collective_device() -> torch.device:
    """nccl needs tensors on the rank's GPU; gloo on the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_divisible(shard: Shard, regulariser_points: int | None, tracklet_pairs: int | None,
                    accumulate: int = 1) -> None:
    """ValueError unless the mixup points and tracklets of a step split evenly over the ranks
    (``accumulate`` micro-batches each)."""
    parts = shard.world_size * accumulate
    where = f"{shard.world_size} processes" + (f" x {accumulate} micro-batches" if accumulate > 1 else "")
    for name, value in (("regulariser_points", regulariser_points), ("tracklet_pairs_per_batch", tracklet_pairs)):
        if value is not None and value % parts:
            raise ValueError(f"{name} {value} does not split evenly over {where}")


def backend_for(device: str) -> str:
    """nccl when the run trains on CUDA, else gloo."""
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if wants_cuda else "gloo"


def shard_from_environment() -> Shard | None:
    """The Shard of a process torchrun started (``WORLD_SIZE`` > 1 in the environment), else None."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    return Shard(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def join_process_group(shard: Shard, device: str, init_method: str = "env://") -> None:
    """Join the run's process group (a no-op for one process or when already joined)."""
    if shard.distributed and not dist.is_initialized():
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(shard.local_rank)
        dist.init_process_group(backend, init_method=init_method, rank=shard.rank, world_size=shard.world_size)


def leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class ObjectiveModule(torch.nn.Module):
    """The objective as a module, so DistributedDataParallel's forward sees the whole step."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        from .objective import objective

        terms = objective(self.model, *args, **kwargs)
        return (terms.loss, terms.reconstruction_error, terms.kl_bound, terms.flatness, terms.metric_scale,
                terms.tracklet)


def train_under_torchrun(shard: Shard, crops: Callable[[], Path], **train_kwargs: Any) -> Path | None:
    """:func:`.trainer.train` as rank ``shard`` of a run torchrun started (see
    :func:`shard_from_environment`): joins its process group, lets rank 0 call ``crops()`` first (it
    may cut the crops file) before every rank calls it for the path, trains, leaves the group.
    Returns the weights (or checkpoint) path on rank 0, None on the others; ``train_kwargs`` go to
    :func:`.trainer.train` (``progress`` only counts on rank 0)."""
    from .trainer import train

    join_process_group(shard, train_kwargs["train_config"].device)
    try:
        if shard.rank == 0:
            crops()
        shard.barrier()
        progress = train_kwargs.pop("progress", True) and shard.rank == 0
        path = train(crops(), shard=shard, progress=progress, **train_kwargs)
    finally:
        leave_process_group()
    return path if shard.rank == 0 else None


# -- launching ranks on this machine ---------------------------------------------------------------

def launch(nproc: int, target: Callable[..., Any], kwargs: dict[str, Any], device: str) -> int:
    """Run ``target(shard=..., **kwargs)`` in ``nproc`` spawned processes joined in one process group.

    Returns 0 when all succeed, 128 + signum when SIGINT/SIGTERM stopped them (every rank exits
    with it). A rank that fails writes its error; the earliest one is re-raised here (InputError,
    ValueError, else RuntimeError naming the rank), after the other ranks are stopped. SIGINT is
    left to the ranks (a terminal sends it to the whole process group); SIGTERM is passed on.
    """
    import torch.multiprocessing as mp

    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    with tempfile.TemporaryDirectory(prefix="fmtrack-ddp-") as scratch:
        init_method = f"file://{Path(scratch) / 'rendezvous'}"
        context = mp.start_processes(_rank_main, args=(nproc, init_method, scratch, device, target, kwargs),
                                     nprocs=nproc, join=False, start_method="spawn")
        processes = context.processes
        forward = lambda signum, frame: [p.is_alive() and os.kill(p.pid, signum) for p in processes]  # noqa: E731
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                        signal.SIGTERM: signal.signal(signal.SIGTERM, forward)}
        try:
            failed_at: float | None = None
            while any(p.exitcode is None for p in processes):
                for process in processes:
                    process.join(0.1)
                codes = [p.exitcode for p in processes]
                if failed_at is None and any(c not in (None, 0, *INTERRUPT_CODES) for c in codes):
                    failed_at = time.monotonic()  # the others wait in a collective for the failed rank
                    for process in processes:
                        if process.is_alive():
                            process.terminate()
                if failed_at is not None and time.monotonic() - failed_at > 10:
                    for process in processes:
                        if process.is_alive():
                            process.kill()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        codes = [p.exitcode for p in processes]
        if all(code == 0 for code in codes):
            return 0
        error = _earliest_error(Path(scratch))
        if error is not None:
            raise error
        interrupted = [code for code in codes if code in INTERRUPT_CODES]
        if interrupted:
            return interrupted[0]
        raise RuntimeError(f"training processes ended with exit codes {codes}")


def _rank_main(rank: int, world_size: int, init_method: str, scratch: str, device: str,
               target: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """One spawned rank: join the group, train, and leave an error file instead of a traceback."""
    from .trainer import TrainingInterrupted

    _die_with_parent()
    if "OMP_NUM_THREADS" not in os.environ:  # the ranks share the machine's cores
        torch.set_num_threads(max(1, torch.get_num_threads() // world_size))
    shard = Shard(rank, world_size, rank)
    try:
        join_process_group(shard, device, init_method)
        target(shard=shard, **kwargs)
    except TrainingInterrupted as stop:
        raise SystemExit(stop.exit_code) from None
    except KeyboardInterrupt:  # before training started: nothing to save
        raise SystemExit(128 + signal.SIGINT) from None
    except Exception as err:  # noqa: BLE001 -- reported to the launching process, which raises it
        record = {"time": time.time(), "rank": rank, "type": type(err).__name__, "message": str(err)}
        if isinstance(err, InputError):
            record.update(kind="input", path=str(err.path), problem=err.problem, line=err.line)
        elif isinstance(err, ValueError):
            record["kind"] = "value"
        with open(Path(scratch) / f"error-{rank}.json", "w", encoding="utf8") as fh:
            json.dump(record, fh)
        raise SystemExit(2 if "kind" in record else 1) from None
    finally:
        leave_process_group()


def _earliest_error(scratch: Path) -> Exception | None:
    """The first error any rank recorded (later ones are usually its echo: a peer that vanished)."""
    records = []
    for path in scratch.glob("error-*.json"):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text(encoding="utf8")))
    if not records:
        return None
    first = min(records, key=lambda record: record["time"])
    if first.get("kind") == "input":
        return InputError(first["path"], first["problem"], first["line"])
    if first.get("kind") == "value":
        return ValueError(first["message"])
    return RuntimeError(f"training process {first['rank']}: {first['type']}: {first['message']}")


def _die_with_parent() -> None:
    """Linux: this rank gets SIGKILL when the launching process dies, so no rank outlives a kill -9."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
