"""The `fmtrack` preset's stage layouts on a sequence with appearance: docs/tuning.md's layout table.

    python benchmarks/fmtrack_layouts.py MOT16-11 default
    python benchmarks/fmtrack_layouts.py MOT17-05-FRCNN deepsort

Prints IDF1 / MOTA / IDs for the fused-first layout (no strict stage) and for a strict
appearance-only stage put first at several fractions of the descriptor's threshold, with max_age 60.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings

from fmtrack.benchmarks.evaluate import results_frame
from fmtrack.benchmarks.methods import load_inputs, parse_method
from fmtrack.benchmarks.scoring import accumulate, summarise
from fmtrack.io import find_sequence, read_ground_truth, read_seqinfo
from fmtrack.pipeline import track_sequence
from fmtrack.tracker import TrackerConfig


def main(sequence: str, features: str) -> None:
    info = read_seqinfo(find_sequence(sequence, None))
    method = parse_method(f"fmtrack@features={features}")
    inputs = load_inputs(method, info, None, progress=False)
    gt = read_ground_truth(info.gt_path, info.seq_length)

    def score(config: TrackerConfig, label: str) -> None:
        rows = track_sequence(info, inputs.detections, config, inputs.embedder,
                              camera_motion=inputs.camera_motion).rows
        row = summarise([accumulate(gt, results_frame(rows), info)], [sequence]).iloc[0]
        print(f"{sequence} {label:42s} {row['IDF1']:5.1f} / {row['MOTA']:5.1f} / {int(row['IDs'])}", flush=True)

    config = method.config.replace(max_age=60)
    strict, rest = config.stages[0], config.stages[1:]
    base = config.appearance_threshold
    score(config.replace(stages=rest), "fused first (no strict stage)")
    for factor in (0.4, 0.6, 0.8, 1.0):
        for cascade in (False, True):
            stage = dataclasses.replace(strict, max_cost=base * factor, threshold_factor=factor, cascade=cascade)
            score(config.replace(stages=(stage, *rest)), f"appearance first x{factor}" + (" cascade" if cascade else ""))


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(*sys.argv[1:3])
