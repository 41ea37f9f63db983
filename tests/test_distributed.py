"""Training on several processes (DistributedDataParallel, gloo, 1 torch thread a process) against
one process with the whole batch, at once or as micro-batches (gradient accumulation): the
objective and its gradient at the same parameters (every term, both Jacobian estimators), the
50-step trajectory of loss and beta, and a 2-process run stopped (SIGTERM) or killed (SIGKILL of
its process group) after a checkpoint resuming bit for bit, as an accumulating run does. Also: a
checkpoint resumes only with as many processes, and uneven splits are refused."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fmtrack.io import InputError
from fmtrack.training.config import PRESETS
from fmtrack.training.crops import CropSet, save_crops, synthetic_crops
from fmtrack.training.distributed import MicroBatches, Shard, launch
from fmtrack.training.trainer import Trainer, read_log, train_processes

from ddp_check import TERMS, objective_and_gradient
from training_logs import logged_step

REPO = Path(__file__).resolve().parents[1]
TINY = PRESETS["tiny"]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tracklet_crops(tmp_path_factory):
    """96 synthetic crops in 12 tracklets of 8 (frames 3 apart, one sequence), so the tracklet term runs."""
    crops = synthetic_crops(96, seed=1)
    track = np.repeat(np.arange(12), 8)
    frame = np.tile(np.arange(8) * 3, 12) + track
    crops = CropSet(crops.images, np.full(96, "synthetic-seq"), frame.astype(np.int64), crops.box,
                    track.astype(np.int64), crops.source)
    return save_crops(crops, tmp_path_factory.mktemp("crops") / "tracklets.npz")


@pytest.fixture()
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # read by the spawned ranks
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [
    {"jacobian": "projection", "projection_jvp": "autodiff", "projection_probes": 2},
    {"jacobian": "finite_difference"},
])
def test_two_ranks_give_the_one_process_objective_and_gradient(tmp_path, one_thread, estimator):
    """Every term (C, F, R and c^2 over the gathered mixup points, the InfoNCE over all tracklets)
    within 1e-4 of the whole batch's on one process, and the averaged gradient: each parameter's
    within 1e-4 with the autodiff projection; with finite differences the whole gradient (measured
    2e-5) but not each parameter's, since (f(m + s e) - f(m)) / s in fp32 turns the rounding of decoder passes on another batch size
    into 1/s = 100 times larger differences in J, which decide the gradients of parameters R hardly
    depends on (the last layer's bias cancels in the difference: measured 9% there)."""
    settings = dataclasses.replace(TINY.train, tracklet_weight=1.0, tracklet_pairs_per_batch=4, regulariser_points=8,
                                   **estimator)
    arguments = dict(train_config=settings, model_config=TINY.model, batch=8, beta=0.5)
    objective_and_gradient(Shard(), out=str(tmp_path / "one.safetensors"), **arguments)
    objective_and_gradient(Shard(), out=str(tmp_path / "micro.safetensors"), accumulate=2, **arguments)
    assert launch(2, objective_and_gradient, dict(out=str(tmp_path / "two.safetensors"), **arguments), "cpu") == 0
    one, two = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    # Two micro-batches are the two ranks' computation: every term and every gradient, either estimator.
    micro = load_file(str(tmp_path / "micro.safetensors"))
    assert micro.keys() == two.keys()
    for key in two:
        assert _relative(micro[key], two[key]) < TOLERANCE, key
    for name in TERMS:
        assert math.isfinite(float(one[f"term.{name}"])), name
        assert _relative(two[f"term.{name}"], one[f"term.{name}"]) < TOLERANCE, name
    gradients = [key for key in one if key.startswith("grad.")]
    assert any(key.startswith("grad.prior") for key in gradients) and len(gradients) == len(two) - len(TERMS)
    if settings.jacobian == "projection":
        for key in gradients:
            assert _relative(two[key], one[key]) < TOLERANCE, key
    else:
        whole = [torch.cat([source[key].flatten() for key in gradients]) for source in (two, one)]
        assert _relative(*whole) < TOLERANCE


@pytest.mark.slow
def test_two_processes_in_two_micro_batches_give_one_process_in_four(tmp_path, one_thread):
    """Micro-batches on several processes: 2 ranks x 2 micro-batches of 2 crops are the 4 micro-batches
    of 2 of one process, the same computation but for the order of the 4 gradients' sum (pairs,
    then the pairs' sums, across processes): every term and every gradient within 1e-4."""
    settings = dataclasses.replace(TINY.train, tracklet_weight=1.0, tracklet_pairs_per_batch=4, regulariser_points=8,
                                   jacobian="projection", projection_jvp="autodiff", projection_probes=2)
    arguments = dict(train_config=settings, model_config=TINY.model, batch=8, beta=0.5, accumulate=2)
    assert launch(2, objective_and_gradient, dict(out=str(tmp_path / "two.safetensors"), **arguments), "cpu") == 0
    objective_and_gradient(Shard(), out=str(tmp_path / "one.safetensors"), **{**arguments, "accumulate": 4})
    one, two = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        assert math.isfinite(float(one[key].sum())), key
        assert _relative(two[key], one[key]) < TOLERANCE, key


@pytest.mark.slow
def test_torchrun_ranks_train_as_spawned_ones(plain_crops, tmp_path):
    """torchrun (its environment, env:// rendezvous) and --nproc 2 (spawned ranks) end with the same
    weights bit for bit."""
    flags = ("--preset", "tiny", "--steps", "4")
    spawned = _train(plain_crops, tmp_path / "spawned", *flags)
    _, err = spawned.communicate(timeout=600)
    assert spawned.returncode == 0, err
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    torchrun = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               "-m", "fmtrack.cli", "train", "--crops", str(plain_crops), "--out",
                               str(tmp_path / "torchrun"), "--quiet", *flags], env=env, capture_output=True, text=True,
                              timeout=600)
    assert torchrun.returncode == 0, torchrun.stderr
    expected, weights = (load_file(str(tmp_path / name / "weights.safetensors")) for name in ("spawned", "torchrun"))
    assert weights.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name


