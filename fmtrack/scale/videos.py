"""``fmtrack eval --workers N``: (method x sequence) cells as Ray tasks, the same files and table as
the sequential :func:`fmtrack.benchmarks.evaluate.run_methods`; ``fmtrack run --seq A B ... --workers N``:
sequences as Ray tasks.

Each cell tracks one sequence with one method, writes its result file and returns its py-motmetrics
accumulator; the driver builds each method's table from the accumulators in the sequential order, so
the OVERALL row pools the same events. Caches (image descriptors, camera motion) are keyed by sequence:
one preparation task per sequence fills them before that sequence's caching cells start, so no two
tasks ever write one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..benchmarks.evaluate import Evaluation, _slug, refuse_repeats, results_frame
from ..benchmarks.methods import Method, MethodUnavailable, load_inputs, parse_method
from ..benchmarks.scoring import accumulate, protocol_for, summarise
from ..io import (InputError, SequenceInfo, atomic_write, find_sequence, read_ground_truth, read_seqinfo,
                  resolve_data_root, write_results)
from ..pipeline import track_sequence
from .cluster import get, ray_session


@dataclass(frozen=True)
class Cell:
    """One (method, sequence) outcome. accumulator: py-motmetrics' MOTAccumulator (None when skipped);
    hota: TrackEval's per-sequence result (None unless asked for); skipped: why it could not run."""

    accumulator: object | None = None
    hota: dict | None = None
    frames_per_second: float = 0.0
    skipped: str | None = None


def writes_cache(method: Method) -> bool:
    """Whether ``load_inputs`` computes and caches something for this method: an image descriptor
    (hsv, FMVAE weights) or camera motion."""
    features = method.features or ""
    from_images = features == "hsv" or features.endswith(".safetensors")
    return (from_images and method.config.uses_appearance) or method.config.camera_motion != "none"


def prepare_sequence(methods: list[Method], info: SequenceInfo, data_root: str | Path | None) -> None:
    """Fill the caches of every caching method on one sequence, one after another."""
    for method in methods:
        if writes_cache(method):
            try:
                load_inputs(method, info, data_root, progress=False)
            except MethodUnavailable:
                pass  # the cell reports it


def evaluate_cell(method: Method, info: SequenceInfo, data_root: str | Path | None, folder: Path,
                  hota: bool = False, _ready: object = None) -> Cell:
    """Track ``info`` with ``method``, write ``folder/SEQUENCE.txt`` and score it as run_methods does.
    ``_ready``: the sequence's preparation result, so Ray starts this task only after it."""
    try:
        inputs = load_inputs(method, info, data_root, progress=False)
    except MethodUnavailable as why:
        return Cell(skipped=str(why))
    result = track_sequence(info, inputs.detections, method.config, inputs.embedder, False, inputs.camera_motion)
    result_file = write_results(folder / f"{info.name}.txt", result.rows)
    gt = read_ground_truth(info.gt_path, info.seq_length)
    accumulator = accumulate(gt, results_frame(result.rows), info, protocol_for(info))
    hota_result = None
    if hota:
        from ..benchmarks.hota import evaluate_sequence

        hota_result = evaluate_sequence(info, result_file, protocol_for(info))
    return Cell(accumulator, hota_result, result.frames_per_second)


def run_methods_parallel(methods: list[str], sequences: list[str], data_root: str | Path | None = None,
                         out_dir: str | Path = "runs/eval", progress: bool = True, workers: int = 2,
                         address: str | None = None, hota: bool = False) -> Evaluation:
    """:func:`run_methods` with every (method, sequence) cell a Ray task.

    workers: CPUs of the local Ray instance started (and shut down) here; ignored when ``address``
    joins a running cluster (``auto``, ``HOST:6379``, ``ray://HOST:10001``), whose nodes need fmtrack
    and the data root at the same path. hota: also TrackEval's HOTA columns, as run_methods' ``hota``.
    """
    out_dir = Path(out_dir).absolute()
    parsed = [parse_method(m) for m in methods]
    # A local instance shares this working directory; a cluster's nodes get absolute paths.
    root = data_root if address is None else resolve_data_root(data_root).absolute()
    infos = [read_seqinfo(find_sequence(s, root)) for s in sequences]
    _refuse_shared_files([_slug(m.label) for m in parsed], "methods")
    refuse_repeats([info.name for info in infos], "sequence")
    with ray_session(workers, address) as ray:
        prepare = ray.remote(num_cpus=1)(prepare_sequence)
        cell = ray.remote(num_cpus=1)(evaluate_cell)
        ready = {info.name: prepare.remote([m for m in parsed if writes_cache(m)], info, root)
                 for info in infos if any(writes_cache(m) for m in parsed)}
        refs = {(i, j): cell.remote(method, info, root, out_dir / _slug(method.label), hota,
                                    ready.get(info.name) if writes_cache(method) else None)
                for i, method in enumerate(parsed) for j, info in enumerate(infos)}
        cells = dict(zip(refs, _gather(ray, list(refs.values()), list(ready.values()), progress)))
    return _assemble(parsed, infos, cells, out_dir, hota)


