"""Pedestrian crops for label-free training: cut, store, load, normalise.

A crops file is an uncompressed ``.npz`` (loads without pickle) holding

* ``images``: (N, S, S, 3) uint8 BGR crops (S = 64), the box clipped to the image and resized with
  cv2.INTER_AREA by :func:`fmtrack.model.crops.cut_crops` (the aspect ratio is not kept: every box becomes a square);
* provenance, one entry per crop: ``sequence`` (str), ``frame`` (int64, 1-based), ``box`` (float64
  tlwh pixels as annotated, before clipping), ``track_id`` (int64, unique within a sequence: the
  ground-truth id for ``gt``, kept only for evaluation; the mined tracklet id for ``tracklets``; -1
  for detections in no tracklet), ``source`` ("gt", "det" or "tracklets").

Sources: ``gt`` keeps pedestrians (class 1) with consider flag 1 and visibility >= ``min_visibility``;
``det`` keeps detections with confidence >= ``min_confidence`` and is fully label-free;
``tracklets`` keeps the same detections and labels them with tracklets mined from them alone
(:func:`fmtrack.training.tracklets.mine_tracklets`), still label-free. On MOT16-11's DPM detections,
``min_confidence=0`` gives the reference README probe's 106 tracklets at the default mining thresholds.

:func:`cut_crops` reads named MOTChallenge sequences; :func:`cut_video_crops` a video file or frames
folder with its own det.txt (``fmtrack train --from-video FILE --det det.txt``), the same layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..model.crops import cut_crops as cut_box_crops
from ..io import (Detections, ImageSequence, InputError, atomic_path, atomic_write, find_sequence,
                  read_detections, read_ground_truth, read_seqinfo)
from .tracklets import MiningConfig, mine_tracklets

CROP_SIZE = 64
SOURCES = ("gt", "det", "tracklets")
_PROVENANCE = ("sequence", "frame", "box", "track_id", "source")


@dataclass
class CropSet:
    """Crops and their provenance; see the module docstring for shapes and units."""

    images: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray
    box: np.ndarray
    track_id: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def box_outside(box: np.ndarray, width: int, height: int) -> bool:
    """True when a tlwh box has no overlap with the image (or no area)."""
    left, top, w, h = (float(v) for v in box)
    return w <= 0 or h <= 0 or left >= width or top >= height or left + w <= 0 or top + h <= 0


def _select_boxes(info, source: str, min_visibility: float, min_confidence: float,
                  mining: MiningConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames (N,), boxes (N, 4) tlwh, track ids (N,)) of one sequence's usable boxes."""
    if source == "gt":
        gt = read_ground_truth(info.gt_path, info.seq_length)
        keep = (gt["Confidence"] == 1) & (gt["ClassId"] == 1) & (gt["Visibility"] >= min_visibility)
        gt = gt[keep]
        frames = gt.index.get_level_values("FrameId").to_numpy(np.int64)
        ids = gt.index.get_level_values("Id").to_numpy(np.int64)
        return frames, gt[["X", "Y", "Width", "Height"]].to_numpy(np.float64), ids
    return _detection_boxes(read_detections(info.det_path, info.seq_length), source, min_confidence, mining)


