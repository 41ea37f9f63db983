"""Trainer: loss goes down, resume is bit-identical (also twice, and after a signal), bf16 path runs,
signals and wall time checkpoint, run folders are guarded (existing run, lock, crops file, damage)."""

import dataclasses
import os
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from fmtrack.io import InputError
from fmtrack.training.config import PRESETS
from fmtrack.training.crops import save_crops, synthetic_crops
from fmtrack.training.trainer import (CHECKPOINT, LOG, Trainer, TrainingInterrupted, read_checkpoint_state,
                                      run_lock)
from fmtrack.model.weights import load_weights

from resume_check import assert_resume_is_bit_identical

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def crops_file(tmp_path_factory):
    return save_crops(synthetic_crops(48, seed=1), tmp_path_factory.mktemp("crops") / "synthetic.npz")


def config(**changes):
    return dataclasses.replace(TINY.train, **changes)


@pytest.mark.slow
def test_a_few_steps_reduce_the_loss(crops_file, tmp_path):
    trainer = Trainer(crops_file, config(steps=30, eta=0.0), TINY.model, tmp_path, progress=False)
    first = np.mean([trainer.train_step()["loss"] for _ in range(5)])
    for _ in range(20):
        trainer.train_step()
    last = np.mean([trainer.train_step()["loss"] for _ in range(5)])
    assert last < first


@pytest.mark.slow
def test_resume_after_interruption_is_bit_identical(crops_file, tmp_path):
    # eta > 0 and a constraint met early, so the resumed span covers the prior nets, R and beta updates.
    settings = config(steps=12, kappa=1.2, checkpoint_every=100, log_every=2)
    reference, resumed = assert_resume_is_bit_identical(crops_file, settings, TINY.model, tmp_path, stop_after=5)
    assert not reference.controller.initial_phase
    resumed_rows = {row["step"]: row for row in resumed.log_rows}
    for row in reference.log_rows:
        assert float(resumed_rows[row["step"]]["beta"]) == row["beta"]


