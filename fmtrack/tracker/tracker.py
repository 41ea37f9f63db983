"""The streaming tracker: detections (and optional appearance features) in, tracks out.

Per frame: filter detections, predict all tracks at once, run the configured association stages
(one cost matrix and one Hungarian assignment each), update the matched tracks at once, age the
rest, start new tracks, delete dead ones, report. Numpy only: no files, no torch.
"""

from __future__ import annotations

import numpy as np

from .config import Stage, TrackerConfig, preset
from .detections import select_detections, validate_frame_input
from .kalman_filter import MOTION_MODELS
from .linear_assignment import INFEASIBLE, iou_matrix, min_cost_matching
from .nn_matching import FeatureGallery, prepare_features
from .track import Track, TrackTable


def _indices(mask: np.ndarray) -> np.ndarray:
    """Indices of the True entries of a 1-d mask (np.flatnonzero without its ravel overhead)."""
    return mask.nonzero()[0]


class Tracker:
    """Multi-object tracker, fed one frame at a time.

    >>> tracker = Tracker("deepsort")
    >>> tracks = tracker.update(boxes, scores, features)   # boxes: (N, 4) tlwh pixels
    """

    def __init__(self, config: TrackerConfig | str = "deepsort"):
        self.config = preset(config) if isinstance(config, str) else config
        self.kf = MOTION_MODELS[self.config.motion_model]()
        self.tracks = TrackTable()
        self.gallery: FeatureGallery | None = None  # created on the first features seen
        self.frame_count = 0
        self.skipped_detections = 0  # dropped for non-positive width or height
        self._next_id = 1
        self._predicted_tlwh = np.zeros((0, 4))  # this frame's predicted boxes (T, 4), set by _predict

    def update(self, boxes: np.ndarray, scores: np.ndarray | None = None,
               features: np.ndarray | None = None, camera_motion: np.ndarray | None = None) -> list[Track]:
        """Advance one frame.

        boxes: (N, 4) float, tlwh pixels. scores: (N,) detector confidences (None: all 1).
        features: (N, D) float appearance descriptors; required when a stage uses appearance.
        camera_motion: (2, 3) affine from the previous frame's pixels to this frame's, applied to
        every track's Kalman state after prediction (None: static camera).
        Returns the tracks to report in this frame (the preset's report rule).
        """
        boxes, scores, features, skipped = validate_frame_input(
            boxes, scores, features, needs_features=self.config.uses_appearance)
        self.skipped_detections += skipped
        self.frame_count += 1
        keep = select_detections(boxes, scores, self.config)
        boxes, scores = boxes[keep], scores[keep]
        if features is not None:  # kept only when a stage will compare them
            features = prepare_features(features[keep], self.config.metric) if self.config.uses_appearance else None

        high = np.ones(len(boxes), dtype=bool) if self.config.high_confidence is None \
            else scores > self.config.high_confidence

        self._predict(camera_motion)
        measurements = self.kf.measure(boxes)
        track_idx, det_idx, refresh = self._associate(boxes, scores, high, measurements, features)
        self._update(track_idx, det_idx, measurements, scores, features, refresh)
        born = high & (scores >= self.config.birth_confidence)
        born[det_idx] = False
        self._birth(measurements[born], scores[born], None if features is None else features[born])
        tlwh = self.kf.to_tlwh(self.tracks.mean)
        if self.config.duplicate_iou is not None:
            tlwh = self._remove_duplicates(tlwh)
        return self._report(tlwh)

    # -- steps ------------------------------------------------------------------------------
    def _predict(self, camera_motion: np.ndarray | None) -> None:
        t, cfg = self.tracks, self.config
        self._predicted_tlwh = np.zeros((0, 4))
        if len(t) == 0:
            return
        if cfg.freeze_lost_height:
            t.mean[t.confirmed & (t.time_since_update > 0), 7] = 0.0
        if cfg.predict_unconfirmed:
            t.mean, t.covariance = self.kf.predict(t.mean, t.covariance)
        else:  # predict all, then put back the (few) unconfirmed tracks' birth states
            waiting = ~t.confirmed
            birth_mean, birth_covariance = t.mean[waiting], t.covariance[waiting]
            t.mean, t.covariance = self.kf.predict(t.mean, t.covariance)
            t.mean[waiting], t.covariance[waiting] = birth_mean, birth_covariance
        if camera_motion is not None:
            t.mean, t.covariance = self.kf.warp(t.mean, t.covariance, camera_motion)
        t.age += 1
        t.time_since_update += 1
        # A prediction that is no longer a box (SORT: area extrapolated below zero) ends the track.
        tlwh = self.kf.to_tlwh(t.mean)
        valid = np.isfinite(tlwh).all(axis=1) & (tlwh[:, 2] > 0) & (tlwh[:, 3] > 0)
        if not valid.all():
            self._drop(valid)
            tlwh = tlwh[valid]
        self._predicted_tlwh = tlwh

    def _associate(self, boxes: np.ndarray, scores: np.ndarray, high: np.ndarray, measurements: np.ndarray,
                   features: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the stages in order; returns matched (track indices, detection indices, whether the
        match refreshes the track's appearance: its stage's ``updates_appearance``)."""
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
                # DeepSORT's cascade: most recently seen first, depth max_age; each level sees only
                # the detections earlier levels left.
                tsu = t.time_since_update[ti]
                groups = [_indices(tsu == lv) for lv in np.unique(tsu) if lv <= self.config.max_age]
            else:
                groups = [np.arange(len(ti))]
            cols_free = np.ones(len(di), dtype=bool)
            for rows_in in groups:
                cols_in = _indices(cols_free)
                if len(cols_in) == 0:
                    break
                rows, cols = min_cost_matching(cost[rows_in][:, cols_in], stage.max_cost, stage.gated)
                cols_free[cols_in[cols]] = False
                track_free[ti[rows_in[rows]]] = False
                matched_tracks.append(ti[rows_in[rows]])
                matched_dets.append(di[cols_in[cols]])
                refresh.append(np.full(len(rows), stage.updates_appearance))
            det_free[di[~cols_free]] = False
        if not matched_tracks:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        return np.concatenate(matched_tracks), np.concatenate(matched_dets), np.concatenate(refresh)

    def _stage_tracks(self, stage: Stage) -> np.ndarray:
        t = self.tracks
        if stage.tracks == "confirmed":
            mask = t.confirmed.copy()
        elif stage.tracks == "unconfirmed":
            mask = ~t.confirmed
        else:
            mask = np.ones(len(t), dtype=bool)
        if stage.max_time_since_update is not None:
            mask &= t.time_since_update <= stage.max_time_since_update
        return mask

    def _cost(self, stage: Stage, ti: np.ndarray, di: np.ndarray, costs: _FrameCosts,
              scores: np.ndarray) -> np.ndarray:
        """Cost matrix (len(ti), len(di)) of one stage."""
        rows_cols = np.ix_(ti, di)

        def pick(matrix: np.ndarray) -> np.ndarray:
            return matrix[rows_cols]

        if stage.cost == "iou":
            iou = pick(costs.iou())
            cost = 1.0 - iou * scores[di] if stage.fuse_score else 1.0 - iou
            if stage.appearance_max is not None:
                distance = pick(costs.appearance())
                credit = (distance <= stage.appearance_max) & (1.0 - iou <= stage.proximity)
                appearance = np.where(credit, distance * (stage.appearance_scale / stage.appearance_max), 1.0)
                cost = np.minimum(cost, appearance)
            return cost
        gate = pick(costs.gate())
        if stage.cost == "mahalanobis":
            return gate / self.config.gating_threshold
        cost = pick(costs.appearance())
        cost[gate > self.config.gating_threshold] = INFEASIBLE
        return cost

    def _update(self, ti: np.ndarray, di: np.ndarray, measurements: np.ndarray,
                scores: np.ndarray, features: np.ndarray | None, refresh: np.ndarray) -> None:
        """Kalman-update the matched tracks (``refresh``: (M,) bool, which of the matches also feed the
        appearance memory), age the missed ones, delete the dead."""
        t, cfg = self.tracks, self.config
        if len(ti):
            t.mean[ti], t.covariance[ti] = self.kf.update(t.mean[ti], t.covariance[ti], measurements[di])
            t.hits[ti] += 1
            t.hit_streak[ti] += 1
            t.time_since_update[ti] = 0
            t.score[ti] = scores[di]
            t.confirmed[ti] |= t.hits[ti] >= cfg.n_init
            if features is not None and self.gallery is not None:
                self.gallery.add(t.slot[ti[refresh]], features[di[refresh]])
        missed = t.time_since_update > 0
        t.hit_streak[missed] = 0
        dead = np.where(t.confirmed, t.time_since_update > cfg.max_age,
                        t.time_since_update > cfg.tentative_max_age)
        if dead.any():
            self._drop(~dead)

    def _birth(self, measurements: np.ndarray, scores: np.ndarray, features: np.ndarray | None) -> None:
        k = len(measurements)
        if k == 0:
            return
        mean, covariance = self.kf.initiate(measurements)
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        slots = np.full(k, -1, dtype=np.int64)
        if features is not None:
            if self.gallery is None:
                cfg = self.config
                self.gallery = FeatureGallery(features.shape[1], cfg.budget, cfg.metric,
                                              ema_alpha=cfg.ema_alpha if cfg.appearance_memory == "ema" else None)
            slots = np.array([self.gallery.allocate() for _ in range(k)], dtype=np.int64)
            self.gallery.add(slots, features)
        confirmed = self.config.n_init <= 1 or (self.config.confirm_first_frame and self.frame_count == 1)
        self.tracks.append(mean, covariance, ids, slots, scores, confirmed=confirmed)

    def _remove_duplicates(self, tlwh: np.ndarray) -> np.ndarray:
        """A lost track and an active one covering the same person: keep the one tracked longer.

        ByteTrack's rule: IoU above ``duplicate_iou``; the track with the shorter span from birth to
        its last update goes (the active one on a tie). tlwh: (T, 4) the tracks' boxes; returns
        those of the tracks kept.
        """
        t = self.tracks
        active = _indices(t.time_since_update == 0)
        lost = _indices(t.time_since_update > 0)
        if len(active) == 0 or len(lost) == 0:
            return tlwh
        pairs = np.argwhere(iou_matrix(tlwh[active], tlwh[lost]) > self.config.duplicate_iou)
        if len(pairs) == 0:
            return tlwh
        span = t.age - 1 - t.time_since_update  # frames from birth to the last update
        a, b = active[pairs[:, 0]], lost[pairs[:, 1]]
        keep = np.ones(len(t), dtype=bool)
        keep[np.where(span[a] > span[b], b, a)] = False
        self._drop(keep)
        return tlwh[keep]

    def _drop(self, keep: np.ndarray) -> None:
        if self.gallery is not None:
            slots = self.tracks.slot[~keep]
            self.gallery.release(slots[slots >= 0])
        self.tracks.keep(keep)

    def _report(self, tlwh: np.ndarray) -> list[Track]:
        t, cfg = self.tracks, self.config
        recent = t.time_since_update <= cfg.report_max_time_since_update
        established = t.confirmed & (t.hit_streak >= cfg.report_min_hit_streak)
        warmup = (self.frame_count <= cfg.report_warmup_frames) & (t.time_since_update == 0)
        idx = _indices(recent & (established | warmup))
        return [Track(int(t.track_id[i]), tlwh[i], bool(t.confirmed[i]), int(t.time_since_update[i]),
                      int(t.hits[i]), int(t.age[i]), float(t.score[i]))
                for i in idx]


class _FrameCosts:
    """One frame's pairwise terms between all live tracks and all kept detections.

    Each is computed at most once per frame, for every pair, and the stages take slices: a few
    whole-matrix numpy calls cost less than one small call per stage.
    """

    def __init__(self, tracker: Tracker, boxes: np.ndarray, measurements: np.ndarray, features: np.ndarray | None):
        self.tracker, self.boxes, self.measurements, self.features = tracker, boxes, measurements, features
        self._iou = self._gate = self._appearance = None

    def iou(self) -> np.ndarray:
        if self._iou is None:
            self._iou = iou_matrix(self.tracker._predicted_tlwh, self.boxes)
        return self._iou

    def gate(self) -> np.ndarray:
        """Squared Mahalanobis distances (T, N)."""
        if self._gate is None:
            t = self.tracker.tracks
            self._gate = self.tracker.kf.gating_distance(t.mean, t.covariance, self.measurements)
        return self._gate

    def appearance(self) -> np.ndarray:
        """Appearance distances (T, N) in the config's metric."""
        if self._appearance is None:
            self._appearance = self.tracker.gallery.distance(self.tracker.tracks.slot, self.features)
        return self._appearance
