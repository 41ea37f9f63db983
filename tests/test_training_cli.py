"""The training flow end to end through the CLI, on TUD-Campus with the tiny configuration:
crops -> train (killed and resumed) -> embed -> calibrate -> diagnose -> track with the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmtrack.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    root = tmp_path_factory.mktemp("training")
    crops = root / "crops.npz"
    assert main(["crops", "--seq", "TUD-Campus", "--source", "det", "--out", str(crops), "--quiet",
                 "--data-root", str(data_root)]) == 0
    run = root / "run"
    assert main(["train", "--crops", str(crops), "--out", str(run), "--preset", "tiny", "--eta", "300",
                 "--steps", "20", "--quiet"]) == 0
    return crops, run / "weights.safetensors"


def test_train_writes_weights_sidecar_and_log(trained):
    _, weights = trained
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert sidecar["model_config"]["latent_dim"] == 8
    assert sidecar["provenance"]  # how it was made travels with the weights
    assert (weights.parent / "log.csv").stat().st_size > 0


def test_embed_calibrate_and_track_with_the_model(trained, tmp_path, data_root, capsys):
    _, weights = trained
    features = tmp_path / "feats.npy"
    assert main(["embed", "--seq", "TUD-Campus", "--weights", str(weights), "--out", str(features), "--quiet",
                 "--data-root", str(data_root)]) == 0
    rows = np.load(features)
    assert rows.shape[1] == 7 + 8 and np.isfinite(rows).all()
    assert main(["calibrate", "--seq", "TUD-Campus", "--features", str(weights), "--metric", "euclidean",
                 "--gap", "3", "--write", "--data-root", str(data_root)]) == 0
    threshold = json.loads(weights.with_suffix(".json").read_text())["thresholds"]["euclidean"]
    assert threshold > 0
    out = tmp_path / "res.txt"
    assert main(["run", "--seq", "TUD-Campus", "--features", str(weights), "--cmc", "none", "--out", str(out),
                 "--quiet", "--data-root", str(data_root)]) == 0
    assert out.stat().st_size > 0
    assert "IDF1" in capsys.readouterr().out


def test_diagnose_prints_table_and_writes_plot(trained, tmp_path, capsys):
    crops, weights = trained
    assert main(["diagnose", "--weights", str(weights), "--crops", str(crops), "--points", "6",
                 "--out-dir", str(tmp_path), "--quiet"]) == 0
    assert "cond median" in capsys.readouterr().out
    assert (tmp_path / "flatness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_on_a_missing_crops_file_is_one_line_error(tmp_path, capsys):
    assert main(["train", "--crops", str(tmp_path / "none.npz"), "--out", str(tmp_path / "r"),
                 "--preset", "tiny", "--quiet"]) == 2
    assert "crops file not found" in capsys.readouterr().err


def test_two_dimensional_latent_space_gets_its_magnification_map(trained, tmp_path):
    crops, _ = trained
    run = tmp_path / "run2d"
    assert main(["train", "--crops", str(crops), "--out", str(run), "--preset", "tiny", "--latent-dim", "2",
                 "--steps", "10", "--quiet"]) == 0
    weights = run / "weights.safetensors"
    assert main(["diagnose", "--weights", str(weights), "--crops", str(crops), "--points", "6",
                 "--out-dir", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "latent_map_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_halves_the_file_keeps_the_sidecar_and_the_embedding(trained, tmp_path):
    from fmtrack.embedder.fmvae import FMVAEEmbedder

    _, weights = trained
    shipped = tmp_path / "shipped.safetensors"
    assert main(["export", "--weights", str(weights), "--out", str(shipped)]) == 0
    assert shipped.stat().st_size < 0.6 * weights.stat().st_size
    sidecar = json.loads(shipped.with_suffix(".json").read_text())
    assert sidecar["dtype"] == "float16" and sidecar["provenance"]["exported_from"] == str(weights)
    crops = np.random.default_rng(0).integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    original, exported = FMVAEEmbedder(weights).embed_crops(crops), FMVAEEmbedder(shipped).embed_crops(crops)
    # fp16 keeps ~3 significant digits per weight: the latent means move by far less than their spread.
    assert np.abs(original - exported).max() < 0.02 * original.std()


def test_train_from_video_mines_tracklets_and_resumes(tmp_path, data_root):
    run = tmp_path / "run"
    common = ["train", "--from-video", "MOT17-09-FRCNN", "--out", str(run), "--preset", "tiny", "--eta", "0",
              "--tracklet-pairs", "2", "--tracklet-min-gap", "2", "--colour-jitter", "0.1", "--quiet",
              "--data-root", str(data_root)]
    assert main(common + ["--steps", "4"]) == 0
    sidecar = json.loads((run / "weights.json").read_text())
    assert sidecar["provenance"]["train_config"]["tracklet_weight"] == 1.0  # the term is on by default
    assert sidecar["provenance"]["train_config"]["colour_jitter"] == 0.1
    crops = np.load(run / "tracklet-crops.npz")
    assert (crops["track_id"] >= 0).sum() >= 2 * 10  # at least two mined tracklets of 10+ detections
    cut_at = (run / "tracklet-crops.npz").stat().st_mtime_ns
    assert main(common + ["--steps", "6", "--resume"]) == 0  # continues the run to 6 steps
    assert json.loads((run / "weights.json").read_text())["provenance"]["steps"] == 6
    assert (run / "tracklet-crops.npz").stat().st_mtime_ns == cut_at  # the crops are cut once
