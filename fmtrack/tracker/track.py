"""Track state: the live tracks as arrays (hot path) and the Track snapshot handed to callers."""

from typing import NamedTuple

import numpy as np


class Track(NamedTuple):
    """A reported track in one frame (a named tuple: immutable and cheap to make every frame).

    track_id: 1, 2, 3, ... in the order tracks are first reported (a tentative track that dies
        unreported takes no id), or, with the config's ``identity_memory``, the id of a deleted
        track whose person the descriptor recognises in a new track (the id returns after a gap).
    tlwh: (4,) float64 box in pixels (left, top, width, height): the Kalman estimate after this
        frame's update, or the prediction when the track was missed in this frame.
    confirmed: whether the track has its ``n_init`` hits (reported tracks are, but for the
        warm-up frames of presets that report tentative ones).
    time_since_update: frames since the last matched detection (0: matched in this frame).
    hits: detections matched over the track's life, the birth detection included.
    age: frames since birth.
    score: confidence of the last matched detection (as the tracker saw it, after any score map).
    detection: the row of the ``boxes`` passed to this frame's ``update()`` that the track
        matched (before any filtering by the tracker), or -1 when it was not matched (coasting).
    """

    track_id: int
    tlwh: np.ndarray
    confirmed: bool
    time_since_update: int
    hits: int
    age: int
    score: float
    detection: int


class TrackTable:
    """Struct of arrays over the T live tracks, kept in creation order.

    mean (T, 8) and covariance (T, 8, 8) are Kalman states; the rest are (T,) counters. ``hits``
    counts the birth detection; ``hit_streak`` counts matches since birth or since the last miss,
    not the birth detection itself (SORT's convention, so its min_hits carries over unchanged).
    ``track_id`` is 0 until the track is first reported; ``detection`` is this frame's matched input
    row or -1.
    """

    COLUMNS = ("mean", "covariance", "track_id", "slot", "hits", "hit_streak", "age",
               "time_since_update", "confirmed", "score", "detection")

    def __init__(self) -> None:
        self.mean = np.zeros((0, 8))
        self.covariance = np.zeros((0, 8, 8))
        self.track_id = np.zeros(0, dtype=np.int64)
        self.slot = np.zeros(0, dtype=np.int64)  # gallery slot
        self.hits = np.zeros(0, dtype=np.int64)
        self.hit_streak = np.zeros(0, dtype=np.int64)
        self.age = np.zeros(0, dtype=np.int64)
        self.time_since_update = np.zeros(0, dtype=np.int64)
        self.confirmed = np.zeros(0, dtype=bool)
        self.score = np.zeros(0)
        self.detection = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.track_id)

    def append(self, mean: np.ndarray, covariance: np.ndarray, slot: np.ndarray, score: np.ndarray,
               detection: np.ndarray, confirmed: bool) -> None:
        """Add K new tracks born from one detection each (not yet reported: no id)."""
        k = len(mean)
        ones = np.ones(k, dtype=np.int64)
        self.mean = np.concatenate([self.mean, mean])
        self.covariance = np.concatenate([self.covariance, covariance])
        self.track_id = np.concatenate([self.track_id, np.zeros(k, dtype=np.int64)])
        self.slot = np.concatenate([self.slot, slot])
        self.hits = np.concatenate([self.hits, ones])
        self.hit_streak = np.concatenate([self.hit_streak, np.zeros(k, dtype=np.int64)])
        self.age = np.concatenate([self.age, ones])
        self.time_since_update = np.concatenate([self.time_since_update, np.zeros(k, dtype=np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.full(k, confirmed)])
        self.score = np.concatenate([self.score, score])
        self.detection = np.concatenate([self.detection, detection])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the tracks where ``mask`` (T,) is False."""
        for name in self.COLUMNS:
            column = getattr(self, name)
            # compress: cheaper than a boolean index on the (T, 8) and (T, 8, 8) columns, dearer on (T,).
            setattr(self, name, column.compress(mask, axis=0) if column.ndim > 1 else column[mask])
