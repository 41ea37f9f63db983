"""Video in and out with OpenCV: frames from a video file or an image folder, and annotated mp4s.

``open_frames(source)`` iterates ``(frame_index, image)`` (1-based index, (H, W, 3) uint8 BGR) from a
video file, a folder of .jpg/.png images, or a MOTChallenge sequence folder (its seqinfo.ini and
img1). ``TrackRenderer`` draws tracks (box, id, a stable colour per id, a short trail of bottom
centres, the frame number) and writes an mp4 atomically. ``render_rows`` / ``render_results`` draw
MOTChallenge result rows onto a source's frames.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from .io import InputError, atomic_path, read_results, read_seqinfo
from .io.motchallenge import check_frame_rate

_DIGITS = re.compile(r"(\d+)")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 30.0  # when neither the caller nor the source says

# Tableau 10 without its grey (too close to street scenes), as BGR.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (34, 189, 188), (207, 190, 23),
)


class FrameSource:
    """Frames in order. Iterating yields ``(frame_index, image)``: index 1-based, image (H, W, 3)
    uint8 BGR; each iteration starts again from the first frame.

    path: the file or folder given. fps: frames per second, None when the source does not say.
    size: (width, height) pixels of the first frame (every frame must have it). frame_count: the
    number of frames, None when unknown (a video container's count is the decoder's estimate).
    """

    path: Path
    fps: float | None
    size: tuple[int, int]
    frame_count: int | None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def _check_size(self, image: np.ndarray, where: Path, frame_index: int) -> np.ndarray:
        height, width = image.shape[:2]
        if (width, height) != self.size:
            raise InputError(where, f"frame {frame_index} is {width}x{height}, the first frame "
                                    f"{self.size[0]}x{self.size[1]}: every frame must have one size")
        return image


def _natural_key(path: Path) -> list:
    """Sort key of a file name whose digit runs compare as numbers: frame2 before frame10."""
    return [int(part) if odd else part for odd, part in zip(itertools.cycle((False, True)), _DIGITS.split(path.name))]


class ImageFolder(FrameSource):
    """A folder of images, frame i being the i-th file in name order, numbers by value (MOTChallenge's
    000001.jpg ..., and ffmpeg's unpadded frame1.png, frame2.png, ..., frame10.png)."""

    def __init__(self, folder: Path, fps: float | None = None):
        self.path = folder
        self.files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                            key=_natural_key)
        if not self.files:
            raise InputError(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        first = self._read(self.files[0])
        self.size = (first.shape[1], first.shape[0])
        self.fps = fps
        self.frame_count = len(self.files)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(path, "unreadable image")
        return image

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for index, path in enumerate(self.files, start=1):
            yield index, self._check_size(self._read(path), path, index)


class VideoFile(FrameSource):
    """A video file decoded by OpenCV."""

    def __init__(self, path: Path):
        self.path = path
        if _is_text(path):  # FFmpeg's tty demuxer "plays" a text file as a picture of its text
            raise InputError(path, "is a text file, not a video (a detection file given as --video?)")
        capture = self._open()
        try:
            ok, first = capture.read()
            if not ok or first is None:
                raise InputError(path, "no frame could be decoded from this video")
            fps = capture.get(cv2.CAP_PROP_FPS)
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        finally:
            capture.release()
        self.size = (first.shape[1], first.shape[0])
        self.fps = float(fps) if np.isfinite(fps) and fps > 0 else None
        self.frame_count = int(count) if np.isfinite(count) and count > 0 else None

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise InputError(self.path, "not a video OpenCV can open")
        return capture

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        capture = self._open()
        try:
            index = 0
            while True:
                ok, image = capture.read()
                if not ok or image is None:
                    return
                index += 1
                yield index, self._check_size(image, self.path, index)
        finally:
            capture.release()


def _is_text(path: Path) -> bool:
    """Whether the file starts with 4 KiB of printable ASCII: no video container does (they start with
    binary sizes and tags), except Y4M's text header, which is followed by raw pixels."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False  # OpenCV then says it cannot open it
    printable = set(range(32, 127)) | {9, 10, 12, 13}
    return bool(head) and not head.startswith(b"YUV4MPEG2") and all(byte in printable for byte in head)


def open_frames(source: str | os.PathLike) -> FrameSource:
    """Frames of a video file, an image folder, or a MOTChallenge sequence folder (seqinfo.ini's
    image folder and frame rate). Raises InputError naming the path for a missing, empty or
    unreadable source."""
    path = Path(source)
    if not path.exists():
        raise InputError(path, "no such video file or image folder")
    if path.is_dir():
        if (path / "seqinfo.ini").is_file():
            info = read_seqinfo(path)
            if not info.image_dir.is_dir():
                raise InputError(info.image_dir, "image folder named by seqinfo.ini not found")
            return ImageFolder(info.image_dir, info.frame_rate)
        return ImageFolder(path)
    return VideoFile(path)


class _HasBox(Protocol):
    track_id: int
    tlwh: np.ndarray


def colour_of(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track id: a fixed hash into PALETTE (Fibonacci hashing: the high bits of
    id * 2^32 / golden ratio, so consecutive ids get far-apart entries), the same in every run."""
    return PALETTE[(int(track_id) * 2654435769 % 2**32) * len(PALETTE) >> 32]


class TrackRenderer:
    """Draws tracks on frames and writes them to an mp4 ('mp4v'), atomically: frames go to a
    temporary file beside ``out_path``, renamed over it when the ``with`` block ends without error.

    out_path: the .mp4 to write. fps: frames per second of the output. size: (width, height)
    pixels of every frame. inputs: paths the caller reads (video, detections, results); an out_path
    equal to one of them is refused. trail: bottom-centre points kept per id (frames).

    ``draw`` works without the ``with`` block (it only keeps the trails); ``write`` needs it.
    """

    def __init__(self, out_path: str | os.PathLike, fps: float, size: tuple[int, int], *,
                 inputs: Iterable[str | os.PathLike] = (), trail: int = 30):
        self.out_path = Path(out_path)
        if self.out_path.suffix.lower() != ".mp4":
            raise ValueError(f"out_path: expected a .mp4 file, got {self.out_path}")
        for path in inputs:
            if Path(path).resolve() == self.out_path.resolve():
                raise ValueError(f"out_path: {self.out_path} is also an input; rendering would overwrite it")
        fps = check_frame_rate(fps, "fps")
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"size: expected (width, height) in pixels, got {size}")
        self.fps, self.size, self.trail = float(fps), (int(size[0]), int(size[1])), int(trail)
        self.frames_written = 0
        self._trails: dict[int, deque[tuple[int, int]]] = {}
        self._last_seen: dict[int, int] = {}
        self._writer: cv2.VideoWriter | None = None
        self._stack: contextlib.ExitStack | None = None
        height = self.size[1]
        self._thickness = max(2, round(height / 360))
        self._font_scale = max(0.5, height / 1080)

    def __enter__(self) -> TrackRenderer:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.out_path, keep_suffix=True))
        self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
        if not self._writer.isOpened():
            error = InputError(self.out_path, f"OpenCV cannot write an mp4v video here at {self.fps:g} frames "
                                              "per second")
            self._stack.__exit__(InputError, error, None)  # as a failure: the temporary goes, the target stays
            self._stack = self._writer = None
            raise error
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._writer is not None and self._stack is not None
        self._writer.release()
        self._writer = None
        stack, self._stack = self._stack, None
        if exc_type is None and self.frames_written == 0:
            empty = ValueError(f"{self.out_path}: no frames were written")
            stack.__exit__(ValueError, empty, None)  # removes the temporary file
            raise empty
        return bool(stack.__exit__(exc_type, exc, tb))

    def write(self, image: np.ndarray) -> None:
        """Append one frame, (H, W, 3) uint8 BGR of this renderer's size."""
        if self._writer is None:
            raise RuntimeError("TrackRenderer.write needs the with block: with TrackRenderer(...) as renderer")
        _check_image(image, self.size)
        self._writer.write(image)
        self.frames_written += 1

    def draw(self, image: np.ndarray, tracks: Sequence[_HasBox], frame_index: int) -> np.ndarray:
        """A copy of ``image`` ((H, W, 3) uint8 BGR) with each track's box, id and trail and the frame
        number. tracks: objects with ``track_id`` and ``tlwh`` ((4,) pixels), e.g. fmtrack's Track."""
        _check_image(image, self.size)
        out = image.copy()
        boxes = []
        for track in tracks:
            track_id = int(track.track_id)
            left, top, width, height = (float(v) for v in np.asarray(track.tlwh, dtype=np.float64).reshape(4))
            boxes.append((track_id, round(left), round(top), round(left + width), round(top + height)))
            points = self._trails.setdefault(track_id, deque(maxlen=self.trail))
            points.append((round(left + width / 2), round(top + height)))
            self._last_seen[track_id] = frame_index
        self._forget(frame_index)
        for track_id, *_ in boxes:
            points = self._trails[track_id]
            if len(points) > 1:
                cv2.polylines(out, [np.array(points, dtype=np.int32)], False, colour_of(track_id),
                              max(1, self._thickness - 1), cv2.LINE_AA)
        for track_id, x1, y1, x2, y2 in boxes:
            cv2.rectangle(out, (x1, y1), (x2, y2), colour_of(track_id), self._thickness)
        for track_id, x1, y1, _, _ in boxes:
            self._label(out, str(track_id), (x1, y1), colour_of(track_id))
        self._label(out, f"frame {frame_index}", (0, 0), (0, 0, 0), inside=True)
        return out

    def _forget(self, frame_index: int) -> None:
        """Drop the trails of ids unseen for a whole trail length, so memory stays bounded."""
        for track_id in [i for i, seen in self._last_seen.items() if frame_index - seen >= self.trail]:
            del self._trails[track_id], self._last_seen[track_id]

    def _label(self, out: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
               inside: bool = False) -> None:
        """White text on a filled box of ``colour`` just above ``corner`` (inside the image)."""
        font = cv2.FONT_HERSHEY_SIMPLEX
        (w, h), base = cv2.getTextSize(text, font, self._font_scale, 1)
        x = min(max(corner[0], 0), max(out.shape[1] - w - 4, 0))
        y = corner[1] + h + base + 4 if inside else max(corner[1], h + base + 4)
        cv2.rectangle(out, (x, y - h - base - 4), (x + w + 4, y), colour, cv2.FILLED)
        cv2.putText(out, text, (x + 2, y - base - 2), font, self._font_scale, (255, 255, 255), 1, cv2.LINE_AA)


