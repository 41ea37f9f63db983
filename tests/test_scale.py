"""fmtrack.scale: Ray tasks give the sequential evaluation's files and table; streams served by one
actor, two actors, or moved between actors mid-stream give a plain Tracker's outputs per stream."""

from __future__ import annotations

import filecmp
import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fmtrack.cli import main
from fmtrack.scale.simulation import load_sources, stream_ticks
from fmtrack.scale.streams import StreamShard, default_shard
from fmtrack.tracker import Tracker

HAS_SNAPSHOT = hasattr(Tracker, "snapshot")
needs_snapshot = pytest.mark.skipif(not HAS_SNAPSHOT, reason="Tracker.snapshot()/from_snapshot() not in this tree")
# Design-set sequences small enough for a test, plus TUD-Campus (the one with images).
SEQUENCES = ["TUD-Campus", "KITTI-13", "ETH-Sunnyday"]


def _plain(ticks, preset_name: str) -> dict[str, list]:
    """Per stream, what a Tracker of its own reports each frame: (track_id, tlwh, detection)."""
    trackers, out = {}, {}
    for tick in ticks:
        for frame in tick:
            tracker = trackers.setdefault(frame.stream_id, Tracker(preset_name))
            out.setdefault(frame.stream_id, []).append(
                [(t.track_id, t.tlwh, getattr(t, "detection", -1)) for t in tracker.update(*frame[1:])])
    return out


def _assert_same(served: dict[str, list], plain: dict[str, list]) -> None:
    assert served.keys() == plain.keys()
    for stream_id, frames in plain.items():
        assert len(served[stream_id]) == len(frames)
        for t, (got, want) in enumerate(zip(served[stream_id], frames)):
            assert [(i, d) for i, _, d in got] == [(i, d) for i, _, d in want], (stream_id, t)
            for (_, box, _), (_, ref, _) in zip(got, want):
                np.testing.assert_array_equal(box, ref)


def _collect(outputs: dict[str, list], tick, results) -> None:
    for frame, tracks in zip(tick, results):
        outputs.setdefault(frame.stream_id, []).append([tuple(t) for t in tracks])


@pytest.fixture(scope="module", params=["bytetrack", "deepsort"])
def streams(request, data_root):
    """(preset, 40 ticks of 6 streams, each stream's plain-Tracker outputs); deepsort replays features."""
    sources = load_sources(request.param, data_root)
    ticks = stream_ticks(sources, streams=6, frames=40, with_features=request.param == "deepsort")
    return request.param, ticks, _plain(ticks, request.param)


def test_ids_a_dict_takes_as_one_stream_go_to_one_shard():
    """7 and np.int64(7) went to different actors, each holding a tracker of half the stream."""
    for same in ([7, np.int64(7), 7.0, np.float32(7.0)], ["cam", np.str_("cam")], [1, True, np.bool_(True)]):
        assert len({default_shard(stream_id, 3) for stream_id in same}) == 1, same
        assert len(set(same)) == 1  # the router's own dict already took them as one key
    assert default_shard(2.5, 7) == default_shard(np.float64(2.5), 7)


def test_default_shard_is_stable_across_processes_and_uses_every_shard():
    ids = [f"cam-{i}" for i in range(64)] + list(range(16))
    here = [default_shard(s, 3) for s in ids]
    code = ("import sys; from fmtrack.scale.streams import default_shard; "
            f"print([default_shard(s, 3) for s in {ids!r}])")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).parents[1])}
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert there.stdout.strip() == str(here)
    assert set(here) == {0, 1, 2}


def test_one_shard_serving_interleaved_streams_matches_plain_trackers(streams):
    preset_name, ticks, plain = streams
    shard, served = StreamShard(preset_name), {}
    for tick in ticks:
        _collect(served, tick, shard.update_many(tick))
    _assert_same(served, plain)


