"""benchmarks/peers_design_set.py: a peer run through fmtrack's scorer reproduces the reference
README's design-set row (trackers 2.6.1's BoTSORTTracker on KITTI-13: 44.3 / 13.0 / 38), and a
missing package is skipped with a note."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "peers_design_set.py"


def _script():
    spec = importlib.util.spec_from_file_location("peers_design_set", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_botsort_on_kitti13_reproduces_the_reference_row(data_root, tmp_path):
    pytest.importorskip("trackers")
    peers = _script()
    label = "trackers BoTSORTTracker"
    evaluation, skipped = peers.run_peers(["KITTI-13"], tmp_path, str(data_root), hota=False,
                                          peers={label: peers.PEERS[label]})
    assert skipped == []
    row = evaluation.table.loc[(label, "KITTI-13")]
    assert (round(row["IDF1"], 1), round(row["MOTA"], 1), row["IDs"]) == (44.3, 13.0, 38)


def test_a_missing_package_is_skipped_with_a_note(data_root, tmp_path):
    peers = _script()
    fake = {"nowhere Tracker": ("no_such_package_fmtrack", lambda detections, info: None)}
    evaluation, skipped = peers.run_peers(["KITTI-13"], tmp_path, str(data_root), peers=fake)
    assert evaluation is None and skipped == ["nowhere Tracker: no_such_package_fmtrack is not installed"]
