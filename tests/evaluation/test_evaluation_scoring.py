"""Scoring one track: museval's whole-track silence rule."""
import numpy as np

from spleeter_ext.evaluation.scoring import score_track

SR = 44100


def test_silent_estimate_makes_the_track_nan_and_is_flagged():
    rng = np.random.default_rng(0)
    references = rng.standard_normal((2, 3 * SR, 2)) * 0.1
    estimates = references.copy()
    estimates[1] = 0.0
    scores, flags = score_track(references, estimates, references.sum(0), ("a", "b"), SR, "all", "t")
    assert set(scores.values) == {"SDR", "ISR", "SIR", "SAR"}
    assert all(np.isnan(v).all() for v in scores.values.values())
    assert any("estimate b silent over the whole track" in f for f in flags)
