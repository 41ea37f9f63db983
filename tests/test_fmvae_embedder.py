"""FMVAE embedder and shipped weights: shapes, clipping, fp16 export, clear errors."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from fmtrack.embedder.fmvae import FMVAEEmbedder
from fmtrack.io import InputError
from fmtrack.model.config import ModelConfig
from fmtrack.training.config import PRESETS
from fmtrack.model.network import FMVAE
from fmtrack.model.weights import WeightsInfo, load_weights, save_weights, sidecar_path


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = FMVAE(PRESETS["tiny"].model)
    return save_weights(model, tmp_path / "w.safetensors", WeightsInfo(model.config, [0.4] * 3, [0.25] * 3))


def test_embed_shapes_clipping_and_empty(weights):
    embedder = FMVAEEmbedder(weights, device="cpu", batch_size=2)
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 30, 60], [-20, 100, 50, 80], [500, 500, 10, 10], [10, 10, 30, 60]], float)
    out = embedder.embed(image, boxes)
    assert out.shape == (4, 8) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], out[3])
    assert embedder.embed(image, np.zeros((0, 4))).shape == (0, 8)
    bf16 = FMVAEEmbedder(weights, device="cpu", precision="bf16").embed(image, boxes)
    assert bf16.dtype == np.float32 and np.allclose(bf16, out, atol=0.1 * np.abs(out).max() + 1e-3)


def test_fp16_weights_round_trip_and_full_model_size(tmp_path, weights):
    model, info = load_weights(weights)
    half = save_weights(model, tmp_path / "h.safetensors", info, fp16=True)
    reloaded, info16 = load_weights(half)
    assert info16.dtype == "float16"
    for a, b in zip(model.parameters(), reloaded.parameters()):
        assert torch.allclose(a, b, atol=1e-2)
    full = save_weights(FMVAE(ModelConfig()), tmp_path / "full.safetensors", info, fp16=True)
    assert full.stat().st_size < 40e6


def test_weights_errors_are_input_errors(tmp_path, weights):
    with pytest.raises(InputError, match="weights file not found"):
        load_weights(tmp_path / "nope.safetensors")
    side = json.loads(sidecar_path(weights).read_text())
    side["model_config"]["latent_dim"] = 16
    sidecar_path(weights).write_text(json.dumps(side))
    with pytest.raises(InputError, match="shape"):
        load_weights(weights)
    sidecar_path(weights).write_text("{not json")
    with pytest.raises(InputError, match="malformed"):
        load_weights(weights)
    sidecar_path(weights).unlink()
    with pytest.raises(InputError, match="sidecar"):
        load_weights(weights)
    other = FMVAE(dataclasses.replace(PRESETS["tiny"].model, prior_hidden=(32,)))
    path = save_weights(other, tmp_path / "o.safetensors", WeightsInfo(PRESETS["tiny"].model, [0.4] * 3, [0.25] * 3))
    with pytest.raises(InputError, match="missing|unexpected"):
        load_weights(path)


def test_model_is_loaded_only_to_embed(tmp_path, weights):
    """Building the embedder reads the sidecar and hashes the file (the cache identity) but loads no
    model, so a run served from the feature cache never builds one; a broken tensor file is still
    reported, with its name, on the first crop."""
    embedder = FMVAEEmbedder(weights, device="cpu")
    assert embedder._encoder is None and embedder.identity.startswith("fmvae-") and embedder.dim == 8
    embedder.embed_crops(np.zeros((1, 64, 64, 3), np.uint8))
    assert embedder._encoder is not None
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not safetensors")
    sidecar_path(broken).write_text(sidecar_path(weights).read_text())
    lazy = FMVAEEmbedder(broken, device="cpu")
    with pytest.raises(InputError, match="broken.safetensors"):
        lazy.embed_crops(np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(InputError, match="weights file not found"):
        FMVAEEmbedder(tmp_path / "missing.safetensors")


def _edit_sidecar(weights, change):
    side = json.loads(sidecar_path(weights).read_text())
    change(side)
    sidecar_path(weights).write_text(json.dumps(side))


def _set(path, value):
    def change(side):
        *parents, last = path
        for key in parents:
            side = side[key]
        side[last] = value
    return change


@pytest.mark.parametrize("change, problem", [
    (_set(("model_config", "image_size"), 0), "image_size must be positive"),
    (_set(("model_config", "latent_dim"), "8"), "latent_dim must be an integer"),
    (_set(("model_config", "latent_dim"), 1e9), "latent_dim must be an integer"),
    (_set(("model_config", "prior_hidden"), [32, "x"]), "prior_hidden"),
    (_set(("model_config",), [1, 2]), "JSON object"),
    (_set(("normalisation", "std"), [0.25, 0.0, 0.25]), "std must be positive"),
    (_set(("normalisation", "mean"), [0.4, float("nan"), 0.4]), "3 finite numbers"),
    (_set(("normalisation", "std"), "0.25"), "3 finite numbers"),
    (_set(("thresholds",), {"euclidean": float("nan")}), "thresholds must map cosine / euclidean to finite distances > 0"),
    (_set(("thresholds",), {"euclidean": "3"}), "thresholds must map cosine / euclidean to finite distances > 0"),
    (_set(("thresholds",), [3.0]), "thresholds must map cosine / euclidean"),
])
def test_a_bad_sidecar_is_one_input_error_naming_it(weights, change, problem):
    _edit_sidecar(weights, change)
    for load in (load_weights, lambda path: FMVAEEmbedder(path, device="cpu")):
        with pytest.raises(InputError, match=problem) as err:
            load(weights)
        assert err.value.path == str(sidecar_path(weights))


@pytest.mark.parametrize("field, value", [("width", 64.0), ("latent_dim", 10 ** 9), ("image_size", 2 ** 20),
                                          ("width", 1e308), ("image_size", 2 ** 40)])
def test_a_sidecar_claiming_a_huge_model_is_refused_before_building_it(weights, monkeypatch, field, value):
    # Building a model from such a sidecar would allocate gigabytes: it must be compared with the
    # tensor file's header first, so FMVAE is never constructed on a real device.
    _edit_sidecar(weights, _set(("model_config", field), value))
    import fmtrack.model.weights as module

    built = []
    original = module.FMVAE
    monkeypatch.setattr(module, "FMVAE", lambda config: built.append(torch.empty(0).device) or original(config))
    with pytest.raises(InputError, match="shape|missing|unexpected|no buildable model") as err:
        load_weights(weights)
    assert err.value.path in (str(weights), str(sidecar_path(weights)))
    assert all(device.type == "meta" for device in built)


def test_a_truncated_tensor_file_is_one_input_error(weights):
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(InputError, match="not a readable safetensors file") as err:
        load_weights(weights)
    assert err.value.path == str(weights)


def test_identity_changes_with_tensors_sidecar_and_precision(tmp_path, weights):
    """The feature-cache key must change with anything that changes the features."""
    base = FMVAEEmbedder(weights, device="cpu").identity
    assert FMVAEEmbedder(weights, device="cpu").identity == base  # stable
    assert FMVAEEmbedder(weights, device="cpu", precision="bf16").identity != base
    _edit_sidecar(weights, _set(("normalisation", "std"), [0.25, 0.25, 0.3]))
    assert FMVAEEmbedder(weights, device="cpu").identity != base
    _edit_sidecar(weights, _set(("normalisation", "std"), [0.25, 0.25, 0.25]))
    assert FMVAEEmbedder(weights, device="cpu").identity == base
    _edit_sidecar(weights, _set(("provenance",), {"note": "thresholds and notes change no feature"}))
    assert FMVAEEmbedder(weights, device="cpu").identity == base
    model, info = load_weights(weights)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert FMVAEEmbedder(save_weights(model, tmp_path / "changed.safetensors", info), device="cpu").identity != base


def test_threads_are_set_when_the_model_loads(weights):
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        embedder = FMVAEEmbedder(weights, device="cpu", threads=1)
        assert torch.get_num_threads() == 2  # nothing changes until a model is needed
        embedder.embed_crops(np.zeros((1, 64, 64, 3), np.uint8))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        FMVAEEmbedder(weights, device="cpu", threads=None).embed_crops(np.zeros((1, 64, 64, 3), np.uint8))
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="threads"):
            FMVAEEmbedder(weights, device="cpu", threads=0)
    finally:
        torch.set_num_threads(previous)
