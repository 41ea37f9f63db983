"""Architecture: torchvision's VGG16 features layout, shapes, configs round-trip."""

import pytest
import torch
from torch import nn

from fmtrack.io import InputError
from fmtrack.model.config import ModelConfig
from fmtrack.training.config import PRESETS, TrainConfig
from fmtrack.model.network import FMVAE, load_vgg16_features, vgg16_features

CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
POOL_INDICES = [4, 9, 16, 23, 30]
# torchvision vgg16().features conv weight shapes, in order.
CONV_SHAPES = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
               (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]


def test_vgg16_features_layout_matches_torchvision():
    features = vgg16_features(ModelConfig())
    assert len(features) == 31
    for index, layer in enumerate(features):
        if index in CONV_INDICES:
            assert isinstance(layer, nn.Conv2d) and layer.kernel_size == (3, 3) and layer.padding == (1, 1)
        elif index in POOL_INDICES:
            assert isinstance(layer, nn.MaxPool2d) and layer.kernel_size == 2 and layer.stride == 2
        else:
            assert isinstance(layer, nn.ReLU)
    shapes = [tuple(features[i].weight.shape) for i in CONV_INDICES]
    assert shapes == [(out, inp, 3, 3) for out, inp in CONV_SHAPES]
    keys = set(features.state_dict())
    assert keys == {f"{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}


def test_imagenet_style_state_dict_loads_and_mismatch_is_input_error():
    model = FMVAE(ModelConfig())
    source = {f"features.{k}": torch.full_like(v, 0.5) for k, v in vgg16_features(ModelConfig()).state_dict().items()}
    load_vgg16_features(model.encoder, source)
    assert torch.equal(model.encoder.features[28].weight, source["features.28.weight"])
    with pytest.raises(InputError, match="features.0.weight"):
        load_vgg16_features(FMVAE(ModelConfig(width=0.25)).encoder, source)
    del source["features.26.bias"]
    with pytest.raises(InputError, match="missing VGG16 tensor features.26.bias"):
        load_vgg16_features(model.encoder, source)


def test_shapes_and_width_multiplier():
    config = PRESETS["tiny"].model
    model = FMVAE(config)
    mean, logvar = model.encode(torch.randn(5, 3, 64, 64))
    assert mean.shape == logvar.shape == (5, config.latent_dim)
    assert model.decode(mean).shape == (5, 3, 64, 64)
    assert model.encoder.features[0].out_channels == 8  # 64 * 1/8
    assert model.decoder.blocks[0].out_channels == 32   # 256 * 1/8
    full = sum(p.numel() for p in FMVAE(ModelConfig()).parameters())
    assert 18e6 < full < 20e6  # fp16 export stays under 40 MB


def test_decoder_depends_on_latent_at_initialisation():
    model = FMVAE(PRESETS["tiny"].model)
    z = torch.randn(4, 8)
    assert (model.decode(z) - model.decode(z + 1)).abs().mean() > 1e-2


def test_configs_round_trip_and_reject_unknown_keys():
    for preset in PRESETS.values():
        assert ModelConfig.from_dict(preset.model.to_dict()) == preset.model
        assert TrainConfig.from_dict(preset.train.to_dict()) == preset.train
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="jacobian"):
        TrainConfig(jacobian="exact")
