"""Box arrays at the tracker's door: format conversion and the checks every frame's boxes pass.

The bounds make extreme but finite values an error instead of inf/NaN output: no real image is a
million pixels across, and every product the Kalman filter and IoU form stays finite below that.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MAX_PIXELS = 1e6  # largest |coordinate| or size accepted, pixels
MIN_SIZE = 1e-6  # a width or height below this (pixels) counts as zero: the box is skipped
MAX_SCORE = 1e6  # largest |score| accepted, detector units


def to_tlwh(boxes: np.ndarray, box_format: Literal["tlwh", "xyxy"]) -> np.ndarray:
    """Boxes (N, 4) in ``box_format`` as float64 tlwh pixels (left, top, width, height), checked.

    ``xyxy`` is (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1; a row with x2 < x1 or y2 < y1 is a
    ValueError naming the row, as is a negative tlwh width or height (xyxy given as tlwh?),
    a non-finite value, or a coordinate or size beyond 1e6 px. Zero sizes pass (the tracker skips them).
    """
    if box_format not in ("tlwh", "xyxy"):
        raise ValueError(f"box_format must be 'tlwh' or 'xyxy', got {box_format!r}")
    boxes = _as_box_array(boxes)
    if box_format == "xyxy":
        check_finite(boxes, "boxes")
        for axis, (low, high) in enumerate((("x1", "x2"), ("y1", "y2"))):
            inverted = boxes[:, 2 + axis] < boxes[:, axis]
            if inverted.any():
                row = int(np.argmax(inverted))
                raise ValueError(f"boxes row {row} has {high} < {low} ({float(boxes[row, 2 + axis])!r} < "
                                 f"{float(boxes[row, axis])!r}): tlwh given as xyxy?")
        boxes = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    check_tlwh(boxes)
    return boxes


def check_tlwh(boxes: np.ndarray, name: str = "boxes") -> bool:
    """Raise ValueError naming the first bad row of float64 tlwh ``boxes`` (N, 4): not finite,
    negative width or height, or beyond ``MAX_PIXELS``. Returns whether every width and height is
    at least ``MIN_SIZE`` (no row to skip)."""
    if len(boxes) == 0:
        return True
    # Column minima and the overall maximum as Python floats: two numpy calls on the hot path (NaN
    # fails every test).
    low, high = boxes.min(axis=0).tolist(), float(boxes.max())
    if min(low[0], low[1]) >= -MAX_PIXELS and low[2] >= 0 and low[3] >= 0 and high <= MAX_PIXELS:
        return low[2] >= MIN_SIZE and low[3] >= MIN_SIZE
    check_finite(boxes, name)
    for column, what in ((2, "width"), (3, "height")):
        negative = boxes[:, column] < 0
        if negative.any():
            row = int(np.argmax(negative))
            raise ValueError(f"{name} row {row} has negative {what} {float(boxes[row, column])!r} "
                             "(xyxy given as tlwh?)")
    row = int(np.argmax((np.abs(boxes) > MAX_PIXELS).any(axis=1)))
    raise ValueError(f"{name} row {row} is out of range: {boxes[row].tolist()} "
                     f"(|coordinate| and size must be at most {MAX_PIXELS:g} px)")


def _as_box_array(boxes: np.ndarray) -> np.ndarray:
    boxes = as_real(boxes, "boxes")
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    return boxes


def real_array(values: object, name: str) -> np.ndarray:
    """``values`` as an array of real numbers in their own dtype; ValueError naming ``name`` unless
    they are (bool, complex, text and objects would otherwise be cast: True as 1, 3+4j as 3 with a
    warning; ragged nested lists fail inside numpy)."""
    try:
        values = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} must be an array of real numbers: {err}") from None
    if values.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be real numbers, got an array of dtype {values.dtype}")
    return values


def as_real(values: object, name: str) -> np.ndarray:
    """``values`` as a float64 array; ValueError naming ``name`` unless they are real numbers
    (:func:`real_array`)."""
    return real_array(values, name).astype(np.float64, copy=False)


def check_finite(values: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name} row {row} is not finite: {values[row]}")
