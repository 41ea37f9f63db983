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


@pytest.mark.slow
def test_train_writes_weights_sidecar_and_log(trained):
    _, weights = trained
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert sidecar["model_config"]["latent_dim"] == 8
    assert sidecar["provenance"]  # how it was made travels with the weights
    assert (weights.parent / "log.csv").stat().st_size > 0


@pytest.mark.slow
def test_resuming_the_finished_run_says_its_weights_are_unchanged(trained, capsys):
    """It printed "wrote .../weights.safetensors" although nothing was written."""
    crops, weights = trained
    before = weights.read_bytes()
    assert main(["train", "--crops", str(crops), "--out", str(weights.parent), "--resume", "--quiet"]) == 0
    assert "the run was already finished" in capsys.readouterr().out and weights.read_bytes() == before


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_two_dimensional_latent_space_gets_its_magnification_map(trained, tmp_path):
    crops, _ = trained
    run = tmp_path / "run2d"
    assert main(["train", "--crops", str(crops), "--out", str(run), "--preset", "tiny", "--latent-dim", "2",
                 "--steps", "10", "--quiet"]) == 0
    weights = run / "weights.safetensors"
    assert main(["diagnose", "--weights", str(weights), "--crops", str(crops), "--points", "6",
                 "--out-dir", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "latent_map_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.fixture(scope="module")
def synthetic_crops_file(tmp_path_factory):
    from fmtrack.training.crops import save_crops, synthetic_crops

    return save_crops(synthetic_crops(48, seed=1), tmp_path_factory.mktemp("crops") / "synthetic.npz")


def test_resume_takes_the_configuration_from_the_checkpoint(synthetic_crops_file, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--crops", str(synthetic_crops_file), "--out", str(run), "--quiet"]
    assert main(base + ["--preset", "tiny", "--eta", "0", "--steps", "3"]) == 0
    # Neither --preset nor --eta repeated: the tiny, eta = 0 run continues (the default preset is paper).
    assert main(base + ["--resume", "--steps", "5"]) == 0
    sidecar = json.loads((run / "weights.json").read_text())
    assert sidecar["provenance"]["steps"] == 5 and sidecar["provenance"]["train_config"]["eta"] == 0.0
    assert sidecar["model_config"]["latent_dim"] == 8
    capsys.readouterr()
    assert main(base + ["--resume", "--steps", "6", "--eta", "300"]) == 2
    err = capsys.readouterr().err
    assert "--eta 300.0 differs from the checkpoint's 0.0" in err and len(err.strip().splitlines()) == 1
    assert main(base + ["--resume", "--steps", "6", "--preset", "cpu"]) == 2
    assert "started with preset 'tiny'" in capsys.readouterr().err


def test_train_into_a_folder_holding_a_run_needs_resume_or_overwrite(synthetic_crops_file, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--crops", str(synthetic_crops_file), "--out", str(run), "--preset", "tiny", "--quiet"]
    assert main(base + ["--steps", "4"]) == 0
    capsys.readouterr()
    assert main(base + ["--steps", "2"]) == 2
    assert "--resume continues it, --overwrite starts it over" in capsys.readouterr().err
    assert json.loads((run / "weights.json").read_text())["provenance"]["steps"] == 4  # untouched
    assert main(base + ["--steps", "2", "--overwrite"]) == 0
    assert json.loads((run / "weights.json").read_text())["provenance"]["steps"] == 2


def test_training_errors_name_the_flags_not_the_config_fields(synthetic_crops_file, tmp_path, capsys):
    base = ["train", "--crops", str(synthetic_crops_file), "--preset", "tiny", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "a"), "--tracklet-pairs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--tracklet-pairs must be at least 2" in err and "tracklet_pairs_per_batch" not in err
    # Synthetic crops carry no tracklet ids: too few tracklets for the pairs asked.
    assert main(base + ["--out", str(tmp_path / "b"), "--tracklet-weight", "1", "--tracklet-pairs", "4"]) == 2
    err = capsys.readouterr().err
    assert "--tracklet-pairs=4" in err and "--tracklet-min-gap" in err and "tracklet_" not in err


@pytest.mark.slow
def test_calibrate_write_reports_and_guards_another_sequences_calibration(trained, tmp_path, data_root, capsys):
    import shutil

    _, trained_weights = trained
    weights = tmp_path / "w.safetensors"
    shutil.copy(trained_weights, weights)
    side = json.loads(trained_weights.with_suffix(".json").read_text())
    side["thresholds"] = {"euclidean": 1.5}
    side["provenance"]["calibration"] = {"sequence": "MOT16-11"}
    weights.with_suffix(".json").write_text(json.dumps(side))
    command = ["calibrate", "--seq", "TUD-Campus", "--features", str(weights), "--metric", "euclidean", "--gap", "3",
               "--write", "--data-root", str(data_root)]
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "calibrated on MOT16-11" in err and "--force" in err and str(weights.with_suffix(".json")) in err
    assert json.loads(weights.with_suffix(".json").read_text())["thresholds"] == {"euclidean": 1.5}
    assert main(command + ["--force"]) == 0
    out = capsys.readouterr().out
    written = json.loads(weights.with_suffix(".json").read_text())
    assert written["provenance"]["calibration"]["sequence"] == "TUD-Campus"
    assert f"euclidean {written['thresholds']['euclidean']:.4g}" in out
    assert "TUD-Campus" in out and str(weights.with_suffix(".json")) in out
    assert main(command) == 0  # recalibrating on the same sequence needs no --force
