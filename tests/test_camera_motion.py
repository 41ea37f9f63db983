"""Camera-motion estimation against known synthetic warps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fmtrack.camera_motion import (CameraMotionConfig, centre_displacement, estimate_motion,
                                   sequence_camera_motion)
from fmtrack.io import InputError, read_seqinfo

WIDTH, HEIGHT, MARGIN = 320, 240, 40


def texture(seed: int = 0, shape: tuple[int, int] = (HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN)) -> np.ndarray:
    """Blurred noise: plenty of corners and smooth enough for ECC's gradients."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def warp_pair(affine: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(previous, current) crops where current = previous moved by ``affine`` (crop pixels).

    The warp is applied to a larger image and both are cropped, so no border fill enters the crops.
    """
    big = texture(seed)
    shift = np.array([[1, 0, MARGIN], [0, 1, MARGIN], [0, 0, 1]], dtype=np.float64)
    full = shift @ np.vstack([affine, [0, 0, 1]]) @ np.linalg.inv(shift)
    moved = cv2.warpAffine(big, full[:2], (big.shape[1], big.shape[0]), flags=cv2.INTER_CUBIC)
    crop = np.s_[MARGIN:MARGIN + HEIGHT, MARGIN:MARGIN + WIDTH]
    return big[crop], moved[crop]


@pytest.mark.parametrize("method", ["sof", "ecc"])
def test_recovers_known_translation(method):
    truth = np.array([[1, 0, 6.0], [0, 1, -4.0]])
    previous, current = warp_pair(truth)
    affine = estimate_motion(previous, current, CameraMotionConfig(method=method, downscale=2))
    assert affine.shape == (2, 3) and affine.dtype == np.float64
    np.testing.assert_allclose(affine[:, :2], np.eye(2), atol=0.01)
    np.testing.assert_allclose(affine[:, 2], truth[:, 2], atol=0.5)


@pytest.mark.parametrize("method", ["sof", "ecc"])
def test_recovers_small_rotation(method):
    truth = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), 2.0, 1.0)  # 2 degrees about the centre
    previous, current = warp_pair(truth, seed=1)
    affine = estimate_motion(previous, current, CameraMotionConfig(method=method, downscale=2))
    np.testing.assert_allclose(affine[:, :2], truth[:, :2], atol=0.005)
    # Compare where the corners land rather than raw translations, which trade off against rotation.
    corners = np.array([[0, 0, 1], [WIDTH, 0, 1], [0, HEIGHT, 1], [WIDTH, HEIGHT, 1]], float)
    np.testing.assert_allclose(corners @ affine.T, corners @ truth.T, atol=1.0)


@pytest.mark.parametrize("method", ["none", "sof", "ecc"])
def test_identical_frames_give_identity(method):
    frame = texture()
    affine = estimate_motion(frame, frame.copy(), CameraMotionConfig(method=method, downscale=2))
    np.testing.assert_allclose(affine, np.eye(2, 3), atol=1e-3)


def test_excluded_boxes_keep_a_large_mover_out_of_the_estimate():
    background = np.array([[1, 0, 4.0], [0, 1, 0.0]])
    previous, current = warp_pair(background, seed=2)
    # A person-sized textured block covering most of the frame moves the other way.
    x, y, w, h = 20, 20, 230, 200
    block = texture(seed=3, shape=(h, w))
    previous[y:y + h, x:x + w] = block
    current[y:y + h, x - 6:x - 6 + w] = block
    config = CameraMotionConfig(method="sof", downscale=1)
    masked = estimate_motion(previous, current, config, exclude_boxes=np.array([[x - 8, y, w + 16, h]]))
    np.testing.assert_allclose(masked[:, 2], background[:, 2], atol=0.5)


def test_config_rejects_unknown_method_and_upscaling():
    with pytest.raises(ValueError, match="unknown camera-motion method"):
        CameraMotionConfig(method="orb")
    with pytest.raises(ValueError, match="downscale"):
        CameraMotionConfig(downscale=0.5)


def test_centre_displacement_of_a_shift():
    affines = np.array([np.eye(2, 3), [[1, 0, 3.0], [0, 1, 4.0]]])
    np.testing.assert_allclose(centre_displacement(affines, 640, 480), [0.0, 5.0])


def write_sequence(root: Path, frames: list[np.ndarray]) -> Path:
    sequence = root / "SYN-01"
    (sequence / "img1").mkdir(parents=True)
    height, width = frames[0].shape[:2]
    (sequence / "seqinfo.ini").write_text(
        f"[Sequence]\nname=SYN-01\nimDir=img1\nframeRate=30\nseqLength={len(frames)}\n"
        f"imWidth={width}\nimHeight={height}\nimExt=.png\n")
    for index, frame in enumerate(frames, start=1):
        cv2.imwrite(str(sequence / "img1" / f"{index:06d}.png"), frame)
    return sequence


def shifted_frames(count: int, step: float = 3.0) -> list[np.ndarray]:
    return [warp_pair(np.array([[1, 0, step * i], [0, 1, 0.0]]))[1] for i in range(count)]


def test_sequence_motion_is_cached_and_keyed_by_config(tmp_path, monkeypatch):
    info = read_seqinfo(write_sequence(tmp_path, shifted_frames(4)))
    config = CameraMotionConfig(method="sof", downscale=2)
    first = sequence_camera_motion(info, config, cache_dir=tmp_path / "cache", progress=False)
    assert first.shape == (4, 2, 3)
    np.testing.assert_array_equal(first[0], np.eye(2, 3))
    np.testing.assert_allclose(first[1:, :, 2], [[3.0, 0.0]] * 3, atol=0.5)

    def no_decoding(*args):  # a cache hit must not decode the frames (their fingerprint is in the key)
        raise InputError(None, "decoded a frame")

    monkeypatch.setattr("fmtrack.camera_motion.ImageSequence", no_decoding)
    again = sequence_camera_motion(info, config, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again, first)
    with pytest.raises(InputError):  # a different config misses the cache and reads frames
        sequence_camera_motion(info, CameraMotionConfig(method="sof", downscale=3),
                               cache_dir=tmp_path / "cache", progress=False)


def test_missing_frame_names_the_image(tmp_path):
    info = read_seqinfo(write_sequence(tmp_path, shifted_frames(3)))
    missing = info.image_dir / "000002.png"
    missing.unlink()
    with pytest.raises(InputError, match="000002.png"):
        sequence_camera_motion(info, CameraMotionConfig(method="ecc"), cache_dir=tmp_path / "cache",
                               progress=False)
