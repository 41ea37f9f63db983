"""Running a tracker over a whole sequence: the one loop the CLI, evaluation and benchmarks share."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .embedder import Embedder
from .io import Detections, ImageSequence, SequenceInfo
from .tracker import Tracker, TrackerConfig
from .tracker.detections import select_detections


@dataclass(frozen=True)
class SequenceResult:
    """rows: (N, 6) float64 frame, track id, left, top, width, height (pixels)."""

    rows: np.ndarray
    frames: int
    seconds: float  # wall time of the whole loop (embedding included)
    skipped_detections: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def track_sequence(info: SequenceInfo, detections: Detections, config: TrackerConfig,
                   embedder: Embedder | None = None, progress: bool = False,
                   camera_motion: np.ndarray | None = None) -> SequenceResult:
    """Track frames 1..seqLength of a sequence and collect the reported boxes.

    camera_motion: (F, 2, 3) affines, entry f - 1 moving frame f - 1 pixels to frame f (optional).
    """
    if config.uses_appearance and embedder is None:
        raise ValueError(f"preset {config.name!r} uses appearance: give an embedder (e.g. --features FILE)")
    config = config.at_frame_rate(info.frame_rate)
    images = ImageSequence(info) if embedder is not None and embedder.needs_image and config.uses_appearance else None
    tracker = Tracker(config)
    rows: list[np.ndarray] = []
    start = time.perf_counter()
    for frame in tqdm(range(1, info.seq_length + 1), desc=info.name, disable=not progress, unit="frame"):
        boxes, scores, _ = detections.at(frame)
        features = None
        if config.uses_appearance:
            # Embed only what the tracker will keep: image embedders are the expensive part.
            keep = select_detections(boxes, scores, config)
            boxes, scores = boxes[keep], scores[keep]
            features = embedder.embed(images[frame] if images is not None else None, boxes, frame)
        motion = None if camera_motion is None else camera_motion[frame - 1]
        for track in tracker.update(boxes, scores, features, motion):
            rows.append(np.array([frame, track.track_id, *track.tlwh]))
    seconds = time.perf_counter() - start
    table = np.vstack(rows) if rows else np.zeros((0, 6))
    return SequenceResult(table, info.seq_length, seconds, tracker.skipped_detections)
