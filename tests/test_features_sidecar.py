"""``fmtrack embed`` writes, beside the features, the metric and thresholds of the descriptor that made
them, and ``run --features FILE.npy`` compares them by those: before, the default descriptor's
Euclidean latents exported and run back were compared by cosine at DeepSORT's 0.2 (TUD-Campus IDF1
60.4 -> 53.9, 0 -> 12 ID switches) unless the user knew to pass --metric and --max-dist."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmtrack.cli import main
from fmtrack.io import InputError, read_results
from fmtrack.pipeline import VideoTracker
from fmtrack.pipeline.features_sidecar import read_sidecar, sidecar_path


def _run(args, data_root, out):
    assert main(["run", "--seq", "TUD-Campus", "--data-root", str(data_root), "--quiet", "--no-score",
                 "--out", str(out)] + args) == 0
    return read_results(out)


@pytest.mark.parametrize("descriptor", ["default", "hsv"])
def test_exported_features_track_as_their_descriptor_does(descriptor, tmp_path, data_root):
    features = tmp_path / "f.npy"
    assert main(["embed", "--seq", "TUD-Campus", "--data-root", str(data_root), "--weights", descriptor,
                 "--out", str(features), "--quiet"]) == 0
    metric, thresholds = read_sidecar(features)
    assert metric == ("euclidean" if descriptor == "default" else "cosine") and thresholds[metric] > 0
    direct = _run(["--features", descriptor, "--cmc", "none"], data_root, tmp_path / "direct.txt")
    exported = _run(["--features", str(features), "--cmc", "none"], data_root, tmp_path / "exported.txt")
    np.testing.assert_array_equal(exported, direct)
    assert VideoTracker("fmtrack", str(features)).config.metric == metric  # the library reads it too


def test_a_damaged_sidecar_is_named_and_an_unrelated_json_is_not_overwritten(tmp_path, data_root, capsys):
    features = tmp_path / "f.npy"
    sidecar_path(features).write_text(json.dumps({"tracker": {}}))  # a preset file by that name, say
    assert main(["embed", "--seq", "TUD-Campus", "--data-root", str(data_root), "--weights", "hsv",
                 "--out", str(features), "--quiet"]) != 0
    assert "f.json: exists and is not an fmtrack features sidecar" in capsys.readouterr().err
    assert not features.exists() and json.loads(sidecar_path(features).read_text()) == {"tracker": {}}
    sidecar_path(features).write_text(json.dumps({"format": "fmtrack-features", "version": 1,
                                                  "metric": "euclidean", "thresholds": {"euclidean": -1}}))
    with pytest.raises(InputError, match="f.json: thresholds must map cosine / euclidean to finite distances > 0"):
        read_sidecar(features)
