"""``fmtrack bench streams``: N synthetic live streams served by 1, 2, ... Ray actors.

Stream ``i`` replays the detections (and, for appearance presets, DeepSORT's features) of a design-set
sequence, starting at a per-stream offset and looping. Frames arrive in ticks, one frame of every
stream per tick; each actor gets its shard's frames of a tick in one call. A frame's latency is the
time from its tick's start until its stream's tracks are back. The in-process row serves the same
ticks with one :class:`StreamShard` in this process, one stream after another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..benchmarks.methods import load_inputs, make_method
from ..io import Detections, find_sequence, read_seqinfo
from ..tracker import preset
from .cluster import get, ray_session
from .streams import StreamFrame, StreamRouter, StreamShard

# Design-set sequences (never the evaluation sequences MOT16-09 / MOT17-09); appearance presets use
# the one with DeepSORT's features.
MOTION_SOURCES = ("ADL-Rundle-6", "ETH-Bahnhof", "ETH-Sunnyday", "Venice-2", "MOT17-05-FRCNN")
FEATURE_SOURCES = ("MOT17-05-FRCNN",)
OFFSET_STEP = 53  # frames between successive streams' starting points


@dataclass(frozen=True)
class Source:
    """One sequence's detections (scores normalised as the preset's method does), frames 1..length."""

    name: str
    detections: Detections
    length: int


def load_sources(preset_name: str, data_root: str | Path | None = None) -> list[Source]:
    """The replayed sequences for a preset: detections and, for appearance presets, DeepSORT's features."""
    appearance = preset(preset_name).uses_appearance
    method = make_method(preset_name, preset_name, {}, "deepsort" if appearance else None)
    names = FEATURE_SOURCES if appearance else MOTION_SOURCES
    sources = []
    for name in names:
        info = read_seqinfo(find_sequence(name, data_root))
        inputs = load_inputs(method, info, data_root, progress=False)
        sources.append(Source(info.name, inputs.detections, info.seq_length))
    return sources


def stream_ticks(sources: list[Source], streams: int, frames: int, with_features: bool) -> list[list[StreamFrame]]:
    """``frames`` ticks of ``streams`` streams: tick t holds one StreamFrame per stream."""
    ticks = []
    for t in range(frames):
        tick = []
        for i in range(streams):
            source = sources[i % len(sources)]
            frame = 1 + (i * OFFSET_STEP + t) % source.length
            boxes, scores, features = source.detections.at(frame)
            tick.append(StreamFrame(f"stream-{i}", boxes, scores, features if with_features else None))
        ticks.append(tick)
    return ticks


def _in_process(ticks: list[list[StreamFrame]], preset_name: str) -> tuple[float, np.ndarray]:
    shard = StreamShard(preset_name)
    latencies = []
    start = time.perf_counter()
    for tick in ticks:
        tick_start = time.perf_counter()
        for frame in tick:
            shard.update(*frame)
            latencies.append(time.perf_counter() - tick_start)
    return time.perf_counter() - start, np.array(latencies)


def _on_actors(ray, ticks: list[list[StreamFrame]], preset_name: str, actors: int,
               warmup: int) -> tuple[float, np.ndarray]:
    router = StreamRouter(actors, preset_name)
    try:
        for tick in ticks[:warmup]:  # actor start-up and first calls are not what is measured
            router.update_many(tick)
        latencies = []
        start = time.perf_counter()
        for tick in ticks[warmup:]:
            tick_start = time.perf_counter()
            pending = {ref: len(positions) for ref, positions in router.submit_many(tick)}
            waiting = list(pending)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                get(ray, done)
                latencies += [time.perf_counter() - tick_start] * pending[done[0]]
        return time.perf_counter() - start, np.array(latencies)
    finally:
        router.close()


def simulate(streams: int = 16, frames: int = 300, actors: tuple[int, ...] = (1, 2),
             presets: tuple[str, ...] = ("bytetrack", "deepsort"), data_root: str | Path | None = None,
             address: str | None = None, warmup: int = 10) -> pd.DataFrame:
    """Aggregate frames/s (stream frames per second over all streams) and per-frame latency
    percentiles (ms), one row per preset and number of actors (0: in this process, no Ray)."""
    rows = []
    replayed = {name: load_sources(name, data_root) for name in presets}  # bad input fails before Ray starts
    with ray_session(max(actors), address) as ray:
        for preset_name, sources in replayed.items():
            with_features = sources[0].detections.features is not None
            ticks = stream_ticks(sources, streams, frames + warmup, with_features)
            runs = [(0, *_in_process(ticks[warmup:], preset_name))]
            runs += [(n, *_on_actors(ray, ticks, preset_name, n, warmup)) for n in actors]
            for n, seconds, latencies in runs:
                p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000.0
                rows.append({"preset": preset_name, "actors": n, "streams": streams, "frames": frames,
                             "frames/s": streams * frames / seconds, "p50 ms": p50, "p95 ms": p95, "p99 ms": p99})
    return pd.DataFrame(rows).set_index(["preset", "actors"])
