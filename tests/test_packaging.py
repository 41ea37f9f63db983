"""Packaging and start-up: ``import fmtrack`` stays light, and a built wheel carries the default
model, so a non-editable install runs ``fmtrack run`` with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "motmetrics", "matplotlib", "pandas", "scipy.stats", "scipy.optimize"]


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("module", HEAVY)
def test_import_fmtrack_loads_no_heavy_module(module):
    loaded = json.loads(_python("import json, sys, fmtrack; print(json.dumps(sorted(sys.modules)))"))
    assert module not in loaded


def test_video_tracker_resolves_lazily_without_torch_or_motmetrics():
    code = ("import json, sys, fmtrack; assert 'fmtrack.pipeline' not in sys.modules; fmtrack.VideoTracker; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(_python(code))
    assert "fmtrack.pipeline.video_tracker" in loaded
    assert not {"torch", "motmetrics", "matplotlib"} & set(loaded)


def test_package_declares_its_data_and_is_typed():
    import fmtrack

    package = Path(fmtrack.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "weights" / "fmvae-tracklets-strict.safetensors").is_file()
    assert (package / "data" / "score_maps.json").is_file()


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_runs_the_default_tracker(tmp_path, data_root):
    run = dict(capture_output=True, text=True, check=True)
    # Built from a copy of the sources, so no build/ folder is left in (or reused from) the checkout.
    source = tmp_path / "source"
    shutil.copytree(REPO / "fmtrack", source / "fmtrack", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel"), str(source)], cwd=tmp_path, **run)
    wheel = next((tmp_path / "wheel").glob("fmtrack-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("fmtrack/weights/fmvae-tracklets-strict.safetensors", "fmtrack/weights/fmvae-tracklets-strict.json",
                   "fmtrack/data/score_maps.json", "fmtrack/py.typed"):
        assert member in names, member

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], **run)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               **run).stdout.strip())
    # pip itself runs from the shared venv, where fmtrack is installed (editable): --ignore-installed
    # installs into the fresh venv regardless, and never uninstalls anything.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--ignore-installed", "-q", str(wheel)], **run)
    # A venv made from a venv's python sees the base interpreter's packages, not the shared venv's:
    # a path entry (after the fresh venv's own, and without running the shared venv's editable hook)
    # lends it torch, OpenCV and the rest without a download.
    (site / "shared-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["FMTRACK_CACHE"] = str(tmp_path / "cache")
    where = subprocess.run([str(python), "-c", "import fmtrack; print(fmtrack.__file__)"], env=env, cwd=tmp_path,
                           **run).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the installed copy, not the checkout
    out = tmp_path / "TUD-Campus.txt"
    result = subprocess.run([str(venv / "bin" / "fmtrack"), "run", "--seq", "TUD-Campus", "--data-root", str(data_root),
                             "--out", str(out), "--quiet"], env=env, cwd=tmp_path, **run)
    assert str(site / "fmtrack" / "weights" / "fmvae-tracklets-strict.safetensors") in result.stdout, result.stdout
    assert out.is_file() and len(out.read_text().splitlines()) > 0
