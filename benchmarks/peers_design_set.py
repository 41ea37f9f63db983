"""Peer trackers on the design set, scored by fmtrack's scorer: the reference README's design-set table.

Runs, motion only with their constructor defaults and no frames (so no camera-motion compensation),
every public detection fed:
- trackers 2.6.1: ByteTrackTracker, BoTSORTTracker, McByteTracker, CBIoUTracker, OCSORTTracker;
- boxmot 25.0.0: ByteTrack, BotSort (no re-identification, no camera motion), OcSort.
A package that is not importable is skipped with a note (``pip install 'fmtrack[peers]'`` installs
trackers; boxmot needs torch and torchvision, so it is not in that extra).

    python benchmarks/peers_design_set.py [--seqs ...] [--out-dir runs/peers] [--no-hota]

Writes ``OUT/<peer>/<SEQ>.txt`` and ``OUT/summary.csv/.md`` (IDF1 / MOTA / IDs, HOTA unless
``--no-hota``, per sequence and OVERALL) and prints the mean IDF1 per peer. Zero-marked MOT15 gt rows
are dropped, as the MOTChallenge devkit does.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fmtrack.benchmarks.evaluate import Evaluation, format_table, score_results_dir, write_tables
from fmtrack.io import Detections, SequenceInfo, find_sequence, read_detections, read_seqinfo, write_results

DESIGN_SET = ["ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "ETH-Sunnyday", "KITTI-13",
              "Venice-2", "MOT17-05-FRCNN"]
# A peer: package it needs, and a function (detections of one sequence) -> rows (N, 6).
Peer = tuple[str, Callable[[Detections, SequenceInfo], np.ndarray]]


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    """tlwh (N, 4) pixels -> x1, y1, x2, y2."""
    return np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]])


def _rows(frame: int, xyxy: np.ndarray, ids: np.ndarray) -> np.ndarray:
    keep = ids >= 0  # trackers' unconfirmed tracks carry id -1 and are not reported
    xyxy, ids = xyxy[keep], ids[keep]
    return np.column_stack([np.full(len(ids), frame), ids, xyxy[:, :2], xyxy[:, 2:4] - xyxy[:, :2]])


def _trackers_peer(name: str) -> Callable[[Detections, SequenceInfo], np.ndarray]:
    def run(detections: Detections, info: SequenceInfo) -> np.ndarray:
        import supervision as sv
        import trackers

        tracker = getattr(trackers, name)()  # constructor defaults
        out = []
        for frame in range(1, info.seq_length + 1):
            boxes, scores, _ = detections.at(frame)
            dets = (sv.Detections(xyxy=_xyxy(boxes).astype(np.float32), confidence=scores.astype(np.float32))
                    if len(boxes) else sv.Detections.empty())
            tracked = tracker.update(dets)
            if len(tracked) and tracked.tracker_id is not None:
                out.append(_rows(frame, tracked.xyxy.astype(np.float64), np.asarray(tracked.tracker_id)))
        return np.vstack(out) if out else np.zeros((0, 6))

    return run


def _boxmot_peer(name: str, **settings) -> Callable[[Detections, SequenceInfo], np.ndarray]:
    def run(detections: Detections, info: SequenceInfo) -> np.ndarray:
        import boxmot

        tracker = getattr(boxmot, name)(**settings)
        out = []
        for frame in range(1, info.seq_length + 1):
            boxes, scores, _ = detections.at(frame)
            dets = np.column_stack([_xyxy(boxes), scores, np.zeros(len(boxes))]) if len(boxes) else np.zeros((0, 6))
            tracked = np.asarray(tracker.update(dets, None))  # x1, y1, x2, y2, id, conf, cls, det index
            if len(tracked):
                out.append(_rows(frame, tracked[:, :4], tracked[:, 4].astype(np.int64)))
        return np.vstack(out) if out else np.zeros((0, 6))

    return run


PEERS: dict[str, Peer] = {
    "trackers BoTSORTTracker": ("trackers", _trackers_peer("BoTSORTTracker")),
    "trackers McByteTracker": ("trackers", _trackers_peer("McByteTracker")),
    "trackers CBIoUTracker": ("trackers", _trackers_peer("CBIoUTracker")),
    "trackers ByteTrackTracker": ("trackers", _trackers_peer("ByteTrackTracker")),
    "trackers OCSORTTracker": ("trackers", _trackers_peer("OCSORTTracker")),
    "boxmot BoT-SORT (no ReID, no CMC)": ("boxmot", _boxmot_peer("BotSort", use_cmc=False, use_embeddings=False)),
    "boxmot ByteTrack": ("boxmot", _boxmot_peer("ByteTrack")),
    "boxmot OC-SORT": ("boxmot", _boxmot_peer("OcSort")),
}


def run_peers(sequences: list[str], out_dir: Path, data_root: str | None = None, hota: bool = True,
              peers: dict[str, Peer] = PEERS) -> tuple[Evaluation | None, list[str]]:
    """Run every importable peer on the sequences, write result files, score them with fmtrack's scorer."""
    infos = [read_seqinfo(find_sequence(s, data_root)) for s in sequences]
    tables, skipped = [], []
    for label, (package, run) in peers.items():
        if importlib.util.find_spec(package) is None:
            skipped.append(f"{label}: {package} is not installed")
            continue
        folder = out_dir / label.split(" (")[0].replace(" ", "-")
        for info in infos:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the peers warn about frames they are not given
                rows = run(read_detections(info.det_path, info.seq_length), info)
            write_results(folder / f"{info.name}.txt", rows)
        scored = score_results_dir(folder, [i.name for i in infos], data_root, hota=hota).table
        tables.append(scored.rename(index={folder.name: label}, level="Method"))
    if not tables:
        return None, skipped
    return Evaluation(pd.concat(tables)), skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seqs", nargs="+", default=DESIGN_SET)
    parser.add_argument("--out-dir", default="runs/peers")
    parser.add_argument("--data-root")
    parser.add_argument("--no-hota", action="store_true")
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), help="a subset (default: all importable)")
    args = parser.parse_args(argv)
    peers = {k: v for k, v in PEERS.items() if not args.peers or k in args.peers}
    evaluation, skipped = run_peers(args.seqs, Path(args.out_dir), args.data_root, not args.no_hota, peers)
    for note in skipped:
        print(f"skipped: {note}")
    if evaluation is None:
        print("no peer package is installed: pip install 'fmtrack[peers]'")
        return 0
    csv_path, md_path = write_tables(evaluation, args.out_dir)
    print(format_table(evaluation.table).to_string())
    per_sequence = evaluation.table.drop(index="OVERALL", level="Sequence", errors="ignore")
    print("mean IDF1 over the sequences:")
    print(per_sequence.groupby(level="Method", sort=False)["IDF1"].mean().round(1).to_string())
    print(f"wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
