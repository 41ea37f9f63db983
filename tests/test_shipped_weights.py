"""The models in weights/: complete sidecars, a model card that names them, the default wired into
`fmtrack run`, and label-free thresholds that recalibration reproduces."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from fmtrack.benchmarks.descriptor_quality import descriptor_quality
from fmtrack.benchmarks.methods import DEFAULT_MODEL, WEIGHTS_DIR, calibrate_descriptor, make_method
from fmtrack.embedder.fmvae import FMVAEEmbedder

from conftest import REFERENCE_DIR

# The default model is package data (fmtrack/weights); the others live in the repository's weights/.
SHIPPED = sorted(WEIGHTS_DIR.rglob("*.safetensors")) + [DEFAULT_MODEL]


def _weights_path(name: str):
    return DEFAULT_MODEL if name == DEFAULT_MODEL.name else WEIGHTS_DIR / name


def test_the_default_model_is_package_data_with_its_sidecar():
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.with_suffix(".json").is_file()
    assert DEFAULT_MODEL.parent.parent.name == "fmtrack"  # inside the package, so a wheel carries it
    assert not (WEIGHTS_DIR / DEFAULT_MODEL.name).exists()  # one copy only


@pytest.mark.parametrize("weights", SHIPPED, ids=lambda p: p.name if p == DEFAULT_MODEL else str(p.relative_to(WEIGHTS_DIR)))
def test_sidecar_says_how_the_model_was_made_and_holds_both_thresholds(weights):
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    provenance = sidecar["provenance"]
    for key in ("crops_path", "num_crops", "steps", "final_C_ema", "final_beta", "train_time_s", "hardware"):
        assert key in provenance, key
    assert provenance["calibration"]["sequence"].startswith("MOT16-")
    for metric in ("euclidean", "cosine"):
        assert sidecar["thresholds"][metric] > 0
        assert provenance["calibration"][metric]["auc"] > 0.5
    card = (WEIGHTS_DIR / "README.md").read_text()
    assert weights.name in card  # the model card describes every shipped file


def test_default_model_is_what_the_fmtrack_preset_uses_with_its_euclidean_threshold():
    # By default fused with HSV (docs/descriptor-fusion.md); alone as "model", at its sidecar's threshold.
    assert make_method("fmtrack", "fmtrack", {}).features == f"{DEFAULT_MODEL}+hsv*3"
    method = make_method("fmtrack", "fmtrack", {}, "model")
    assert method.features == str(DEFAULT_MODEL)
    assert method.config.metric == "euclidean"
    threshold = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())["thresholds"]["euclidean"]
    assert method.config.appearance_threshold == pytest.approx(threshold)


def test_default_model_embeds_crops_into_finite_latent_means():
    crops = np.random.default_rng(0).integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    means = FMVAEEmbedder(DEFAULT_MODEL).embed_crops(crops)
    assert means.shape == (3, 128) and np.isfinite(means).all()


def test_recalibrating_the_default_model_reproduces_its_stored_thresholds(data_root):
    sidecar = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    sequence = sidecar["provenance"]["calibration"]["sequence"]
    calibrations = calibrate_descriptor(str(DEFAULT_MODEL), sequence, data_root=data_root)
    for metric, calibration in calibrations.items():
        assert math.isclose(calibration.threshold, sidecar["thresholds"][metric], rel_tol=1e-3), metric


@pytest.mark.parametrize("row", list(csv.DictReader(open(REFERENCE_DIR / "shipped_model_auc.csv"))),
                         ids=lambda r: f"{r['weights']}-{r['sequence']}")
def test_shipped_models_reproduce_their_validation_auc(row, data_root):
    """The AUC on TUD-Campus (the validation sequence that chose the tracklet draw; in no results
    table) that the model card reports, recomputed from the shipped fp16 weights and the frames."""
    quality = descriptor_quality(str(_weights_path(row["weights"])), row["sequence"], data_root, progress=False)
    assert quality.auc_euclidean == pytest.approx(float(row["auc_euclidean"]), abs=0.002)
    assert quality.auc_cosine == pytest.approx(float(row["auc_cosine"]), abs=0.002)
