"""``fmtrack.video``: frame sources (synthetic folders and videos made here), TrackRenderer on blank
frames (exact pixels, no codec), its atomic and refusing writes, and ``fmtrack render`` of the real
TUD-Campus ground truth read back with OpenCV (frame count, size, each id's colour on its box edge)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fmtrack.cli import main
from fmtrack.io import InputError, find_sequence, read_seqinfo
from fmtrack.video import PALETTE, TrackRenderer, colour_of, open_frames, render_rows


def _frames(n: int, size=(64, 48)) -> list[np.ndarray]:
    """n distinct frames: frame i filled with grey level 20 * i, a white square moving right."""
    frames = []
    for i in range(n):
        image = np.full((size[1], size[0], 3), 20 * i, np.uint8)
        image[10:20, 5 + 3 * i:15 + 3 * i] = 255
        frames.append(image)
    return frames


def _image_folder(folder: Path, frames: list[np.ndarray], ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"{i:06d}{ext}"), image)
    return folder


def _read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


# --- frame sources ---------------------------------------------------------------------------

def test_image_folder_in_name_order(tmp_path):
    frames = _frames(4)
    folder = _image_folder(tmp_path / "frames", frames)
    (folder / "notes.txt").write_text("not a frame", encoding="utf8")
    source = open_frames(folder)
    assert (source.size, source.frame_count, source.fps) == ((64, 48), 4, None)
    got = list(source)
    assert [i for i, _ in got] == [1, 2, 3, 4]
    for (_, image), expected in zip(got, frames):  # png is lossless
        np.testing.assert_array_equal(image, expected)
    assert len(list(source)) == 4  # iterating again starts from the first frame


def test_unpadded_frame_numbers_play_in_numeric_order(tmp_path):
    """ffmpeg's frame%d.png names sorted as text played frame10 after frame1."""
    frames = _frames(12)
    folder = tmp_path / "unpadded"
    folder.mkdir()
    for i, image in enumerate(frames, 1):
        cv2.imwrite(str(folder / f"frame{i}.png"), image)
    source = open_frames(folder)
    assert [p.name for p in source.files][:3] == ["frame1.png", "frame2.png", "frame3.png"]
    for (_, image), expected in zip(source, frames):
        np.testing.assert_array_equal(image, expected)


def test_sequence_folder_uses_seqinfo(tmp_path):
    seq = tmp_path / "SYN-01"
    _image_folder(seq / "img1", _frames(3))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SYN-01\nimDir=img1\nframeRate=12.5\nseqLength=3\n"
                                     "imWidth=64\nimHeight=48\nimExt=.png\n", encoding="utf8")
    source = open_frames(seq)
    assert (source.fps, source.frame_count, source.size) == (12.5, 3, (64, 48))
    assert source.path == seq / "img1"


