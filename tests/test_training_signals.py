"""`fmtrack train` as a process, stopped by SIGINT, SIGTERM or SIGKILL while it trains, then resumed
with `--resume` (and no other flag: the configuration comes from the checkpoint): the final weights
equal an uninterrupted run's bit for bit. Also: a second training into a running folder is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fmtrack.training.crops import save_crops, synthetic_crops
from training_logs import logged_step

REPO = Path(__file__).resolve().parents[1]
STEPS = 40

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crops_file(tmp_path_factory):
    return save_crops(synthetic_crops(48, seed=1), tmp_path_factory.mktemp("crops") / "synthetic.npz")


def _train(crops, out, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fmtrack.cli", "train", "--crops", str(crops), "--out", str(out),
                             "--quiet", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training never got there"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(crops_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    process = _train(crops_file, out, "--preset", "tiny", "--steps", str(STEPS))
    assert process.wait() == 0, process.communicate()
    return load_file(str(out / "weights.safetensors"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_mid_run_then_resume_gives_the_uninterrupted_weights(crops_file, tmp_path, reference, signum):
    out = tmp_path / "run"
    process = _train(crops_file, out, "--preset", "tiny", "--steps", str(STEPS), "--checkpoint-every", "10")
    # SIGKILL saves nothing: wait for the step-10 checkpoint so there is something to resume.
    _wait_until(lambda: logged_step(out) >= (15 if signum == signal.SIGKILL else 5), process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 128 + signum), err
    if signum != signal.SIGKILL:
        assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
        assert not (out / "weights.safetensors").exists()
    resumed = _train(crops_file, out, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    weights = load_file(str(out / "weights.safetensors"))
    assert weights.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(weights[name], tensor), name
    assert not list(out.glob(".*.tmp*"))


def test_a_second_training_into_a_running_folder_is_one_line_error(crops_file, tmp_path):
    out = tmp_path / "run"
    first = _train(crops_file, out, "--preset", "tiny", "--steps", "400")
    try:
        _wait_until(lambda: logged_step(out) >= 5, first)
        second = _train(crops_file, out, "--preset", "tiny", "--steps", "400", "--overwrite")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and "another training is running" in err
        assert len(err.strip().splitlines()) == 1
        assert (out / "log.csv").is_file()  # --overwrite deletes nothing while another run holds the folder
    finally:
        first.kill()
        first.wait()
