"""Fast framewise SDR against museval.evaluate, frame by frame, including museval's NaN rules."""
import numpy as np
import pytest

from spleeter_ext.errors import ParameterError
from spleeter_ext.evaluation import framewise_sdr, pad_or_truncate, track_sdr
from spleeter_ext.evaluation.sdr import n_frames
from tests.evaluation._evaluation_helpers import SR, max_abs_diff_same_nan

TOL_DB = 1e-9


def museval_sdr(museval_module, references, estimates, win=SR, hop=SR):
    sdr = museval_module.evaluate(references, estimates, win=win, hop=hop)[0]
    return np.where(np.isinf(sdr), np.nan, sdr)  # TrackStore's +inf -> NaN


def test_equals_museval_on_every_frame(stems, museval_module):
    references, estimates = stems
    fast = framewise_sdr(references, estimates)
    assert fast.shape == (4, 4)  # 4.5 s -> the partial last second is dropped
    assert not np.isnan(fast).any()
    assert max_abs_diff_same_nan(fast, museval_sdr(museval_module, references, estimates)) < TOL_DB


def test_nan_rules_match_museval(museval_module):
    from spleeter_ext.evaluation.signals import degraded_estimates, music_like_sources

    references = music_like_sources(n_sources=2, seconds=5.2, seed=7)
    estimates = degraded_estimates(references, seed=8)
    references[0, 1 * SR:2 * SR] = 0.0                                # silent second in one reference
    estimates[1, 2 * SR:3 * SR] = 0.0                                 # silent second in one estimate
    references[1, 3 * SR:4 * SR, 1] = -references[1, 3 * SR:4 * SR, 0]  # anti-phase L = -R: channel sum 0
    rng = np.random.default_rng(0)
    estimates[0, 4 * SR:5 * SR] = 1e-12 * rng.standard_normal((SR, 2))  # dithered, not silent
    fast = framewise_sdr(references, estimates)
    expected_nan = np.array([False, True, True, True, False])
    assert np.array_equal(np.isnan(fast).all(axis=0), expected_nan)
    assert np.array_equal(np.isnan(fast).any(axis=0), expected_nan)  # NaN for every source at once
    assert max_abs_diff_same_nan(fast, museval_sdr(museval_module, references, estimates)) < TOL_DB


@pytest.mark.parametrize("delta", [-13000, 9000])
def test_length_mismatch_is_padded_or_truncated_like_museval(small_stems, museval_module, delta):
    references, estimates = small_stems
    if delta < 0:
        estimates = estimates[:, :delta]
    else:
        estimates = np.concatenate([estimates, np.full((2, delta, 2), 0.1)], axis=1)
    fast = framewise_sdr(references, estimates)
    assert fast.shape == (2, 2)
    assert max_abs_diff_same_nan(fast, museval_sdr(museval_module, references, estimates)) < TOL_DB
    assert pad_or_truncate(references, estimates).shape == references.shape


