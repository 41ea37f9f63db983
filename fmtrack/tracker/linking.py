"""Label-free linking of detections between consecutive frames, cut at any doubt.

Used both to calibrate appearance thresholds and to mine training tracklets, with no labels: a
detection links to the next frame's detection only when the two are each other's best overlap.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .linear_assignment import iou_matrix


class FrameSortedBoxes(Protocol):
    """What the linker reads (``fmtrack.io.Detections`` fits): rows sorted by frame."""

    frames: np.ndarray  # (N,) int, 1-based frame of each row
    boxes: np.ndarray  # (N, 4) float, tlwh pixels

    def frame_slice(self, frame: int) -> slice: ...


def unambiguous_links(detections: FrameSortedBoxes, min_iou: float, max_competitor: float | None) -> np.ndarray:
    """(N,) row of each detection's unambiguous successor in the next frame, or -1."""
    successor = np.full(len(detections), -1, dtype=np.int64)
    for frame in np.unique(detections.frames):
        here, after = detections.frame_slice(int(frame)), detections.frame_slice(int(frame) + 1)
        if after.stop == after.start:
            continue
        iou = iou_matrix(detections.boxes[here], detections.boxes[after])
        best_next, best_prev = iou.argmax(axis=1), iou.argmax(axis=0)
        rows = np.arange(iou.shape[0])
        ok = (best_prev[best_next] == rows) & (iou[rows, best_next] >= min_iou)
        if max_competitor is not None:
            # No competitor: the pair's row and column hold no other overlap at max_competitor or more.
            strong = iou >= max_competitor
            ok &= strong.sum(axis=1) + strong.sum(axis=0)[best_next] - 2 == 0
        successor[rows[ok] + here.start] = best_next[ok] + after.start
    return successor
