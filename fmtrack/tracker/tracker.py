"""The streaming tracker: detections (and optional appearance features) in, tracks out.

Per frame: filter detections, predict all tracks at once, run the configured association stages
(one cost matrix and one Hungarian assignment each), update the matched tracks at once, age the
rest, start new tracks, delete dead ones, report. Numpy (and scipy's Hungarian solver) only: no
torch, and no file formats beyond numpy's own .npz for snapshots.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .boxes import MAX_PIXELS, MIN_SIZE, as_real
from .config import Stage, TrackerConfig, preset
from .detections import count_duplicates, select_detections, validate_frame_input
from .kalman_filter import MOTION_MODELS
from .linear_assignment import INFEASIBLE, grow_tlwh, height_iou_matrix, iou_matrix, min_cost_matching
from .nn_matching import FeatureGallery, prepare_features
from .track import Track, TrackTable


SNAPSHOT_VERSION = 1
# The mode a file written with open() gets under this process's umask (read once, as fmtrack.io does).
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
# A predicted box beyond this (pixels) can overlap no valid detection: the track ends.
_PREDICTION_LIMIT = 10 * MAX_PIXELS
# A Kalman variance beyond this (any state entry) means the track can no longer be located.
_VARIANCE_LIMIT = 1e30
# Camera motion between consecutive frames: the linear part's singular values lie within these.
_MOTION_SCALE = (0.01, 100.0)


def _indices(mask: np.ndarray) -> np.ndarray:
    """Indices of the True entries of a 1-d mask (np.flatnonzero without its ravel overhead)."""
    return mask.nonzero()[0]


class Tracker:
    """Multi-object tracker, fed one frame at a time.

    >>> tracker = Tracker("bytetrack")                      # a preset name, or a TrackerConfig
    >>> tracks = tracker.update(boxes, scores, features)   # boxes: (N, 4) tlwh pixels

    One Tracker serves ONE stream: its state is the history of that stream's frames. It is not
    thread-safe; give each stream (and each thread) its own Tracker, and move a stream between
    workers with :meth:`snapshot` / :meth:`from_snapshot`.

    Cost per frame with T live tracks and N detections kept: the pairwise terms (IoU, Mahalanobis
    gate, appearance distance) are O(T * N) time and memory (appearance O(T * N * D * budget) time),
    and each Hungarian assignment is O(n^3) with n = max(T, N) at worst. N is capped by the config's
    ``max_detections`` (1000 by default; the highest-scoring are kept, with a warning).
    """

    def __init__(self, config: TrackerConfig | str):
        if isinstance(config, str):
            config = preset(config)
        elif not isinstance(config, TrackerConfig):
            raise TypeError(f"config must be a TrackerConfig or a preset name, got {type(config).__name__}")
        self.config = config
        self.kf = MOTION_MODELS[config.motion_model](config.velocity_noise)
        self.reset()

    def reset(self) -> None:
        """Forget every track and counter: the state of a new Tracker with the same config."""
        self.tracks = TrackTable()
        self.gallery: FeatureGallery | None = None  # created on the first features seen
        self.frame_count = 0
        self.skipped_detections = 0  # dropped for a width or height below 1e-6 px
        self.duplicate_detections = 0  # rows repeating an earlier row of the same frame exactly
        self._warned_duplicates = False
        self._next_id = 1  # the id the next track reported for the first time gets
        # Deleted tracks whose id a returning person may take back (identity_memory): their ids,
        # gallery slots (kept, not released) and the frame of their last update, (K,) each.
        self.departed = _no_departed()
        self._predicted_tlwh = np.zeros((0, 4))  # this frame's predicted boxes (T, 4), set by _predict
        self._innovation: np.ndarray | None = None  # their innovation_diagonal (T, 4), set by _predict

    def update(self, boxes: np.ndarray, scores: np.ndarray | None = None,
               features: np.ndarray | None = None, camera_motion: np.ndarray | None = None) -> list[Track]:
        """Advance one frame.

        boxes: (N, 4) float, tlwh pixels (see :func:`~fmtrack.tracker.boxes.to_tlwh` for xyxy);
        |values| up to 1e6 px; a width or height below 1e-6 px skips the row (counted in
        ``skipped_detections``), a negative one is an error. scores: (N,) detector confidences
        (None: all 1). features: (N, D) float appearance descriptors, D fixed for the tracker's
        life; required when a stage uses appearance.
        camera_motion: (2, 3) affine from the previous frame's pixels to this frame's, applied to
        every track's Kalman state after prediction (None: static camera). A (3, 3) matrix whose
        last row is exactly [0, 0, 1] is taken as that affine; other homographies are refused.
        Bad input raises ValueError naming the argument, with nothing applied.
        Returns the tracks to report in this frame (the preset's report rule).
        """
        boxes, scores, features, rows, dropped = validate_frame_input(
            boxes, scores, features, needs_features=self.config.uses_appearance,
            feature_dim=None if self.gallery is None else self.gallery.dim)
        if camera_motion is not None:
            camera_motion = _check_camera_motion(camera_motion)
        self.skipped_detections += dropped
        self._count_duplicates(boxes)
        self.frame_count += 1
        if len(self.departed["track_id"]):
            self._forget_departed(self.frame_count - self.departed["last_seen"] <= self.config.identity_memory)
        keep = select_detections(boxes, scores, self.config)
        origin = keep if rows is None else rows[keep]  # input row of each kept detection
        if len(keep) < len(boxes):  # else every row is kept, and the arrays serve as they are (read only)
            boxes, scores = boxes[keep], scores[keep]
            features = None if features is None else features[keep]
        if features is not None:  # kept only when a stage will compare them
            features = prepare_features(features, self.config.metric) if self.config.uses_appearance else None

        high = np.ones(len(boxes), dtype=bool) if self.config.high_confidence is None \
            else scores > self.config.high_confidence

        self._predict(camera_motion)
        measurements = self.kf.measure(boxes)
        track_idx, det_idx, refresh = self._associate(boxes, scores, high, measurements, features)
        self._update(track_idx, det_idx, measurements, scores, features, refresh, origin)
        birth = self.config.birth_confidence
        born = high.copy() if birth == -math.inf else high & (scores >= birth)
        born[det_idx] = False
        if born.any():
            self._birth(measurements[born], scores[born], None if features is None else features[born], origin[born])
        tlwh = self.kf.to_tlwh(self.tracks.mean)
        if self.config.duplicate_iou is not None:
            tlwh = self._remove_duplicates(tlwh)
        return self._report(tlwh)

    # -- steps ------------------------------------------------------------------------------
    def _predict(self, camera_motion: np.ndarray | None) -> None:
        t, cfg = self.tracks, self.config
        if len(t) == 0:
            self._predicted_tlwh, self._innovation = np.zeros((0, 4)), None
            return
        if cfg.freeze_lost_height:
            t.mean[t.confirmed & (t.time_since_update > 0), 7] = 0.0
        mean, covariance = self.kf.predict(t.mean, t.covariance)  # new arrays
        if not cfg.predict_unconfirmed:  # put back the (few) unconfirmed tracks' birth states
            waiting = _indices(~t.confirmed)
            if len(waiting):
                mean[waiting], covariance[waiting] = t.mean[waiting], t.covariance[waiting]
        t.mean, t.covariance = mean, covariance
        if camera_motion is not None:
            t.mean, t.covariance = self.kf.warp(t.mean, t.covariance, camera_motion)
        t.age += 1
        t.time_since_update += 1
        # A prediction that is no longer a box (SORT: area extrapolated below zero), or one no valid
        # detection can reach, ends the track.
        tlwh = self.kf.to_tlwh(t.mean)
        # Two whole-array reductions settle the usual case (every box valid; NaN fails both).
        all_valid = float(np.abs(tlwh).max()) <= _PREDICTION_LIMIT and float(tlwh[:, 2:].min()) >= MIN_SIZE
        if camera_motion is not None:  # repeated zooms grow variances geometrically
            variances_ok = (t.covariance.diagonal(axis1=1, axis2=2) <= _VARIANCE_LIMIT).all(axis=1)
            all_valid = all_valid and bool(variances_ok.all())
        if not all_valid:
            valid = ((np.abs(tlwh) <= _PREDICTION_LIMIT).all(axis=1)  # False for NaN too
                     & (tlwh[:, 2] >= MIN_SIZE) & (tlwh[:, 3] >= MIN_SIZE))
            if camera_motion is not None:
                valid &= variances_ok
            self._drop(valid)
            tlwh = tlwh[valid]
        self._predicted_tlwh = tlwh
        # Computed once: the gate and the Kalman update both need it for this predicted state.
        self._innovation = self.kf.innovation_diagonal(t.mean, t.covariance)

    def _associate(self, boxes: np.ndarray, scores: np.ndarray, high: np.ndarray, measurements: np.ndarray,
                   features: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Run the stages in order; returns matched (track indices, detection indices, whether the
        match refreshes the track's appearance: its stage's ``updates_appearance``, or None when
        every match does)."""
        t = self.tracks
        track_free = np.ones(len(t), dtype=bool)
        det_free = np.ones(len(boxes), dtype=bool)
        pools = {"high": high, "low": ~high}
        costs = _FrameCosts(self, boxes, measurements, features)
        matched_tracks, matched_dets, refresh = [], [], []
        for stage in self.config.stages:
            di = _indices(det_free & pools[stage.detections])
            if len(di) == 0:  # often so for the later stages: skip before building the track mask
                continue
            ti = _indices(track_free & self._stage_tracks(stage))
            if len(ti) == 0:
                continue
            cost = self._cost(stage, ti, di, costs, scores)
            if stage.cascade:
                rows, cols = self._cascade(cost, t.time_since_update[ti], stage)
            else:
                rows, cols = min_cost_matching(cost, stage.max_cost, stage.gated)
            ti, di = ti[rows], di[cols]
            track_free[ti] = False
            det_free[di] = False
            matched_tracks.append(ti)
            matched_dets.append(di)
            refresh.append((len(ti), stage.updates_appearance))
        if not matched_tracks:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), None
        counts, flags = zip(*refresh)
        return (np.concatenate(matched_tracks), np.concatenate(matched_dets),
                None if all(flags) else np.repeat(flags, counts))

    def _cascade(self, cost: np.ndarray, time_since_update: np.ndarray, stage: Stage) -> tuple[np.ndarray, np.ndarray]:
        """DeepSORT's matching cascade on one stage's ``cost`` (T', N'): tracks most recently seen
        first, depth max_age; each level sees only the detections earlier levels left. Returns the
        matched (rows, cols) of ``cost``."""
        cols_free = np.ones(cost.shape[1], dtype=bool)
        matched_rows, matched_cols = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
        for level in np.unique(time_since_update):  # ascending
            cols_in = _indices(cols_free)
            if level > self.config.max_age or len(cols_in) == 0:
                break
            rows_in = _indices(time_since_update == level)
            rows, cols = min_cost_matching(cost.take(rows_in, axis=0).take(cols_in, axis=1), stage.max_cost,
                                           stage.gated)
            cols_free[cols_in[cols]] = False
            matched_rows.append(rows_in[rows])
            matched_cols.append(cols_in[cols])
        return np.concatenate(matched_rows), np.concatenate(matched_cols)

    def _stage_tracks(self, stage: Stage) -> np.ndarray:
        """Mask (T,) of the tracks ``stage`` takes part with (read only: it may be a column itself)."""
        t = self.tracks
        if stage.tracks == "confirmed":
            mask = t.confirmed
        elif stage.tracks == "unconfirmed":
            mask = ~t.confirmed
        else:
            mask = np.ones(len(t), dtype=bool)
        if stage.max_time_since_update is not None:
            mask = mask & (t.time_since_update <= stage.max_time_since_update)
        return mask

    def _cost(self, stage: Stage, ti: np.ndarray, di: np.ndarray, costs: _FrameCosts,
              scores: np.ndarray) -> np.ndarray:
        """Cost matrix (len(ti), len(di)) of one stage."""
        def pick(matrix: np.ndarray) -> np.ndarray:
            # matrix[np.ix_(ti, di)], as two take() calls: the cheapest form at these sizes.
            return matrix.take(ti, axis=0).take(di, axis=1)

        if stage.cost == "iou":
            iou = pick(costs.iou(stage.iou_buffer, stage.height_modulated))
            cost = 1.0 - iou * scores[di] if stage.fuse_score else 1.0 - iou
            if stage.appearance_max is not None:
                distance = pick(costs.appearance())
                credit = (distance <= stage.appearance_max) & (1.0 - iou <= stage.proximity)
                appearance = np.where(credit, distance * (stage.appearance_scale / stage.appearance_max), 1.0)
                cost = np.minimum(cost, appearance)
                if stage.appearance_veto is not None:
                    cost[distance > stage.appearance_veto * stage.appearance_max] = INFEASIBLE
            return cost
        if stage.cost == "mahalanobis":
            return pick(costs.gate()) / self.config.gating_threshold
        cost = pick(costs.appearance())
        # Gated matching treats every pair over max_cost as INFEASIBLE: with none under it, the
        # gate changes nothing (often so in the re-identification stage).
        if not stage.gated or cost.min() <= stage.max_cost:
            cost[pick(costs.gate()) > self.config.gating_threshold] = INFEASIBLE
        return cost

    def _update(self, ti: np.ndarray, di: np.ndarray, measurements: np.ndarray, scores: np.ndarray,
                features: np.ndarray | None, refresh: np.ndarray | None, origin: np.ndarray) -> None:
        """Kalman-update the matched tracks (``refresh``: (M,) bool, which of the matches also feed the
        appearance memory, None for all; ``origin``: input row of each kept detection), age the
        missed ones, delete the dead."""
        t, cfg = self.tracks, self.config
        t.detection = np.full(len(t), -1, dtype=np.int64)
        if len(ti):
            t.detection[ti] = origin[di]
            # take(): the same rows as [ti], at a third of a multi-dimensional fancy index's cost here.
            diagonal = None if self._innovation is None else self._innovation.take(ti, axis=0)
            t.mean[ti], t.covariance[ti] = self.kf.update(t.mean.take(ti, axis=0), t.covariance.take(ti, axis=0),
                                                          measurements.take(di, axis=0), diagonal)
            hits = t.hits[ti] + 1
            t.hits[ti] = hits
            t.hit_streak[ti] += 1
            t.time_since_update[ti] = 0
            t.score[ti] = scores[di]
            t.confirmed[ti] |= hits >= cfg.n_init
            if features is not None and self.gallery is not None:
                fed_ti, fed_di = (ti, di) if refresh is None else (ti[refresh], di[refresh])
                self.gallery.add(t.slot[fed_ti], features.take(fed_di, axis=0))
        missed = t.time_since_update > 0
        t.hit_streak[missed] = 0
        dead = np.where(t.confirmed, t.time_since_update > cfg.max_age,
                        t.time_since_update > cfg.tentative_max_age)
        if dead.any():
            if cfg.identity_memory > 0 and self.gallery is not None:
                self._depart(_indices(dead & (t.track_id > 0) & (t.slot >= 0)))
            self._drop(~dead)

    def _birth(self, measurements: np.ndarray, scores: np.ndarray, features: np.ndarray | None,
               origin: np.ndarray) -> None:
        k = len(measurements)
        mean, covariance = self.kf.initiate(measurements)
        slots = np.full(k, -1, dtype=np.int64)
        if features is not None:
            if self.gallery is None:
                cfg = self.config
                self.gallery = FeatureGallery(features.shape[1], cfg.budget, cfg.metric,
                                              ema_alpha=cfg.ema_alpha if cfg.appearance_memory == "ema" else None)
            slots = np.array([self.gallery.allocate() for _ in range(k)], dtype=np.int64)
            self.gallery.add(slots, features)
        confirmed = self.config.n_init <= 1 or (self.config.confirm_first_frame and self.frame_count == 1)
        self.tracks.append(mean, covariance, slots, scores, origin, confirmed=confirmed)

    def _remove_duplicates(self, tlwh: np.ndarray) -> np.ndarray:
        """A lost track and an active one covering the same person: keep the one tracked longer.

        ByteTrack's rule: IoU above ``duplicate_iou``; the track with the shorter span from birth to
        its last update goes (the active one on a tie). tlwh: (T, 4) the tracks' boxes; returns
        those of the tracks kept.
        """
        t = self.tracks
        missed = t.time_since_update > 0
        active, lost = _indices(~missed), _indices(missed)
        if len(active) == 0 or len(lost) == 0:
            return tlwh
        overlap = iou_matrix(tlwh.take(active, axis=0), tlwh.take(lost, axis=0))
        rows, cols = (overlap > self.config.duplicate_iou).nonzero()
        if len(rows) == 0:
            return tlwh
        span = t.age - 1 - t.time_since_update  # frames from birth to the last update
        a, b = active[rows], lost[cols]
        keep = np.ones(len(t), dtype=bool)
        keep[np.where(span[a] > span[b], b, a)] = False
        self._drop(keep)
        return tlwh[keep]

    def _drop(self, keep: np.ndarray) -> None:
        if self.gallery is not None:
            slots = self.tracks.slot[~keep]
            self.gallery.release(slots[slots >= 0])
        self.tracks.keep(keep)

    def _depart(self, idx: np.ndarray) -> None:
        """Remember the deleted tracks ``idx`` (indices into the table): their ids and appearance
        stay claimable for identity_memory frames; their slots move out of the table, unreleased."""
        t = self.tracks
        entries = {"track_id": t.track_id[idx], "slot": t.slot[idx],
                   "last_seen": self.frame_count - t.time_since_update[idx]}
        self.departed = {name: np.concatenate([self.departed[name], entries[name]]) for name in _DEPARTED}
        t.slot[idx] = -1  # so that _drop does not release them

    def _forget_departed(self, keep: np.ndarray) -> None:
        """Keep the departed entries where ``keep`` (K,) is True; release the others' slots."""
        if keep.all():
            return
        self.gallery.release(self.departed["slot"][~keep])
        self.departed = {name: value[keep] for name, value in self.departed.items()}

    def _reclaim(self, new: np.ndarray) -> np.ndarray:
        """Ids for the tracks ``new`` (indices into the table, reported for the first time): a departed
        id where one assignment on appearance distance pairs them within identity_factor x the
        descriptor's threshold, else 0. The claimed entries are forgotten."""
        ids = np.zeros(len(new), dtype=np.int64)
        slots = self.tracks.slot[new]
        held = _indices(slots >= 0)  # a track without a slot has no appearance
        queries, owner = self.gallery.stored(slots[held])
        # Each new track's nearest stored feature to each departed gallery: (K, len(new)), inf where none.
        distance = np.full((len(self.departed["slot"]), len(new)), np.inf)
        np.minimum.at(distance, (slice(None), held[owner]), self.gallery.distance(self.departed["slot"], queries))
        threshold = self.config.identity_factor * self.config.appearance_threshold
        rows, cols = min_cost_matching(distance, threshold, gated=True)
        if len(rows):
            ids[cols] = self.departed["track_id"][rows]
            claimed = np.zeros(len(distance), dtype=bool)
            claimed[rows] = True
            self._forget_departed(~claimed)
        return ids

    def _report(self, tlwh: np.ndarray) -> list[Track]:
        t, cfg = self.tracks, self.config
        recent = t.time_since_update <= cfg.report_max_time_since_update
        # Streaks are never negative: a minimum of 0 needs no comparison.
        shown = t.confirmed & (t.hit_streak >= cfg.report_min_hit_streak) if cfg.report_min_hit_streak > 0 \
            else t.confirmed
        if self.frame_count <= cfg.report_warmup_frames:  # during the warm-up, also every track updated now
            shown = shown | (t.time_since_update == 0)  # not in place: shown may be t.confirmed itself
        idx = _indices(recent & shown)
        new = idx[t.track_id[idx] == 0]  # reported for the first time: the next ids, in creation order
        if len(new) and len(self.departed["track_id"]):  # or a returning person's old id
            ids = self._reclaim(new)
            t.track_id[new[ids > 0]] = ids[ids > 0]
            new = new[ids == 0]
        if len(new):
            t.track_id[new] = np.arange(self._next_id, self._next_id + len(new))
            self._next_id += len(new)
        # Columns to Python lists first: one conversion per column, not one numpy scalar per field.
        columns = (t.track_id[idx].tolist(), list(tlwh.take(idx, axis=0)), t.confirmed[idx].tolist(),
                   t.time_since_update[idx].tolist(), t.hits[idx].tolist(), t.age[idx].tolist(),
                   t.score[idx].tolist(), t.detection[idx].tolist())
        return list(map(Track, *columns))

    def _count_duplicates(self, boxes: np.ndarray) -> None:
        duplicates = count_duplicates(boxes)
        if duplicates == 0:
            return
        self.duplicate_detections += duplicates
        if not self._warned_duplicates:
            self._warned_duplicates = True
            warnings.warn(f"frame {self.frame_count + 1}: {duplicates} detection row(s) repeat another row of the "
                          "same frame exactly and will start duplicate tracks (counted in "
                          "Tracker.duplicate_detections; warned once per tracker; nms_max_overlap < 1 removes them)",
                          RuntimeWarning, stacklevel=3)

    # -- state ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, np.ndarray]:
        """The full state as plain arrays (copies): feed it to :meth:`from_snapshot` or :meth:`restore`,
        in this or another process, and the tracker continues exactly as this one would.

        Keys: ``version``, ``config`` (uint8 bytes of the config as JSON), counters (0-d int64),
        ``tracks/<column>`` (the track table: mean (T, 8), covariance (T, 8, 8), ...),
        ``departed/<column>`` (deleted tracks whose ids may be reclaimed: (K,) each) and, once
        features were seen, ``gallery/<name>`` (the appearance pool).
        """
        state: dict[str, np.ndarray] = {
            "version": np.array(SNAPSHOT_VERSION, dtype=np.int64),
            "config": np.frombuffer(json.dumps(self.config.to_dict()).encode(), dtype=np.uint8).copy(),
        }
        for name in _COUNTERS:
            state[name] = np.array(int(getattr(self, name)), dtype=np.int64)
        for name in TrackTable.COLUMNS:
            state[f"tracks/{name}"] = getattr(self.tracks, name).copy()
        if self.gallery is not None:
            state.update({f"gallery/{name}": value for name, value in self.gallery.state().items()})
        state.update({f"departed/{name}": value.copy() for name, value in self.departed.items()})
        return state

    @classmethod
    def from_snapshot(cls, state: dict[str, np.ndarray]) -> Tracker:
        """A tracker in the state :meth:`snapshot` returned (its config included)."""
        tracker = cls(_snapshot_config(state))
        tracker.restore(state)
        return tracker

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Take the state (and config) :meth:`snapshot` returned; ValueError naming what does not fit."""
        if not isinstance(state, Mapping):
            raise ValueError(f"snapshot must be the dict of arrays Tracker.snapshot() returned, got {type(state).__name__}")
        config = _snapshot_config(state)
        table = TrackTable()
        for name in TrackTable.COLUMNS:
            value = np.asarray(_snapshot_entry(state, f"tracks/{name}"))
            template = getattr(table, name)
            if value.ndim != template.ndim or value.shape[1:] != template.shape[1:]:
                expected = "(T" + "".join(f", {k}" for k in template.shape[1:]) + ")"
                raise ValueError(f"snapshot tracks/{name} has shape {value.shape}, expected {expected}")
            setattr(table, name, value.astype(template.dtype, copy=True))
        lengths = {name: len(getattr(table, name)) for name in TrackTable.COLUMNS}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"snapshot track columns differ in length: {lengths}")
        gallery = None
        if any(key.startswith("gallery/") for key in state):
            parts = {name: _snapshot_entry(state, f"gallery/{name}")
                     for name in ("features", "sq_norms", "count", "next", "free")}
            gallery = FeatureGallery.from_state(parts, config.metric,
                                                config.ema_alpha if config.appearance_memory == "ema" else None)
        departed = _snapshot_departed(state, gallery)
        if gallery is not None:
            used = np.concatenate([table.slot[table.slot >= 0], departed["slot"]])
            if len(used) and used.max() >= len(parts["count"]):
                raise ValueError("snapshot tracks/slot or departed/slot points outside the gallery")
        counters = {name: _snapshot_int(state, name) for name in _COUNTERS}
        _check_snapshot_values(table, departed, counters, gallery is not None)
        self.config, self.kf = config, MOTION_MODELS[config.motion_model](config.velocity_noise)
        self.tracks, self.gallery, self.departed = table, gallery, departed
        for name, value in counters.items():
            setattr(self, name, value)
        self._warned_duplicates = bool(self._warned_duplicates)
        self._predicted_tlwh, self._innovation = np.zeros((0, 4)), None

    def save_snapshot(self, file: str | os.PathLike | IO[bytes]) -> None:
        """Write :meth:`snapshot` as an .npz (no pickle) to a path, atomically, or to a binary file object.

        The tracker sits below fmtrack.io (numpy only), so the atomic write is done here: a temporary
        file beside the target, then os.replace. Writing through a file object also keeps numpy from
        appending ".npz" to the name.
        """
        state = self.snapshot()
        if hasattr(file, "write"):
            np.savez(file, **state)
            return
        path = Path(file)
        if path.exists() and not path.is_file():
            raise ValueError(f"{path}: not a regular file; refusing to replace it with a snapshot")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # as fmtrack.io's atomic writes do
            handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as err:
            raise ValueError(f"{path}: cannot write a snapshot here ({err.strerror or err})") from None
        try:
            with os.fdopen(handle, "wb") as fh:
                np.savez(fh, **state)
            os.chmod(tmp, _FILE_MODE)  # mkstemp's owner-only mode, as any other file gets instead
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load_snapshot(cls, file: str | os.PathLike | IO[bytes]) -> Tracker:
        """The tracker saved by :meth:`save_snapshot` (pickled objects refused); ValueError naming the file."""
        name = getattr(file, "name", file)
        try:
            data = np.load(file, allow_pickle=False)
            if not hasattr(data, "files"):  # an .npy file: one plain array
                raise ValueError(f"{name}: not a tracker snapshot (.npz), but a single array")
            with data:
                state = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            message = str(err)
            raise ValueError(message if message.startswith(f"{name}:") else
                             f"{name}: not a readable tracker snapshot (.npz): {message}") from None
        try:
            return cls.from_snapshot(state)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None


_COUNTERS = ("frame_count", "skipped_detections", "duplicate_detections", "_warned_duplicates", "_next_id")
_DEPARTED = ("track_id", "slot", "last_seen")


def _snapshot_entry(state: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"snapshot has no {key!r} entry (not made by Tracker.snapshot?)")
    return state[key]


def _snapshot_int(state: dict[str, np.ndarray], key: str) -> int:
    value = np.asarray(_snapshot_entry(state, key))
    if value.size != 1 or value.dtype.kind not in "iub":
        raise ValueError(f"snapshot {key!r} must be one integer, got {value.dtype} {value.shape}")
    return int(value.reshape(()))


def _check_snapshot_values(table: TrackTable, departed: dict[str, np.ndarray], counters: dict[str, int],
                           has_gallery: bool) -> None:
    """ValueError naming the entry of a snapshot whose values no tracker could have reached: a state
    that is not finite (every track would vanish at the next update), ids repeated or ahead of the
    next id (two tracks reported as one), negative counts, gallery slots shared or without a gallery."""
    for name in ("mean", "covariance"):
        if not np.isfinite(getattr(table, name)).all():
            raise ValueError(f"snapshot tracks/{name} is not finite")
    for name, low in (("hits", 1), ("age", 1), ("hit_streak", 0), ("time_since_update", 0), ("track_id", 0)):
        column = getattr(table, name)
        if len(column) and column.min() < low:
            raise ValueError(f"snapshot tracks/{name} holds {int(column.min())}, below {low}")
    for name, low in (("frame_count", 0), ("skipped_detections", 0), ("duplicate_detections", 0), ("_next_id", 1)):
        if counters[name] < low:
            raise ValueError(f"snapshot {name!r} is {counters[name]}, below {low}")
    ids = np.concatenate([table.track_id[table.track_id > 0], departed["track_id"]])
    if len(ids) and (len(np.unique(ids)) < len(ids) or ids.min() < 1 or ids.max() >= counters["_next_id"]):
        raise ValueError("snapshot track ids (tracks/track_id, departed/track_id) repeat, or are not below _next_id")
    slots = np.concatenate([table.slot[table.slot >= 0], departed["slot"]])
    if (len(table.slot) and table.slot.min() < -1) or len(np.unique(slots)) < len(slots) or (len(slots) and not has_gallery):
        raise ValueError("snapshot tracks/slot must be -1 (no appearance) or a gallery slot no other track holds")


def _no_departed() -> dict[str, np.ndarray]:
    """An empty departed table: (0,) int64 per column."""
    return {name: np.zeros(0, dtype=np.int64) for name in _DEPARTED}


def _snapshot_departed(state: dict[str, np.ndarray], gallery: FeatureGallery | None) -> dict[str, np.ndarray]:
    """The departed table of a snapshot (empty where the snapshot has none)."""
    if not any(key.startswith("departed/") for key in state):
        return _no_departed()
    departed = {}
    for name in _DEPARTED:
        value = np.asarray(_snapshot_entry(state, f"departed/{name}"))
        if value.ndim != 1 or (value.size and value.dtype.kind not in "iu"):
            raise ValueError(f"snapshot departed/{name} must be (K,) integers, got {value.dtype} {value.shape}")
        departed[name] = value.astype(np.int64)
    lengths = {name: len(value) for name, value in departed.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"snapshot departed columns differ in length: {lengths}")
    if len(departed["slot"]) and (gallery is None or departed["slot"].min() < 0):
        raise ValueError("snapshot departed/slot needs a gallery slot (>= 0) for every entry")
    return departed


def _snapshot_config(state: dict[str, np.ndarray]) -> TrackerConfig:
    version = _snapshot_int(state, "version")
    if version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {version} is not {SNAPSHOT_VERSION}, the one this fmtrack reads")
    raw = np.asarray(_snapshot_entry(state, "config"))
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"snapshot config must be uint8 bytes of JSON, got {raw.dtype} {raw.shape}")
    try:
        return TrackerConfig.from_dict(json.loads(raw.tobytes().decode()))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"snapshot config is not a TrackerConfig in JSON: {err}") from None


def _check_camera_motion(camera_motion: Any) -> np.ndarray:
    """A (2, 3) float64 affine from ``camera_motion``, or ValueError saying what is wrong with it."""
    affine = as_real(camera_motion, "camera_motion")
    if affine.shape == (3, 3):
        if not (affine[2] == (0.0, 0.0, 1.0)).all():
            raise ValueError(f"camera_motion has shape (3, 3) with last row {affine[2].tolist()}: a homography; "
                             "pass a (2, 3) affine (its top two rows when the last row is [0, 0, 1])")
        affine = affine[:2]
    elif affine.shape != (2, 3):
        raise ValueError(f"camera_motion must be a (2, 3) affine (previous to current frame pixels), "
                         f"got shape {affine.shape}")
    if not np.isfinite(affine).all():
        raise ValueError(f"camera_motion is not finite: {affine.tolist()}")
    (a, b, tx), (c, d, ty) = affine.tolist()
    # Singular values of the 2x2 linear part: s1 * s2 = |det|, s1^2 + s2^2 = squared Frobenius norm.
    det, frobenius = abs(a * d - b * c), a * a + b * b + c * c + d * d
    largest = math.sqrt((frobenius + math.sqrt(max(frobenius**2 - 4 * det * det, 0.0))) / 2)
    smallest = det / largest if largest > 0 else 0.0
    low, high = _MOTION_SCALE
    # Not chained through smallest <= largest: for a rotation they are equal up to rounding. NaN fails too.
    if not (low <= smallest and largest <= high):
        raise ValueError(f"camera_motion's linear part {[[a, b], [c, d]]} scales by {smallest:.3g} to "
                         f"{largest:.3g} (singular values); a motion between consecutive frames lies within "
                         f"{low:g} to {high:g} (all zeros: no estimate; pass None for a static camera)")
    if max(abs(tx), abs(ty)) > MAX_PIXELS:
        raise ValueError(f"camera_motion translates by ({tx:g}, {ty:g}) px: beyond {MAX_PIXELS:g}")
    return affine


class _FrameCosts:
    """One frame's pairwise terms between all live tracks and all kept detections.

    Each is computed at most once per frame, for every pair, and the stages take slices: a few
    whole-matrix numpy calls cost less than one small call per stage.
    """

    def __init__(self, tracker: Tracker, boxes: np.ndarray, measurements: np.ndarray, features: np.ndarray | None):
        self.tracker, self.boxes, self.measurements, self.features = tracker, boxes, measurements, features
        self._gate = self._appearance = self._height_iou = None
        self._iou: dict[tuple[float, bool], np.ndarray] = {}

    def iou(self, buffer: float = 0.0, height_modulated: bool = False) -> np.ndarray:
        """IoU (T, N) of the predicted track boxes and the detections, both grown by ``buffer``;
        ``height_modulated``: times the height IoU of the boxes as they are (unbuffered)."""
        key = (buffer, height_modulated)
        if key not in self._iou:
            tracks, boxes = self.tracker._predicted_tlwh, self.boxes
            if height_modulated:  # one product per frame and buffer, shared by the stages with it
                if self._height_iou is None:
                    self._height_iou = height_iou_matrix(tracks, boxes)
                self._iou[key] = self.iou(buffer) * self._height_iou
            else:
                if buffer:
                    tracks, boxes = grow_tlwh(tracks, buffer), grow_tlwh(boxes, buffer)
                self._iou[key] = iou_matrix(tracks, boxes)
        return self._iou[key]

    def gate(self) -> np.ndarray:
        """Squared Mahalanobis distances (T, N)."""
        if self._gate is None:
            t = self.tracker.tracks
            self._gate = self.tracker.kf.gating_distance(t.mean, t.covariance, self.measurements,
                                                         self.tracker._innovation)
        return self._gate

    def appearance(self) -> np.ndarray:
        """Appearance distances (T, N) in the config's metric."""
        if self._appearance is None:
            self._appearance = self.tracker.gallery.distance(self.tracker.tracks.slot, self.features)
        return self._appearance
