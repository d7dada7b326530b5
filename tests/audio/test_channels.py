"""Shape policy (channels-last) and channel conversion."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from spleeter_ext.audio import as_channels_last, downmix_for, to_channels
from spleeter_ext.errors import ParameterError

G = 1 / math.sqrt(2)


def test_channels_first_is_refused_with_the_fix_in_the_message():
    with pytest.raises(ParameterError) as caught:
        as_channels_last(np.zeros((2, 44100), np.float32))
    assert str(caught.value) == ("waveform has shape (2, 44100), which looks channels-first "
                                 "(n_channels, n_samples); pass waveform.T (expected (n_samples, n_channels))")
    with pytest.raises(ParameterError, match=r"^mixture has shape \(8, 9\).*pass mixture\.T"):
        as_channels_last(np.zeros((8, 9)), name="mixture")


def test_accepted_shapes_and_dtype():
    mono = as_channels_last(np.arange(5, dtype=np.float64) / 10)
    assert mono.shape == (5, 1) and mono.dtype == np.float32 and mono.flags.c_contiguous
    stereo = np.zeros((100, 2), np.float32)
    assert as_channels_last(stereo) is stereo
    tiny = as_channels_last(np.zeros((3, 5)))  # both dims <= 8: ambiguous, taken as channels-last
    assert tiny.shape == (3, 5)
    transposed = as_channels_last(np.zeros((2, 100), np.float32).T)
    assert transposed.shape == (100, 2) and transposed.flags.c_contiguous
    assert as_channels_last([]).shape == (0, 1)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 4, 4)), r"shape \(4, 4, 4\); expected"),
    (np.zeros((10, 0)), "no channels"),
    (np.zeros((10, 2), np.int16), "dtype int16; pass float samples"),
    (np.zeros(10, complex), "dtype complex128"),
])
def test_refused_arrays(bad, match):
    with pytest.raises(ParameterError, match=match):
        as_channels_last(bad)


def test_non_finite_names_the_first_bad_sample_and_time():
    x = np.zeros((44100, 2), np.float32)
    x[22050, 1] = np.nan
    x[30000, 0] = np.inf
    with pytest.raises(ParameterError, match=r"waveform contains NaN/Inf at sample 22050 \(0\.50 s\)"):
        as_channels_last(x, sample_rate=44100)
    with pytest.raises(ParameterError, match=r"at sample 22050;"):
        as_channels_last(x)


def test_to_channels_duplicates_averages_and_keeps():
    rng = np.random.default_rng(0)
    mono = rng.uniform(-1, 1, (50, 1)).astype(np.float32)
    stereo = to_channels(mono, 2)
    np.testing.assert_array_equal(stereo, np.repeat(mono, 2, axis=1))
    np.testing.assert_allclose(to_channels(stereo * [1, 0.5], 1)[:, 0], mono[:, 0] * 0.75, rtol=1e-6)
    assert to_channels(stereo, 2) is stereo
    with pytest.raises(ParameterError, match="cannot convert 2 channels to 6"):
        to_channels(stereo, 6)
    with pytest.raises(ParameterError, match="n_channels"):
        to_channels(stereo, 0)


def test_to_channels_downmixes_5_1_and_logs(audio_log):
    x = np.eye(6, dtype=np.float32)  # one impulse per channel: rows are the weights
    y = to_channels(x, 2, name="song.wav")
    expected = np.array([[1, 0], [0, 1], [G, G], [0, 0], [G, 0], [0, G]], np.float32)
    np.testing.assert_allclose(y, expected, atol=1e-7)
    lines = [r.getMessage() for r in audio_log.records if r.levelno == logging.INFO]
    assert len(lines) == 1 and lines[0].startswith("song.wav: downmixing 5.1 (FL FR FC LFE BL BR")
    mono = to_channels(x, 1, name="song.wav")
    np.testing.assert_allclose(mono[:, 0], expected.mean(axis=1), atol=1e-7)


def test_downmix_uses_the_file_layout_names():
    names = ["FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"]
    downmix = downmix_for(8, names, "7.1")
    np.testing.assert_allclose(downmix.matrix[6:], [[G, 0], [0, G]], atol=1e-7)
    assert downmix.description.startswith("7.1 (FL FR FC LFE BL BR SL SR) with ITU-R BS.775 weights")
    side = downmix_for(6, ["FL", "FR", "FC", "LFE", "SL", "SR"], "5.1(side)")
    np.testing.assert_allclose(side.matrix, downmix_for(6).matrix, atol=1e-7)
    odd = downmix_for(3, ["FL", "FR", "USR7"], "3 channels")
    np.testing.assert_allclose(odd.matrix[2], [0.5, 0.5])
    assert "unpositioned USR7" in odd.description
    many = downmix_for(12)  # no conventional order for 12 unlabelled channels: plain average
    np.testing.assert_allclose(many.matrix, np.full((12, 2), 1 / 12), atol=1e-7)
    assert "averaged" in many.description
