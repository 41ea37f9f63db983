"""The fused default descriptor (the shipped model beside HSV histograms, fmtrack.embedder.fused): its
distance against the closed form, its names, its threshold, and on real data the property it was
chosen for (it separates people better than either part alone). The library streaming it equals the
CLI serving it from per-part caches: test_video_tracker.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fmtrack.benchmarks.descriptor_quality import descriptor_quality
from fmtrack.embedder import FusedEmbedder, HSVEmbedder
from fmtrack.embedder.fused import fused_threshold
from fmtrack.pipeline import (configure, default_model_path, descriptor_label, descriptor_spec,
                              fused_parts, image_embedder, uses_model)
from fmtrack.pipeline.defaults import COSINE_THRESHOLDS, DEFAULT_FUSION


class _Table:
    """A stand-in embedder: fixed random features per box row, looked up by the box's left edge."""

    needs_image = False

    def __init__(self, dim: int, seed: int):
        self.dim, self.identity = dim, f"table{seed}"
        self.table = np.random.default_rng(seed).normal(size=(10, dim)).astype(np.float32)

    def embed(self, image, boxes, frame=None):
        return self.table[np.asarray(boxes)[:, 0].astype(int)]


def test_fused_distance_is_each_part_in_its_threshold_units_in_quadrature():
    a, b = _Table(5, 0), _Table(3, 1)
    fused = FusedEmbedder([(a, 1.0, 2.5), (b, 3.0, 0.4)])
    boxes = np.array([[i, 0, 10, 20] for i in range(10)], dtype=float)
    x = fused.embed(None, boxes)
    assert x.shape == (10, 8) and x.dtype == np.float32 and fused.dim == 8
    da = np.linalg.norm(a.table[:, None] - a.table[None], axis=2)
    db = np.linalg.norm(b.table[:, None] - b.table[None], axis=2)
    expected = np.sqrt((1.0 * da / 2.5) ** 2 + (3.0 * db / 0.4) ** 2)
    np.testing.assert_allclose(np.linalg.norm(x[:, None] - x[None], axis=2), expected, rtol=1e-5, atol=1e-5)
    # A pair at every part's own threshold sits at the fused threshold.
    assert fused.thresholds == {"euclidean": pytest.approx(math.sqrt(1 + 9))}
    assert fused_threshold([1.0, 3.0]) == pytest.approx(math.hypot(1, 3))


def test_fused_embedder_refuses_bad_parts_naming_them():
    a, b = _Table(5, 0), _Table(3, 1)
    with pytest.raises(ValueError, match="at least two parts"):
        FusedEmbedder([(a, 1.0, 1.0)])
    for bad in (0.0, -1.0, math.nan, math.inf, True):
        with pytest.raises(ValueError, match="'table1' must be a finite number > 0"):
            FusedEmbedder([(a, 1.0, 1.0), (b, bad, 1.0)])
    fused = FusedEmbedder([(a, 1.0, 1.0), (b, 1.0, 1.0)])
    with pytest.raises(ValueError, match=r"fused part 'table1' gave features of shape \(2, 4\), expected \(2, 3\)"):
        fused.combine([np.zeros((2, 5)), np.zeros((2, 4))])


def test_descriptor_names_resolve_and_bad_ones_are_refused():
    model = str(default_model_path())
    assert descriptor_spec("default") == descriptor_spec(DEFAULT_FUSION) == f"{model}+hsv*3"
    assert descriptor_spec("model") == model
    assert descriptor_spec("model+hsv") == f"{model}+hsv"
    assert fused_parts(f"{model}+hsv*3") == [(model, 1.0), ("hsv", 3.0)]
    assert fused_parts("hsv") is None and fused_parts(model) is None
    assert descriptor_label(descriptor_spec("default")) == "fmvae-tracklets-strict+hsv*3"
    assert uses_model(descriptor_spec("default")) and not uses_model("hsv") and not uses_model("hsv+hsv*2")
    for bad, message in (("model+hsv*0", "weight of part 'hsv\\*0'"), ("model+hsv*x", "weight of part 'hsv\\*x'"),
                         ("model+hsv*inf", "weight of part 'hsv\\*inf'"),
                         ("deepsort+hsv", "part 'deepsort' is not an image descriptor"),
                         ("model+feats.npy", "part 'feats.npy' is not an image descriptor")):
        with pytest.raises(ValueError, match=message):
            descriptor_spec(bad)


