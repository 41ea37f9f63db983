"""An appearance preset on a sequence without frames (the design set ships detections only) runs
its motion-only form, with a warning, instead of failing."""

from __future__ import annotations

import numpy as np
from fmtrack.cli import main
from fmtrack.io import find_sequence, read_results, read_seqinfo
from fmtrack.tracker import preset


def test_without_appearance_drops_appearance_and_keeps_the_rest():
    config = preset("fmtrack")
    motion = config.without_appearance()
    assert config.uses_appearance and not motion.uses_appearance
    # The appearance-first and re-identification stages are gone; the fused stage is plain IoU.
    assert len(motion.stages) == len(config.stages) - 2
    assert all(s.cost != "appearance" and s.appearance_max is None for s in motion.stages)
    # Everything but appearance is the preset's own: ByteTrack's stage kinds, thresholds and lifecycle.
    assert [s.detections for s in motion.stages] == [s.detections for s in preset("bytetrack").stages]
    assert [(s.max_cost, s.iou_buffer) for s in motion.stages] == [
        (s.max_cost, s.iou_buffer) for s in config.stages if s.cost == "iou"]
    for field in ("min_confidence", "n_init", "duplicate_iou", "motion_iou_buffer"):
        assert getattr(motion, field) == getattr(config, field)
    # Without appearance a lost track is kept as long as ByteTrack keeps it; BoT-SORT's high
    # threshold and Kalman filter replace the preset's own.
    assert motion.max_age == config.motion_overrides["max_age"] == preset("bytetrack").max_age < config.max_age
    assert (motion.high_confidence, motion.motion_model) == (0.6, "xywh") != (config.high_confidence, config.motion_model)
    assert motion.motion_only == ()
    assert motion.without_appearance() == motion
    assert config.at_frame_rate(15).without_appearance().max_age == config.without_appearance().at_frame_rate(15).max_age


def test_default_preset_on_a_sequence_without_frames_is_bytetrack_motion(data_root, tmp_path, capsys):
    """... with the preset's frame-rate-scaled buffers where motion alone decides, velocity noise and
    height-modulated IoU, and its motion-only high threshold and Kalman filter (a preset file gives
    `bytetrack` the same five)."""
    import dataclasses
    import json

    from fmtrack.pipeline.preset_file import preset_document

    bytetrack = preset("bytetrack")
    buffered = tmp_path / "bytetrack-buffered.json"
    buffered.write_text(json.dumps(preset_document(
        bytetrack.replace(motion_iou_buffer=preset("fmtrack").motion_iou_buffer, high_confidence=0.6,
                          motion_model="xywh", velocity_noise_scales_with_frame_rate=True,
                          stages=tuple(dataclasses.replace(s, height_modulated=True) for s in bytetrack.stages)),
        {"test": "motion only"})))
    info = read_seqinfo(find_sequence("KITTI-13", data_root))
    assert not info.image_dir.is_dir(), "the design set ships no frames"
    assert main(["run", "--seq", "KITTI-13", "--data-root", str(data_root), "--quiet", "--no-score",
                 "--out", str(tmp_path / "default.txt")]) == 0
    assert "has no frames: the fmtrack preset runs on motion alone" in capsys.readouterr().err
    assert main(["run", "--seq", "KITTI-13", "--data-root", str(data_root), "--preset", str(buffered), "--quiet",
                 "--no-score", "--out", str(tmp_path / "bytetrack.txt")]) == 0
    default = read_results(tmp_path / "default.txt")
    bytetrack = read_results(tmp_path / "bytetrack.txt")
    assert len(default) > 100
    np.testing.assert_array_equal(default, bytetrack)


def test_motion_only_settings_survive_a_preset_file_and_refuse_bad_values(tmp_path):
    """The motion-only fields travel through a preset file like any other, are ignored while a
    descriptor is at hand, and bad values are refused naming the field."""
    import json

    import pytest

    from fmtrack.pipeline.preset_file import load_preset_file, preset_document

    config = preset("fmtrack", motion_only={"high_confidence": 0.55, "motion_model": "xysr", "max_age": 40,
                                            "n_init": 3})
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(preset_document(config, {"test": "round trip"})))
    assert json.loads(path.read_text())["tracker"]["motion_only"] == config.motion_overrides  # a JSON object
    loaded = load_preset_file(path)
    assert loaded == config and loaded.high_confidence == 0.45 and loaded.motion_model == "xyah"
    assert hash(loaded) == hash(config)  # stored as sorted pairs, whatever order the mapping came in
    motion = loaded.without_appearance()
    assert (motion.high_confidence, motion.motion_model, motion.max_age, motion.n_init) == (0.55, "xysr", 40, 3)
    assert loaded.at_frame_rate(15).without_appearance().max_age == 20  # its max_age scales like the preset's
    for bad, words in (({"motion_model": "xyxy"}, "unknown motion_model"), ({"high_confidence": float("nan")},
                       "high_confidence must be a finite"), ({"max_age": -1}, "max_age >= 0"),
                       ({"stages": ()}, "'stages' is not"), ({"motion_iou_buffer": 0.2}, "'motion_iou_buffer' is not"),
                       ([1, 2], "must map TrackerConfig fields")):
        with pytest.raises(ValueError, match=f"motion_only.*{words}"):
            preset("fmtrack", motion_only=bad)
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(preset_document(config.replace(motion_only={}), {}) | {}).replace(
        '"motion_only": {}', '"motion_only": {"max_age": "long"}'))
    with pytest.raises(ValueError, match="bad.json.*motion_only"):
        load_preset_file(bad_file)


def test_preset_files_written_before_motion_only_still_load(tmp_path):
    """Session-8 files held the motion-only form as three fields of their own."""
    import json

    from fmtrack.pipeline.preset_file import load_preset_file, preset_document

    document = preset_document(preset("fmtrack"), {"test": "legacy"})
    tracker = document["tracker"]
    del tracker["motion_only"]
    tracker.update(motion_max_age=26, motion_high_confidence=0.6, motion_filter="xywh")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    assert load_preset_file(path) == preset("fmtrack")