@needs_snapshot
def test_moving_a_stream_between_shards_mid_stream_keeps_its_outputs(streams):
    preset_name, ticks, plain = streams
    shards, home, served = [StreamShard(preset_name), StreamShard(preset_name)], {}, {}
    for t, tick in enumerate(ticks):
        if t in (13, 27):  # every stream changes shard, twice, with live tracks
            for stream_id in list(home):
                src = home[stream_id]
                shards[1 - src].attach(stream_id, shards[src].detach(stream_id))
                home[stream_id] = 1 - src
        for frame in tick:
            home.setdefault(frame.stream_id, 0)
            _collect(served, [frame], [shards[home[frame.stream_id]].update(*frame)])
    _assert_same(served, plain)


def test_detach_names_what_is_missing():
    shard = StreamShard("sort")
    with pytest.raises(ValueError, match="not held here|lacks"):
        shard.detach("nowhere")


# -- on a local Ray instance --------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """One local Ray instance (2 CPUs) for this module, with its own feature/camera-motion cache."""
    pytest.importorskip("ray", reason="Ray not installed (pip install 'fmtrack[ray]')")
    from fmtrack.scale.cluster import ray_session

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMTRACK_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("OMP_NUM_THREADS", "1")
        start = time.perf_counter()
        with ray_session(2) as ray:
            print(f"\nlocal Ray instance started in {time.perf_counter() - start:.1f} s")
            yield ray


def _served_by_router(ray_instance, preset_name, ticks, shards, moves=()):
    from fmtrack.scale.streams import StreamRouter

    router, served = StreamRouter(shards, preset_name), {}
    try:
        for t, tick in enumerate(ticks):
            if t in moves:
                for frame in tick:
                    router.move(frame.stream_id, 1 - router.shard_of(frame.stream_id))
            _collect(served, tick, router.update_many(tick))
        return served
    finally:
        router.close()


@pytest.mark.slow
def test_streams_on_one_or_two_actors_match_plain_trackers(ray_instance, streams):
    preset_name, ticks, plain = streams
    _assert_same(_served_by_router(ray_instance, preset_name, ticks, 1), plain)
    _assert_same(_served_by_router(ray_instance, preset_name, ticks, 2), plain)


@pytest.mark.slow
@needs_snapshot
def test_streams_moved_between_actors_mid_stream_match_plain_trackers(ray_instance, streams):
    preset_name, ticks, plain = streams
    _assert_same(_served_by_router(ray_instance, preset_name, ticks, 2, moves=(13, 27)), plain)


def _same_evaluation(sequential, parallel, seq_dir: Path, par_dir: Path) -> None:
    pd.testing.assert_frame_equal(sequential.table, parallel.table, check_exact=True)
    assert sequential.skipped == parallel.skipped
    seq_files = sorted(p.relative_to(seq_dir) for p in seq_dir.rglob("*") if p.is_file())
    assert seq_files == sorted(p.relative_to(par_dir) for p in par_dir.rglob("*") if p.is_file())
    for name in seq_files:
        assert filecmp.cmp(seq_dir / name, par_dir / name, shallow=False), name


def _scoring_options() -> dict:
    """run_methods' HOTA switch where it has one, so both runs score the same columns."""
    from fmtrack.benchmarks.evaluate import run_methods

    return {"hota": True} if "hota" in inspect.signature(run_methods).parameters else {}


@pytest.mark.slow
def test_parallel_eval_writes_the_sequential_files_and_table(ray_instance, data_root, tmp_path):
    """Motion-only presets on three sequences, plus deepsort, which has no features for them: the same
    rows, files and skipped notes from 2 Ray workers as from run_methods."""
    from fmtrack.benchmarks.evaluate import run_methods, write_tables
    from fmtrack.scale.videos import run_methods_parallel

    methods = ["bytetrack", "sort@min_confidence=0.3", "deepsort"]
    options = _scoring_options()
    sequential = run_methods(methods, SEQUENCES, data_root, tmp_path / "seq", progress=False, **options)
    parallel = run_methods_parallel(methods, SEQUENCES, data_root, tmp_path / "par", progress=False,
                                    workers=2, **options)
    assert len(parallel.skipped) == len(SEQUENCES)  # deepsort, once per sequence
    write_tables(sequential, tmp_path / "seq")
    write_tables(parallel, tmp_path / "par")
    _same_evaluation(sequential, parallel, tmp_path / "seq", tmp_path / "par")


