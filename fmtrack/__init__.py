"""fmtrack: multi-object tracking of people with a label-free flat-manifold VAE descriptor.

For a video pipeline: ``VideoTracker().update(frame, boxes, scores)`` does per frame what
``fmtrack run`` does (the default preset and descriptor, camera motion, score mapping).
The bare tracker: ``Tracker(config).update(boxes, scores, features=None, camera_motion=None)``.
Importing the package loads neither torch nor pandas: ``VideoTracker`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tracker import PRESETS, Stage, Track, Tracker, TrackerConfig, preset

if TYPE_CHECKING:
    from .pipeline import VideoTracker

__version__ = "0.1.0"
__all__ = ["PRESETS", "Stage", "Track", "Tracker", "TrackerConfig", "VideoTracker", "preset"]


def __getattr__(name: str) -> Any:
    if name == "VideoTracker":  # PEP 562: the pipeline (OpenCV, the embedders) loads when first asked for
        from .pipeline import VideoTracker

        return VideoTracker
    raise AttributeError(f"module 'fmtrack' has no attribute {name!r}")
