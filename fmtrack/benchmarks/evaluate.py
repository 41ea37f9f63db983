"""``fmtrack eval``: run methods over sequences (or take a results folder) and score them.

Layout of an evaluation folder::

    OUT/<method>/<SEQUENCE>.txt     MOTChallenge result files
    OUT/<method>/config.json        the TrackerConfig and features that produced them
    OUT/summary.csv, summary.md     the table (one row per method x sequence, plus OVERALL)

IDF1, MOTA, IDs and the other CLEAR/identity columns come from py-motmetrics (fmtrack.benchmarks.scoring,
the protocol the reference numbers were made with); HOTA, DetA and AssA from TrackEval on the written
result file (fmtrack.benchmarks.hota, the MOTChallenge devkit's preprocessing). On MOT15 both drop
zero-marked gt rows and agree; on MOT16/17 TrackEval also removes tracker boxes on distractors
flagged consider = 0 (docs/scoring.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import (InputError, SequenceInfo, atomic_write, find_sequence, read_ground_truth, read_results,
                  read_seqinfo, write_results)
from ..pipeline import track_sequence
from .methods import MethodUnavailable, load_inputs, parse_method
from .hota import evaluate_sequence, with_hota
from .scoring import COUNTS, accumulate, protocol_for, summarise


@dataclass
class Evaluation:
    """table: index (Method, Sequence), the paper's columns; skipped: why a cell could not run."""

    table: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    frames_per_second: dict[tuple[str, str], float] = field(default_factory=dict)


def results_frame(rows: np.ndarray) -> pd.DataFrame:
    """Tracker rows (N, 6) frame, id, left, top, width, height -> py-motmetrics' layout."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    index = pd.MultiIndex.from_arrays(rows[:, :2].astype(np.int64).T, names=["FrameId", "Id"])
    frame = pd.DataFrame(rows[:, 2:6], columns=["X", "Y", "Width", "Height"], index=index)
    frame["Confidence"] = 1.0
    return frame


def score_rows(info: SequenceInfo, rows: np.ndarray, label: str, hota: bool = False) -> pd.DataFrame:
    """One sequence's table row (index Method, Sequence) for tracker rows (N, 6); with ``hota`` also
    the HOTA, DetA and AssA columns (TrackEval, on the rows as a result file stores them)."""
    gt = read_ground_truth(info.gt_path, info.seq_length)
    protocol = protocol_for(info)
    table = _score([(info.name, accumulate(gt, results_frame(rows), info, protocol))],
                   [evaluate_sequence(info, rows, protocol)] if hota else None)
    return table.assign(Method=label).rename_axis("Sequence").reset_index().set_index(["Method", "Sequence"])


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label)


def refuse_repeats(names: list[str], what: str) -> None:
    """ValueError for a name given twice: its rows would be scored (and pooled) twice."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated[0]!r} is given twice")


def _folders(labels: list[str], out_dir: Path) -> list[Path]:
    """One folder per method under ``out_dir``: its label made safe for a file name, numbered (-2, -3,
    ...) where two labels make the same name (``pre/ok.json`` and ``pre_ok.json``), so neither
    overwrites the other's results. The same method twice is an error."""
    refuse_repeats(labels, "method")
    folders: list[Path] = []
    for label in labels:
        slug = _slug(label)
        name, k = slug, 1
        while out_dir / name in folders:
            k += 1
            name = f"{slug}-{k}"
        folders.append(out_dir / name)
    return folders


def _score(named: list[tuple[str, "object"]], hota: list[dict] | None = None) -> pd.DataFrame:
    table = summarise([acc for _, acc in named], [name for name, _ in named])
    return table if hota is None else with_hota(table, hota)


