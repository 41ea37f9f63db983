"""Descriptor quality without a tracker, and a tracker's sensitivity to the appearance threshold.

``fmtrack eval-descriptor`` follows the reference README's protocol (../shared/reference/README.md,
"Descriptor quality without a tracker"): detections with confidence >= 0.3 are matched to gt
pedestrians (consider = 1, class 1, IoU >= 0.5, Hungarian per frame); every pair of matched
detections 10 to 150 frames apart is scored, with no sampling, so the ROC AUC of the negated
distance for "same identity" is exact. Rank-1 retrieval: for each matched detection that has a
same-identity detection 10 to 150 frames away, is its nearest neighbour among all detections 10 to
150 frames away that identity?

Identities are used here to *measure* descriptors only; nothing trained or calibrated sees them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import Detections, SequenceInfo, find_sequence, read_ground_truth, read_seqinfo
from ..pipeline import track_sequence
from ..pipeline.descriptor import descriptor_spec, needs_images
from ..pipeline.sequence import MethodUnavailable, has_frames, served_detections
from ..embedder.calibration import roc_auc
from ..tracker.distance import METRICS, pairwise_distance
from .evaluate import markdown_table, refuse_repeats, score_rows
from .scoring import match_identities
from .methods import descriptor_label, load_inputs, make_method


@dataclass(frozen=True)
class PairProtocol:
    """The reference protocol's settings. Frame gaps are in frames; IoU is intersection over union."""

    min_confidence: float = 0.3
    min_iou: float = 0.5
    min_gap: int = 10
    max_gap: int = 150


@dataclass(frozen=True)
class DescriptorQuality:
    """One descriptor on one sequence. AUC and rank-1 are fractions in [0, 1]."""

    descriptor: str
    sequence: str
    matched_detections: int
    identities: int
    same_pairs: int
    different_pairs: int
    auc_cosine: float
    auc_euclidean: float
    rank1_cosine: float
    rank1_euclidean: float

    def to_dict(self) -> dict:
        return asdict(self)


def distance_matrix(features: np.ndarray, metric: str) -> np.ndarray:
    """(N, N) float64 distances between the rows of ``features`` (N, D): 1 - cosine or Euclidean."""
    x = np.asarray(features, dtype=np.float64)
    return pairwise_distance(x, x, metric)


def pair_quality(features: np.ndarray, frames: np.ndarray, identity: np.ndarray, metric: str,
                 protocol: PairProtocol = PairProtocol()) -> tuple[float, float, int, int]:
    """(AUC, rank-1, same pairs, different pairs) over all pairs ``min_gap..max_gap`` frames apart.

    features: (N, D) of matched detections; frames, identity: (N,) int.
    """
    distance = distance_matrix(features, metric)
    gap = np.abs(frames[:, None] - frames[None, :])
    in_range = (gap >= protocol.min_gap) & (gap <= protocol.max_gap)
    same = identity[:, None] == identity[None, :]
    upper = np.triu(in_range, k=1)
    auc = roc_auc(-distance[upper & same], -distance[upper & ~same])
    # Rank-1: queries with a same-identity candidate in range; nearest candidate in range.
    queries = np.flatnonzero((in_range & same).any(axis=1))
    candidates = np.where(in_range[queries], distance[queries], np.inf)
    nearest = candidates.argmin(axis=1)
    rank1 = float(np.mean(identity[nearest] == identity[queries])) if len(queries) else float("nan")
    return auc, rank1, int((upper & same).sum()), int((upper & ~same).sum())


def described_detections(features: str, info: SequenceInfo, data_root: str | Path | None = None,
                         progress: bool = True) -> Detections:
    """A sequence's detections (raw scores) with ``features`` (deepsort, hsv, FMVAE weights, a fused
    name of those, .npy)."""
    if needs_images(descriptor_spec(features)) and not has_frames(info):
        raise MethodUnavailable(info.image_dir, f"{features}: {info.name} has no frames to describe its detections")
    method = make_method(features, "deepsort", {"score_normalisation": "raw"}, features)
    inputs = load_inputs(method, info, data_root, progress=progress)
    return served_detections(inputs.embedder, inputs.detections)


