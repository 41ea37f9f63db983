"""Many live streams: Ray actors each holding the trackers of a shard of stream ids.

>>> router = StreamRouter(shards=2, config="bytetrack")       # starts 2 actors (Ray must be installed)
>>> tracks = router.update("cam-7", boxes, scores)             # [(track_id, tlwh, detection), ...]
>>> router.move("cam-7", to_shard=0)                           # snapshot on its actor, restore on 0
>>> router.close()

A stream's frames must arrive in order; the router sends every frame of a stream to one actor, whose
calls run one at a time in the order they were sent, so a stream's outputs are exactly those of a
plain :class:`fmtrack.Tracker` fed the same frames, however streams are spread or moved.
"""

from __future__ import annotations

import numbers
import zlib
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..tracker import Tracker, TrackerConfig, preset
from .cluster import get, require_ray


class StreamTrack(NamedTuple):
    """A reported track of one stream frame: tlwh (4,) float pixels; detection: row of the frame's
    ``boxes`` it was matched to, or -1 when coasting (or when the tracker does not say)."""

    track_id: int
    tlwh: np.ndarray
    detection: int


class StreamFrame(NamedTuple):
    """One frame of one stream: boxes (N, 4) float tlwh pixels, scores (N,) or None, features (N, D) or None."""

    stream_id: Hashable
    boxes: np.ndarray
    scores: np.ndarray | None = None
    features: np.ndarray | None = None


class StreamShard:
    """The trackers of a set of streams, created on a stream's first frame from one configuration.

    A plain object (used in-process by tests and the simulation's baseline); :class:`StreamRouter`
    runs it as a Ray actor.
    """

    def __init__(self, config: TrackerConfig | str = "bytetrack", frame_rate: float | None = None):
        config = preset(config) if isinstance(config, str) else config
        self.config = config if frame_rate is None else config.at_frame_rate(frame_rate)
        self.trackers: dict[Hashable, Tracker] = {}

    def update(self, stream_id: Hashable, boxes: np.ndarray, scores: np.ndarray | None = None,
               features: np.ndarray | None = None) -> list[StreamTrack]:
        """Advance ``stream_id`` by one frame (see :meth:`fmtrack.Tracker.update` for the arrays)."""
        tracker = self.trackers.get(stream_id)
        if tracker is None:
            tracker = self.trackers[stream_id] = Tracker(self.config)
        return [StreamTrack(t.track_id, t.tlwh, getattr(t, "detection", -1))
                for t in tracker.update(boxes, scores, features)]

    def update_many(self, frames: Sequence[StreamFrame]) -> list[list[StreamTrack]]:
        """:meth:`update` for several frames (of distinct or successive stream frames) in one call."""
        return [self.update(*frame) for frame in frames]

    def detach(self, stream_id: Hashable) -> dict[str, np.ndarray]:
        """Remove a stream and return its tracker's snapshot (for :meth:`attach` elsewhere)."""
        if not hasattr(Tracker, "snapshot"):
            raise ValueError("moving a stream needs Tracker.snapshot(), which this fmtrack's tracker lacks")
        if stream_id not in self.trackers:
            raise ValueError(f"stream {stream_id!r} is not held here")
        return self.trackers.pop(stream_id).snapshot()

    def attach(self, stream_id: Hashable, state: dict[str, np.ndarray]) -> None:
        """Continue a stream from the snapshot :meth:`detach` returned."""
        if stream_id in self.trackers:
            raise ValueError(f"stream {stream_id!r} is already held here")
        self.trackers[stream_id] = Tracker.from_snapshot(state)

    def close(self, stream_id: Hashable) -> None:
        """Forget a stream (its next frame starts a new tracker)."""
        self.trackers.pop(stream_id, None)

    def stream_ids(self) -> list[Hashable]:
        return list(self.trackers)