@pytest.mark.slow
def test_parallel_eval_with_a_shared_camera_motion_cache(ray_instance, data_root, tmp_path):
    """Two methods needing one sequence's camera motion: filled once by its preparation task, then
    both cells read it; the result equals the sequential run's."""
    from fmtrack.benchmarks.evaluate import run_methods
    from fmtrack.scale.videos import run_methods_parallel

    methods = ["bytetrack@cmc=sof", "sort@cmc=sof"]
    options = _scoring_options()
    parallel = run_methods_parallel(methods, ["TUD-Campus"], data_root, tmp_path / "par", progress=False,
                                    workers=2, **options)
    cached = list(Path(os.environ["FMTRACK_CACHE"]).rglob("TUD-Campus-sof-*.npy"))
    assert len(cached) == 1
    sequential = run_methods(methods, ["TUD-Campus"], data_root, tmp_path / "seq", progress=False, **options)
    _same_evaluation(sequential, parallel, tmp_path / "seq", tmp_path / "par")


# -- command line -------------------------------------------------------------------------------

@pytest.mark.slow
def test_run_several_sequences_on_ray_writes_what_single_runs_write(ray_instance, data_root, tmp_path, capsys):
    names = ["KITTI-13", "ETH-Sunnyday"]
    common = ["--preset", "bytetrack", "--data-root", str(data_root), "--quiet", "--no-score"]
    for name in names:
        assert main(["run", "--seq", name, "--out", str(tmp_path / "one" / f"{name}.txt"), *common]) == 0
    assert main(["run", "--seq", *names, "--workers", "2", "--out", str(tmp_path / "ray"), *common]) == 0
    for name in names:
        assert filecmp.cmp(tmp_path / "one" / f"{name}.txt", tmp_path / "ray" / f"{name}.txt", shallow=False)
    out = capsys.readouterr().out
    for name in names:  # one line per sequence and run: "NAME: N boxes, M tracks ... -> PATH"
        assert out.count(f"{name}: ") == 2 and out.count(f"/{name}.txt\n") == 2


def test_workers_without_ray_says_how_to_install(monkeypatch, capsys, tmp_path, data_root):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["eval", "--methods", "sort", "--seqs", "TUD-Campus", "--workers", "2",
                 "--out-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "pip install 'fmtrack[ray]'" in err


@pytest.mark.slow
def test_eval_workers_flag_writes_the_sequential_summary(ray_instance, data_root, tmp_path):
    common = ["eval", "--methods", "sort", "bytetrack", "--seqs", "TUD-Campus", "KITTI-13",
              "--data-root", str(data_root), "--quiet"]
    assert main([*common, "--out-dir", str(tmp_path / "seq")]) == 0
    assert main([*common, "--out-dir", str(tmp_path / "ray"), "--workers", "2"]) == 0
    for name in ("summary.csv", "summary.md", "sort/KITTI-13.txt", "bytetrack/TUD-Campus.txt"):
        assert filecmp.cmp(tmp_path / "seq" / name, tmp_path / "ray" / name, shallow=False), name


def test_a_method_named_twice_is_refused_before_ray_starts(data_root, tmp_path):
    from fmtrack.scale.videos import run_methods_parallel

    with pytest.raises(ValueError, match=r"methods named more than once.*\['sort'\]"):
        run_methods_parallel(["sort", "bytetrack", "sort"], ["TUD-Campus"], data_root, tmp_path, workers=2)


def test_workers_with_results_is_refused(capsys, tmp_path):
    assert main(["eval", "--results", str(tmp_path), "--workers", "2"]) == 2
    assert "--results only scores" in capsys.readouterr().err
