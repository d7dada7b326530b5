"""Oracle separations and the STFT they use."""
import numpy as np
import pytest

from spleeter_ext.errors import ParameterError
from spleeter_ext.evaluation import (
    ORACLES,
    framewise_sdr,
    ibm,
    irm,
    istft,
    mixture_as_estimate,
    oracle_estimates,
    oracle_mwf,
    stft,
)
from spleeter_ext.evaluation.signals import music_like_sources
from spleeter_ext.evaluation.stft import BlockSTFT, hann_periodic
from tests.evaluation._evaluation_helpers import SR


@pytest.fixture(scope="module")
def track():
    sources = music_like_sources(n_sources=4, seconds=2.5, seed=21)
    return sources.sum(axis=0), sources


def cSDR(sources, estimates):
    """Mean over sources of the median framewise SDR."""
    return float(np.mean(np.nanmedian(framewise_sdr(sources, estimates), axis=1)))


@pytest.mark.parametrize("n_samples, n_fft, hop", [(3 * SR + 17, 4096, 1024), (5000, 512, 128), (4096, 1024, 512)])
def test_stft_round_trip_is_perfect(n_samples, n_fft, hop):
    x = np.random.default_rng(0).standard_normal((n_samples, 2))
    spec = stft(x, n_fft=n_fft, hop=hop)
    assert spec.shape == (1 + n_samples // hop, n_fft // 2 + 1, 2)
    assert np.max(np.abs(istft(spec, n_samples, n_fft=n_fft, hop=hop) - x)) < 1e-6


def test_stft_frames_are_centred_periodic_hann_frames():
    x = np.random.default_rng(1).standard_normal((20000, 1))
    spec = stft(x, n_fft=1024, hop=256)
    t = 10  # frame t covers samples [t*hop - n_fft/2, t*hop + n_fft/2)
    expected = np.fft.rfft(x[t * 256 - 512:t * 256 + 512, 0] * hann_periodic(1024))
    np.testing.assert_allclose(spec[t, :, 0], expected, atol=1e-10)
    from scipy.signal import get_window
    np.testing.assert_allclose(hann_periodic(4096), get_window("hann", 4096), atol=1e-15)


def test_bad_stft_parameters_raise():
    with pytest.raises(ParameterError):
        BlockSTFT(1000, n_fft=1024, hop=1000)
    with pytest.raises(ParameterError):
        stft(np.zeros((2, 1000)))


def test_outputs_have_the_mixture_length_and_layout(track):
    mixture, sources = track
    for name in ORACLES:
        estimates = oracle_estimates(name, mixture, sources)
        assert estimates.shape == sources.shape, name
        assert np.all(np.isfinite(estimates)), name


def test_ratio_masks_sum_to_the_mixture(track):
    mixture, sources = track
    for alpha in (1, 2):
        assert np.max(np.abs(irm(mixture, sources, alpha=alpha).sum(axis=0) - mixture)) < 1e-4
    # bins where every source is zero still partition the mixture (masks fall back to 1/n)
    silent_sources = sources.copy()
    silent_sources[:, SR:2 * SR] = 0.0
    assert np.max(np.abs(irm(mixture, silent_sources).sum(axis=0) - mixture)) < 1e-4
    assert np.max(np.abs(oracle_mwf(mixture, sources).sum(axis=0) - mixture)) < 1e-4


def test_block_processing_equals_whole_track(track):
    mixture, sources = track
    # masks are exact per bin; the MWF's covariances are sums whose order depends on the blocks
    for fn, tol in ((irm, 1e-12), (ibm, 1e-12), (oracle_mwf, 1e-8)):
        whole = fn(mixture, sources, block_frames=10_000)
        blocked = fn(mixture, sources, block_frames=7)
        assert np.max(np.abs(whole - blocked)) < tol, fn.__name__


def test_oracle_ranking(track):
    mixture, sources = track
    scores = {name: cSDR(sources, oracle_estimates(name, mixture, sources)) for name in ("IRM1", "IRM2", "IBM1", "MIX")}
    assert scores["IRM2"] > scores["IRM1"] - 0.5
    assert min(scores["IRM1"], scores["IRM2"], scores["IBM1"]) > scores["MIX"] + 3.0


def test_ibm_keeps_dominant_bins(track):
    mixture, sources = track
    # one source alone: its IBM keeps everything and returns the mixture
    single = ibm(sources[0], sources[:1])
    assert np.max(np.abs(single[0] - sources[0])) < 1e-8
    with pytest.raises(ParameterError):
        ibm(mixture, sources, theta=0.0)


def test_mwf_equals_norbert_local_gaussian_model(track):
    import norbert

    mixture, sources = track[0][: SR // 2], track[1][:, : SR // 2]
    n = mixture.shape[0]
    eps = np.finfo(np.float64).eps
    X = stft(mixture)
    Y = np.stack([stft(s) for s in sources], axis=-1)  # (T, F, C, J) as norbert expects
    v = np.empty(Y.shape[:2] + (Y.shape[-1],))
    R = np.empty((Y.shape[1], 2, 2, Y.shape[-1]), dtype=complex)
    for j in range(Y.shape[-1]):
        v[..., j], R[..., j] = norbert.get_local_gaussian_model(Y[..., j], eps)
    Cxx = norbert.get_mix_model(v, R) + np.sqrt(eps) * np.eye(2)
    inv = norbert._invert(Cxx, eps)
    expected = np.stack([istft(norbert.apply_filter(X, norbert.wiener_gain(v[..., j], R[..., j], inv)), n)
                         for j in range(Y.shape[-1])])
    got = oracle_mwf(mixture, sources, block_frames=5)
    assert np.max(np.abs(got - expected)) < 1e-8


def test_mixture_as_estimate(track):
    mixture, sources = track
    estimates = mixture_as_estimate(mixture, 4)
    assert estimates.shape == sources.shape and np.array_equal(estimates[2], mixture)
    with pytest.raises(ParameterError):
        mixture_as_estimate(mixture, 0)


def test_input_validation(track):
    mixture, sources = track
    with pytest.raises(ParameterError, match="match the mixture"):
        irm(mixture[:-5], sources)
    with pytest.raises(ParameterError, match="unknown oracle"):
        oracle_estimates("IRM3", mixture, sources)
