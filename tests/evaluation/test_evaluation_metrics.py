"""evaluate_track and the museval JSON export, checked against museval's own store classes."""
import json
import math

import numpy as np
import pytest

from spleeter_ext.errors import ParameterError
from spleeter_ext.evaluation import (
    aggregate,
    evaluate_track,
    framewise_sdr,
    save_museval_json,
    to_museval_json,
    track_sdr,
)
from spleeter_ext.evaluation.signals import degraded_estimates, music_like_sources
from tests.evaluation._evaluation_helpers import SR

NAMES = ("drums", "vocals")


@pytest.fixture(scope="module")
def scored_tracks(museval_module):
    """Two 2.6 s tracks of 2 stems scored with metrics='all' (one with a silent second)."""
    out = []
    for k, name in enumerate(("Track A", "Track B")):
        references = music_like_sources(n_sources=2, seconds=2.6, seed=30 + k)
        estimates = degraded_estimates(references, leak=0.1 + 0.1 * k, seed=40 + k)
        if k == 1:
            references[1, SR:2 * SR] = 0.0  # one NaN frame for every stem
        out.append((references, estimates, evaluate_track(references, estimates, NAMES, SR, metrics="all",
                                                          track_name=name)))
    return out


def museval_trackstore(museval_module, scores):
    """museval's own TrackStore filled with the same framewise values."""
    store = museval_module.TrackStore(track_name=scores.track_name, win=scores.win_seconds, hop=scores.hop_seconds)
    for j, name in enumerate(scores.instruments):
        values = {m: scores.values[m][j].tolist() for m in ("SDR", "SIR", "ISR", "SAR")}
        store.add_target(target_name=name, values=values)
    return store


def nan_equal(a, b):
    """Structural equality of JSON-like objects with NaN == NaN."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(nan_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_sdr_mode_matches_the_fast_functions(stems):
    references, estimates = stems
    scores = evaluate_track(references, estimates, ("bass", "drums", "other", "vocals"), SR, track_name="t")
    assert scores.metrics == ("SDR",) and scores.n_frames == 4
    np.testing.assert_array_equal(scores.sdr, framewise_sdr(references, estimates))
    np.testing.assert_array_equal(scores.usdr, track_sdr(references, estimates))
    np.testing.assert_allclose(scores.frame_times(), [0, 1, 2, 3])
    np.testing.assert_allclose(scores.median(), np.median(scores.sdr, axis=1))
    frame = scores.to_frame()
    assert list(frame.columns) == ["time", "target", "metric", "score", "track"] and len(frame) == 16
    with pytest.raises(ParameterError, match="metrics='all'"):
        scores.median("SIR")


def test_all_mode_cross_checks_museval(scored_tracks):
    for references, estimates, scores in scored_tracks:
        assert scores.metrics == ("SDR", "ISR", "SIR", "SAR")
        assert scores.sdr_crosscheck_db < 1e-9
        fast = framewise_sdr(references, estimates)
        assert np.array_equal(np.isnan(fast), np.isnan(scores.sdr))
    assert np.isnan(scored_tracks[1][2].values["SIR"][:, 1]).all()


def test_json_is_what_museval_trackstore_writes(scored_tracks, museval_module):
    for _, _, scores in scored_tracks:
        ours = to_museval_json(scores.track_name, scores)
        ours_roundtrip = json.loads(json.dumps(ours, allow_nan=True))
        theirs = json.loads(museval_trackstore(museval_module, scores).json)
        extra = ours_roundtrip.pop("spleeter_ext")
        assert extra["metrics_computed"] == ["SDR", "ISR", "SIR", "SAR"]
        assert nan_equal(ours_roundtrip, theirs)
        from jsonschema import validate
        validate(ours, museval_trackstore(museval_module, scores).schema)


def test_json_files_reproduce_museval_aggregate(scored_tracks, museval_module, tmp_path):
    reference_store = museval_module.EvalStore()
    for _, _, scores in scored_tracks:
        reference_store.add_track(museval_trackstore(museval_module, scores))
        save_museval_json(tmp_path / "test" / f"{scores.track_name}.json", scores.track_name, scores)
    loaded = museval_module.EvalStore()
    loaded.add_eval_dir(tmp_path)
    expected = reference_store.agg_frames_tracks_scores()
    got = loaded.agg_frames_tracks_scores()
    assert len(expected) == len(got) == 2 * 4
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12)

    methods = museval_module.MethodStore()
    methods.add_eval_dir(tmp_path)
    by_method = methods.agg_frames_tracks_scores()
    assert by_method.index.get_level_values("method").unique().tolist() == [tmp_path.stem]

    # our own SiSEC18 aggregate (unquantised values) agrees with museval's (5-decimal JSON values)
    table = aggregate([s for _, _, s in scored_tracks])
    for target in NAMES:
        for metric in ("SDR", "SIR", "ISR", "SAR"):
            assert table.loc[target, f"{metric}_median"] == pytest.approx(expected[(target, metric)], abs=1e-5)


def test_sdr_only_json_loads_with_nan_for_the_other_metrics(stems, museval_module, tmp_path):
    references, estimates = stems
    scores = evaluate_track(references, estimates, ("bass", "drums", "other", "vocals"), SR, track_name="song")
    path = save_museval_json(tmp_path / "test" / "song.json", "song", scores)
    assert "NaN" in path.read_text()
    store = museval_module.EvalStore()
    store.add_eval_dir(tmp_path)
    agg = store.agg_frames_tracks_scores()
    np.testing.assert_allclose([agg[(t, "SDR")] for t in ("bass", "drums", "other", "vocals")],
                               np.round(scores.median(), 5), atol=1e-5)
    assert np.isnan(agg[("vocals", "SIR")])


def test_evaluate_track_validation(small_stems):
    references, estimates = small_stems
    with pytest.raises(ParameterError, match="instrument names"):
        evaluate_track(references, estimates, ("a",), SR)
    with pytest.raises(ParameterError, match="instrument names"):
        evaluate_track(references, estimates, ("a", "a"), SR)
    with pytest.raises(ParameterError, match="metrics"):
        evaluate_track(references, estimates, ("a", "b"), SR, metrics="SIR")
    with pytest.raises(ParameterError, match="sample_rate"):
        evaluate_track(references, estimates, ("a", "b"), 44100.0)
    silent = estimates.copy()
    silent[0] = 0
    with pytest.raises(ParameterError, match="silent"):
        evaluate_track(references, silent, ("a", "b"), SR, metrics="all", silent_source="nan")
    scores = evaluate_track(references, silent, ("a", "b"), SR, silent_source="nan")
    assert np.isnan(scores.sdr).all() and np.isnan(scores.median()).all()
