"""Crops files: cutting from real data, clipping, and clear errors for bad input."""

import numpy as np
import pytest

from fmtrack.io import InputError, resolve_data_root
from fmtrack.model.normalise import normalise_crops
from fmtrack.training.crops import (box_outside, cut_crops, load_crops, save_crops,
                                    synthetic_crops)


def data_root():
    try:
        root = resolve_data_root()
    except InputError:
        pytest.skip("no data root")
    if not (root / "MOT15" / "train" / "TUD-Campus").is_dir():
        pytest.skip("TUD-Campus not in the data root")
    return root


def test_gt_and_det_crops_from_tud_campus(tmp_path):
    root = data_root()
    gt = load_crops(cut_crops(["TUD-Campus"], tmp_path / "gt.npz", "gt", root, progress=False))
    assert gt.images.shape[1:] == (64, 64, 3) and len(gt) > 100
    assert (gt.track_id > 0).all() and set(gt.source) == {"gt"} and set(gt.sequence) == {"TUD-Campus"}
    det = load_crops(cut_crops(["TUD-Campus"], tmp_path / "det.npz", "det", root, min_confidence=40.0,
                               progress=False))
    assert (det.track_id == -1).all() and 0 < len(det) < 321
    with pytest.raises(InputError, match="no crops"):
        cut_crops(["TUD-Campus"], tmp_path / "none.npz", "det", root, min_confidence=1e9, progress=False)
    assert not (tmp_path / "none.npz").exists()


def test_boxes_outside_are_detected_and_partial_boxes_clip():
    assert box_outside(np.array([700.0, 10, 20, 20]), 640, 480)
    assert box_outside(np.array([-30.0, 10, 20, 20]), 640, 480)
    assert not box_outside(np.array([630.0, 470, 50, 50]), 640, 480)


def test_load_rejects_missing_wrong_size_and_empty(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_crops(tmp_path / "missing.npz")
    crops = synthetic_crops(4)
    crops.images = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(InputError, match=r"\(N, 64, 64, 3\)"):
        load_crops(save_crops(crops, tmp_path / "small.npz"))
    empty = synthetic_crops(4)
    for key in ("images", "sequence", "frame", "box", "track_id", "source"):
        setattr(empty, key, getattr(empty, key)[:0])
    with pytest.raises(InputError, match="empty"):
        load_crops(save_crops(empty, tmp_path / "empty.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError):
        load_crops(tmp_path / "junk.npz")


def test_normalise_flips_bgr_to_rgb_and_standardises():
    images = np.zeros((1, 64, 64, 3), np.uint8)
    images[..., 0] = 255  # blue in BGR
    out = normalise_crops(images, [0.0, 0.0, 0.5], [1.0, 1.0, 0.5])
    assert out.shape == (1, 3, 64, 64)
    assert out[0, 2].mean().item() == pytest.approx(1.0) and out[0, 0].mean().item() == pytest.approx(0.0)


def test_tracklet_mining_thresholds_reach_the_crops_file(tmp_path, capsys):
    from fmtrack.cli import main

    root = data_root()
    lengths = {}
    for min_length in (10, 4):
        out = tmp_path / f"len{min_length}.npz"
        assert main(["crops", "--seq", "TUD-Campus", "--source", "tracklets", "--min-length", str(min_length),
                     "--out", str(out), "--quiet", "--data-root", str(root)]) == 0
        ids = load_crops(out).track_id
        lengths[min_length] = np.bincount(ids[ids >= 0])
    assert lengths[10].min() >= 10 and lengths[4].min() >= 4
    # A laxer length keeps every tracklet the strict one keeps, and shorter ones besides.
    assert len(lengths[4]) > len(lengths[10]) and lengths[4].sum() > lengths[10].sum()
    assert main(["crops", "--seq", "TUD-Campus", "--source", "tracklets", "--min-length", "1",
                 "--out", str(tmp_path / "bad.npz"), "--quiet", "--data-root", str(root)]) == 2
    assert "min_length must be at least 2" in capsys.readouterr().err
