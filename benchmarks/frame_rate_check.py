"""Defaults at lower frame rates: the sequences they were chosen on, at 1 / step of their rate, against the peers.

The defaults were chosen on sequences filmed at 10-30 fps; a user's camera may deliver 7. Each
sequence is cut to every step-th frame (fmtrack.benchmarks.frame_rate: links to the frames, filtered
detections, ground truth and DeepSORT features, under WORK_DIR/stepK/data) and tracked by
- the default configuration, as in benchmarks/defaults_check.py: the `fmtrack` preset with the
  shipped model where there are frames, motion only where there are none, DeepSORT's features
  where the data root has them (MOT17-05-FRCNN);
- the `bytetrack` preset;
- every importable peer with its constructor defaults (benchmarks/peers_design_set.py; `fmtrack[peers]`).

    python benchmarks/frame_rate_check.py [--steps 1 2 3 4] [--seqs ...] [--work-dir runs/frame-rate]
                                          [--data-root DIR] [--no-peers] [--no-hota]

Prints IDF1 per sequence and the mean for each step, the default against the best peer, and writes
WORK_DIR/frame_rate.csv (step, frame-rate factor, method, sequence, IDF1, MOTA, IDs, HOTA when scored).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from fmtrack.benchmarks.evaluate import run_methods
from fmtrack.benchmarks.frame_rate import subsample_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_design_set import DESIGN_SET, run_peers  # noqa: E402  (a sibling script)

# The sequences the defaults were chosen on: the design set, and the two with frames.
SEQUENCES = ["MOT16-11", "TUD-Campus", *DESIGN_SET]
DEFAULT = "default"


def _step_table(step: int, sequences: list[str], work_dir: Path, data_root: str | None, peers: bool,
                hota: bool) -> pd.DataFrame:
    """Long table (method, sequence, metrics) of every method at 1 / step of the frame rate."""
    root = work_dir / f"step{step}" / "data"
    for name in sequences:
        subsample_sequence(name, step, root, data_root)
    ours = run_methods(["fmtrack", "fmtrack@features=deepsort", "bytetrack"], sequences, root,
                       work_dir / f"step{step}" / "fmtrack", progress=False, hota=hota).table.reset_index()
    # The default configuration: DeepSORT's features where there are some, else the preset as it runs.
    with_features = ours[ours.Method == "fmtrack@features=deepsort"]
    default = pd.concat([with_features, ours[(ours.Method == "fmtrack") & ~ours.Sequence.isin(with_features.Sequence)]])
    tables = [default.assign(Method=DEFAULT), ours[ours.Method == "bytetrack"]]
    if peers:
        evaluation, skipped = run_peers(sequences, work_dir / f"step{step}" / "peers", str(root), hota)
        for note in skipped:
            print(f"skipped: {note}")
        if evaluation is not None:
            tables.append(evaluation.table.reset_index())
    table = pd.concat(tables)
    return table[table.Sequence != "OVERALL"].assign(step=step)


def _report(table: pd.DataFrame, sequences: list[str]) -> None:
    for step, part in table.groupby("step"):
        idf1 = part.pivot(index="Method", columns="Sequence", values="IDF1")[sequences]
        idf1["mean"] = idf1.mean(axis=1)
        peers = idf1.loc[[m for m in idf1.index if m not in (DEFAULT, "bytetrack")]]
        print(f"\n1/{step} of each sequence's frame rate: IDF1")
        print(idf1.sort_values("mean", ascending=False).round(1).to_string())
        if len(peers):
            best = peers["mean"].idxmax()
            won = int((idf1.loc[DEFAULT, sequences] > peers[sequences].max()).sum())
            print(f"default {idf1.loc[DEFAULT, 'mean']:.2f} against the best peer ({best}) "
                  f"{peers.loc[best, 'mean']:.2f}: {idf1.loc[DEFAULT, 'mean'] - peers.loc[best, 'mean']:+.2f}; "
                  f"above every peer on {won} of {len(sequences)} sequences")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 3, 4], help="keep every step-th frame")
    parser.add_argument("--seqs", nargs="+", default=SEQUENCES)
    parser.add_argument("--work-dir", default="runs/frame-rate", type=Path)
    parser.add_argument("--data-root")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-hota", action="store_true")
    args = parser.parse_args(argv)
    if any(step < 1 for step in args.steps):
        parser.error(f"--steps must be integers >= 1, got {args.steps}")
    # Expected for the text-only design sequences (the docstring says what runs there): not once per step.
    warnings.filterwarnings("ignore", message=".*has no frames: the fmtrack preset runs on motion alone")
    tables = []
    for step in args.steps:
        print(f"step {step}: tracking {len(args.seqs)} sequences at 1/{step} of their frame rate", flush=True)
        tables.append(_step_table(step, args.seqs, args.work_dir, args.data_root, not args.no_peers,
                                  not args.no_hota))
    table = pd.concat(tables)
    _report(table, args.seqs)
    columns = ["step", "Method", "Sequence", "IDF1", "MOTA", "IDs"] + (["HOTA"] if "HOTA" in table else [])
    out = args.work_dir / "frame_rate.csv"
    table[columns].to_csv(out, index=False, float_format="%.2f")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
