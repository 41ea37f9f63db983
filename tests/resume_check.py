"""Shared check for the trainer's promise: a run killed at ``stop_after`` and resumed from its
checkpoint ends bit-identical to an uninterrupted one (weights, beta controller, logged rows)."""

from __future__ import annotations

import numpy as np
import torch

from fmtrack.training.trainer import Trainer


def assert_resume_is_bit_identical(crops_file, settings, model_config, tmp_path, stop_after: int):
    """Run twice (once interrupted and resumed); return (reference, resumed) for further checks."""
    reference = Trainer(crops_file, settings, model_config, tmp_path / "a", progress=False)
    reference.run()
    interrupted = Trainer(crops_file, settings, model_config, tmp_path / "b", progress=False)
    interrupted.run(stop_after=stop_after)
    torch.manual_seed(1234)  # disturb every global RNG: the checkpoint must restore them
    np.random.seed(99)
    resumed = Trainer(crops_file, settings, model_config, tmp_path / "b", resume=True, progress=False)
    assert resumed.step == stop_after
    resumed.run()
    for (name, a), (_, b) in zip(reference.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert resumed.controller == reference.controller
    # The resumed log also has the row logged at the interruption; every other row matches.
    resumed_rows = {row["step"]: row for row in resumed.log_rows}
    for row in reference.log_rows:
        assert float(resumed_rows[row["step"]]["C"]) == row["C"]
    return reference, resumed
