"""precision="auto": bf16 on CUDA and on CPUs with AMX, fp32 on other CPUs (bf16 is emulated there)."""

import pytest
import torch

from fmtrack.model import device as device_module
from fmtrack.model.device import autocast_context, cpu_has_amx, resolve_precision
from fmtrack.training.config import PRESETS, TrainConfig


@pytest.mark.parametrize("amx, want", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_amx(monkeypatch, amx, want):
    monkeypatch.setattr(device_module, "cpu_has_amx", lambda: amx)
    assert resolve_precision("auto", torch.device("cpu")) == want
    context = autocast_context(torch.device("cpu"), "auto")
    assert isinstance(context, torch.autocast) == (want == "bf16")


def test_auto_on_cuda_is_bf16_and_explicit_choices_pass_through(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_amx", lambda: False)
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    for choice in ("fp32", "bf16", "fp16"):
        assert resolve_precision(choice, torch.device("cpu")) == choice


def test_amx_probe_reads_the_cpu_flags(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    monkeypatch.setattr(device_module, "CPUINFO", cpuinfo)
    assert cpu_has_amx()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_tile\n")
    assert not cpu_has_amx()
    monkeypatch.setattr(device_module, "CPUINFO", tmp_path / "absent")
    assert not cpu_has_amx()


def test_paper_preset_is_practical_on_cpu():
    paper = PRESETS["paper"]
    assert paper.model.width == 1.0 and paper.model.latent_dim == 128  # still the paper's network
    assert paper.train.jacobian == "projection" and paper.train.precision == "auto"
    assert paper.train.checkpoint_minutes <= 5 and paper.train.steps <= 2_000
    assert TrainConfig(precision="auto").precision == "auto"
