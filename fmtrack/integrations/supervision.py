"""fmtrack in a supervision pipeline, in place of ``trackers.ByteTrackTracker``.

>>> tracker = SupervisionTracker({"preset": "fmtrack"})      # kwargs of fmtrack.VideoTracker
>>> detections = tracker.update(detections, frame)           # sv.Detections in, sv.Detections out

Needs the optional extra: ``pip install "fmtrack[supervision]"``.

The rows returned follow roboflow/trackers' trackers (``SORTTracker``, ``ByteTrackTracker``): they
are copies of input rows with every field kept (xyxy, mask, confidence, class_id, data, metadata)
and ``tracker_id`` an int64 array; a track coasting without a detection gives no row; an empty
result has ``tracker_id`` of shape (0,). Two differences, both to save the caller a filter: rows
that belong to no reported track are left out (trackers returns them with ``tracker_id`` -1;
``keep_untracked=True`` does the same), and rows keep the input order (trackers' ByteTrack reorders).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

try:
    import supervision as sv
except ImportError as err:  # the extra is optional; say how to get it
    raise ImportError("fmtrack.integrations.supervision needs the supervision package: "
                      "pip install 'fmtrack[supervision]'") from err

from fmtrack.tracker.boxes import to_tlwh

__all__ = ["SupervisionTracker", "attach_tracker_ids"]


def attach_tracker_ids(detections: sv.Detections, tracks: Sequence[Any],
                       keep_untracked: bool = False) -> sv.Detections:
    """The rows of ``detections`` that reported tracks matched, with ``tracker_id`` set.

    tracks: fmtrack Tracks of this frame; ``track.detection`` is the row each matched (-1 coasting).
    keep_untracked: return every row in input order, ``tracker_id`` -1 where no track matched.
    """
    ids = np.full(len(detections), -1, dtype=np.int64)
    for track in tracks:
        row = getattr(track, "detection", None)
        if row is None:
            raise ValueError("tracks: a Track without a 'detection' index; this needs fmtrack's VideoTracker")
        if row >= 0:
            if row >= len(ids):
                raise ValueError(f"tracks: track {track.track_id} matched row {row}, but there are {len(ids)} rows")
            ids[row] = track.track_id
    keep = np.ones(len(ids), dtype=bool) if keep_untracked else ids >= 0
    result = detections[keep]  # boolean indexing copies every field
    result.tracker_id = ids[keep]
    return result


class SupervisionTracker:
    """An ``fmtrack.VideoTracker`` taking and returning ``sv.Detections`` (boxes xyxy pixels).

    tracker: a VideoTracker built with ``box_format="xyxy"`` (or "tlwh": boxes are converted), or
    a mapping of VideoTracker keyword arguments (``box_format`` is set to "xyxy"), or None with the
    keyword arguments given here. keep_untracked: also return the rows no track matched, with
    ``tracker_id`` -1 (trackers' convention). One tracker serves one stream.
    """

    def __init__(self, tracker: Any = None, *, keep_untracked: bool = False, **kwargs: Any):
        if tracker is None or isinstance(tracker, Mapping):
            options = {**(tracker or {}), **kwargs}
            if options.get("box_format", "xyxy") != "xyxy":
                raise ValueError(f"box_format: supervision boxes are xyxy, got {options['box_format']!r}")
            from fmtrack.pipeline import VideoTracker

            tracker = VideoTracker(**{**options, "box_format": "xyxy"})
        elif kwargs:
            raise ValueError(f"give a VideoTracker or keyword arguments, not both (got {sorted(kwargs)})")
        self.box_format = getattr(tracker, "box_format", None)
        if self.box_format not in ("xyxy", "tlwh"):
            raise ValueError(f"tracker: expected a VideoTracker with box_format 'xyxy' or 'tlwh', "
                             f"got {type(tracker).__name__} with box_format {self.box_format!r}")
        self.tracker = tracker
        self.keep_untracked = keep_untracked

    def update(self, detections: sv.Detections, frame: np.ndarray | None = None,
               features: np.ndarray | None = None) -> sv.Detections:
        """Advance one frame.

        detections: this frame's sv.Detections (xyxy pixels; confidence, class_id optional).
        frame: (H, W, 3) uint8 BGR, needed when the descriptor or camera motion uses the image.
        features: (N, D) precomputed appearance descriptors of the N rows, optional.
        Returns the matched rows with ``tracker_id`` (see the module docstring).
        """
        if not isinstance(detections, sv.Detections):
            raise ValueError(f"detections: expected supervision.Detections, got {type(detections).__name__}")
        boxes = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        if self.box_format == "tlwh":  # converted here, so checked as the xyxy they are (x2 < x1 named as such)
            boxes = to_tlwh(boxes, "xyxy")
        tracks = self.tracker.update(frame, boxes, detections.confidence, class_ids=detections.class_id,
                                     features=features)
        return attach_tracker_ids(detections, tracks, self.keep_untracked)

    def reset(self) -> None:
        """Forget every track (a new video): the next update starts from scratch."""
        self.tracker.reset()