@dataclass(frozen=True)
class MatchedDetections:
    """One descriptor's detections on one sequence that the protocol keeps (confidence, gt match).

    frames: (N,) int, 1-based; boxes: (N, 4) float, tlwh pixels; identity: (N,) int gt ids;
    features: (N, D) float32 descriptors.
    """

    sequence: str
    frames: np.ndarray
    boxes: np.ndarray
    identity: np.ndarray
    features: np.ndarray


def matched_detections(features: str, sequence: str, data_root: str | Path | None = None,
                       protocol: PairProtocol = PairProtocol(), progress: bool = True) -> MatchedDetections:
    """The detections of ``sequence`` matched to gt pedestrians, described by ``features``."""
    info = read_seqinfo(find_sequence(sequence, data_root))
    detections = described_detections(features, info, data_root, progress)
    identity = match_identities(detections, read_ground_truth(info.gt_path, info.seq_length), protocol.min_iou)
    keep = (identity >= 0) & (detections.scores >= protocol.min_confidence)
    return MatchedDetections(info.name, detections.frames[keep], detections.boxes[keep], identity[keep],
                             detections.features[keep])


def matched_quality(features: str, matched: MatchedDetections,
                    protocol: PairProtocol = PairProtocol()) -> DescriptorQuality:
    """The reference protocol's AUC and rank-1, both metrics, on already matched detections."""
    frames, ids, vectors = matched.frames, matched.identity, matched.features
    scores = {metric: pair_quality(vectors, frames, ids, metric, protocol) for metric in METRICS}
    _, _, same, different = scores["euclidean"]
    return DescriptorQuality(descriptor=features, sequence=matched.sequence, matched_detections=len(frames),
                             identities=len(np.unique(ids)), same_pairs=same, different_pairs=different,
                             auc_cosine=scores["cosine"][0], auc_euclidean=scores["euclidean"][0],
                             rank1_cosine=scores["cosine"][1], rank1_euclidean=scores["euclidean"][1])


def descriptor_quality(features: str, sequence: str, data_root: str | Path | None = None,
                       protocol: PairProtocol = PairProtocol(), progress: bool = True) -> DescriptorQuality:
    """The reference protocol's AUC and rank-1, both metrics, for one descriptor on one sequence."""
    return matched_quality(features, matched_detections(features, sequence, data_root, protocol, progress), protocol)


