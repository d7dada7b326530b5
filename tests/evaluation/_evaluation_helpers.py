"""Constants and assertions shared by the evaluation tests (a uniquely named module, not conftest)."""
import numpy as np

SR = 44100
INSTRUMENTS = ("bass", "drums", "other", "vocals")


def max_abs_diff_same_nan(a, b):
    """Assert that NaN positions agree and return the max |a - b| elsewhere."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"NaN frames differ:\n{a}\n{b}"
    both = ~np.isnan(a)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))
