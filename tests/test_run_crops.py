"""``train --from-video`` keeps its mined crops in the run folder; they are reused only when mined from
the same source. Before, any ``RUN/tracklet-crops.npz`` was reused: a new run, or ``--overwrite``,
naming other sequences or other mining thresholds trained on the old crops without a word."""

from __future__ import annotations

import pytest

from fmtrack.io import InputError
from fmtrack.training.crops import run_crops

TUD = {"from_video": ["TUD-Campus"], "det": None, "mining": {"min_iou": 0.7, "min_length": 10}}
ETH = {"from_video": ["ETH-Bahnhof"], "det": None, "mining": {"min_iou": 0.7, "min_length": 10}}


class Cutter:
    def __init__(self):
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        path.write_bytes(b"crops %d" % self.calls)


def test_crops_are_reused_only_when_mined_from_the_same_source(tmp_path):
    cut = Cutter()
    crops = run_crops(tmp_path, TUD, resume=False, overwrite=False, cut=cut)
    assert cut.calls == 1 and crops.read_bytes() == b"crops 1"
    assert run_crops(tmp_path, TUD, resume=True, overwrite=False, cut=cut) == crops and cut.calls == 1
    assert run_crops(tmp_path, TUD, resume=False, overwrite=False, cut=cut) == crops and cut.calls == 1  # a retry
    run_crops(tmp_path, ETH, resume=False, overwrite=False, cut=cut)  # no run yet: mined again
    assert cut.calls == 2 and crops.read_bytes() == b"crops 2"
    looser = {**ETH, "mining": {"min_iou": 0.5, "min_length": 3}}
    run_crops(tmp_path, looser, resume=False, overwrite=False, cut=cut)
    assert cut.calls == 3


def test_a_run_is_never_left_without_its_crops(tmp_path):
    cut = Cutter()
    run_crops(tmp_path, TUD, resume=False, overwrite=False, cut=cut)
    (tmp_path / "checkpoint.safetensors").write_bytes(b"a run")
    with pytest.raises(InputError, match="holds a training run .* whose crops these flags would replace"):
        run_crops(tmp_path, ETH, resume=False, overwrite=False, cut=cut)
    with pytest.raises(InputError, match="--resume: its crops were mined from"):
        run_crops(tmp_path, ETH, resume=True, overwrite=False, cut=cut)
    assert cut.calls == 1 and (tmp_path / "tracklet-crops.npz").read_bytes() == b"crops 1"
    run_crops(tmp_path, ETH, resume=False, overwrite=True, cut=cut)  # --overwrite starts over
    assert cut.calls == 2


def test_a_failed_mining_leaves_no_record_to_reuse(tmp_path):
    def failing(path):
        path.write_bytes(b"half")
        raise InputError(path, "1 tracklets, fewer than --tracklet-pairs")

    with pytest.raises(InputError):
        run_crops(tmp_path, TUD, resume=False, overwrite=False, cut=failing)
    cut = Cutter()
    run_crops(tmp_path, TUD, resume=False, overwrite=False, cut=cut)
    assert cut.calls == 1


def test_a_run_made_before_the_record_resumes_with_its_crops(tmp_path):
    (tmp_path / "tracklet-crops.npz").write_bytes(b"old")
    cut = Cutter()
    assert run_crops(tmp_path, TUD, resume=True, overwrite=False, cut=cut).read_bytes() == b"old" and cut.calls == 0


def test_resuming_a_crops_run_with_from_video_is_refused_before_mining(tmp_path):
    """A run trained on --crops, resumed with --from-video: refused with a message that fits --resume
    (it read '--resume continues it'), before any crops are mined."""
    (tmp_path / "checkpoint.safetensors").write_bytes(b"a run")
    cut = Cutter()
    with pytest.raises(InputError, match="--resume: its training run .* has no tracklet-crops.npz"):
        run_crops(tmp_path, TUD, resume=True, overwrite=False, cut=cut)
    assert cut.calls == 0