@pytest.mark.slow
def test_two_processes_of_batch_b_follow_one_process_of_batch_2b_in_two_micro_batches_for_50_steps(
        tracklet_crops, tmp_path, one_thread):
    """2 processes x 16 crops against 1 process x 32 crops in 2 micro-batches (--accumulate 2, the
    same computation): loss, C, F, L_T, beta and C_t within 1e-4 relative for 50 steps while the
    constraint moves beta, and the final weights. Against 1 process x 32 at once, the first 20
    steps: later that run drifts apart, as it drifts from itself when only the order of its float
    sums changes (2 torch threads instead of 1): Adam scales each weight's step by its own gradient's
    size, so weights whose gradient is a sum that nearly cancels move by a share of the learning rate
    that follows the rounding (docs/distributed-training.md). The flatness term is off here, since
    with a ReLU decoder R moves by ~1e-3 within a few steps of any rounding change; the test above
    checks the micro-batches' R and c^2 and gradients with it on."""
    settings = dataclasses.replace(TINY.train, steps=50, kappa=1.2, nu=0.1, learning_rate=3e-4, eta=0.0,
                                   log_every=1, checkpoint_every=1000, tracklet_weight=1.0,
                                   tracklet_pairs_per_batch=4)
    micro = Trainer(tracklet_crops, dataclasses.replace(settings, batch_size=32, accumulate=2), TINY.model,
                    tmp_path / "micro", progress=False)
    micro.run()
    whole = Trainer(tracklet_crops, dataclasses.replace(settings, batch_size=32), TINY.model, tmp_path / "whole",
                    progress=False)
    whole.run(stop_after=20)
    train_processes(2, tracklet_crops, dataclasses.replace(settings, batch_size=16), TINY.model, tmp_path / "two",
                    progress=False)
    rows = read_log(tmp_path / "two" / "log.csv")
    assert [row["step"] for row in rows] == [row["step"] for row in micro.log_rows] == list(range(1, 51))
    assert rows[-1]["beta"] > 5 * settings.beta_init  # the constraint was met and beta rose
    columns = ("loss", "C", "F", "tracklet", "beta", "C_ema")
    for reference, steps in ((micro.log_rows, 50), (whole.log_rows, 20)):
        assert len(reference) == steps
        for expected, row in zip(reference, rows):
            assert row["initial_phase"] == expected["initial_phase"]
            for column in columns:
                assert abs(row[column] - expected[column]) <= TOLERANCE * abs(expected[column]), (steps, row["step"],
                                                                                                  column)
    weights = load_file(str(tmp_path / "two" / "weights.safetensors"))
    for name, tensor in load_file(str(tmp_path / "micro" / "weights.safetensors")).items():
        assert _relative(tensor, weights[name]) < TOLERANCE, name


