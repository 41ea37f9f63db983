"""Property test of the weights sidecar reader: whatever a sidecar's fields hold (extreme finite
numbers, wrong types, NaN), reading it gives a WeightsInfo that is safe to use (positive finite std,
finite positive thresholds, a valid architecture) or one InputError naming the sidecar, never
another exception."""

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmtrack.io import InputError
from fmtrack.model.weights import FORMAT, read_weights_info, sidecar_path

EXTREME = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e-320, 1e308, -1e308, 0.0]),
                    st.integers(-10 ** 12, 10 ** 12), st.booleans(), st.text(max_size=3), st.none(),
                    st.lists(st.integers(-3, 600), max_size=6))
VALID = {"format": FORMAT, "dtype": "float32", "provenance": {}, "thresholds": {"euclidean": 3.0},
         "normalisation": {"mean": [0.4, 0.4, 0.4], "std": [0.25, 0.25, 0.25]},
         "model_config": {"image_size": 64, "latent_dim": 8, "hyper_latent_dim": 8, "width": 0.125,
                          "prior_hidden": [32, 32]}}
FIELDS = [("normalisation", "mean", 1), ("normalisation", "std", 2), ("thresholds", "euclidean", None),
          ("model_config", "image_size", None), ("model_config", "latent_dim", None),
          ("model_config", "width", None), ("model_config", "prior_hidden", None), ("dtype", None, None)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=EXTREME)
def test_any_field_value_gives_a_safe_info_or_one_input_error(tmp_path, field, value):
    sidecar = json.loads(json.dumps(VALID))
    section, key, index = field
    if key is None:
        sidecar[section] = value
    elif index is None:
        sidecar[section][key] = value
    else:
        sidecar[section][key][index] = value
    weights = tmp_path / "w.safetensors"
    sidecar_path(weights).write_text(json.dumps(sidecar))  # NaN and Infinity as Python's json writes them
    try:
        info = read_weights_info(weights)
    except InputError as err:
        assert err.path == str(sidecar_path(weights)) and "\n" not in str(err)
        return
    assert all(math.isfinite(s) and s > 0 for s in info.std) and all(math.isfinite(m) for m in info.mean)
    assert all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in info.thresholds.values())
    config = info.model_config
    assert config.image_size > 0 and config.latent_dim > 0 and math.isfinite(config.width) and config.width > 0


def test_a_threshold_under_a_name_no_metric_has_is_refused(tmp_path):
    """The weights sidecar and the features sidecar check thresholds alike: a key other than
    cosine / euclidean (a typo would otherwise leave the model uncalibrated without a word)."""
    sidecar = json.loads(json.dumps(VALID))
    sidecar["thresholds"] = {"Euclidean": 3.0}
    weights = tmp_path / "w.safetensors"
    sidecar_path(weights).write_text(json.dumps(sidecar))
    try:
        read_weights_info(weights)
    except InputError as err:
        assert "thresholds must map cosine / euclidean to finite distances > 0" in str(err)
    else:
        raise AssertionError("a threshold named 'Euclidean' was accepted")


def test_a_missing_model_is_named_not_its_sidecar(tmp_path):
    try:
        read_weights_info(tmp_path / "nope.safetensors")
    except InputError as err:
        assert err.path == str(tmp_path / "nope.safetensors") and err.problem == "weights file not found"
    else:
        raise AssertionError("a missing model was read")
