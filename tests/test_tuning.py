"""Search spaces, preset files and ``fmtrack tune``: parameter addressing against the dataclasses,
preset-file round trip and errors, a seeded one-worker study reproducible, its best preset file
reproducing its best value when run, two workers sharing one journal, an RDB URL, and the message
without Optuna."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pandas as pd
import pytest

from fmtrack.benchmarks import tuning
from fmtrack.benchmarks.evaluate import score_rows
from fmtrack.benchmarks.methods import load_inputs, make_method
from fmtrack.cli import main
from fmtrack.io import InputError, find_sequence, read_seqinfo
from fmtrack.pipeline import track_sequence
from fmtrack.tracker import PRESETS, preset
from fmtrack.pipeline.preset_file import load_preset_file, preset_document, resolve_preset
from fmtrack.tracker.search_spaces import SEARCH_SPACES, apply_parameters, check_space, get_parameter

optuna = pytest.importorskip("optuna")

# A small space, so that five trials on TUD-Campus take a second or two.
SMALL = {"max_age": ("int", 5, 40), "stages.0.max_cost": ("float", 0.6, 0.95)}


# -- search spaces -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SEARCH_SPACES))
def test_every_declared_space_names_parameters_of_its_preset(name):
    check_space(PRESETS[name], SEARCH_SPACES[name])


def test_apply_parameters_sets_config_fields_and_one_stage_only():
    base = preset("bytetrack")
    changed = apply_parameters(base, {"max_age": 40, "stages.1.max_cost": 0.33})
    assert changed.max_age == 40 and changed.stages[1].max_cost == 0.33
    assert changed.stages[0] == base.stages[0] and changed.stages[2] == base.stages[2]
    assert dataclasses.replace(changed, max_age=base.max_age, stages=base.stages) == base
    assert get_parameter(changed, "stages.1.max_cost") == 0.33


def test_motion_only_parameters_set_the_motion_only_form_and_nothing_else():
    base = preset("fmtrack")
    changed = apply_parameters(base, {"motion_only.max_age": 12, "motion_only.n_init": 3})
    assert changed.motion_overrides == {**base.motion_overrides, "max_age": 12, "n_init": 3}
    assert changed.replace(motion_only=base.motion_only) == base  # the appearance form untouched
    motion = changed.without_appearance()
    assert (motion.max_age, motion.n_init, motion.high_confidence) == (12, 3, 0.6)
    # Read back as the motion-only form runs it: its own value, else the config's.
    assert get_parameter(changed, "motion_only.max_age") == 12
    assert get_parameter(base, "motion_only.duplicate_iou") == base.duplicate_iou
    with pytest.raises(ValueError, match="no field 'stages'"):
        apply_parameters(base, {"motion_only.stages": ()})


def test_tuned_appearance_thresholds_keep_their_ratios_for_another_descriptor():
    # Tuned with DeepSORT's features (threshold 0.2): strict stage to 0.05, re-identification to 0.3.
    tuned = apply_parameters(preset("fmtrack"), {"stages.0.max_cost": 0.05, "stages.3.max_cost": 0.3})
    assert tuned.appearance_threshold == pytest.approx(0.2)  # the descriptor's own threshold
    other = tuned.with_max_distance(2.0)  # a descriptor whose threshold is 2.0 (e.g. Euclidean)
    assert other.stages[0].max_cost == pytest.approx(2.0 * 0.05 / 0.2)
    assert other.stages[3].max_cost == pytest.approx(2.0 * 0.3 / 0.2)
    assert other.stages[1].appearance_max == pytest.approx(2.0)  # untouched: factor 1
    assert other.with_max_distance(0.2) == tuned


@pytest.mark.parametrize("name, words", [
    ("stages.9.max_cost", "has 3 stages"), ("stages.0.nope", "no field 'nope'"), ("nope", "no field 'nope'"),
    ("stages.x.max_cost", "stages.<index>.<field>"), ("name", "no field 'name'"),
    ("motion_only", "no field 'motion_only'"), ("motion_only.x.y", "motion_only.<field>"),
])
def test_unknown_parameter_names_are_one_clear_error(name, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(".", r"\.")):
        apply_parameters(preset("bytetrack"), {name: 1})


def test_check_space_refuses_bad_ranges():
    with pytest.raises(ValueError, match="low < high"):
        check_space(preset("bytetrack"), {"max_age": ("int", 10, 5)})
    with pytest.raises(ValueError, match="a scale needs"):
        check_space(preset("bytetrack"), {"high_confidence": ("scale", 0.0, 2.0)})


def test_scale_parameters_multiply_the_presets_value():
    config = preset("deepsort")
    fixed = optuna.trial.FixedTrial({"stages.0.max_cost": 1.5})
    values = tuning.trial_parameters(fixed, config, {"stages.0.max_cost": ("scale", 0.5, 2.0)})
    assert values == {"stages.0.max_cost": pytest.approx(0.2 * 1.5)}


# -- preset files --------------------------------------------------------------------------------------
def test_preset_file_round_trip_and_resolution(tmp_path):
    config = apply_parameters(preset("fmtrack"), {"max_age": 44, "stages.2.max_cost": 0.31})
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(preset_document(config, {"note": "test"})), encoding="utf8")
    assert load_preset_file(path) == config
    assert resolve_preset(str(path)) == config
    assert resolve_preset("sort") is PRESETS["sort"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(config.to_dict()), encoding="utf8")
    assert load_preset_file(bare) == config


def _stage_thresholds(config):
    return [getattr(s, s.threshold_field) for s in config.stages if s.threshold_field is not None]


def test_a_preset_file_keeps_its_thresholds_for_the_features_it_was_tuned_with(tmp_path):
    from fmtrack.pipeline.descriptor import configure

    tuned = apply_parameters(preset("fmtrack"), {"stages.3.max_cost": 0.3})  # cosine, DeepSORT's units
    path = tmp_path / "deepsort.json"
    path.write_text(json.dumps(preset_document(tuned, {"features": "deepsort"})), encoding="utf8")
    kept = configure(str(path), "deepsort")
    assert kept == tuned and _stage_thresholds(kept)[2] == 0.3


def test_a_preset_file_tuned_with_other_features_is_carried_to_the_descriptor_with_a_warning(tmp_path):
    """A file tuned on DeepSORT's cosine features, run with the default descriptor (Euclidean) or HSV: its
    thresholds cannot hold, so each becomes its threshold factor x the descriptor's own threshold,
    as the named preset does; a bare file (no provenance) in the wrong metric too."""
    from fmtrack.pipeline.descriptor import configure, descriptor_spec
    from fmtrack.io import InputWarning

    tuned = apply_parameters(preset("fmtrack"), {"max_age": 44})
    default = descriptor_spec("default")
    for name, document in (("tuned", preset_document(tuned, {"features": "deepsort"})), ("bare", tuned.to_dict())):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document), encoding="utf8")
        for descriptor in (default, "hsv"):
            if name == "bare" and descriptor == "hsv":
                continue  # same metric, no provenance: taken at its word
            with pytest.warns(InputWarning, match=f"{name}.json: its thresholds"):
                carried = configure(str(path), descriptor)
            assert carried == configure("fmtrack", descriptor).replace(max_age=44)
    # A file tuned with the default descriptor, which it names, keeps its Euclidean thresholds for it,
    # and goes back to the preset's cosine metric for HSV.
    euclidean = configure("fmtrack", default).replace(max_age=44)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(preset_document(euclidean, {"features": None, "descriptor": "model+hsv*3"})),
                    encoding="utf8")
    assert configure(str(path), default) == euclidean
    with pytest.warns(InputWarning, match=r"tuned with fmvae-tracklets-strict\+hsv\*3 features and this run uses hsv"):
        assert configure(str(path), "hsv") == configure("fmtrack", "hsv").replace(max_age=44)
    # A file from before preset files named their descriptor was tuned with that day's default, the
    # shipped model alone: its thresholds hold for the model, not for today's fused default.
    alone = descriptor_spec("model")
    legacy = configure("fmtrack", alone).replace(max_age=44)
    path.write_text(json.dumps(preset_document(legacy, {"features": None})), encoding="utf8")
    assert configure(str(path), alone) == legacy
    with pytest.warns(InputWarning, match=r"tuned with fmvae-tracklets-strict features and this run uses "
                                          r"fmvae-tracklets-strict\+hsv\*3"):
        assert configure(str(path), default) == configure("fmtrack", default).replace(max_age=44)


@pytest.mark.parametrize("text, words, line", [
    ('{"format": "fmtrack-preset",\n "version": 1,\n "tracker": {', "not JSON", 3),
    ('{"format": "other", "version": 1}', "expected 'fmtrack-preset'", None),
    ('[1, 2]', "expected a JSON object", None),
    ('{"stages": 3}', "'stages' must be a list", None),
    ('{"stages": [{"cost": "iou", "max_cost": 0.5}], "max_age": -1}', "max_age >= 0", None),
    ('{"stages": [{"cost": "iou", "max_cost": 0.5, "bogus": 1}]}', "bogus", None),
    # The name is the default output folder (runs/NAME): it wrote runs/../../escaped/SEQ.txt.
    ('{"name": "../../escaped", "stages": [{"cost": "iou", "max_cost": 0.5}]}', "holds a path separator", None),
    ('{"name": "", "stages": [{"cost": "iou", "max_cost": 0.5}]}', "preset name '' is empty", None),
    # json keeps the last of a repeated key without a word.
    ('{"max_age": 1, "stages": [{"cost": "iou", "max_cost": 0.5}], "max_age": 50}', "'max_age' is given twice", None),
])
def test_bad_preset_files_are_one_input_error_naming_the_file(tmp_path, text, words, line):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf8")
    with pytest.raises(InputError, match=words) as err:
        load_preset_file(path)
    assert err.value.path == str(path) and err.value.line == line


def test_a_preset_file_with_a_byte_order_mark_reads_as_without(tmp_path):
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(preset_document(preset("bytetrack"), {})), encoding="utf-8-sig")
    assert load_preset_file(path) == preset("bytetrack")


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match="neither one of bytetrack, deepsort, fmtrack, motion, sort"):
        resolve_preset("missing.json")


# -- the tuner -----------------------------------------------------------------------------------------
@pytest.fixture
def small_space(monkeypatch):
    monkeypatch.setitem(SEARCH_SPACES, "bytetrack", SMALL)


def _tune(tmp_path, name: str, workers: int = 1, trials: int = 5, storage: str | None = None, **kwargs):
    settings = tuning.TuneSettings("bytetrack", ("TUD-Campus",), trials=trials, seed=3, **kwargs)
    return tuning.tune(settings, tmp_path / name / "tuned.json", storage, workers=workers, progress=False)


def _trials(path) -> pd.DataFrame:
    return pd.read_csv(path).sort_values("number")


def test_seeded_one_worker_study_is_reproducible(tmp_path, small_space, data_root):
    first, second = _tune(tmp_path, "a"), _tune(tmp_path, "b")
    a, b = _trials(first.trials_path), _trials(second.trials_path)
    assert len(a) == 5 and a["state"].eq("COMPLETE").all()
    np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())
    for column in ("params_max_age", "params_stages.0.max_cost"):
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy())
    assert first.config == second.config and first.best_value == second.best_value
    assert first.best_value == a["value"].max()
    # Different seeds explore differently (a seed is not ignored).
    other = tuning.tune(tuning.TuneSettings("bytetrack", ("TUD-Campus",), trials=5, seed=4),
                        tmp_path / "c" / "tuned.json", progress=False)
    assert not np.array_equal(_trials(other.trials_path)["params_max_age"].to_numpy(), a["params_max_age"].to_numpy())


def test_best_preset_file_reproduces_its_value_when_run(tmp_path, small_space, data_root):
    result = _tune(tmp_path, "a")
    document = json.loads(result.preset_path.read_text(encoding="utf8"))
    assert document["provenance"]["sequences"] == ["TUD-Campus"] and document["provenance"]["trials"] == 5
    assert document["provenance"]["best_value"] == result.best_value
    # The descriptor by a name that stays true when the default changes (bytetrack uses none, but names
    # the one an appearance form would use).
    assert document["provenance"]["features"] is None and document["provenance"]["descriptor"] == "model+hsv*3"
    config = load_preset_file(result.preset_path)
    assert config == result.config
    assert config.max_age == document["provenance"]["parameters"]["max_age"]
    # Untouched settings are the preset's own.
    assert config.stages[1:] == preset("bytetrack").stages[1:] and config.high_confidence == 0.45
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    method = make_method("tuned", str(result.preset_path), {})
    inputs = load_inputs(method, info, data_root, progress=False)
    rows = track_sequence(info, inputs.detections, method.config).rows
    assert score_rows(info, rows, "tuned").iloc[0]["IDF1"] == pytest.approx(result.best_value, abs=1e-9)
    assert result.plot_path.stat().st_size > 0 and result.plot_path.read_bytes()[:4] == b"\x89PNG"


def test_rerun_on_the_same_storage_continues_the_study(tmp_path, small_space, data_root):
    storage = str(tmp_path / "shared.journal")
    _tune(tmp_path, "a", trials=3, storage=storage)
    again = _tune(tmp_path, "a", trials=5, storage=storage)
    assert again.trials == 5 and len(_trials(again.trials_path)) == 5
    with pytest.raises(InputError, match="give another --study or --storage"):
        tuning.tune(tuning.TuneSettings("bytetrack", ("TUD-Campus",), objective="hota", trials=5, seed=3),
                    tmp_path / "x.json", storage, study_name="bytetrack-idf1", progress=False)


@pytest.mark.slow
def test_two_workers_share_one_journal_and_finish_the_trials(tmp_path, data_root):
    result = tuning.tune(tuning.TuneSettings("bytetrack", ("TUD-Campus",), trials=6, seed=0, data_root=str(data_root)),
                         tmp_path / "tuned.json", workers=2, progress=False)
    trials = _trials(result.trials_path)
    assert len(trials) == 6 and trials["state"].eq("COMPLETE").all()
    assert result.best_value == trials["value"].max()


@pytest.mark.slow
def test_rdb_storage_url_is_accepted(tmp_path, small_space, data_root):
    result = _tune(tmp_path, "a", trials=2, storage=f"sqlite:///{tmp_path / 'study.db'}", objective="hota")
    assert result.trials == 2 and (tmp_path / "study.db").is_file()
    assert 0 < result.best_value < 100


def test_cli_tune_end_to_end(tmp_path, small_space, data_root, capsys):
    out = tmp_path / "tuned.json"
    code = main(["tune", "--seqs", "TUD-Campus", "--trials", "3", "--out", str(out), "--quiet",
                 "--data-root", str(data_root)])
    assert code == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    assert "3 trials" in stdout and f"wrote {out}" in stdout
    assert main(["run", "--seq", "TUD-Campus", "--preset", str(out), "--out", str(tmp_path / "r.txt"),
                 "--quiet", "--data-root", str(data_root), "--no-hota"]) == 0


def test_tune_without_optuna_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    code = main(["tune", "--seqs", "TUD-Campus", "--trials", "3", "--out", str(tmp_path / "t.json")])
    assert code == 2
    assert "pip install 'fmtrack[tune]'" in capsys.readouterr().err


def test_tune_refuses_a_non_json_out_and_a_preset_without_space(tmp_path):
    with pytest.raises(InputError, match="give a .json --out"):
        tuning.tune(tuning.TuneSettings("bytetrack", ("TUD-Campus",)), tmp_path / "x.yaml")
    with pytest.raises(ValueError, match="no declared search space"):
        tuning.TuneSettings("nosuch", ("TUD-Campus",))


def test_sequences_the_features_miss_are_scored_with_the_default_descriptor(data_root):
    """Tuning with DeepSORT's features (cosine, threshold 0.2) on a sequence that has none: it runs
    as `fmtrack run` does there, with the shipped model, its metric and its calibrated threshold."""
    with pytest.warns(Warning, match="tuned with the default descriptor"):
        objective = tuning.TrialObjective(tuning.TuneSettings("fmtrack", ("TUD-Campus",), features="deepsort",
                                                              data_root=str(data_root)))
    assert objective.method.config.metric == "cosine"
    got = objective.score(objective.method.config)["TUD-Campus"]
    info = read_seqinfo(find_sequence("TUD-Campus", data_root))
    default = make_method("fmtrack", "fmtrack", {})
    assert default.config.metric == "euclidean" and default.config.appearance_threshold != 0.2
    inputs = load_inputs(default, info, data_root, progress=False)
    rows = track_sequence(info, inputs.detections, default.config, inputs.embedder, False, inputs.camera_motion).rows
    assert got == pytest.approx(score_rows(info, rows, "x").iloc[0]["IDF1"], abs=1e-9)


def test_frame_rate_steps_score_each_sequence_at_lower_rates_as_their_copies_score(data_root, tmp_path, monkeypatch):
    """With frame_rate_steps (1, 3) a setting is scored on TUD-Campus as filmed and at a third of its
    rate; the second cell is what the sequence's copy at 1/3 (benchmarks.frame_rate) scores."""
    from fmtrack.benchmarks.frame_rate import subsample_sequence

    monkeypatch.setenv("FMTRACK_CACHE", str(tmp_path / "cache"))
    settings = tuning.TuneSettings("bytetrack", ("TUD-Campus",), data_root=str(data_root), frame_rate_steps=(1, 3))
    assert [label for label, _, _ in settings.cells()] == ["TUD-Campus", "TUD-Campus@1/3"]
    assert settings.study_attributes["frame_rate_steps"] == [1, 3]
    assert "frame_rate_steps" not in tuning.TuneSettings("bytetrack", ("TUD-Campus",)).study_attributes
    objective = tuning.TrialObjective(settings)
    config = preset("bytetrack", max_age=40)
    scores = objective.score(config)
    assert set(scores) == {"TUD-Campus", "TUD-Campus@1/3"}
    copy = subsample_sequence("TUD-Campus", 3, tmp_path / "copy", data_root)
    info = read_seqinfo(copy)
    method = make_method("bytetrack", "bytetrack", {})
    inputs = load_inputs(method, info, tmp_path / "copy", progress=False)
    rows = track_sequence(info, inputs.detections, config, None, False).rows
    assert scores["TUD-Campus@1/3"] == pytest.approx(score_rows(info, rows, "x").iloc[0]["IDF1"], abs=1e-9)
    assert scores["TUD-Campus@1/3"] != pytest.approx(scores["TUD-Campus"])


@pytest.mark.parametrize("steps", [(), (0,), (1, 1), (2.0,), (True,)])
def test_bad_frame_rate_steps_are_refused(steps):
    with pytest.raises(ValueError, match="frame_rate_steps must be distinct integers >= 1"):
        tuning.TuneSettings("bytetrack", ("TUD-Campus",), frame_rate_steps=steps)


def test_bool_parameters_are_drawn_as_switches_and_checked():
    from fmtrack.benchmarks.tuning import trial_parameters

    base = preset("fmtrack")
    space = {"stages.1.height_modulated": ("bool", 0, 1), "max_age": ("int", 5, 40)}
    check_space(base, space)
    values = trial_parameters(optuna.trial.FixedTrial({"stages.1.height_modulated": False, "max_age": 9}), base, space)
    assert values == {"stages.1.height_modulated": False, "max_age": 9}
    changed = apply_parameters(base, values)
    assert changed.stages[1].height_modulated is False and base.stages[1].height_modulated is True
    with pytest.raises(ValueError, match="a bool is"):
        check_space(base, {"stages.1.height_modulated": ("bool", 0, 2)})
    with pytest.raises(ValueError, match="a bool is"):
        check_space(base, {"max_age": ("bool", 0, 1)})