def default_shard(stream_id: Hashable, shards: int) -> int:
    """The shard a stream starts on: CRC-32 of its repr, stable across processes and runs (Python's
    own hash of a string is salted per process). Ids a dict takes as one key take one shard: 7,
    np.int64(7) and 7.0 alike, np.str_("a") as "a"."""
    return zlib.crc32(_canonical_repr(stream_id).encode()) % shards


def _canonical_repr(stream_id: Hashable) -> str:
    """repr of the plain Python value equal to ``stream_id`` (numpy scalars and whole floats as ints)."""
    if isinstance(stream_id, numbers.Real) and not isinstance(stream_id, numbers.Integral):
        value = float(stream_id)
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(stream_id, (numbers.Integral, np.bool_)):
        return repr(int(stream_id))
    if isinstance(stream_id, str):
        return repr(str(stream_id))
    return repr(stream_id)


class StreamRouter:
    """Routes each stream's frames to the Ray actor (a :class:`StreamShard`) holding its tracker.

    shards: actors to start (each reserves ``cpus_per_shard`` CPUs). Ray must be initialised, or a
    local instance is started by Ray itself on the first actor.
    """

    def __init__(self, shards: int, config: TrackerConfig | str = "bytetrack", frame_rate: float | None = None,
                 cpus_per_shard: float = 1.0):
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        self._ray = require_ray()
        actor = self._ray.remote(num_cpus=cpus_per_shard)(StreamShard)
        self.actors = [actor.remote(config, frame_rate) for _ in range(shards)]
        self._moved: dict[Hashable, int] = {}

    def shard_of(self, stream_id: Hashable) -> int:
        """Index of the actor holding ``stream_id`` (where it was moved, else :func:`default_shard`)."""
        moved = self._moved.get(stream_id)
        return default_shard(stream_id, len(self.actors)) if moved is None else moved

    def submit(self, stream_id: Hashable, boxes: np.ndarray, scores: np.ndarray | None = None,
               features: np.ndarray | None = None) -> Any:
        """Send one frame without waiting: a Ray ObjectRef of its list[StreamTrack]."""
        return self.actors[self.shard_of(stream_id)].update.remote(stream_id, boxes, scores, features)

    def update(self, stream_id: Hashable, boxes: np.ndarray, scores: np.ndarray | None = None,
               features: np.ndarray | None = None) -> list[StreamTrack]:
        """One frame of one stream, waited for."""
        return get(self._ray, self.submit(stream_id, boxes, scores, features))

    def submit_many(self, frames: Sequence[StreamFrame]) -> list[tuple[Any, list[int]]]:
        """Send frames as one call per actor: [(ObjectRef of the outputs, positions in ``frames``)]."""
        by_shard: dict[int, list[int]] = {}
        for position, frame in enumerate(frames):
            by_shard.setdefault(self.shard_of(frame.stream_id), []).append(position)
        return [(self.actors[shard].update_many.remote([frames[p] for p in positions]), positions)
                for shard, positions in by_shard.items()]

    def update_many(self, frames: Sequence[StreamFrame]) -> list[list[StreamTrack]]:
        """Outputs of ``frames`` (one call per actor), in the order given."""
        outputs: list[list[StreamTrack]] = [[] for _ in frames]
        for ref, positions in self.submit_many(frames):
            for position, tracks in zip(positions, get(self._ray, ref)):
                outputs[position] = tracks
        return outputs

    def move(self, stream_id: Hashable, to_shard: int) -> None:
        """Move a stream's tracker to actor ``to_shard`` (snapshot there, restore here); frames sent
        before the move are processed first, frames after it go to the new actor."""
        if not 0 <= to_shard < len(self.actors):
            raise ValueError(f"to_shard must be in [0, {len(self.actors)}), got {to_shard}")
        source = self.shard_of(stream_id)
        if source == to_shard:
            return
        state = self.actors[source].detach.remote(stream_id)
        get(self._ray, self.actors[to_shard].attach.remote(stream_id, state))
        self._moved[stream_id] = to_shard

    def close(self) -> None:
        """End the actors (their streams' state is dropped)."""
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []
