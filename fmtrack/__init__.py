"""fmtrack: multi-object tracking of people with a label-free flat-manifold VAE descriptor.

The streaming API: ``Tracker(config).update(boxes, scores, features=None, camera_motion=None)``.
"""

from .tracker import PRESETS, Stage, Track, Tracker, TrackerConfig, preset

__version__ = "0.1.0"
__all__ = ["PRESETS", "Stage", "Track", "Tracker", "TrackerConfig", "preset"]