def threshold_sweep(features: str, sequence: str, preset_name: str = "deepsort",
                    relative_thresholds: np.ndarray = np.geomspace(0.25, 4.0, 9),
                    data_root: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """IDF1, MOTA and IDs of ``preset_name`` with ``features`` at thresholds around its calibrated one.

    Returns one row per threshold: columns threshold, relative (threshold / calibrated), IDF1, MOTA,
    IDs; ``attrs["calibrated"]`` holds the label-free threshold (the method's default ``max_dist``).
    """
    info = read_seqinfo(find_sequence(sequence, data_root))
    method = make_method(features, preset_name, {}, features)
    calibrated = method.config.appearance_threshold
    inputs = load_inputs(method, info, data_root, progress=progress)
    rows = []
    for relative in relative_thresholds:
        config = method.config.with_max_distance(float(relative * calibrated))
        result = track_sequence(info, inputs.detections, config, inputs.embedder, False, inputs.camera_motion)
        scored = score_rows(info, result.rows, features).iloc[0]
        rows.append({"threshold": float(relative * calibrated), "relative": float(relative),
                     "IDF1": float(scored["IDF1"]), "MOTA": float(scored["MOTA"]), "IDs": int(scored["IDs"])})
    table = pd.DataFrame(rows)
    table.attrs["calibrated"] = calibrated
    return table


def evaluate_descriptors(features: list[str], sequences: list[str], out_dir: str | Path,
                         sweep_preset: str | None = "deepsort", data_root: str | Path | None = None,
                         progress: bool = True, bootstrap: int = 0, seed: int = 0,
                         ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """AUC / rank-1 table for every descriptor x sequence, with ``sweep_preset`` the IDF1 sweep, and
    with ``bootstrap`` > 0 resamples the paired-bootstrap intervals of the Euclidean AUCs per sequence
    (fmtrack.benchmarks.bootstrap, seeded by ``seed``).

    Writes ``descriptors.csv``/``.md``, ``threshold_sweep.csv`` + ``idf1_vs_threshold.png`` and
    ``bootstrap.csv`` to ``out_dir``. A descriptor a sequence lacks (DeepSORT features outside MOT17)
    is skipped.
    """
    from ..io import InputError, atomic_write
    from .bootstrap import bootstrap_matched, check_resamples

    check_resamples(bootstrap, "bootstrap (the number of resamples, 0 = off)")  # before any work
    refuse_repeats(list(sequences), "sequence")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, sweeps, skipped = [], [], []
    matched: dict[str, dict[str, MatchedDetections]] = {}  # sequence -> descriptor label -> detections
    for spec in features:
        for sequence in sequences:
            try:
                described = matched_detections(spec, sequence, data_root, progress=progress)
            except MethodUnavailable as err:
                print(f"skipped: {err}")
                skipped.append(str(err))
                continue
            quality = matched_quality(spec, described)
            rows.append({**quality.to_dict(), "descriptor": descriptor_label(spec)})
            if bootstrap:
                by_label = matched.setdefault(quality.sequence, {})
                name = descriptor_label(spec)
                while name in by_label:  # the same descriptor listed twice still gets its own row
                    name += "'"
                by_label[name] = described
            if sweep_preset is not None:
                sweep = threshold_sweep(spec, sequence, sweep_preset, data_root=data_root, progress=progress)
                sweeps.append(sweep.assign(descriptor=descriptor_label(spec), sequence=quality.sequence,
                                           calibrated=sweep.attrs["calibrated"], preset=sweep_preset))
    if not rows:
        raise InputError(None, "nothing could be evaluated: " + "; ".join(skipped))
    table = pd.DataFrame(rows).set_index(["descriptor", "sequence"])
    with atomic_write(out_dir / "descriptors.csv") as fh:
        table.to_csv(fh)
    with atomic_write(out_dir / "descriptors.md") as fh:
        fh.write(markdown_table(table.round(3)))
    sweep_table = None
    if sweeps:
        sweep_table = pd.concat(sweeps, ignore_index=True)
        with atomic_write(out_dir / "threshold_sweep.csv") as fh:
            sweep_table.to_csv(fh, index=False)
        plot_threshold_sweep(sweep_table, out_dir / "idf1_vs_threshold.png")
    bootstrap_table = None
    if matched:
        bootstrap_table = pd.concat([bootstrap_matched(by_label, bootstrap, seed, progress=progress)
                                     for by_label in matched.values()], ignore_index=True)
        with atomic_write(out_dir / "bootstrap.csv") as fh:
            bootstrap_table.to_csv(fh, index=False)
    return table, sweep_table, bootstrap_table


def plot_threshold_sweep(sweep: pd.DataFrame, path: str | Path) -> Path:
    """IDF1 against the threshold relative to each descriptor's calibrated one (log x), per sequence.

    The calibrated threshold is x = 1 for every descriptor (dashed line); the legend gives its value.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    sequences = list(dict.fromkeys(sweep["sequence"]))
    # One colour per descriptor in every panel (a descriptor may be missing from a sequence).
    colours = {d: f"C{i % 10}" for i, d in enumerate(dict.fromkeys(sweep["descriptor"]))}
    fig, axes = plt.subplots(1, len(sequences), figsize=(4.5 * len(sequences), 3.8), squeeze=False, sharey=True)
    for ax, sequence in zip(axes[0], sequences):
        for descriptor, curve in sweep[sweep["sequence"] == sequence].groupby("descriptor", sort=False):
            ax.plot(curve["relative"], curve["IDF1"], marker="o", ms=3, color=colours[descriptor],
                    label=f"{descriptor} (calibrated {curve['calibrated'].iloc[0]:.3g})")
        ax.axvline(1.0, color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks([0.25, 0.5, 1, 2, 4], ["0.25", "0.5", "1", "2", "4"])
        ax.minorticks_off()
        ax.set_title(f"{sequence} ({sweep['preset'].iloc[0]} preset)")
        ax.set_xlabel("threshold / label-free calibrated threshold")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("IDF1 (%)")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
