"""Aggregation tables, markdown/CSV output and sanity flags."""
import json

import numpy as np
import pandas as pd
import pytest

from spleeter_ext.errors import ParameterError
from spleeter_ext.evaluation import (
    TrackScores,
    aggregate,
    evaluate_track,
    format_markdown,
    mixture_as_estimate,
    sanity_flags,
    write_csv,
)
from spleeter_ext.evaluation.report import OVERALL
from tests.evaluation._evaluation_helpers import INSTRUMENTS, SR

nan = np.nan


def make_scores(name, sdr, usdr, win=1.0):
    sdr = np.asarray(sdr, dtype=float)
    return TrackScores(track_name=name, instruments=("vocals", "drums"), sample_rate=SR, win_seconds=win,
                       hop_seconds=win, n_samples=sdr.shape[1] * SR, values={"SDR": sdr},
                       usdr=np.asarray(usdr, dtype=float), inf_counts={"SDR": np.zeros(2, int)})


@pytest.fixture
def three_tracks():
    return [
        make_scores("a", [[1.0, 2.0, nan, 4.0], [0.0, 1.0, nan, 1.0]], [3.0, 1.0]),    # medians 2, 1
        make_scores("b", [[5.0, nan, 7.0, 9.0], [2.0, nan, 2.0, 8.0]], [6.0, 2.0]),    # medians 7, 2
        make_scores("c", [[nan, nan, nan, nan], [4.0, 3.0, 6.0, nan]], [0.0, 4.0]),    # medians NaN, 4
    ]


def test_aggregate_conventions(three_tracks):
    df = aggregate(three_tracks, subset="test")
    assert list(df.index) == ["vocals", "drums", OVERALL]
    # vocals: track c is all-NaN and skipped (museval.EvalStore / pandas semantics)
    assert df.loc["vocals", "SDR_median"] == pytest.approx(4.5)
    assert df.loc["vocals", "SDR_mean"] == pytest.approx(4.5)
    assert df.loc["drums", "SDR_median"] == pytest.approx(2.0)
    assert df.loc["drums", "SDR_mean"] == pytest.approx(7 / 3)
    assert df.loc["vocals", "uSDR_mean"] == pytest.approx(3.0)
    assert df.loc["vocals", "nan_frame_share"] == pytest.approx(6 / 12)
    assert df.loc["drums", "nan_frame_share"] == pytest.approx(3 / 12)
    assert df.loc[OVERALL, "SDR_median"] == pytest.approx((4.5 + 2.0) / 2)
    assert df.loc[OVERALL, "nan_frame_share"] == pytest.approx(9 / 24)
    assert df.loc[OVERALL, "n_tracks"] == 3 and df.loc[OVERALL, "n_frames"] == 24
    assert df.loc["vocals", "all_nan_tracks"] == 1 and df.loc["drums", "all_nan_tracks"] == 0
    protocol = df.attrs["protocol"]
    for key in ("dataset", "subset", "aggregation", "window_seconds", "museval_version", "metrics"):
        assert key in protocol
    assert protocol["window_seconds"] == 1.0 and protocol["metrics"] == ["SDR"]


def test_aggregate_rejects_mixed_windows(three_tracks):
    with pytest.raises(ParameterError, match="different windows"):
        aggregate(three_tracks + [make_scores("d", [[1.0], [1.0]], [0, 0], win=2.0)])
    with pytest.raises(ParameterError):
        aggregate([])


def test_markdown_and_csv(three_tracks, tmp_path):
    df = aggregate(three_tracks, extra_protocol={"model": "unet"})
    text = format_markdown(df)
    assert "- model: unet" in text and "- aggregation:" in text
    assert ("| target | n_tracks | all_nan_tracks | n_frames | nan_frame_share | SDR_median | SDR_mean "
            "| uSDR_mean |") in text
    assert "| vocals | 3 | 1 | 12 | 50.0 % | 4.50 | 4.50 | 3.00 |" in text
    sidecar = write_csv(df, tmp_path / "results.csv")
    loaded = pd.read_csv(tmp_path / "results.csv", index_col="target")
    assert loaded.loc["drums", "SDR_median"] == pytest.approx(2.0)
    assert json.loads(sidecar.read_text())["model"] == "unet"


def test_no_flags_on_a_normal_estimate(stems):
    references, estimates = stems
    scores = evaluate_track(references, estimates, INSTRUMENTS, SR)
    assert sanity_flags(references, estimates, references.sum(axis=0), scores) == []


def test_flags_scaled_copy_of_the_reference(stems):
    references, _ = stems
    estimates = 0.5 * references
    flags = sanity_flags(references, estimates, references.sum(axis=0),
                         evaluate_track(references, estimates, INSTRUMENTS, SR))
    assert sum("scaled copy of its reference" in f for f in flags) == 4
    assert not any("mixture" in f for f in flags)


def test_flags_a_collapsed_stem_only_below_the_threshold(stems):
    from spleeter_ext.evaluation.report import collapsed_stems

    references, estimates = stems
    estimates = estimates.copy()
    estimates[2] *= 10 ** (-35 / 20)  # 35 dB quieter than a fair estimate: collapsed
    estimates[1] *= 10 ** (-20 / 20)  # 20 dB quieter: a poor estimate, not a collapse
    flags = sanity_flags(references, estimates, references.sum(axis=0),
                         evaluate_track(references, estimates, INSTRUMENTS, SR))
    hit = [f for f in flags if "estimate collapsed" in f]
    assert len(hit) == 1 and f": {INSTRUMENTS[2]}: " in hit[0]
    assert collapsed_stems(flags, list(INSTRUMENTS), n_tracks=1) == [INSTRUMENTS[2]]
    assert collapsed_stems(flags, list(INSTRUMENTS), n_tracks=3) == []  # flagged on 1 of 3 tracks only


def test_flags_mixture_as_estimate(stems):
    references, _ = stems
    mixture = references.sum(axis=0)
    estimates = mixture_as_estimate(mixture, 4)
    flags = sanity_flags(references, estimates, mixture, evaluate_track(references, estimates, INSTRUMENTS, SR))
    assert sum("equals the mixture" in f for f in flags) == 4
    assert not any("scaled copy of its reference" in f for f in flags)


def test_flags_nan_frames_and_length_mismatch(stems):
    references, estimates = (x.copy() for x in stems)
    references[3, SR:2 * SR] = 0.0
    estimates = estimates[:, :-1000]
    flags = sanity_flags(references, estimates, None, evaluate_track(references, estimates, INSTRUMENTS, SR))
    assert any("1 of 4 frames (25.0%) are NaN" in f for f in flags)
    assert any("-1000 samples" in f for f in flags)


def test_flags_huge_sir_of_a_gain_error(small_stems, museval_module):
    references = small_stems[0][:, :SR]
    estimates = 0.5 * references
    scores = evaluate_track(references, estimates, ("a", "b"), SR, metrics="all")
    np.testing.assert_allclose(scores.sdr, 20 * np.log10(2), atol=1e-6)
    flags = sanity_flags(references, estimates, None, scores)
    assert any("SIR exceeds 100 dB" in f for f in flags)
