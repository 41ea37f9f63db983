"""The streaming per-detector score maps (fmtrack.scores.ScoreMap, the SCORE_MAPS table)."""

from __future__ import annotations

import numpy as np
import pytest

from fmtrack.scores import SCORE_MAPS, ScoreMap, ScoreRangeWarning, ScoreStream, fit_score_map, guess_detector


@pytest.mark.parametrize("name", sorted(SCORE_MAPS))
def test_table_entries_are_monotone_maps_onto_the_unit_interval_with_a_source(name):
    mapping = SCORE_MAPS[name]
    scores = np.linspace(mapping.valid_range[0] - 10, mapping.valid_range[1] + 10, 2001)
    mapped = mapping(scores)
    assert (np.diff(mapped) >= 0).all() and mapped.min() >= 0 and mapped.max() <= 1
    assert mapped[0] == mapping.levels[0] and mapped[-1] == mapping.levels[-1]
    assert mapping.source
    # Fitted on design data only: never on the evaluation sequences.
    assert "MOT16-09" not in mapping.source and "MOT17-09" not in mapping.source


@pytest.mark.parametrize("name", ["frcnn", "sdp"])
def test_probability_detectors_map_to_themselves(name):
    scores = np.random.default_rng(0).random(100)
    np.testing.assert_array_equal(SCORE_MAPS[name](scores), scores)


def test_fit_puts_knots_at_quantiles_mapped_to_their_levels():
    mapping = fit_score_map("even", np.arange(1001.0), "test", quantiles=11, sample=5000)
    np.testing.assert_allclose(mapping.knots, np.arange(0, 1001, 100.0))
    np.testing.assert_allclose(mapping(np.array([0.0, 250.0, 500.0, 1000.0])), [0.0, 0.25, 0.5, 1.0])
    assert mapping.valid_range == (0.0, 1500.0)  # half the span above; not below 0 for non-negative scores


def test_fit_keeps_the_highest_level_of_tied_knots():
    mapping = fit_score_map("tied", np.r_[np.zeros(80), np.linspace(1, 2, 20)], "test", quantiles=11)
    assert mapping.knots[0] == 0.0 and mapping.levels[0] == pytest.approx(0.7)


def test_dpm_map_approximates_the_rank_mapping_on_its_design_sequence(data_root):
    from fmtrack.io import find_sequence, read_detections, read_seqinfo
    from fmtrack.scores import normalise_scores

    info = read_seqinfo(find_sequence("MOT16-11", data_root))
    scores = read_detections(info.det_path, info.seq_length).scores
    # The map's knots are quantiles of a sample of these scores: it is close to their empirical CDF.
    assert np.abs(SCORE_MAPS["dpm"](scores) - normalise_scores(scores, "rank")).max() < 0.05


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match="knots must increase"):
        ScoreMap("x", (1.0, 0.0), (0.0, 1.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="levels must lie in"):
        ScoreMap("x", (0.0, 1.0), (0.0, 2.0), (0.0, 1.0))


def test_stream_warns_once_naming_the_range_seen():
    stream = ScoreStream(SCORE_MAPS["frcnn"])
    stream(np.array([0.2, 0.9]))
    with pytest.warns(ScoreRangeWarning, match=r"span \[0.2, 3\].*\[0, 1\]") as record:
        stream(np.array([3.0]))
        stream(np.array([-4.0]))
    assert len(record) == 1


@pytest.mark.parametrize("sequence, scores, expected", [
    ("MOT17-09-SDP", [0.5], "sdp"), ("MOT17-05-FRCNN", [0.5], "frcnn"), ("MOT16-11", [-0.3, 2.0], "dpm"),
    ("ETH-Bahnhof", [0.1, 0.99], None), ("TUD-Campus", [5.0, 110.0], "acf"),
])
def test_guess_detector(sequence, scores, expected):
    assert guess_detector(sequence, np.array(scores)) == expected


def test_guess_detector_refuses_scores_no_map_expects():
    with pytest.raises(ValueError, match="no score map expects"):
        guess_detector("custom", np.array([-100.0, 1e4]))


def test_a_detection_file_no_map_expects_is_mapped_by_its_own_quantiles():
    """A command-line run on scores no table entry expects still runs: the file's own quantile map
    (the rank mapping), monotone onto [0, 1], with one warning naming the file and the span."""
    import warnings

    from fmtrack.io import Detections, InputWarning
    from fmtrack.pipeline.sequence import map_scores
    from fmtrack.tracker import preset

    rng = np.random.default_rng(0)
    raw = rng.uniform(-100.0, 1e4, 400)
    frames = np.repeat(np.arange(1, 101), 4)  # sorted already: the scores keep their order
    boxes = np.column_stack([rng.uniform(0, 500, (400, 2)), np.full((400, 2), 50.0)])
    detections = Detections(frames, boxes, raw, source="custom/det.txt")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        mapped, detector = map_scores(detections, preset("bytetrack"), None, "custom")
    assert detector is None
    assert [str(w.message) for w in record if issubclass(w.category, InputWarning)][0].startswith("custom/det.txt:")
    order = np.argsort(raw)
    assert (np.diff(mapped.scores[order]) >= 0).all() and mapped.scores.min() >= 0 and mapped.scores.max() <= 1
    # Quantile knots every 5 %: each score lands within 0.05 of its rank in the file.
    rank = np.empty(400)
    rank[order] = np.arange(400) / 399
    assert np.abs(mapped.scores - rank).max() < 0.06
