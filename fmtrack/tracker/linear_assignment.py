"""Cost matrices and minimum-cost matching (scipy's Hungarian solver)."""

from __future__ import annotations

import numpy as np

# Cost of a pair excluded by a gate; anything above max_cost is treated the same way.
INFEASIBLE = 1e5


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU (A, B) between tlwh boxes (A, 4) and (B, 4)."""
    ax0, ay0 = boxes_a[:, 0:1], boxes_a[:, 1:2]
    bx0, by0 = boxes_b[:, 0], boxes_b[:, 1]
    # In place where a temporary is free: at a tracker's sizes the cost is the number of numpy
    # calls and allocations, not the arithmetic. (x and y stacked as (A, B, 2) is slower beyond 20x10.)
    width = np.minimum(ax0 + boxes_a[:, 2:3], bx0 + boxes_b[:, 2])
    width -= np.maximum(ax0, bx0)
    height = np.minimum(ay0 + boxes_a[:, 3:4], by0 + boxes_b[:, 3])
    height -= np.maximum(ay0, by0)
    inter = np.maximum(width, 0.0, out=width)
    inter *= np.maximum(height, 0.0, out=height)
    union = (boxes_a[:, 2:3] * boxes_a[:, 3:4]) + (boxes_b[:, 2] * boxes_b[:, 3])
    union -= inter
    # A zero union means zero intersection: 0 / tiny = 0, without np.errstate (costly per call).
    np.maximum(union, 1e-12, out=union)
    return np.divide(inter, union, out=inter)


def height_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Height IoU (A, B) between tlwh boxes (A, 4) and (B, 4): the overlap of their vertical extents over
    the extent the two span together, in [0, 1] (Hybrid-SORT's HIoU, Yang et al., AAAI 2024)."""
    top_a, bottom_a = boxes_a[:, 1:2], boxes_a[:, 1:2] + boxes_a[:, 3:4]
    top_b, bottom_b = boxes_b[:, 1], boxes_b[:, 1] + boxes_b[:, 3]
    overlap = np.minimum(bottom_a, bottom_b)
    overlap -= np.maximum(top_a, top_b)
    span = np.maximum(bottom_a, bottom_b)
    span -= np.minimum(top_a, top_b)
    np.maximum(overlap, 0.0, out=overlap)
    np.maximum(span, 1e-12, out=span)  # zero only for two zero-height boxes at one row: overlap 0
    return np.divide(overlap, span, out=overlap)


def grow_tlwh(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """(N, 4) tlwh boxes grown by ``buffer`` times their width and height on every side, centres kept."""
    grown = boxes.copy()
    grown[:, :2] -= buffer * boxes[:, 2:]
    grown[:, 2:] *= 1.0 + 2.0 * buffer
    return grown


def min_cost_matching(cost: np.ndarray, max_cost: float, gated: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one assignment that never pairs rows and columns costing more than max_cost.

    gated (DeepSORT): costs above ``max_cost`` are clipped to just above it before solving, so an
    infeasible pair never pulls the solver away from feasible ones.
    not gated (SORT): if the feasible pairs already form a one-to-one matching they are taken as
    they are; otherwise the Hungarian solver runs on the raw costs. Over-threshold pairs are then
    dropped in both modes.
    Returns ``(rows, cols)``: index arrays of the matched pairs.
    """
    if cost.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rows, cols = (cost <= max_cost).nonzero()
    # Python sets: at a tracker's few feasible pairs, cheaper than numpy reductions.
    row_list, col_list = rows.tolist(), cols.tolist()
    if len(set(row_list)) == len(row_list) and len(set(col_list)) == len(col_list):
        # Feasible pairs sharing no row or column: both modes take exactly these (gated: each costs
        # less than any clipped pair, so the optimum holds them all), without the solver.
        return rows.astype(np.int64, copy=False), cols.astype(np.int64, copy=False)
    if gated:
        cost = np.minimum(cost, max_cost + 1e-5)
    from scipy.optimize import linear_sum_assignment  # on first use: scipy.optimize is most of import time

    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] <= max_cost
    return rows[ok], cols[ok]