def test_bf16_autocast_trains_and_exports(crops_file, tmp_path):
    settings = config(steps=4, precision="bf16", channels_last=True, jacobian="projection", kappa=5.0)
    path = Trainer(crops_file, settings, TINY.model, tmp_path, progress=False).run()
    model, info = load_weights(path)
    assert info.provenance["steps"] == 4 and info.provenance["initial_phase_ended"]
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_step_checkpoints_after_the_step_and_resumes_bit_identical(crops_file, tmp_path, monkeypatch,
                                                                                 signum):
    settings = config(steps=10, checkpoint_every=100)
    reference = Trainer(crops_file, settings, TINY.model, tmp_path / "a", progress=False)
    reference.run()
    trainer = Trainer(crops_file, settings, TINY.model, tmp_path / "b", progress=False)
    original = trainer.train_step

    def signal_inside_step_4():
        if trainer.step == 3:
            os.kill(os.getpid(), signum)  # arrives before the step's work: it must still finish
        return original()
    monkeypatch.setattr(trainer, "train_step", signal_inside_step_4)
    before = signal.getsignal(signum)
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.run()
    assert stopped.value.exit_code == 128 + signum and stopped.value.step == 4
    assert signal.getsignal(signum) == before  # the previous handler is back
    resumed = Trainer(crops_file, settings, TINY.model, tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 4
    resumed.run()
    for (name, a), (_, b) in zip(reference.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_run_resumed_twice_is_bit_identical(crops_file, tmp_path):
    # The first resume rewrites log.csv; the second must read it back (steps stay integers).
    settings = config(steps=12, checkpoint_every=100, log_every=2)
    reference = Trainer(crops_file, settings, TINY.model, tmp_path / "a", progress=False)
    reference.run()
    Trainer(crops_file, settings, TINY.model, tmp_path / "b", progress=False).run(stop_after=5)
    Trainer(crops_file, settings, TINY.model, tmp_path / "b", resume=True, progress=False).run(stop_after=9)
    resumed = Trainer(crops_file, settings, TINY.model, tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 9 and all(isinstance(row["step"], int) for row in resumed.log_rows)
    resumed.run()
    for (name, a), (_, b) in zip(reference.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    steps = [int(line.split(",")[0]) for line in (tmp_path / "b" / LOG).read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and set(range(2, 13, 2)) <= set(steps)


def test_checkpoints_by_wall_time_as_well_as_steps(crops_file, tmp_path, monkeypatch):
    saved = []
    for minutes, folder in ((60.0, "steps"), (1e-9, "time")):
        trainer = Trainer(crops_file, config(steps=6, checkpoint_every=4, checkpoint_minutes=minutes), TINY.model,
                          tmp_path / folder, progress=False)
        original = trainer.save_checkpoint
        steps: list[int] = []
        monkeypatch.setattr(trainer, "save_checkpoint", lambda: (steps.append(trainer.step), original())[1])
        trainer.run()
        saved.append(steps)
    assert saved[0] == [4, 6]  # every 4 steps, and at the end
    assert saved[1] == [1, 2, 3, 4, 5, 6, 6]  # a due time checkpoints after every step


def test_a_folder_holding_a_run_needs_resume_or_overwrite(crops_file, tmp_path):
    Trainer(crops_file, config(steps=3), TINY.model, tmp_path, progress=False).run()
    with pytest.raises(InputError, match="--resume continues it, --overwrite starts it over"):
        Trainer(crops_file, config(steps=2), TINY.model, tmp_path, progress=False)
    Trainer(crops_file, config(steps=2), TINY.model, tmp_path, overwrite=True, progress=False).run()
    assert Trainer(crops_file, config(steps=2), TINY.model, tmp_path, resume=True, progress=False).step == 2


def test_a_second_training_in_the_same_folder_is_refused(crops_file, tmp_path):
    trainer = Trainer(crops_file, config(steps=2), TINY.model, tmp_path, progress=False)
    with run_lock(tmp_path):  # as another process training there would hold it
        with pytest.raises(InputError, match="another training is running"):
            trainer.run()
        # --resume before that run's first checkpoint said "no checkpoint to resume from"
        with pytest.raises(InputError, match="another training is running .* no checkpoint yet"):
            read_checkpoint_state(tmp_path)
    trainer.run()  # free again once released
    assert (tmp_path / "weights.safetensors").is_file()


def test_temporary_files_a_kill_left_are_deleted_at_the_next_start(crops_file, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    leftover = tmp_path / ".checkpoint.safetensors.abc123.tmp.safetensors"
    leftover.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("mine")
    Trainer(crops_file, config(steps=1), TINY.model, tmp_path, progress=False).run()
    assert not leftover.exists() and unrelated.read_text() == "mine"


def test_resume_with_another_crops_file_names_both(crops_file, tmp_path):
    Trainer(crops_file, config(steps=2, checkpoint_every=1), TINY.model, tmp_path / "run", progress=False).run(
        stop_after=1)
    other = save_crops(synthetic_crops(48, seed=2), tmp_path / "other.npz")
    with pytest.raises(InputError, match="is not the crops file this run trained on") as err:
        Trainer(other, config(steps=2, checkpoint_every=1), TINY.model, tmp_path / "run", resume=True,
                progress=False)
    assert str(other) in str(err.value) and str(crops_file) in str(err.value)


@pytest.mark.parametrize("damage, problem", [
    ("truncate", "not a readable checkpoint"),
    ("no metadata", "no training state in its metadata"),
    ("garbage log", "no 'step' column"),
])
def test_a_damaged_run_folder_is_one_input_error_naming_the_file(crops_file, tmp_path, damage, problem):
    Trainer(crops_file, config(steps=2, checkpoint_every=1), TINY.model, tmp_path, progress=False).run(stop_after=1)
    checkpoint = tmp_path / CHECKPOINT
    if damage == "truncate":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    elif damage == "no metadata":
        save_file(load_file(str(checkpoint)), str(checkpoint))
    else:
        (tmp_path / LOG).write_text("garbage\n1,2\n")
    with pytest.raises(InputError, match=problem) as err:
        Trainer(crops_file, config(steps=2, checkpoint_every=1), TINY.model, tmp_path, resume=True, progress=False)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_resume_without_checkpoint_or_with_changed_config_is_input_error(crops_file, tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        Trainer(crops_file, config(), TINY.model, tmp_path, resume=True, progress=False)
    Trainer(crops_file, config(steps=2), TINY.model, tmp_path, progress=False).run()
    assert (tmp_path / CHECKPOINT).is_file()
    with pytest.raises(InputError, match="learning_rate"):
        Trainer(crops_file, config(learning_rate=0.5), TINY.model, tmp_path, resume=True, progress=False)


def _regularised_phase(crops_file, out_dir, normalisation):
    settings = config(steps=160, eta=300.0, kappa=0.95, beta_init=1e-6, log_every=1,
                      flatness_normalisation=normalisation, eta_warmup_steps=1)
    trainer = Trainer(crops_file, settings, TINY.model, out_dir, progress=False)
    trainer.run()
    rows = [row for row in trainer.log_rows if not row["initial_phase"]]
    assert rows, "the constraint was never met"
    scales = np.array([row["c2"] for row in rows])
    return np.median(scales[-len(scales) // 3:]), rows[-1]["C_ema"]


@pytest.mark.slow
def test_flat_regulariser_run_meets_constraint_without_collapse(crops_file, tmp_path):
    """eta = 300 on a tiny model: the constraint is met and stays met, and c^2 stays well above 0
    (c^2 per batch is noisy on 4 mixup points: judged by the median of the last third of the run).
    With the paper's raw R instead, the same run is driven toward the trivial flat decoder: its c^2
    ends several times smaller. The raw run's c^2 is not monotone (it dips toward 0 and rebounds)
    and whether it keeps the constraint depends on the seed, so it is judged against the paired
    relative run rather than by absolute thresholds; one thread fixes the reduction order."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kappa_sq = 0.95 ** 2
        c2_relative, constraint_relative = _regularised_phase(crops_file, tmp_path / "relative", "relative")
        assert c2_relative > 1.0 and constraint_relative < kappa_sq
        c2_raw, _ = _regularised_phase(crops_file, tmp_path / "raw", "none")
        assert c2_raw < c2_relative / 4
    finally:
        torch.set_num_threads(previous)


def test_a_run_that_ends_before_its_flatness_term_starts_says_so(crops_file, tmp_path, capsys):
    """A walk's 1,000-step run on its own video ended in the initial phase (c2=nan throughout) without
    a word: the "flat" model had never had its flatness term on."""
    from fmtrack.io import InputWarning

    with pytest.warns(InputWarning, match=r"initial phase .* the flatness term never started"):
        Trainer(crops_file, config(steps=2), TINY.model, tmp_path, progress=True).run()
    assert "training on 48 crops from" in capsys.readouterr().out


def test_resuming_a_finished_run_keeps_its_weights_and_calibration(crops_file, tmp_path):
    """--resume on a finished run re-exported the weights, and the new sidecar dropped the thresholds
    `fmtrack calibrate --write` had stored in it."""
    from fmtrack.model.weights import update_thresholds

    weights = Trainer(crops_file, config(steps=2), TINY.model, tmp_path, progress=False).run()
    update_thresholds(weights, {"euclidean": 1.23}, {"calibrated_on": "MOT16-11"})
    sidecar = weights.with_suffix(".json").read_bytes()
    before = weights.read_bytes()
    assert Trainer(crops_file, config(steps=2), TINY.model, tmp_path, resume=True, progress=False).run() == weights
    assert weights.read_bytes() == before and weights.with_suffix(".json").read_bytes() == sidecar


def test_a_checkpoint_step_or_controller_state_out_of_place_is_refused(crops_file, tmp_path):
    import json

    Trainer(crops_file, config(steps=4, checkpoint_every=1), TINY.model, tmp_path, progress=False).run(stop_after=3)
    with pytest.raises(InputError, match="is at step 3, outside this run's 0 to --steps 2"):
        Trainer(crops_file, config(steps=2, checkpoint_every=1), TINY.model, tmp_path, resume=True, progress=False)
    checkpoint = tmp_path / CHECKPOINT
    tensors = load_file(str(checkpoint))
    from safetensors import safe_open

    with safe_open(str(checkpoint), "pt") as fh:
        state = json.loads(fh.metadata()["state"])
    for key, value, problem in (("controller", {}, "controller state must hold"), ("step", -5, "is at step -5")):
        save_file(tensors, str(checkpoint), metadata={"state": json.dumps({**state, key: value})})
        with pytest.raises(InputError, match=problem):  # {} restarted beta silently; -5 trained 9 steps
            Trainer(crops_file, config(steps=4, checkpoint_every=1), TINY.model, tmp_path, resume=True,
                    progress=False)


def test_a_mistyped_config_in_a_checkpoint_names_the_checkpoint(crops_file, tmp_path):
    import json

    from safetensors import safe_open

    Trainer(crops_file, config(steps=2, checkpoint_every=1), TINY.model, tmp_path, progress=False).run(stop_after=1)
    checkpoint = tmp_path / CHECKPOINT
    with safe_open(str(checkpoint), "pt") as fh:
        state = json.loads(fh.metadata()["state"])
    state["train_config"]["steps"] = "x"  # was "TrainConfig: wrongly typed value (...)", no file named
    save_file(load_file(str(checkpoint)), str(checkpoint), metadata={"state": json.dumps(state)})
    with pytest.raises(InputError, match=f"{CHECKPOINT}: training state's train_config does not load"):
        Trainer(crops_file, config(steps=2, checkpoint_every=1), TINY.model, tmp_path, resume=True, progress=False)
