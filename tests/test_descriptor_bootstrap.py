"""Paired bootstrap of descriptor AUCs (fmtrack eval-descriptor --bootstrap), on synthetic data: the
weighted AUC against brute force, the identity weighting against an explicitly resampled sequence,
and the intervals' properties (zero self-difference, a clear winner, seeding, bad input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtrack.benchmarks.bootstrap import bootstrap_matched, format_bootstrap, paired_bootstrap, weighted_auc
from fmtrack.benchmarks.descriptor_quality import MatchedDetections, PairProtocol, pair_quality
from fmtrack.cli import main
from fmtrack.embedder.calibration import roc_auc


def _brute_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Every positive against every negative: 1 if above, 1/2 if tied."""
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def _clustered(noise: dict[str, float], identities: int = 16, seed: int = 0):
    """Identities walking through 160 frames (a detection every 4th frame), each with a random centre
    in 8-D; a descriptor is the centre plus Gaussian noise of the given standard deviation."""
    rng = np.random.default_rng(seed)
    frames = np.tile(np.arange(0, 160, 4), identities)
    identity = np.repeat(np.arange(identities) + 100, 40)
    centres = rng.normal(size=(identities, 8))[identity - 100]
    features = {name: centres + sigma * rng.normal(size=centres.shape) for name, sigma in noise.items()}
    return features, frames, identity


def test_weighted_auc_equals_brute_force_with_unit_and_integer_weights():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=40).astype(float)  # few values: many ties
    positive = rng.random(40) < 0.4
    assert weighted_auc(scores, positive) == pytest.approx(_brute_auc(scores, positive), abs=1e-12)
    assert weighted_auc(scores, positive) == pytest.approx(roc_auc(scores[positive], scores[~positive]), abs=1e-12)
    weights = rng.integers(0, 4, size=40)
    repeated = np.repeat(np.arange(40), weights)  # each row written out ``weight`` times
    assert weighted_auc(scores, positive, weights) == pytest.approx(
        _brute_auc(scores[repeated], positive[repeated]), abs=1e-12)
    assert np.isnan(weighted_auc(scores, positive, np.where(positive, 0, 1)))  # no positive weight


def test_point_auc_is_the_protocols_exact_auc():
    features, frames, identity = _clustered({"a": 1.0})
    result = paired_bootstrap(features, frames, identity, resamples=3)
    auc = pair_quality(features["a"], frames, identity, "euclidean", PairProtocol())[0]
    assert result.auc[0] == pytest.approx(auc, abs=1e-12)


def test_a_resample_equals_the_auc_of_the_explicitly_resampled_sequence():
    features, frames, identity = _clustered({"a": 1.2}, identities=8)
    result = paired_bootstrap(features, frames, identity, resamples=5, seed=3)
    protocol = PairProtocol()
    for r in range(5):
        # Build the resampled sequence: every drawn copy of an identity becomes its own person...
        rows, copy_label, person = [], [], []
        for label, m in zip(result.identities, result.multiplicities[r]):
            for c in range(m):
                members = np.flatnonzero(identity == label)
                rows.extend(members)
                copy_label.extend([f"{label}/{c}"] * len(members))
                person.extend([label] * len(members))
        rows, copy_label, person = np.array(rows), np.array(copy_label), np.array(person)
        x, f = features["a"][rows], frames[rows]
        gap = np.abs(f[:, None] - f[None, :])
        distance = np.linalg.norm(x[:, None] - x[None, :], axis=2)
        in_range = np.triu((gap >= protocol.min_gap) & (gap <= protocol.max_gap), k=1)
        same_copy = copy_label[:, None] == copy_label[None, :]
        same_person = person[:, None] == person[None, :]
        # ...and two copies of one person are never paired with each other.
        expected = roc_auc(-distance[in_range & same_copy], -distance[in_range & ~same_person])
        assert result.samples[r, 0] == pytest.approx(expected, abs=1e-9)


def test_a_descriptor_against_itself_differs_by_exactly_zero():
    features, frames, identity = _clustered({"a": 1.0})
    result = paired_bootstrap({"a": features["a"], "copy": features["a"].copy()}, frames, identity, resamples=50)
    row = result.differences().iloc[0]
    assert (row["difference"], row["low"], row["high"], row["fraction_positive"]) == (0.0, 0.0, 0.0, 0.0)
    interval = result.intervals().iloc[0]
    assert interval["low"] < interval["high"]  # the AUC itself does spread