def test_overlapping_frames_match_museval(small_stems, museval_module):
    references, estimates = small_stems
    fast = framewise_sdr(references, estimates, win=SR, hop=SR // 2)
    assert fast.shape[1] == n_frames(references.shape[1], SR, SR // 2) == 4
    slow = museval_sdr(museval_module, references, estimates, win=SR, hop=SR // 2)
    assert max_abs_diff_same_nan(fast, slow) < TOL_DB


def test_signal_shorter_than_window_is_one_frame(small_stems, museval_module):
    references, estimates = (x[:, : SR // 2] for x in small_stems)
    fast = framewise_sdr(references, estimates)
    assert fast.shape == (2, 1)
    assert max_abs_diff_same_nan(fast, museval_sdr(museval_module, references, estimates)) < TOL_DB


def test_float32_input_matches_museval(small_stems, museval_module):
    references, estimates = (x[:, :SR].astype(np.float32) for x in small_stems)
    fast = framewise_sdr(references, estimates)
    assert max_abs_diff_same_nan(fast, museval_sdr(museval_module, references, estimates)) < TOL_DB


def test_frame_count_follows_museval():
    assert n_frames(int(3.45 * SR), SR, SR) == 3
    assert n_frames(SR, SR, SR) == 1
    assert n_frames(100, SR, SR) == 1
    assert n_frames(5 * SR, 2 * SR, int(1.5 * SR)) == 3


def test_whole_silent_source_raises_like_museval(small_stems, museval_module):
    references, estimates = (x.copy() for x in small_stems)
    estimates[1] = 0.0
    with pytest.raises(ValueError):
        museval_module.evaluate(references, estimates)
    with pytest.raises(ParameterError, match="silent over the whole signal"):
        framewise_sdr(references, estimates)
    assert np.isnan(framewise_sdr(references, estimates, silent_source="nan")).all()


def test_perfect_frame_is_inf_or_nan(small_stems):
    references, estimates = (x.copy() for x in small_stems)
    estimates[:, :SR] = references[:, :SR]
    raw = framewise_sdr(references, estimates, inf_to_nan=False)
    assert np.isinf(raw[:, 0]).all() and np.isfinite(raw[:, 1]).all()
    assert np.isnan(framewise_sdr(references, estimates)[:, 0]).all()


def test_gain_error_costs_6_db(small_stems):
    references, _ = small_stems
    np.testing.assert_allclose(framewise_sdr(references, 0.5 * references), 20 * np.log10(2), atol=1e-12)
    np.testing.assert_allclose(track_sdr(references, 0.5 * references), 20 * np.log10(2), atol=1e-9)


def test_track_sdr_is_the_mdx_formula(small_stems):
    references, estimates = small_stems
    num = np.sum(references ** 2, axis=(1, 2)) + 1e-7
    den = np.sum((references - estimates) ** 2, axis=(1, 2)) + 1e-7
    np.testing.assert_allclose(track_sdr(references, estimates), 10 * np.log10(num / den), rtol=1e-12)
    silent = np.zeros_like(references)
    np.testing.assert_allclose(track_sdr(silent, silent), 0.0)  # no silence rule, eps keeps it finite


@pytest.mark.parametrize("shape_ref, shape_est", [
    ((2, 100), (2, 100)),              # missing channel axis
    ((2, 2, 1000), (2, 2, 1000)),      # channels before samples
    ((2, 1000, 2), (3, 1000, 2)),      # source count differs
    ((2, 1000, 2), (2, 1000, 1)),      # channel count differs
])
def test_bad_layouts_raise(shape_ref, shape_est):
    with pytest.raises(ParameterError):
        framewise_sdr(np.ones(shape_ref), np.ones(shape_est))


def test_bad_window_and_nan_input_raise(small_stems):
    references, estimates = small_stems
    with pytest.raises(ParameterError):
        framewise_sdr(references, estimates, win=1.5)
    with pytest.raises(ParameterError):
        framewise_sdr(references, estimates, hop=0)
    bad = estimates.copy()
    bad[0, 10, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        framewise_sdr(references, bad)


@pytest.mark.slow
def test_equals_museval_on_30_seconds(museval_module):
    from spleeter_ext.evaluation.signals import degraded_estimates, music_like_sources

    references = music_like_sources(n_sources=4, seconds=30.0, seed=11)
    estimates = degraded_estimates(references, seed=12)
    references[1, 5 * SR:7 * SR] = 0.0
    fast = framewise_sdr(references, estimates)
    assert fast.shape == (4, 30) and np.isnan(fast[:, 5:7]).all()
    assert max_abs_diff_same_nan(fast, museval_sdr(museval_module, references, estimates)) < TOL_DB


def test_whole_signal_silence_is_checked_outside_the_frames(small_stems):
    references, estimates = (x.copy() for x in small_stems)
    # source 1 only sounds in the dropped trailing half second: not silent for museval's validate
    estimates[1, : 2 * SR] = 0.0
    sdr = framewise_sdr(references, estimates)
    assert np.isnan(sdr).all()
    # frames with gaps between them (hop > win): sound only inside a gap is still sound
    estimates = small_stems[1].copy()
    estimates[1] = 0.0
    estimates[1, SR // 2 + 10] = 0.1
    assert np.isnan(framewise_sdr(references, estimates, win=SR // 4, hop=SR)).all()
    estimates[1, SR // 2 + 10] = 0.0
    with pytest.raises(ParameterError):
        framewise_sdr(references, estimates, win=SR // 4, hop=SR)


def test_nan_in_the_dropped_tail_or_for_track_sdr_raises(stems):
    references, estimates = (x.copy() for x in stems)
    estimates[2, -5, 1] = np.inf  # in the trailing half second that no frame reads
    with pytest.raises(ParameterError, match="NaN or inf"):
        framewise_sdr(references, estimates)
    with pytest.raises(ParameterError, match="NaN or inf"):
        track_sdr(references, estimates)
