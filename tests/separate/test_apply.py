"""Chunked separation: exact reconstruction, the patch grid against one whole-input pass, streaming
equivalence, shifts."""
import numpy as np
import pytest

from spleeter_ext.errors import ParameterError
from spleeter_ext.separate import apply


def passthrough(n_sources):
    def fn(segments):  # (n_seg, segment, C) -> (n_seg, S, segment, C): source 0 gets the input
        out = np.zeros((segments.shape[0], n_sources) + segments.shape[1:], np.float32)
        out[:, 0] = segments
        return out
    return fn


def scaled(segments):
    return np.stack([segments * 0.5, segments * 2.0], axis=1)


@pytest.mark.parametrize("n_samples", [1, 999, 1000, 1001, 2500, 7919, 20000])
@pytest.mark.parametrize("segment,overlap", [(1000, 0.0), (1000, 0.25), (1000, 0.5), (777, 0.33), (64, 0.9)])
def test_passthrough_reconstructs_every_sample(n_samples, segment, overlap):
    rng = np.random.default_rng(n_samples + segment)
    x = rng.uniform(-1, 1, (n_samples, 2)).astype(np.float32)
    seg, ov = apply.plan(segment, overlap)
    out = apply.separate_array(x, passthrough(3), seg, ov, batch_size=3)
    assert out.shape == (3, n_samples, 2)
    np.testing.assert_allclose(out[0], x, atol=1e-6, rtol=0)
    assert np.all(out[1:] == 0)


def test_linear_model_is_exact_through_overlap():
    x = np.random.default_rng(0).standard_normal((12345, 1)).astype(np.float32)
    out = apply.separate_array(x, scaled, 1000, 300)
    np.testing.assert_allclose(out[0], 0.5 * x, atol=1e-6)
    np.testing.assert_allclose(out[1], 2.0 * x, atol=1e-6)


@pytest.mark.parametrize("block", [1, 37, 1000, 4096, 50000])
def test_streaming_equals_in_memory_for_any_block_size(block):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((23456, 2)).astype(np.float32)

    def fn(segments):  # a non-trivial, position-independent model: a per-segment mean removal
        return (segments - segments.mean(axis=1, keepdims=True))[:, None]

    whole = apply.separate_array(x, fn, 5000, 1250)
    blocks = [x[i:i + block] for i in range(0, len(x), block)]
    parts = list(apply.separate_blocks(blocks, fn, 5000, 1250, 2, batch_size=2))
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape == (1, 23456, 2)
    np.testing.assert_array_equal(streamed, whole)


def test_weights_are_complementary():
    w1 = apply.segment_weights(100, 40, fade_in=False, fade_out=True)
    w2 = apply.segment_weights(100, 40, fade_in=True, fade_out=False)
    np.testing.assert_allclose(w1[60:] + w2[:40], 1.0, atol=1e-12)
    assert w1[0] == 1.0 and w2[-1] == 1.0


def test_segment_count():
    assert apply.n_segments(1000, 1000, 250) == 1
    assert apply.n_segments(1001, 1000, 250) == 2
    assert apply.n_segments(1750, 1000, 250) == 2
    assert apply.n_segments(1751, 1000, 250) == 3


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
def test_bad_overlap_is_refused(overlap):
    with pytest.raises(ParameterError, match="overlap"):
        apply.plan(1000, overlap)


def _patch_model(n_fft, hop, T):
    """A patch-local spectrogram 'model' in NumPy: each T-frame patch's mask depends on that patch alone."""
    from spleeter_ext import dsp

    def masks(mag):  # (frames, bins, C), frames a multiple of T -> two sources' masks
        p = mag.reshape(-1, T, *mag.shape[1:])
        level = p.mean(axis=(1, 2), keepdims=True)
        m = (p / (p + level + 1e-6)).reshape(mag.shape)
        return np.stack([m, 1 - m], axis=-1)

    def windows(segments):  # (n, W, C) -> (n, 2, W, C), as STFTMaskEstimator.separate_windows
        out = []
        for w in segments:
            spec = dsp.stft_numpy(w, n_fft, hop, pad_end=False)
            out.append(dsp.istft_numpy(spec, n_fft, hop, masks=masks(np.abs(spec))))
        return np.stack(out)

    def whole(x):  # one pass over the whole input, as Spleeter: n_fft zeros first, pad_end, patches padded
        spec = dsp.stft_numpy(np.concatenate([np.zeros((n_fft, x.shape[1]), np.float32), x]), n_fft, hop)
        n = len(spec)
        padded = np.concatenate([spec, np.zeros((-n % T,) + spec.shape[1:], spec.dtype)])
        return dsp.istft_numpy(spec, n_fft, hop, masks=masks(np.abs(padded))[:n])[:, n_fft: n_fft + len(x)]

    return windows, whole


@pytest.mark.parametrize("n_patches", [1, 2, 3])
def test_grid_chunking_equals_one_pass_at_every_length(n_patches):
    """Every input length from 1 to 300 samples (patches of 16 samples, windows sharing 12): the windows'
    summed inverse STFTs equal one pass over the whole input; streamed in odd blocks, with batches."""
    n_fft, hop, T = 16, 4, 4
    windows, whole = _patch_model(n_fft, hop, T)
    chunking = apply.Chunking.grid(n_fft, hop, T, n_patches)
    assert (chunking.segment, chunking.overlap, chunking.lead) == (n_patches * 16 + 12, 12, 16)
    x = np.random.default_rng(0).uniform(-1, 1, (300, 2)).astype(np.float32)
    for n in range(1, 301):
        ref = whole(x[:n])
        blocks = [x[i: min(i + 7, n)] for i in range(0, n, 7)]
        out = np.concatenate(list(apply.separate_blocks(blocks, windows, chunking, n_channels=2, batch_size=2)),
                             axis=1)
        assert out.shape == ref.shape == (2, n, 2)
        np.testing.assert_allclose(out, ref, atol=1e-5, err_msg=f"n={n}")


def test_shifted_copies_are_realigned_and_averaged():
    """With delays, each copy is separated delayed and realigned: a shift-invariant model gives its own output."""
    x = np.random.default_rng(3).standard_normal((5000, 2)).astype(np.float32)
    out = apply.separate_array(x, scaled, 1000, 200, delays=[0, 37, 500])
    np.testing.assert_allclose(out[0], 0.5 * x, atol=1e-6)
    np.testing.assert_allclose(out[1], 2.0 * x, atol=1e-6)

    def position(segments):  # not shift-invariant: adds the sample's position in its segment
        ramp = np.arange(segments.shape[1], dtype=np.float32)[None, :, None]
        return (segments + ramp)[:, None]

    single = [apply.separate_array(x, position, 1000, 0, delays=[d])[0] for d in (0, 37)]
    both = apply.separate_array(x, position, 1000, 0, delays=[0, 37])[0]
    np.testing.assert_allclose(both, (single[0] + single[1]) / 2, atol=1e-4)
    assert np.abs(single[0] - single[1]).max() > 1
