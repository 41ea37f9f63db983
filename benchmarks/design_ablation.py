"""Which parts of a tuned `fmtrack` preset carry from the design set (Faster R-CNN scores) to MOT16-11
(DPM scores, frames, the shipped model): IDF1 per sequence for the preset, the preset plus each group
of the tuned file's parameters, and the whole tuned file. docs/tuning.md's ablation table.

    python benchmarks/design_ablation.py TUNED.json
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from fmtrack.benchmarks.tuning import TrialObjective, TuneSettings
from fmtrack.pipeline.preset_file import load_preset_file
from fmtrack.tracker.search_spaces import apply_parameters, get_parameter

SEQUENCES = ("ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "ETH-Sunnyday", "KITTI-13",
             "Venice-2", "MOT17-05-FRCNN", "MOT16-11")
GROUPS = {
    "C-BIoU buffers": ("stages.1.iou_buffer", "stages.2.iou_buffer", "stages.4.iou_buffer"),
    "score thresholds": ("high_confidence", "min_confidence"),
    "lifecycle": ("max_age", "n_init", "duplicate_iou"),
    "IoU thresholds": ("stages.1.max_cost", "stages.2.max_cost", "stages.4.max_cost"),
    "appearance": ("stages.0.max_cost", "stages.1.appearance_max", "stages.1.proximity", "stages.3.max_cost",
                   "ema_alpha"),
}


def main(tuned_path: str) -> None:
    objective = TrialObjective(TuneSettings("fmtrack", SEQUENCES, features="deepsort"))
    base, tuned = objective.method.config, load_preset_file(tuned_path)

    def show(label: str, config) -> None:
        scores = objective.score(config)
        design = np.mean([scores[s] for s in SEQUENCES[:8]])
        print(f"{label:34s} " + " ".join(f"{scores[s]:5.1f}" for s in SEQUENCES)
              + f" | design mean {design:5.2f}", flush=True)

    print(f"{'configuration':34s} " + " ".join(s[:5] for s in SEQUENCES))
    show("preset", base)
    for group, names in GROUPS.items():
        show(f"+ tuned {group}", apply_parameters(base, {n: get_parameter(tuned, n) for n in names}))
    everything_but = [n for g, names in GROUPS.items() if g != "score thresholds" for n in names]
    show("tuned, preset's score thresholds", apply_parameters(base, {n: get_parameter(tuned, n) for n in everything_but}))
    show("tuned file", tuned)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main(sys.argv[1])
