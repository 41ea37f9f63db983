"""Scoring tracker output with py-motmetrics under the MOTChallenge protocols.

MOT16/17 protocol, as the reference numbers were made (../shared/reference/README.md): gt rows with
consider = 0 are dropped; tracker boxes matched at IoU >= 0.5 to distractor gt (person on vehicle,
static person, distractor, reflection) are removed (``motmetrics.preprocess.preprocessResult``);
then ``compare_to_groundtruth(gt, ts, 'iou', distth=0.5)``. On MOT16/17 every distractor row has
consider = 0, so the removal only acts on ground truth that flags distractors with consider = 1.
(Removing with all gt rows instead, as some devkit ports do, lowers SDP's FP from 111 to 25 for
DeepSORT and no longer matches the reference.)

MOT15 protocol: ground truth has no classes, and rows whose 7th column is 0 are ignore rows, dropped
as TrackEval (``zero_marked``) and py-motmetrics' MOTChallenge app (``min_confidence=1``) drop them;
every other row counts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ..io import Detections, SequenceInfo
from ..tracker.linear_assignment import iou_matrix, min_cost_matching
from .motmetrics_compat import motmetrics as mm

Protocol = Literal["mot16", "mot15"]

# Columns in the paper's / MOTChallenge's order: motmetrics name -> printed name.
COLUMNS = {
    "idf1": "IDF1", "idp": "IDP", "idr": "IDR", "recall": "Rcll", "precision": "Prcn",
    "far": "FAR", "mostly_tracked": "MT", "partially_tracked": "PT", "mostly_lost": "ML",
    "num_false_positives": "FP", "num_misses": "FN", "num_switches": "IDs",
    "num_fragmentations": "FM", "mota": "MOTA", "motp": "MOTP", "motal": "MOTAL",
}
PERCENT = ("IDF1", "IDP", "IDR", "Rcll", "Prcn", "MOTA", "MOTP", "MOTAL")
COUNTS = ("MT", "PT", "ML", "FP", "FN", "IDs", "FM")


def protocol_for(info: SequenceInfo) -> Protocol:
    """MOT15 sequences (and anything whose gt has no classes) use the classless protocol."""
    return "mot15" if "MOT15" in info.path.parts else "mot16"


def accumulate(gt: pd.DataFrame, results: pd.DataFrame, info: SequenceInfo | None,
               protocol: Protocol = "mot16") -> "mm.MOTAccumulator":
    """Match one sequence's results to its ground truth (both in py-motmetrics' layout)."""
    if protocol == "mot16":
        if info is None:
            raise ValueError("the MOT16 protocol needs the sequence's seqinfo.ini")
        gt = gt[gt["Confidence"] > 0]
        results = mm.preprocess.preprocessResult(results, gt, str(info.ini_path))
    else:
        gt = gt[gt["Confidence"] != 0]
    return mm.utils.compare_to_groundtruth(gt, results, "iou", distth=0.5)


def summarise(accumulators: list, names: list[str]) -> pd.DataFrame:
    """One row per sequence plus OVERALL, with the paper's columns.

    Percentages are in percent; MOTP is printed as MOTChallenge does, (1 - mean(1 - IoU)) * 100;
    FAR is false positives per frame; MOTAL is the devkit's MOTA with log10(IDs + 1) in place of IDs
    (py-motmetrics has no MOTAL).
    """
    metrics = [m for m in COLUMNS if m not in ("far", "motal")]
    summary = mm.metrics.create().compute_many(
        accumulators, metrics=metrics + ["num_frames", "num_objects"], names=names,
        generate_overall=len(names) > 1)
    summary["far"] = summary["num_false_positives"] / summary["num_frames"].clip(lower=1)
    errors = summary["num_misses"] + summary["num_false_positives"] + np.log10(summary["num_switches"] + 1)
    summary["motal"] = 1.0 - errors / summary["num_objects"].clip(lower=1)
    table = summary[list(COLUMNS)].rename(columns=COLUMNS)
    table["MOTP"] = 1.0 - table["MOTP"]
    for col in PERCENT:
        table[col] = table[col] * 100.0
    for col in COUNTS:
        table[col] = table[col].astype(int)
    return table


def match_identities(detections: Detections, gt: pd.DataFrame, min_iou: float = 0.5) -> np.ndarray:
    """(N,) int64 gt identity of each detection row, -1 where none matches.

    gt: py-motmetrics layout (``read_ground_truth``); only pedestrians (class 1) with consider = 1
    count. Per frame, a Hungarian assignment on 1 - IoU among pairs with IoU >= ``min_iou``. Used to
    *measure* descriptors and mined tracklets; nothing trained or calibrated sees it.
    """
    pedestrians = gt[(gt["Confidence"] > 0) & (gt["ClassId"] == 1)]
    identity = np.full(len(detections), -1, dtype=np.int64)
    for frame, rows in pedestrians.groupby(level="FrameId"):
        here = detections.frame_slice(int(frame))
        if here.stop == here.start:
            continue
        overlap = iou_matrix(detections.boxes[here], rows[["X", "Y", "Width", "Height"]].to_numpy(np.float64))
        matched, columns = min_cost_matching(1.0 - overlap, 1.0 - min_iou)
        identity[matched + here.start] = rows.index.get_level_values("Id").to_numpy(np.int64)[columns]
    return identity