def _detection_boxes(dets: Detections, source: str, min_confidence: float,
                     mining: MiningConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames (N,), boxes (N, 4) tlwh, ids (N,)) of the ``det`` or ``tracklets`` source."""
    keep = dets.scores >= min_confidence
    if source == "det":
        return dets.frames[keep], dets.boxes[keep], np.full(int(keep.sum()), -1, np.int64)
    # Mined on the kept detections only: those are the crops, and dropped ones must not cut tracklets.
    kept = Detections(dets.frames[keep], dets.boxes[keep], dets.scores[keep])
    return kept.frames, kept.boxes, mine_tracklets(kept, mining)


def cut_crops(sequences: list[str], out_path: str | Path, source: str = "gt", data_root: str | Path | None = None,
              min_visibility: float = 0.5, min_confidence: float = 0.3, size: int = CROP_SIZE,
              progress: bool = True, mining: MiningConfig = MiningConfig()) -> Path:
    """Cut crops from named sequences (e.g. ``["MOT16-11"]``) into one crops file, written atomically.

    ``mining``: tracklet thresholds of the ``tracklets`` source (ignored by the others).

    Boxes partly outside an image are clipped; boxes entirely outside it are skipped. Raises
    InputError for an unknown source, missing files, or when no crop survives the filters.
    """
    if source not in SOURCES:
        raise InputError(None, f"crop source must be one of {SOURCES}, got {source!r}")
    images, names, frames_out, boxes_out, ids_out = [], [], [], [], []
    for name in sequences:
        info = read_seqinfo(find_sequence(name, data_root))
        frames, boxes, ids = _select_boxes(info, source, min_visibility, min_confidence, mining)
        reader = ImageSequence(info)
        order = np.argsort(frames, kind="stable")
        current_frame, image = -1, None
        for i in tqdm(order, desc=f"crops {info.name}", unit="box", disable=not progress):
            if box_outside(boxes[i], info.im_width, info.im_height):
                continue
            if frames[i] != current_frame:
                current_frame, image = int(frames[i]), reader[int(frames[i])]
            images.append(cut_box_crops(image, boxes[i:i + 1], (size, size))[0])
            names.append(info.name)
            frames_out.append(frames[i])
            boxes_out.append(boxes[i])
            ids_out.append(ids[i])
    if not images:
        raise InputError(out_path, f"no crops: no {source} box in {', '.join(sequences)} passed the filters")
    crops = CropSet(np.stack(images), np.asarray(names), np.asarray(frames_out, np.int64),
                    np.asarray(boxes_out, np.float64), np.asarray(ids_out, np.int64),
                    np.full(len(images), source))
    return save_crops(crops, out_path)


def cut_video_crops(video: str | Path, det_path: str | Path, out_path: str | Path, source: str = "tracklets",
                    min_confidence: float = 0.3, size: int = CROP_SIZE, progress: bool = True,
                    mining: MiningConfig = MiningConfig(), name: str | None = None) -> Path:
    """Cut crops of a video's detections into a crops file, written atomically: as :func:`cut_crops`
    with a ``det`` or ``tracklets`` source, the frames decoded in order from ``video`` (a video file,
    an image folder or a sequence folder; :func:`fmtrack.video.open_frames`) and the detections read
    from ``det_path`` (MOTChallenge rows keyed by 1-based frame index).

    name: the crops' ``sequence`` provenance (default: the video's stem, or the folder's name).
    Raises InputError for detections beyond the video's last frame, and when no crop survives.
    """
    from ..video import check_detections_reached, exact_frame_count, open_frames  # OpenCV's video reading, only when a video is cut

    if source not in ("det", "tracklets"):
        raise InputError(None, f"crop source of a video must be 'det' or 'tracklets', got {source!r}")
    frames_source = open_frames(video)
    det_path = Path(det_path)
    dets = read_detections(det_path, exact_frame_count(frames_source))
    frames, boxes, ids = _detection_boxes(dets, source, min_confidence, mining)
    order = np.argsort(frames, kind="stable")
    frames, boxes, ids = frames[order], boxes[order], ids[order]
    starts = np.searchsorted(frames, np.arange(int(frames.max(initial=0)) + 2))
    width, height = frames_source.size
    name = name or (Path(video).stem if Path(video).is_file() else Path(video).resolve().name)
    images, kept, last = [], [], 0
    for index, image in tqdm(frames_source, total=frames_source.frame_count, desc=f"crops {name}", unit="frame",
                             disable=not progress):
        last = index
        if index + 1 >= len(starts):
            break  # no detections after this frame
        rows = [i for i in range(starts[index], starts[index + 1]) if not box_outside(boxes[i], width, height)]
        if rows:
            images.append(cut_box_crops(image, boxes[rows], (size, size)))
            kept.extend(rows)
    check_detections_reached(det_path, dets.last_frame, frames_source, last)
    if not kept:
        raise InputError(out_path, f"no crops: no {source} box of {det_path} passed the filters")
    kept = np.asarray(kept, np.int64)
    crops = CropSet(np.concatenate(images), np.full(len(kept), name), frames[kept], boxes[kept], ids[kept],
                    np.full(len(kept), source))
    return save_crops(crops, out_path)


def save_crops(crops: CropSet, out_path: str | Path) -> Path:
    """Write a CropSet as an uncompressed .npz, atomically."""
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as fh:  # a file object stops numpy from appending ".npz" to the temp name
            np.savez(fh, images=crops.images, **{k: getattr(crops, k) for k in _PROVENANCE})
    return out_path


def load_crops(path: str | Path, size: int = CROP_SIZE) -> CropSet:
    """Read and validate a crops file; InputError for a missing file, wrong shapes or no crops."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "crops file not found")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # np.load reads other formats too, and says odd things of them
            raise InputError(path, "not a crops file: a crops file is the .npz `fmtrack crops` writes")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("images", *_PROVENANCE)}
    except KeyError as err:
        raise InputError(path, f"not a crops file: missing array {err}") from None
    except (ValueError, OSError) as err:
        raise InputError(path, f"not a readable .npz crops file ({err})") from None
    images = arrays["images"]
    if images.ndim != 4 or images.shape[1:] != (size, size, 3) or images.dtype != np.uint8:
        raise InputError(path, f"expected uint8 crops of shape (N, {size}, {size}, 3), "
                               f"got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise InputError(path, "the crop set is empty")
    for key in _PROVENANCE:
        if len(arrays[key]) != len(images):
            raise InputError(path, f"{key} has {len(arrays[key])} entries for {len(images)} crops")
    return CropSet(**arrays)


def channel_statistics(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 BGR crops, in RGB order and [0, 1] pixel units."""
    pixels = images.reshape(-1, 3)[:, ::-1].astype(np.float64) / 255.0
    return pixels.mean(0).tolist(), np.maximum(pixels.std(0), 1e-6).tolist()


def synthetic_crops(count: int, size: int = CROP_SIZE, seed: int = 0) -> CropSet:
    """Label-free stand-in crops for tests and benchmarks where no real data is available.

    Each crop is a flat background with a "person": a torso and a legs rectangle of random colours,
    horizontal position and height, so the set varies along a few latent factors. Provenance says
    ``source="synthetic"``; frames and boxes are zeros.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        colours = rng.integers(0, 256, (3, 3), dtype=np.uint8)
        images[i] = colours[0]
        centre = int(rng.integers(size // 4, 3 * size // 4))
        half = int(rng.integers(size // 10, size // 5))
        top = int(rng.integers(0, size // 4))
        waist = int(rng.integers(size // 2 - size // 8, size // 2 + size // 8))
        images[i, top:waist, centre - half:centre + half] = colours[1]
        images[i, waist:size - 2, centre - half:centre + half] = colours[2]
    return CropSet(images, np.full(count, "synthetic"), np.zeros(count, np.int64), np.zeros((count, 4)),
                   np.full(count, -1, np.int64), np.full(count, "synthetic"))


def run_crops(out_dir: str | Path, source: dict, resume: bool, overwrite: bool,
              cut: Callable[[Path], None]) -> Path:
    """``OUT/tracklet-crops.npz`` of a ``--from-video`` run, mined from ``source`` (the sequences or
    video, the detections and the mining thresholds, JSON-able; recorded beside it as
    ``tracklet-crops.json``): reused only when mined from that same source (a resumed run, a retry),
    else ``cut(path)`` mines it again. A resumed run whose crops came from another source, or a new
    one over a run it would leave without its crops, is an InputError naming the folder.
    """
    out_dir = Path(out_dir)
    crops, record = out_dir / "tracklet-crops.npz", out_dir / "tracklet-crops.json"
    source = json.loads(json.dumps(source))  # as it reads back (tuples as lists)
    recorded = None
    if record.is_file():
        try:
            recorded = json.loads(record.read_text(encoding="utf8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            recorded = None  # unreadable: mined again below
    if crops.is_file() and (recorded == source or (resume and recorded is None)):  # no record: a run made before
        return crops
    if resume and crops.is_file():
        raise InputError(out_dir, f"--resume: its crops were mined from {recorded}, not {source}; resume with the "
                                  "same --from-video, --det and mining flags")
    held = [name for name in ("checkpoint.safetensors", "weights.safetensors") if (out_dir / name).is_file()]
    if held and resume:
        raise InputError(out_dir, f"--resume: its training run ({held[0]}) has no tracklet-crops.npz: it was "
                                  "trained on --crops (resume it with them), or its mined crops were removed")
    if held and not overwrite:
        raise InputError(out_dir, f"holds a training run ({held[0]}) whose crops these flags would replace: "
                                  "--resume continues it, --overwrite starts it over, or choose a new --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)  # mining may fail: no record then, so nothing stale is reused
    cut(crops)
    with atomic_write(record) as fh:
        json.dump(source, fh, indent=2)
    return crops
