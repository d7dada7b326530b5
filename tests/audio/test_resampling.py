"""Resampling: streaming equals one-shot soxr."""
from __future__ import annotations

import numpy as np
import soxr

from spleeter_ext.audio import AudioReader, resample, write

from .signals import chirp, noise

# --------------------------------------------------------------------------- resampling


def test_blockwise_resampling_equals_one_shot_soxr(tmp_path):
    x = np.concatenate([chirp(2.0, 48000), 0.5 * chirp(2.0, 48000)[::-1]], axis=1)
    path = tmp_path / "c48.wav"
    write(path, x, 48000, sample_format="f32")
    reader = AudioReader(path, sample_rate=44100)
    blocks = list(reader.blocks(block_samples=1000))
    y = np.concatenate(blocks)
    reference = soxr.resample(x, 48000, 44100, quality="HQ")
    assert reader.complete and reader.n_samples_read == len(y) == len(reference)
    assert all(len(b) == 1000 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 1000
    assert np.abs(y - reference).max() < 1e-5


def test_resample_function_matches_soxr():
    x = noise(0.5, 48000, 2)
    y = resample(x, 48000, 44100)
    np.testing.assert_allclose(y, soxr.resample(x, 48000, 44100, quality="HQ"), atol=1e-6)
    assert y.shape == (22050, 2) and y.dtype == np.float32
    same = resample(x, 48000, 48000)
    np.testing.assert_array_equal(same, x)
    assert same is not x