def _refuse_shared_files(names: list[str], what: str) -> None:
    """Two methods whose labels make one folder name would write one result file."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} named more than once (their tasks would write the same files): {repeated}")


def _gather(ray, refs: list, extra: list, progress: bool) -> list[Cell]:
    """The results of ``refs`` in order, with a progress bar over ``refs`` and ``extra``."""
    pending = refs + extra
    with tqdm(total=len(pending), desc="tasks", unit="task", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(len(done))
            get(ray, done)
    return get(ray, refs)


def _assemble(parsed: list[Method], infos: list[SequenceInfo], cells: dict[tuple[int, int], Cell],
              out_dir: Path, hota: bool) -> Evaluation:
    """The Evaluation run_methods builds, from the cells in its (method, sequence) order."""
    tables, skipped, speeds = [], [], {}
    for i, method in enumerate(parsed):
        folder = out_dir / _slug(method.label)
        done = []
        for j, info in enumerate(infos):
            cell = cells[(i, j)]
            if cell.skipped is not None:
                skipped.append(cell.skipped)
                continue
            speeds[(method.label, info.name)] = cell.frames_per_second
            done.append((info.name, cell))
        if not done:
            continue
        with atomic_write(folder / "config.json") as fh:
            json.dump({"method": method.label, "features": method.features,
                       "tracker": method.config.to_dict()}, fh, indent=2, default=str)
        table = summarise([c.accumulator for _, c in done], [name for name, _ in done])
        if hota:
            from ..benchmarks.hota import with_hota

            table = with_hota(table, [c.hota for _, c in done])
        tables.append(table.assign(Method=method.label))
    if not tables:
        raise InputError(None, "nothing could be evaluated: " + "; ".join(skipped))
    table = pd.concat(tables).rename_axis("Sequence").reset_index().set_index(["Method", "Sequence"])
    return Evaluation(table, skipped, speeds)


@dataclass(frozen=True)
class SequenceRun:
    """One sequence tracked by ``fmtrack run``: rows (N, 6) frame, id, left, top, width, height."""

    info: SequenceInfo
    path: Path
    rows: np.ndarray
    frames_per_second: float
    skipped_detections: int


def track_one(method: Method, info: SequenceInfo, data_root: str | Path | None, path: Path,
              det_path: str | Path | None = None, progress: bool = False) -> SequenceRun:
    """Track one sequence with one method and write its result file (``fmtrack run``'s work)."""
    inputs = load_inputs(method, info, data_root, det_path, progress=progress)
    result = track_sequence(info, inputs.detections, method.config, inputs.embedder, progress, inputs.camera_motion)
    write_results(path, result.rows)
    return SequenceRun(info, path, result.rows, result.frames_per_second, inputs.detections.skipped)


def track_sequences(method: Method, sequences: list[str], out_dir: str | Path, data_root: str | Path | None = None,
                    det_path: str | Path | None = None, workers: int = 1, address: str | None = None,
                    progress: bool = True) -> list[SequenceRun]:
    """``fmtrack run --seq A B ...``: each sequence to ``out_dir/SEQUENCE.txt``, in this process, or as Ray
    tasks when ``workers`` > 1 or ``address`` is given (each task writes only its own sequence's files)."""
    if det_path is not None and len(sequences) > 1:
        raise ValueError("--det gives one sequence's detections; name one sequence with it")
    out_dir = Path(out_dir).absolute()
    root = data_root if address is None else resolve_data_root(data_root).absolute()
    infos = [read_seqinfo(find_sequence(s, root)) for s in sequences]
    refuse_repeats([info.name for info in infos], "sequence")
    if workers <= 1 and address is None:
        return [track_one(method, info, root, out_dir / f"{info.name}.txt", det_path, progress) for info in infos]
    with ray_session(workers, address) as ray:
        task = ray.remote(num_cpus=1)(track_one)
        refs = [task.remote(method, info, root, out_dir / f"{info.name}.txt", det_path) for info in infos]
        return _gather(ray, refs, [], progress)
