"""Spleeter's STFT conventions: TensorFlow and SciPy implementations against a direct DFT reference,
against each other, and by round trip."""
import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext import dsp

N_FFT, HOP = 4096, 1024


@pytest.fixture(scope="module")
def music():
    """Two seconds of a stereo chord with a decaying click train (not noise: peaks and silences)."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * 44100 + 777) / 44100
    left = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    clicks = np.zeros_like(t)
    clicks[::11025] = 1.0
    right = np.convolve(clicks, np.exp(-np.arange(2000) / 200.0))[: len(t)] + 0.01 * rng.standard_normal(len(t))
    return np.stack([left, right], axis=1).astype(np.float32)


def reference_frame(x: np.ndarray, k: int, channel: int) -> np.ndarray:
    """DFT of frame ``k``: samples ``k*HOP .. k*HOP+N_FFT`` (zero beyond the end), periodic Hann, float64."""
    frame = np.zeros(N_FFT)
    piece = x[k * HOP: k * HOP + N_FFT, channel]
    frame[: len(piece)] = piece
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    return np.fft.rfft(frame * window)


@pytest.mark.parametrize("impl", ["tensorflow", "scipy"])
@pytest.mark.parametrize("pad_end", [True, False])
def test_stft_frames_match_a_direct_dft(music, impl, pad_end):
    spec = dsp.stft(tf.constant(music), N_FFT, HOP, pad_end).numpy() if impl == "tensorflow" else \
        dsp.stft_numpy(music, N_FFT, HOP, pad_end)
    n = len(music)
    expected_frames = -(-n // HOP) if pad_end else 1 + (n - N_FFT) // HOP
    assert spec.shape == (expected_frames, N_FFT // 2 + 1, 2) and spec.dtype == np.complex64
    scale = np.abs(spec).max()
    # float32 FFTs of 4096 points, error relative to the largest magnitude: TensorFlow's kernel
    # 3.7e-6, pocketfft 1.5e-7 (measured on this signal)
    tolerance = {"tensorflow": 1e-5, "scipy": 1e-6}[impl]
    for k in (0, expected_frames // 2, expected_frames - 1):
        for c in (0, 1):
            np.testing.assert_allclose(spec[k, :, c], reference_frame(music, k, c), atol=tolerance * scale)


def test_scipy_and_tensorflow_stft_agree_with_batch_axes(music):
    batch = np.stack([music, 0.5 * music[::-1]])  # (2, n, C)
    a = dsp.stft(tf.constant(batch), N_FFT, HOP).numpy()
    b = dsp.stft_numpy(batch, N_FFT, HOP)
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("impl", ["tensorflow", "scipy"])
def test_inverse_reconstructs_the_interior(music, impl):
    """Spleeter's inverse (Hann synthesis window x 2/3) undoes the STFT wherever four frames overlap."""
    x = np.concatenate([np.zeros((N_FFT, 2), np.float32), music])
    if impl == "tensorflow":
        y = dsp.istft(dsp.stft(tf.constant(x), N_FFT, HOP), N_FFT, HOP).numpy()
    else:
        y = dsp.istft_numpy(dsp.stft_numpy(x, N_FFT, HOP), N_FFT, HOP)
    n = len(x)
    assert y.shape[0] >= n
    # The first N_FFT - HOP samples see fewer than four frames; pad_end covers the end. Round-trip
    # error on this unit-peak signal: TensorFlow 1.9e-5, SciPy 3e-7 (measured).
    tolerance = {"tensorflow": 5e-5, "scipy": 2e-6}[impl]
    np.testing.assert_allclose(y[N_FFT - HOP: n], x[N_FFT - HOP:], atol=tolerance)


def test_masked_inverse_equals_inverse_of_each_masked_spectrogram(music):
    spec = dsp.stft_numpy(music, N_FFT, HOP)
    rng = np.random.default_rng(1)
    masks = rng.uniform(size=spec.shape + (3,)).astype(np.float32)
    fused = dsp.istft_numpy(spec, N_FFT, HOP, masks=masks)
    assert fused.shape == (3, (spec.shape[0] - 1) * HOP + N_FFT, 2)
    for k in range(3):
        np.testing.assert_allclose(fused[k], dsp.istft_numpy(spec * masks[..., k], N_FFT, HOP), atol=1e-6)
    reference = dsp.istft(tf.transpose(tf.cast(masks, tf.complex64) * spec[..., None], [3, 0, 1, 2]), N_FFT, HOP)
    np.testing.assert_allclose(fused, reference.numpy(), atol=1e-5)


def test_inverse_with_a_hop_that_does_not_divide_the_frame():
    x = np.random.default_rng(2).standard_normal((5000, 1)).astype(np.float32)
    spec = dsp.stft(tf.constant(x), 512, 200)
    np.testing.assert_allclose(dsp.istft_numpy(spec.numpy(), 512, 200), dsp.istft(spec, 512, 200).numpy(), atol=1e-5)


def test_graph_ops_accept_any_length(music):
    """The numpy_function ops run inside a traced function whose input length is unknown."""
    fn = tf.function(lambda x: dsp.istft_fast(dsp.stft_fast(x, N_FFT, HOP), N_FFT, HOP),
                     input_signature=[tf.TensorSpec((None, 2), tf.float32)])
    for n in (N_FFT, len(music)):
        y = fn(music[:n]).numpy()
        z = dsp.istft(dsp.stft(tf.constant(music[:n]), N_FFT, HOP), N_FFT, HOP).numpy()
        np.testing.assert_allclose(y, z, atol=5e-5)  # TensorFlow's FFT error dominates (see above)


@pytest.mark.parametrize("extension", ["zeros", "average"])
def test_masks_of_the_first_bins_are_extended_as_spleeter_does(music, extension):
    spec = dsp.stft_numpy(music, N_FFT, HOP)
    n_bins, F = spec.shape[1], 1024
    masks = np.random.default_rng(3).uniform(size=(spec.shape[0], F, 2, 2)).astype(np.float32)
    if extension == "zeros":
        rest = np.zeros((spec.shape[0], n_bins - F, 2, 2), np.float32)
    else:
        rest = np.repeat(masks.mean(axis=1, keepdims=True), n_bins - F, axis=1)
    full = np.concatenate([masks, rest], axis=1)
    np.testing.assert_allclose(dsp.istft_numpy(spec, N_FFT, HOP, masks=masks, extension=extension),
                               dsp.istft_numpy(spec, N_FFT, HOP, masks=full), atol=1e-6)


def test_bad_choices_are_refused_with_the_project_error(music):
    from spleeter_ext.errors import ParameterError
    from spleeter_ext.models.estimators import build_estimator

    spec = dsp.stft_numpy(music, N_FFT, HOP)
    with pytest.raises(ParameterError, match="mask extension"):
        dsp.istft_numpy(spec, N_FFT, HOP, masks=np.ones(spec.shape[:1] + (1024, 2, 1), np.float32), extension="mean")
    with pytest.raises(ParameterError, match="fft must be"):
        build_estimator("demo").use_fft("numpy")
