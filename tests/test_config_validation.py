"""Every field of a Stage and a TrackerConfig is checked against its declared type and range where the
config is made, so a preset file, a method spec or a library call with a wrong value fails there,
naming the field, instead of deep inside a frame's numpy (or, worse, running a different tracker:
before these checks a stage's ``tracks: "confirmd"`` took part with every track, and ``cost: "IoU"``
fell through to the appearance cost)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from fmtrack.io import InputError
from fmtrack.pipeline.preset_file import load_preset_file, preset_document
from fmtrack.tracker import PRESETS, Stage, Tracker, TrackerConfig, preset

FUSED = PRESETS["fmtrack"].stages[1]


@pytest.mark.parametrize("field, value, message", [
    ("cost", "IoU", "unknown cost 'IoU' (one of appearance, mahalanobis, iou)"),
    ("tracks", "confirmd", "unknown tracks 'confirmd' (one of all, confirmed, unconfirmed)"),
    ("detections", "mid", "unknown detections 'mid'"),
    ("max_cost", "0.8", "max_cost must be a number, got '0.8'"),
    ("max_cost", math.nan, "max_cost must be >= 0 and below"),
    ("max_cost", -0.1, "max_cost must be >= 0 and below"),
    ("max_cost", math.inf, "max_cost must be >= 0 and below"),  # gated-out pairs (1e5) would match
    ("max_time_since_update", 0, "max_time_since_update must be a finite number >= 1"),
    ("max_time_since_update", 1.5, "max_time_since_update must be a whole number, got 1.5"),
    ("proximity", math.nan, "proximity must be a finite number >= 0"),
    ("appearance_max", -0.2, "appearance_max must be a finite number > 0"),
    ("appearance_max", 0.0, "appearance_max must be a finite number > 0"),
    ("appearance_scale", 0.0, "appearance_scale must be a finite number > 0"),
    ("threshold_factor", math.inf, "threshold_factor must be a finite number > 0"),
    ("appearance_veto", 0.5, "appearance_veto must be >= 1"),
    ("fuse_score", "false", "fuse_score must be true or false, got 'false'"),
])
def test_a_stage_refuses_a_wrong_value_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dataclasses.replace(FUSED, **{field: value})


@pytest.mark.parametrize("field, value, message", [
    ("min_confidence", "0.3", "min_confidence must be a number, got '0.3'"),
    ("min_confidence", math.nan, "min_confidence must be a score"),
    ("max_age", "60", "max_age must be a whole number, got '60'"),
    ("max_age", 2.5, "max_age must be a whole number, got 2.5"),
    ("n_init", True, "n_init must be a whole number, got True"),
    ("ema_alpha", 1.5, r"ema_alpha must be in \[0, 1\]"),
    ("gating_threshold", 0.0, "gating_threshold must be a finite number > 0"),
    ("duplicate_iou", 2.0, r"duplicate_iou must be in \[0, 1\]"),
    ("tentative_max_age", -1, "tentative_max_age must be a finite number >= 0"),
    ("report_min_hit_streak", -1, "report_min_hit_streak must be a finite number >= 0"),
    ("score_normalisation", "quantile", "unknown score_normalisation 'quantile'"),
    ("metric", "l2", "unknown metric 'l2' (one of cosine, euclidean)"),
    ("name", 5, "name must be a string, got 5"),
    ("stages", "iou", "stages must be a tuple of Stage"),
])
def test_a_config_refuses_a_wrong_value_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       if "[" not in message else message):
        PRESETS["fmtrack"].replace(**{field: value})


def test_a_wrong_value_is_named_as_the_configs_own_not_its_motion_only_forms():
    # The motion-only form is built from the config; its check runs last, so the message is the field's.
    with pytest.raises(ValueError, match="^ema_alpha must be in"):
        preset("fmtrack", ema_alpha=1.5)
    with pytest.raises(ValueError, match="^motion_only: max_age must be a whole number"):
        preset("fmtrack", motion_only={"max_age": "x"})


def test_whole_numbers_written_as_floats_are_read_as_counts():
    config = preset("fmtrack", max_age=60.0, n_init=2.0)
    assert (config.max_age, config.n_init) == (60, 2) and isinstance(config.max_age, int)
    assert config == preset("fmtrack", max_age=60, n_init=2)
    stages = TrackerConfig(stages=[Stage("iou", max_cost=0.7, max_time_since_update=1.0)]).stages
    assert isinstance(stages, tuple) and stages[0].max_time_since_update == 1  # a list is stored as a tuple


def test_every_preset_and_its_motion_only_form_pass_their_own_checks():
    for config in PRESETS.values():
        assert TrackerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        assert config.without_appearance().at_frame_rate(7.0) is not None


def test_a_preset_file_with_a_wrong_value_names_the_file_and_the_field(tmp_path):
    """Switches included: "false" (a string) or 0 in a bool field would be read by Python's truth rules."""
    document = preset_document(preset("fmtrack"), {"test": "types"})
    for where, field, value, message in (("stage", "tracks", "confirmd", "unknown tracks 'confirmd'"),
                                         ("config", "min_confidence", "0.1", "min_confidence must be a number"),
                                         ("stage", "height_modulated", "false",
                                          "height_modulated must be true or false, got 'false'"),
                                         ("config", "confirm_first_frame", 0,
                                          "confirm_first_frame must be true or false, got 0")):
        data = json.loads(json.dumps(document))
        (data["tracker"]["stages"][1] if where == "stage" else data["tracker"])[field] = value
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(InputError, match=f"{field}.json.*{message}"):
            load_preset_file(path)


def test_a_checked_config_tracks_as_the_same_config_unchecked_would():
    """The checks change no valid config: a whole-number float reads as the int, and the tracker's
    output on a small scene is the same for both spellings."""
    rng = np.random.default_rng(0)
    boxes = [np.c_[rng.uniform(0, 500, (4, 2)) + 5 * f, np.full((4, 2), 40.0)] for f in range(12)]
    runs = []
    for max_age in (30, 30.0):
        tracker = Tracker(preset("bytetrack", max_age=max_age))
        runs.append([[(t.track_id, t.tlwh.tolist()) for t in tracker.update(b, np.full(4, 0.9))] for b in boxes])
    assert runs[0] == runs[1] and any(runs[0])


def test_numpy_scalars_are_stored_as_python_values_so_a_snapshot_can_be_written():
    """A config made with numpy scalars (a parameter grid from np.arange) passed every check, then
    snapshot() and to_dict() failed: 'Object of type int64 is not JSON serializable'."""
    import io

    from fmtrack.tracker import Tracker

    config = preset("bytetrack").replace(max_age=np.int64(20), high_confidence=np.float32(0.5),
                                         predict_unconfirmed=np.bool_(True))
    assert (type(config.max_age), type(config.high_confidence), type(config.predict_unconfirmed)) == (int, float, bool)
    json.dumps(config.to_dict())
    tracker = Tracker(config)
    tracker.update(np.array([[1.0, 2, 30, 40]]), np.array([0.9]))
    tracker.save_snapshot(io.BytesIO())
