"""Issue 15's checks for the default configuration, printed from one run of `fmtrack eval`'s code.

- design set: the default `fmtrack run` configuration (the `fmtrack` preset; motion only where there
  are no frames, DeepSORT's features on MOT17-05-FRCNN) per sequence against the best peer (trackers'
  BoT-SORT, benchmarks/design_set_peers.csv): the mean and the number of sequences won;
- MOT17-05-FRCNN with DeepSORT's features: `fmtrack` against `deepsort`;
- evaluation (never tuned on): MOT17-09-FRCNN / SDP with DeepSORT's features and with the default
  model against the best peers (tests/reference/peer_rows.csv), MOT16-09 against `bytetrack`.

    python benchmarks/defaults_check.py [--preset fmtrack|FILE.json] [--out-dir runs/defaults-check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from fmtrack.benchmarks.evaluate import run_methods

HERE = Path(__file__).resolve().parent
DESIGN_MOT15 = ["ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "ETH-Sunnyday", "KITTI-13", "Venice-2"]


def _rows(csv: Path) -> pd.DataFrame:
    return pd.read_csv(csv, comment="#").set_index("sequence")


def _cells(preset: str, methods: list[str], seqs: list[str], out_dir: Path) -> pd.DataFrame:
    table = run_methods(methods, seqs, out_dir=out_dir, progress=False).table
    return table.rename(index={m: m.replace(preset, "P", 1) for m in methods}, level=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fmtrack", help="the default preset or a tuned preset file")
    parser.add_argument("--out-dir", default="runs/defaults-check", type=Path)
    args = parser.parse_args(argv)
    p = args.preset
    peers = _rows(HERE / "design_set_peers.csv")
    design = pd.concat([_cells(p, [p], DESIGN_MOT15, args.out_dir),
                        _cells(p, [f"{p}@features=deepsort", "deepsort"], ["MOT17-05-FRCNN"], args.out_dir)])
    ours = {seq: design.loc[("P" if seq != "MOT17-05-FRCNN" else "P@features=deepsort", seq)]
            for seq in peers.index}
    print("design set (IDF1 / MOTA / IDs / HOTA; best peer's IDF1):")
    for seq, row in ours.items():
        won = row["IDF1"] > peers.loc[seq, "best_peer_idf1"]
        print(f"  {seq:16s} {row['IDF1']:5.1f} / {row['MOTA']:5.1f} / {int(row['IDs']):3d} / {row['HOTA']:5.1f}"
              f"   peer {peers.loc[seq, 'best_peer_idf1']:5.1f}  {'won' if won else 'lost'}")
    mean = sum(r["IDF1"] for r in ours.values()) / len(ours)
    wins = sum(r["IDF1"] > peers.loc[s, "best_peer_idf1"] for s, r in ours.items())
    peer_mean = peers["best_peer_idf1"].mean()
    print(f"  mean IDF1 {mean:.2f} (best peer {peer_mean:.2f}: {mean - peer_mean:+.2f}; needs +2.0), "
          f"won {wins} of {len(ours)} (needs 6)")
    deep, ours05 = design.loc[("deepsort", "MOT17-05-FRCNN")], ours["MOT17-05-FRCNN"]
    print(f"MOT17-05-FRCNN, DeepSORT features: {p} {ours05['IDF1']:.1f} IDF1 / {int(ours05['IDs'])} IDs, "
          f"deepsort {deep['IDF1']:.1f} / {int(deep['IDs'])}")
    evaluation = _cells(p, [f"{p}@features=deepsort", p, "bytetrack"],
                        ["MOT17-09-FRCNN", "MOT17-09-SDP", "MOT16-09"], args.out_dir)
    best = _rows(Path(__file__).resolve().parents[1] / "tests" / "reference" / "peer_rows.csv")
    print("evaluation, never tuned on:")
    for seq in ["MOT17-09-FRCNN", "MOT17-09-SDP"]:
        for label, method in [("DeepSORT features", "P@features=deepsort"), ("default model", "P")]:
            row = evaluation.loc[(method, seq)]
            print(f"  {seq:15s} {label:17s} {row['IDF1']:5.1f} / {row['MOTA']:5.1f} / {int(row['IDs']):3d}"
                  f"   best peer {best.loc[seq, 'best_peer_idf1']} / {best.loc[seq, 'best_peer_ids']}")
    ours09, byte09 = evaluation.loc[("P", "MOT16-09")], evaluation.loc[("bytetrack", "MOT16-09")]
    print(f"  MOT16-09        default model     {ours09['IDF1']:5.1f} / {ours09['MOTA']:5.1f} / "
          f"{int(ours09['IDs']):3d}   bytetrack {byte09['IDF1']:.1f} / {byte09['MOTA']:.1f} / {int(byte09['IDs'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
