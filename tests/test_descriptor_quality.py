"""Descriptor quality against gt identities (fmtrack eval-descriptor): the pair protocol checked on
closed forms, then against the reference README's AUC rows (tests/reference/descriptor_auc.csv)."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from fmtrack.benchmarks.descriptor_quality import PairProtocol, descriptor_quality, distance_matrix, pair_quality
from fmtrack.benchmarks.scoring import match_identities
from fmtrack.cli import main
from fmtrack.io import Detections

from conftest import REFERENCE_DIR


def _gt(rows: list[tuple]) -> pd.DataFrame:
    """gt in py-motmetrics' layout from (frame, id, x, y, w, h, consider, class) tuples."""
    table = np.array(rows, dtype=float)
    index = pd.MultiIndex.from_arrays(table[:, :2].astype(int).T, names=["FrameId", "Id"])
    return pd.DataFrame({"X": table[:, 2], "Y": table[:, 3], "Width": table[:, 4], "Height": table[:, 5],
                         "Confidence": table[:, 6], "ClassId": table[:, 7], "Visibility": 1.0}, index=index)


def test_identities_follow_the_best_overlap_and_skip_distractors_and_weak_overlaps():
    detections = Detections(frames=np.array([1, 1, 1, 2]), scores=np.ones(4),
                            boxes=np.array([[0, 0, 10, 20], [100, 0, 10, 20], [300, 0, 10, 20], [52, 0, 10, 20]],
                                           dtype=float))
    gt = _gt([(1, 7, 1, 0, 10, 20, 1, 1),       # matches detection 0
              (1, 8, 100, 0, 10, 20, 0, 1),     # consider = 0: ignored
              (1, 9, 300, 0, 10, 20, 1, 7),     # class 7 (static person): not a pedestrian
              (2, 7, 50, 0, 10, 20, 1, 1)])     # IoU 8*20 / (12*20) = 0.667 >= 0.5
    assert match_identities(detections, gt).tolist() == [7, -1, -1, 7]
    assert match_identities(detections, gt, min_iou=0.7).tolist() == [7, -1, -1, -1]


def test_distance_matrix_agrees_with_scipy():
    x = np.random.default_rng(0).normal(size=(20, 5))
    np.testing.assert_allclose(distance_matrix(x, "euclidean"), cdist(x, x), atol=1e-6)  # sqrt of round-off on the diagonal
    np.testing.assert_allclose(distance_matrix(x, "cosine"), cdist(x, x, "cosine"), atol=1e-9)


def test_pair_quality_counts_pairs_in_the_gap_window_and_is_exact():
    # Identity a at frames 0, 20, 200 and b at frame 30; features place b between the a's.
    frames = np.array([0, 20, 200, 30])
    identity = np.array([1, 1, 1, 2])
    features = np.array([[0.0], [3.0], [0.0], [1.0]])
    auc, rank1, same, different = pair_quality(features, frames, identity, "euclidean",
                                               PairProtocol(min_gap=10, max_gap=150))
    # Pairs 10..150 frames apart: (0,20) same d=3; (0,30) diff d=1; (20,30) diff d=2; 200 is too far.
    assert (same, different) == (1, 2)
    assert auc == 0.0  # the one same pair is farther apart than both different pairs
    # Queries with a same-identity candidate: frames 0 and 20; both find b (frame 30) nearer.
    assert rank1 == 0.0
    perfect = np.array([[0.0], [0.0], [0.0], [5.0]])
    assert pair_quality(perfect, frames, identity, "euclidean")[:2] == (1.0, 1.0)


@pytest.mark.parametrize("row", list(csv.DictReader(open(REFERENCE_DIR / "descriptor_auc.csv"))),
                         ids=lambda r: f"{r['descriptor']}-{r['sequence']}")
def test_reference_descriptor_auc(row, data_root):
    quality = descriptor_quality(row["descriptor"], row["sequence"], data_root, progress=False)
    # DeepSORT's features are read from the data: the protocol alone decides, so it must be exact.
    # HSV is computed from JPEG frames: 0.003 covers crop rounding (floor/ceil vs int truncation).
    tolerance = 0.0005 if row["descriptor"] == "deepsort" else 0.003
    assert quality.auc_cosine == pytest.approx(float(row["auc_cosine"]), abs=tolerance)
    assert quality.auc_euclidean == pytest.approx(float(row["auc_euclidean"]), abs=tolerance)
    assert 0.8 < quality.rank1_euclidean <= 1.0


def test_eval_descriptor_cli_writes_table_sweep_and_plot(data_root, tmp_path, capsys):
    assert main(["eval-descriptor", "--features", "hsv", "--seqs", "TUD-Campus", "--out-dir", str(tmp_path),
                 "--data-root", str(data_root), "--quiet"]) == 0
    assert "auc_euclidean" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "descriptors.csv")
    assert 0.5 < table["auc_cosine"].iloc[0] <= 1.0
    sweep = pd.read_csv(tmp_path / "threshold_sweep.csv")
    assert len(sweep) == 9 and np.isclose(sweep["relative"], 1.0).any()
    assert (tmp_path / "idf1_vs_threshold.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_sequence_without_frames_is_skipped_by_name_and_nothing_left_is_one_error(data_root, tmp_path, capsys):
    """eval-descriptor on a text-only design sequence failed with an AttributeError (no embedder)."""
    from fmtrack.benchmarks.descriptor_quality import evaluate_descriptors
    from fmtrack.io import InputError

    with pytest.raises(InputError, match="nothing could be evaluated: .*hsv: KITTI-13 has no frames"):
        evaluate_descriptors(["hsv"], ["KITTI-13"], tmp_path / "out", None, data_root, progress=False)
    assert "skipped: " in capsys.readouterr().out