def test_an_accumulating_run_resumes_bit_identically(plain_crops, tmp_path):
    """A run in 2 micro-batches, with the flatness term on from step 2, stopped at its step-4
    checkpoint and resumed by a new trainer ends with the uninterrupted run's weights bit for bit
    (the micro-batches' turns leave the generator where the checkpoint records it)."""
    settings = dataclasses.replace(TINY.train, steps=8, checkpoint_every=4, kappa=1.2, eta_warmup_steps=1,
                                   accumulate=2)
    reference = Trainer(plain_crops, settings, TINY.model, tmp_path / "reference", progress=False)
    reference.run()
    assert not math.isnan(reference.log_rows[-1]["R"])
    Trainer(plain_crops, settings, TINY.model, tmp_path / "run", progress=False).run(stop_after=4)
    resumed = Trainer(plain_crops, settings, TINY.model, tmp_path / "run", resume=True, progress=False)
    assert resumed.step == 4
    resumed.run()
    expected, weights = (load_file(str(path / "weights.safetensors")) for path in (tmp_path / "reference",
                                                                                   tmp_path / "run"))
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name


def _train(crops, out, *extra, session: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fmtrack.cli", "train", "--crops", str(crops), "--out", str(out),
                             "--quiet", "--nproc", "2", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=session)


@pytest.fixture(scope="module")
def plain_crops(tmp_path_factory):
    return save_crops(synthetic_crops(48, seed=1), tmp_path_factory.mktemp("plain") / "synthetic.npz")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_two_process_run_stopped_after_a_checkpoint_resumes_bit_identically(plain_crops, tmp_path, signum):
    flags = ("--preset", "tiny", "--steps", "30", "--checkpoint-every", "10", "--kappa", "1.2")
    reference = _train(plain_crops, tmp_path / "reference", *flags)
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err
    out = tmp_path / "run"
    # SIGTERM goes to the launching process (it passes it on); SIGKILL to the whole process group.
    process = _train(plain_crops, out, *flags, session=True)
    deadline = time.monotonic() + 300
    while logged_step(out) < 15:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training never got there"
        time.sleep(0.05)
    if signum == signal.SIGKILL:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.send_signal(signum)
    _, err = process.communicate(timeout=300)
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 128 + signum, err
        assert "checkpoint saved" in err and "--resume --nproc 2" in err and "Traceback" not in err
    resumed = _train(plain_crops, out, "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    expected, weights = load_file(str(tmp_path / "reference" / "weights.safetensors")), load_file(
        str(out / "weights.safetensors"))
    assert weights.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(weights[name], tensor), name
    assert not list(out.glob(".*.tmp*"))


@pytest.mark.parametrize("gathers", [True, False])
def test_micro_batches_draw_what_one_rank_draws(gathers):
    """Every micro-batch draws the numbers a single draw gives, and the generator ends after one."""
    micro_batches = MicroBatches(Shard(), 3)
    torch.manual_seed(5)
    expected, after = torch.rand(4), torch.rand(1)
    torch.manual_seed(5)
    drawn = micro_batches.run(lambda shard: torch.rand(4), gathers)
    assert all(torch.equal(values, expected) for values in drawn)
    assert torch.equal(torch.rand(1), after)
    micro_batches.close()