def test_a_clearly_better_descriptor_has_a_difference_interval_above_zero():
    features, frames, identity = _clustered({"sharp": 0.8, "blurred": 1.6})
    result = paired_bootstrap(features, frames, identity, resamples=200, seed=0)
    intervals = result.intervals().set_index("descriptor")
    for name in ("sharp", "blurred"):
        assert intervals.loc[name, "low"] <= intervals.loc[name, "auc"] <= intervals.loc[name, "high"]
    row = result.differences().iloc[0]
    assert (row["descriptor"], row["versus"]) == ("sharp", "blurred")
    assert 0.0 < row["low"] <= row["difference"] <= row["high"]
    assert row["fraction_positive"] == 1.0


def test_same_seed_same_intervals_and_another_seed_others():
    features, frames, identity = _clustered({"a": 1.0, "b": 1.3})
    first = paired_bootstrap(features, frames, identity, resamples=30, seed=7)
    again = paired_bootstrap(features, frames, identity, resamples=30, seed=7)
    other = paired_bootstrap(features, frames, identity, resamples=30, seed=8)
    assert first.intervals().equals(again.intervals()) and first.differences().equals(again.differences())
    assert not np.allclose(first.intervals()[["low", "high"]], other.intervals()[["low", "high"]])


def test_bad_input_names_the_argument():
    features, frames, identity = _clustered({"a": 1.0, "b": 1.3})
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(features, frames, identity, resamples=-1)
    with pytest.raises(ValueError, match=r"features\['b'\]"):
        paired_bootstrap({"a": features["a"], "b": features["b"][:-1]}, frames, identity)
    matched = {name: MatchedDetections("SYN", frames, np.tile([[0.0, 0.0, 10.0, 20.0]], (len(frames), 1)),
                                       identity, x) for name, x in features.items()}
    moved = matched["b"].boxes.copy()
    moved[5, 0] += 3.0
    matched["b"] = MatchedDetections("SYN", frames, moved, identity, features["b"])
    with pytest.raises(ValueError, match=r"matched\['b'\].*same detections"):
        bootstrap_matched(matched, resamples=5)


def test_bootstrap_table_and_text_from_matched_detections_in_another_order():
    features, frames, identity = _clustered({"a": 1.0, "b": 1.3})
    boxes = np.column_stack([identity * 10.0, np.zeros(len(frames)), np.full(len(frames), 10.0),
                             np.full(len(frames), 20.0)])
    order = np.random.default_rng(0).permutation(len(frames))  # e.g. DeepSORT's .npy in its own order
    matched = {"a": MatchedDetections("SYN", frames, boxes, identity, features["a"]),
               "b": MatchedDetections("SYN", frames[order], boxes[order], identity[order], features["b"][order])}
    table = bootstrap_matched(matched, resamples=20, seed=1)
    direct = paired_bootstrap(features, frames, identity, resamples=20, seed=1)
    assert table["estimate"].iloc[:2].tolist() == pytest.approx(direct.auc.tolist(), abs=1e-12)
    assert table["versus"].tolist() == ["", "", "b"]
    np.testing.assert_allclose(table[["low", "high"]].iloc[:2], direct.intervals()[["low", "high"]], atol=1e-12)
    text = format_bootstrap(table)
    assert "SYN: euclidean AUC" in text and "a - b:" in text


def test_cli_rejects_a_negative_bootstrap_before_loading_anything(tmp_path, capsys):
    assert main(["eval-descriptor", "--features", "hsv", "--seqs", "NO-SUCH-SEQUENCE", "--bootstrap", "-1",
                 "--out-dir", str(tmp_path), "--quiet"]) != 0
    assert "bootstrap" in capsys.readouterr().err


def test_cli_bootstrap_writes_intervals_around_the_tables_auc(data_root, tmp_path, capsys):
    assert main(["eval-descriptor", "--features", "hsv", "hsv", "--seqs", "TUD-Campus", "--sweep-preset", "none",
                 "--bootstrap", "20", "--out-dir", str(tmp_path), "--data-root", str(data_root), "--quiet"]) == 0
    assert "paired-bootstrap interval" in capsys.readouterr().out
    auc = pd.read_csv(tmp_path / "descriptors.csv")["auc_euclidean"].iloc[0]
    table = pd.read_csv(tmp_path / "bootstrap.csv", keep_default_na=False)
    assert table["descriptor"].tolist() == ["hsv", "hsv'", "hsv"] and table["versus"].tolist() == ["", "", "hsv'"]
    own = table.iloc[0]
    assert own["estimate"] == pytest.approx(auc, abs=1e-9) and own["low"] <= auc <= own["high"]
    assert (table.iloc[2][["estimate", "low", "high"]] == 0).all()  # one descriptor twice: no spread