def run_methods(methods: list[str], sequences: list[str], data_root: str | Path | None = None,
                out_dir: str | Path = "runs/eval", progress: bool = True, hota: bool = True) -> Evaluation:
    """Track every sequence with every method, write the result files, score them (with ``hota``
    also by TrackEval's HOTA: about half as long again as py-motmetrics' scoring)."""
    out_dir = Path(out_dir)
    parsed = [parse_method(m) for m in methods]
    infos = [read_seqinfo(find_sequence(s, data_root)) for s in sequences]
    refuse_repeats([info.name for info in infos], "sequence")
    gts = {info.name: read_ground_truth(info.gt_path, info.seq_length) for info in infos}
    tables, skipped, speeds = [], [], {}
    for method, folder in zip(parsed, _folders([m.label for m in parsed], out_dir)):
        named, hota_results = [], []
        for info in infos:
            try:
                inputs = load_inputs(method, info, data_root, progress=progress)
            except MethodUnavailable as why:
                skipped.append(str(why))
                continue
            result = track_sequence(info, inputs.detections, method.config, inputs.embedder, progress,
                                    inputs.camera_motion)
            result_file = write_results(folder / f"{info.name}.txt", result.rows)
            speeds[(method.label, info.name)] = result.frames_per_second
            named.append((info.name, accumulate(gts[info.name], results_frame(result.rows), info,
                                                protocol_for(info))))
            if hota:
                hota_results.append(evaluate_sequence(info, result_file, protocol_for(info)))
        if not named:
            continue
        with atomic_write(folder / "config.json") as fh:
            json.dump({"method": method.label, "features": method.features,
                       "tracker": method.config.to_dict()}, fh, indent=2, default=str)
        tables.append(_score(named, hota_results if hota else None).assign(Method=method.label))
    if not tables:
        raise InputError(None, "nothing could be evaluated: " + "; ".join(skipped))
    table = pd.concat(tables).rename_axis("Sequence").reset_index().set_index(["Method", "Sequence"])
    return Evaluation(table, skipped, speeds)


def score_results_dir(results_dir: str | Path, sequences: list[str] | None = None,
                      data_root: str | Path | None = None, hota: bool = True) -> Evaluation:
    """Score the ``SEQUENCE.txt`` files of a folder (all of them, or the named sequences)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(results_dir, "is a file, not a results folder (give the folder of SEQUENCE.txt files)"
                         if results_dir.exists() else "results folder not found")
    if sequences:
        refuse_repeats(list(sequences), "sequence")
    files = ([results_dir / f"{s}.txt" for s in sequences] if sequences
             else sorted(results_dir.glob("*.txt")))
    if not files:
        raise InputError(results_dir, "no SEQUENCE.txt result files in this folder")
    named, hota_results = [], []
    for path in files:
        try:
            info = read_seqinfo(find_sequence(path.stem, data_root))
        except InputError as err:
            if sequences:
                raise
            raise InputError(path, f"not the result file of a sequence ({err}); name the sequences to "
                                   "score with --seqs") from None
        gt = read_ground_truth(info.gt_path, info.seq_length)
        named.append((info.name, accumulate(gt, read_results(path, info.seq_length), info, protocol_for(info))))
        if hota:
            hota_results.append(evaluate_sequence(info, path, protocol_for(info)))
    table = _score(named, hota_results if hota else None).assign(Method=results_dir.name)
    table = table.rename_axis("Sequence").reset_index().set_index(["Method", "Sequence"])
    return Evaluation(table)


IDS_RATIO = "IDs ratio"


def with_ids_ratio(table: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Add ``IDs ratio``: the baseline method's ID switches over each row's, per sequence (the paper's
    "2.48x fewer ID switches" than SORT is a ratio of 2.48). ``baseline`` is a Method label in ``table``."""
    methods = table.index.get_level_values("Method")
    if baseline not in set(methods):
        raise InputError(None, f"IDs baseline {baseline!r} is not one of the evaluated methods")
    base = table.xs(baseline, level="Method")["IDs"]
    sequences = table.index.get_level_values("Sequence")
    ratio = base.reindex(sequences).to_numpy() / np.maximum(table["IDs"].to_numpy(), 1)
    return table.assign(**{IDS_RATIO: ratio})


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Strings as MOTChallenge prints them: percentages and FAR to one decimal (FAR two), counts whole."""
    out = table.copy().astype(object)
    for col in table.columns:
        if col in COUNTS:
            out[col] = table[col].map(lambda v: f"{int(v)}")
        elif col == "FAR":
            out[col] = table[col].map(lambda v: f"{v:.2f}")
        elif col == IDS_RATIO:  # a row without switches counts one: its ratio is a lower bound
            out[col] = [f"{'>=' if ids == 0 else ''}{v:.2f}x" for v, ids in zip(table[col], table["IDs"])]
        else:
            out[col] = table[col].map(lambda v: f"{v:.1f}")
    return out


def render_markdown(table: pd.DataFrame) -> str:
    """The paper's columns as a GitHub Markdown table."""
    return markdown_table(format_table(table))


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table with the index levels as leading columns, values as printed by str()."""
    shown = table.reset_index()
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_tables(evaluation: Evaluation, out_dir: str | Path, stem: str = "summary") -> tuple[Path, Path]:
    """Write ``stem.csv`` (full precision) and ``stem.md`` atomically."""
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    with atomic_write(csv_path) as fh:
        evaluation.table.to_csv(fh, float_format="%.4f")
    with atomic_write(md_path) as fh:
        fh.write(render_markdown(evaluation.table))
    return csv_path, md_path