def test_micro_batches_gather_in_order_and_an_error_stops_them_all():
    micro_batches = MicroBatches(Shard(), 3)

    def failing(shard):
        first = shard.gather(torch.full((1,), float(shard.micro)))
        if shard.micro == 1:
            raise ValueError("micro-batch 1 failed")
        return shard.gather(first)  # the others wait here for micro-batch 1

    with pytest.raises(ValueError, match="micro-batch 1 failed"):
        micro_batches.run(failing)
    gathered = micro_batches.run(lambda shard: shard.gather(torch.full((1,), float(shard.micro))).tolist())
    assert gathered == [[0.0, 1.0, 2.0]] * 3
    with pytest.raises(RuntimeError, match="a gather in micro-batches run with gathers=False"):
        micro_batches.run(lambda shard: shard.gather(torch.zeros(1)), gathers=False)
    micro_batches.close()


def test_a_checkpoint_resumes_only_with_as_many_processes(plain_crops, tmp_path):
    settings = dataclasses.replace(TINY.train, steps=2, checkpoint_every=1)
    Trainer(plain_crops, settings, TINY.model, tmp_path, progress=False).run(stop_after=1)
    with pytest.raises(InputError, match="run on 1 process.*--nproc 1") as err:
        Trainer(plain_crops, settings, TINY.model, tmp_path, resume=True, progress=False, shard=Shard(0, 2))
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize("changes, processes, problem", [
    ({"regulariser_points": 3}, 2, "regulariser_points 3 does not split evenly over 2 processes"),
    ({"tracklet_weight": 1.0, "tracklet_pairs_per_batch": 5}, 2, "tracklet_pairs_per_batch 5 does not split"),
    ({"regulariser_points": 4, "accumulate": 4}, 2, "regulariser_points 4 does not split evenly over 2 processes "
                                                   "x 4 micro-batches"),
    ({"tracklet_weight": 1.0, "tracklet_pairs_per_batch": 6, "accumulate": 4}, 1,
     "tracklet_pairs_per_batch 6 does not split evenly over 1 processes x 4 micro-batches"),
])
def test_a_step_that_does_not_split_evenly_is_refused(plain_crops, tmp_path, changes, processes, problem):
    with pytest.raises(ValueError, match=problem):
        Trainer(plain_crops, dataclasses.replace(TINY.train, **changes), TINY.model, tmp_path, progress=False,
                shard=Shard(0, processes))


def test_micro_batches_must_divide_the_batch():
    with pytest.raises(ValueError, match="accumulate must be a positive divisor of batch_size 16, got 3"):
        dataclasses.replace(TINY.train, accumulate=3)


def test_two_processes_need_two_batches_of_crops(plain_crops, tmp_path):
    with pytest.raises(InputError, match="48 crops, fewer than one batch of 64"):
        Trainer(plain_crops, dataclasses.replace(TINY.train, batch_size=32), TINY.model, tmp_path, progress=False,
                shard=Shard(0, 2))


@pytest.mark.slow
def test_an_error_in_the_ranks_is_one_line_at_the_cli(plain_crops, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a crops file")  # each rank meets it when it loads the crops
    process = _train(broken, tmp_path / "run", "--preset", "tiny", "--steps", "2")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2 and str(broken) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_the_cli_trains_in_micro_batches_and_resumes_only_with_as_many(plain_crops, tmp_path, capsys):
    from fmtrack.cli import main
    from fmtrack.training.trainer import read_checkpoint_state

    flags = ["train", "--crops", str(plain_crops), "--out", str(tmp_path), "--quiet"]
    assert main([*flags, "--preset", "tiny", "--steps", "2", "--accumulate", "2"]) == 0
    assert read_checkpoint_state(tmp_path)["train_config"]["accumulate"] == 2
    capsys.readouterr()
    assert main([*flags, "--resume", "--steps", "3", "--accumulate", "4"]) == 2
    assert capsys.readouterr().err.strip() == ("fmtrack: error: --accumulate 4 differs from the checkpoint's 2 "
                                               "(leave it out to continue the run as it was started)")