def _check_image(image: np.ndarray, size: tuple[int, int]) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image: expected (H, W, 3) uint8 BGR, got shape {shape} dtype {dtype}")
    if (image.shape[1], image.shape[0]) != size:
        raise ValueError(f"image: {image.shape[1]}x{image.shape[0]} does not match the renderer's "
                         f"{size[0]}x{size[1]}")


class _Box:
    """One result row as a drawable track."""

    __slots__ = ("track_id", "tlwh")

    def __init__(self, track_id: int, tlwh: np.ndarray):
        self.track_id, self.tlwh = track_id, tlwh


def exact_frame_count(source: FrameSource) -> int | None:
    """The number of frames when it is known exactly (an image folder), else None (a video
    container's count is the decoder's estimate)."""
    return source.frame_count if isinstance(source, ImageFolder) else None


def check_detections_reached(det_path: str | os.PathLike, last_detection_frame: int, source: FrameSource,
                             frames_decoded: int) -> None:
    """InputError naming ``det_path`` when its detections reach past the frames a pass over ``source``
    decoded (a video's length is known only once it has been read)."""
    if last_detection_frame > frames_decoded:
        raise InputError(det_path, f"detections reach frame {last_detection_frame} but {source.path} has "
                                   f"{frames_decoded} frames")


def render_rows(source: FrameSource | str | os.PathLike, rows: np.ndarray, out_path: str | os.PathLike, *,
                fps: float | None = None, inputs: Iterable[str | os.PathLike] = (), progress: bool = False) -> Path:
    """Draw result rows onto every frame of ``source`` (a FrameSource, or a path :func:`open_frames`
    takes) and write ``out_path`` (mp4).

    rows: (N, 6) frame (1-based), track id, left, top, width, height (pixels), e.g.
    ``SequenceResult.rows``; rows of frames the source lacks are not drawn. fps: the output's frame
    rate (None: the source's, else 30). inputs: further paths out_path must not overwrite (the
    source is always one). Shows a progress bar with frames/s when ``progress``.
    """
    if isinstance(source, (str, os.PathLike)):
        source = open_frames(source)
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ValueError(f"rows: expected (N, 6) frame, id, left, top, width, height; got shape {rows.shape}")
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    frames = rows[:, 0].astype(np.int64)
    rate = fps if fps is not None else source.fps or DEFAULT_FPS
    with TrackRenderer(out_path, rate, source.size, inputs=[source.path, *inputs]) as renderer:
        for index, image in tqdm(source, total=source.frame_count, unit="frame", desc=Path(out_path).name,
                                 disable=not progress):
            lo, hi = np.searchsorted(frames, [index, index + 1])
            tracks = [_Box(int(row[1]), row[2:6]) for row in rows[lo:hi]]
            renderer.write(renderer.draw(image, tracks, index))
    return Path(out_path)


def render_results(source: FrameSource | str | os.PathLike, results: str | os.PathLike,
                   out_path: str | os.PathLike, *, fps: float | None = None, progress: bool = False) -> Path:
    """``render_rows`` for a MOTChallenge result file (``frame,id,left,top,width,height,...``);
    a row beyond the source's known frame count is an InputError naming the file and line."""
    if isinstance(source, (str, os.PathLike)):
        source = open_frames(source)
    table = read_results(results, source.frame_count)
    index = table.index.to_frame().to_numpy(dtype=np.float64)
    rows = np.column_stack([index, table[["X", "Y", "Width", "Height"]].to_numpy(dtype=np.float64)])
    return render_rows(source, rows, out_path, fps=fps, inputs=[results], progress=progress)
