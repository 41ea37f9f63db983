"""Kalman-filter + Hungarian multi-object tracking (DeepSORT family): numpy, and scipy's assignment solver."""

from .boxes import to_tlwh
from .config import PRESETS, Stage, TrackerConfig, preset
from .track import Track
from .tracker import Tracker

__all__ = ["PRESETS", "Stage", "Track", "Tracker", "TrackerConfig", "preset", "to_tlwh"]