def test_a_file_whose_name_holds_a_plus_is_not_split(tmp_path: Path):
    odd = tmp_path / "run+1.npy"
    odd.write_bytes(b"")
    assert descriptor_spec(str(odd)) == str(odd) and fused_parts(str(odd)) is None


def test_configure_gives_the_fused_descriptor_euclidean_distance_and_its_threshold():
    config = configure("fmtrack", descriptor_spec("default"))
    assert config.metric == "euclidean"
    assert config.appearance_threshold == pytest.approx(math.sqrt(10))
    with pytest.raises(ValueError, match="Euclidean distance only"):
        configure("fmtrack", descriptor_spec("default"), {"metric": "cosine"})
    # HSV's part threshold is its calibrated cosine one as a distance between unit vectors.
    fused = image_embedder(descriptor_spec("hsv+hsv*2"))
    hsv_threshold = math.sqrt(2 * COSINE_THRESHOLDS["hsv"])
    assert [threshold for _, _, threshold in fused.parts] == [pytest.approx(hsv_threshold)] * 2


def test_fused_features_from_the_frames_equal_the_parts_scaled(data_root):
    from fmtrack.io import ImageSequence, find_sequence, read_detections, read_seqinfo

    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    image = ImageSequence(info)[1]
    boxes, _, _ = read_detections(info.det_path, info.seq_length).at(1)
    fused = image_embedder(descriptor_spec("default"))
    (model, _, model_threshold), (hsv, weight, hsv_threshold) = fused.parts
    expected = np.hstack([model.embed(image, boxes) / model_threshold, weight * HSVEmbedder().embed(image, boxes)
                          / hsv_threshold])
    np.testing.assert_allclose(fused.embed(image, boxes), expected, rtol=1e-5, atol=1e-6)


def test_the_fused_default_separates_people_better_than_either_part(data_root):
    """What it was chosen for (docs/descriptor-fusion.md): on TUD-Campus, a sequence the model never
    saw, the pair AUC against gt identities is above both the shipped model's and HSV's."""
    auc = {name: descriptor_quality(name, "TUD-Campus", data_root, progress=False).auc_euclidean
           for name in ("model", "hsv", "default")}
    assert auc["default"] > max(auc["model"], auc["hsv"]) + 0.015, auc


def test_calibrating_the_fused_default_lands_near_its_formula_threshold(data_root, capsys):
    """Label-free calibration of the fused descriptor on the model's training sequence (its model
    part served from the same per-part cache a run fills) agrees with sqrt(1 + 3^2) within 5 %;
    writing it is refused, there being no sidecar to hold it."""
    from fmtrack.benchmarks.methods import calibrate_descriptor
    from fmtrack.cli import main
    from fmtrack.io import InputError

    calibration = calibrate_descriptor("default", "MOT16-11", ("euclidean",), data_root)["euclidean"]
    assert calibration.threshold == pytest.approx(math.sqrt(10), rel=0.05)
    assert calibration.equal_error_rate < 0.01
    with pytest.raises(InputError, match="sidecars only"):
        calibrate_descriptor("default", "MOT16-11", ("euclidean",), data_root, write=True)
    assert main(["calibrate", "--features", "deepsort", "--data-root", str(data_root)]) != 0
    assert "calibrate needs a descriptor computed from frames" in capsys.readouterr().err


def test_a_fused_descriptor_is_cached_part_by_part_in_one_pass_over_the_frames(data_root, tmp_path, monkeypatch):
    """Cold cache: each frame is decoded once for both parts, and each part's file holds exactly what
    that part cached alone holds (so a later run of the part alone is served from it)."""
    from fmtrack.embedder import cache
    from fmtrack.embedder.cache import cached_features
    from fmtrack.io import ImageSequence, find_sequence, read_detections, read_seqinfo
    from fmtrack.pipeline.sequence import cached_embedder

    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    detections = read_detections(info.det_path, info.seq_length)
    decoded = []

    class Counting(ImageSequence):
        def __getitem__(self, frame):
            decoded.append(frame)
            return super().__getitem__(frame)

    monkeypatch.setattr(cache, "ImageSequence", Counting)
    fused = image_embedder(descriptor_spec("default"))
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "together"))
    served, first = cached_embedder(info, detections, fused, progress=False)
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == len(set(detections.frames.tolist()))
    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "apart"))
    for (part, _, _), (cached_part, _, _) in zip(fused.parts, served.parts):
        alone = cached_features(info, detections, part, progress=False)
        np.testing.assert_array_equal(np.load(alone), np.load(cached_part.path))
    assert first == served.parts[0][0].path
