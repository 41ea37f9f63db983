"""Label-free training of the VHP-FMVAE appearance model: config, network, objective, crops, trainer, weights."""

from .config import PRESETS, ModelConfig, Preset, TrainConfig
from .crops import CropSet, cut_crops, load_crops, save_crops, synthetic_crops
from .model import FMVAE
from .trainer import Trainer, train
from .weights import WeightsInfo, load_weights, save_weights

__all__ = ["FMVAE", "PRESETS", "CropSet", "ModelConfig", "Preset", "TrainConfig", "Trainer", "WeightsInfo",
           "cut_crops", "load_crops", "load_weights", "save_crops", "save_weights", "synthetic_crops", "train"]