def test_video_file(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    frames = _frames(5)
    for image in frames:
        writer.write(image)
    writer.release()
    source = open_frames(path)
    assert source.size == (64, 48) and source.fps == pytest.approx(10.0)
    got = list(source)
    assert [i for i, _ in got] == [1, 2, 3, 4, 5]
    # Lossy codec: each decoded frame is still closest to its own original.
    for i, (_, image) in enumerate(got):
        errors = [np.abs(image.astype(int) - f).mean() for f in frames]
        assert int(np.argmin(errors)) == i


def _assert_input_error(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, message


def test_missing_source(tmp_path):
    with pytest.raises(InputError) as err:
        open_frames(tmp_path / "nope.mp4")
    _assert_input_error(err, tmp_path / "nope.mp4", "no such")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        open_frames(tmp_path / "empty")
    _assert_input_error(err, tmp_path / "empty", "no images")


def test_not_a_video(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_text("this is not a video\n", encoding="utf8")
    with pytest.raises(InputError) as err:
        open_frames(path)
    _assert_input_error(err, path)


def test_mixed_frame_sizes_name_the_file(tmp_path):
    folder = _image_folder(tmp_path / "frames", _frames(2))
    cv2.imwrite(str(folder / "000003.png"), np.zeros((50, 64, 3), np.uint8))
    source = open_frames(folder)
    with pytest.raises(InputError) as err:
        list(source)
    _assert_input_error(err, folder / "000003.png", "64x50", "64x48")


def test_unreadable_image_names_the_file(tmp_path):
    folder = _image_folder(tmp_path / "frames", _frames(2))
    (folder / "000003.png").write_bytes(b"not a png")
    with pytest.raises(InputError) as err:
        list(open_frames(folder))
    _assert_input_error(err, folder / "000003.png", "unreadable")


# --- renderer --------------------------------------------------------------------------------

def _track(track_id: int, tlwh) -> SimpleNamespace:
    return SimpleNamespace(track_id=track_id, tlwh=np.asarray(tlwh, dtype=float))


def test_draw_box_edges_in_the_ids_colour():
    renderer = TrackRenderer("unused.mp4", 25, (200, 150))
    blank = np.zeros((150, 200, 3), np.uint8)
    out = renderer.draw(blank, [_track(3, [40, 50, 30, 60]), _track(8, [120, 40, 40, 80])], 1)
    assert not blank.any()  # the input is not drawn on
    assert tuple(out[80, 40]) == colour_of(3) and tuple(out[80, 70]) == colour_of(3)  # left, right edge
    assert tuple(out[110, 55]) == colour_of(3)  # bottom edge
    assert tuple(out[80, 120]) == colour_of(8)
    assert not out[80, 55].any() and not out[100, 100].any()  # inside a box, between boxes: untouched


def test_colours_fixed_across_processes():
    code = "from fmtrack.video import colour_of; print([colour_of(i) for i in range(1, 40)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1]).stdout.strip()
    assert other == str([colour_of(i) for i in range(1, 40)])
    assert len({colour_of(i) for i in range(1, 4)}) == 3  # neighbouring ids look different


def test_trail_follows_bottom_centres_and_is_bounded():
    renderer = TrackRenderer("unused.mp4", 25, (300, 100), trail=10)
    blank = np.zeros((100, 300, 3), np.uint8)
    # Box 10 wide, 20 high, moving 5 px right per frame: bottom centre (x + 5, 60).
    for frame in range(1, 21):
        out = renderer.draw(blank, [_track(1, [5 * frame, 40, 10, 20])], frame)
    # The last 10 bottom centres (frames 11..20: x = 60..105) are on the trail, older ones are not.
    assert out[60, 70].any() and out[60, 100].any()
    assert not out[60, 30].any() and not out[60, 50].any()


def test_renderer_refuses_an_input_as_output(tmp_path):
    video = tmp_path / "in.mp4"
    video.write_bytes(b"precious")
    with pytest.raises(ValueError, match="out_path.*input"):
        TrackRenderer(video, 25, (64, 48), inputs=[video])
    assert video.read_bytes() == b"precious"
    with pytest.raises(ValueError, match="out_path.*mp4"):
        TrackRenderer(tmp_path / "out.avi", 25, (64, 48))


def test_renderer_checks_frames(tmp_path):
    out = tmp_path / "out.mp4"
    renderer = TrackRenderer(out, 25, (64, 48))
    with pytest.raises(RuntimeError, match="with"):
        renderer.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="image: .*48x64"):
        renderer.draw(np.zeros((64, 48, 3), np.uint8), [], 1)
    with pytest.raises(ValueError, match=r"image: expected \(H, W, 3\) uint8"):
        renderer.draw(np.zeros((48, 64), np.uint8), [], 1)


def test_renderer_writes_atomically(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(ZeroDivisionError):
        with TrackRenderer(out, 25, (64, 48)) as renderer:
            renderer.write(np.zeros((48, 64, 3), np.uint8))
            1 / 0
    with pytest.raises(ValueError, match="no frames"):
        with TrackRenderer(out, 25, (64, 48)):
            pass
    assert list(tmp_path.iterdir()) == []  # neither the video nor a temporary file
    with TrackRenderer(out, 25, (64, 48)) as renderer:
        for image in _frames(3):
            renderer.write(image)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"] and len(_read_video(out)) == 3


def test_a_renderer_that_cannot_open_keeps_the_existing_video(tmp_path, monkeypatch):
    """A writer OpenCV could not open replaced the target with the empty temporary file."""
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier render")

    class Closed:
        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoWriter", Closed)
    with pytest.raises(InputError, match="OpenCV cannot write an mp4v video here"):
        with TrackRenderer(out, 25, (64, 48)):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"] and out.read_bytes() == b"an earlier render"
    with pytest.raises(ValueError, match=r"fps must be a frame rate in \(0, 10000\]"):
        TrackRenderer(tmp_path / "fast.mp4", 1e9, (64, 48))


def test_render_rows_takes_a_path_as_open_frames_does(tmp_path):
    """A path (as docs/video.md's open_frames(source) suggests) failed: 'str' object has no attribute 'fps'."""
    folder = _image_folder(tmp_path / "frames", _frames(3))
    out = render_rows(str(folder), np.array([[1, 7, 5.0, 5.0, 20.0, 30.0]]), tmp_path / "out.mp4")
    assert len(_read_video(out)) == 3


def test_render_rows_frame_beyond_the_source(tmp_path):
    folder = _image_folder(tmp_path / "frames", _frames(3))
    results = tmp_path / "res.txt"
    results.write_text("1,1,5,5,10,10,1,-1,-1,-1\n5,1,5,5,10,10,1,-1,-1,-1\n", encoding="utf8")
    code = main(["render", "--video", str(folder), "--results", str(results), "--out", str(tmp_path / "o.mp4"),
                 "--quiet"])
    assert code == 2 and not (tmp_path / "o.mp4").exists()
    with pytest.raises(ValueError, match="rows: expected"):
        render_rows(open_frames(folder), np.zeros((2, 5)), tmp_path / "o.mp4")


# --- fmtrack render on a real sequence --------------------------------------------------------

def test_render_tud_campus_ground_truth(data_root, tmp_path):
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    out = tmp_path / "gt.mp4"
    assert main(["render", "--seq", "TUD-Campus", "--data-root", str(data_root), "--results", str(info.gt_path),
                 "--out", str(out), "--quiet"]) == 0
    frames = _read_video(out)
    assert len(frames) == info.seq_length
    assert {f.shape for f in frames} == {(info.im_height, info.im_width, 3)}

    gt = np.loadtxt(info.gt_path, delimiter=",")
    palette = np.array(PALETTE, dtype=float)
    checked = set()
    for frame in (5, 35, 65):
        boxes = gt[gt[:, 0] == frame]
        for track_id, left, top, width, height in boxes[:, 1:6]:
            x, y0, y1 = round(left), round(top + height / 4), round(top + 3 * height / 4)
            others = boxes[boxes[:, 1] != track_id]
            near = ((others[:, 2] - 30 < x) & (x < others[:, 2] + others[:, 4] + 30)
                    & (others[:, 3] - 30 < y1) & (y0 < others[:, 3] + others[:, 5] + 30))
            if near.any() or not 0 <= x < info.im_width:
                continue  # another box, label or trail may be drawn over this edge
            edge = np.median(frames[frame - 1][y0:y1, x].astype(float), axis=0)
            nearest = int(np.argmin(np.abs(palette - edge).max(axis=1)))
            assert PALETTE[nearest] == colour_of(int(track_id)), (frame, track_id, edge)
            assert np.abs(edge - colour_of(int(track_id))).max() < 45, (frame, track_id, edge)
            checked.add(int(track_id))
    assert len(checked) >= 3
