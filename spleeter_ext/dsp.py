"""Spleeter's STFT conventions (periodic Hann, ``pad_end``, x2/3 inverse compensation), in TensorFlow (differentiable,
for training and exported graphs) and on SciPy's pocketfft (faster, for separation through ``tf.numpy_function``).

Axes: waveforms ``(..., n_samples, n_channels)``; STFTs ``(..., n_frames, n_bins, n_channels)`` complex64 with
``n_bins = n_fft // 2 + 1``; ``n_fft``/``hop_length`` are Spleeter's ``frame_length``/``frame_step``.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from .errors import ParameterError

# Sum of squared periodic Hann windows at 75 % overlap is 1.5: the inverse multiplies by 2/3.
WINDOW_COMPENSATION = 2.0 / 3.0


def _hann(frame_length, dtype):
    return tf.signal.hann_window(frame_length, periodic=True, dtype=dtype)


def stft(waveform: tf.Tensor, n_fft: int, hop_length: int, pad_end: bool = True) -> tf.Tensor:
    """STFT of ``(..., n_samples, n_channels)`` -> ``(..., n_frames, n_bins, n_channels)`` complex64."""
    rank = waveform.shape.rank
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]  # channels before samples
    spec = tf.signal.stft(tf.transpose(waveform, perm), n_fft, hop_length, window_fn=_hann, pad_end=pad_end)
    # (..., n_channels, n_frames, n_bins) -> (..., n_frames, n_bins, n_channels)
    r = spec.shape.rank
    return tf.transpose(spec, list(range(r - 3)) + [r - 2, r - 1, r - 3])


def istft(spec: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
    """Inverse of :func:`stft` with Spleeter's x2/3 compensation: ``(..., n_frames, n_bins, n_channels)``
    -> ``(..., n_samples, n_channels)`` with ``n_samples = (n_frames - 1) * hop_length + n_fft``."""
    r = spec.shape.rank
    x = tf.transpose(spec, list(range(r - 3)) + [r - 1, r - 3, r - 2])
    wav = tf.signal.inverse_stft(x, n_fft, hop_length, window_fn=_hann) * WINDOW_COMPENSATION
    rw = wav.shape.rank
    return tf.transpose(wav, list(range(rw - 2)) + [rw - 1, rw - 2])


def hann_numpy(n_fft: int) -> np.ndarray:
    """The periodic Hann window of :func:`stft` as float32 numpy."""
    k = np.arange(n_fft, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * k / n_fft)).astype(np.float32)


def _fft_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def stft_numpy(waveform: np.ndarray, n_fft: int, hop_length: int, pad_end: bool = True) -> np.ndarray:
    """:func:`stft` in NumPy/SciPy: ``(..., n_samples, n_channels)`` float -> ``(..., n_frames, n_bins,
    n_channels)`` complex64, frame for frame the same as TensorFlow's ``tf.signal.stft`` (``pad_end``
    zero-pads to ``ceil(n_samples / hop_length)`` frames)."""
    import scipy.fft

    x = np.moveaxis(np.asarray(waveform, np.float32), -1, -2)  # (..., C, n)
    n = x.shape[-1]
    if pad_end:
        n_frames = -(-n // hop_length)
        total = max(n, (n_frames - 1) * hop_length + n_fft)
    else:
        n_frames = max(0, 1 + (n - n_fft) // hop_length)
        total = n
    if total > n:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (total - n,), np.float32)], axis=-1)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop_length, :][..., :n_frames, :]
    spec = scipy.fft.rfft(frames * hann_numpy(n_fft), axis=-1, workers=_fft_workers())
    return np.moveaxis(spec.astype(np.complex64, copy=False), -3, -1)


def istft_numpy(spec: np.ndarray, n_fft: int, hop_length: int, masks: np.ndarray = None,
                extension: str = "zeros") -> np.ndarray:
    """:func:`istft` in NumPy/SciPy: ``(..., n_frames, n_bins, n_channels)`` -> ``(..., n_samples,
    n_channels)`` float32, ``n_samples = (n_frames - 1) * hop_length + n_fft``.

    With ``masks`` ``(n_frames, F, n_channels, n_sources)`` (real, ``F <= n_bins``), ``spec`` is one
    mixture STFT ``(n_frames, n_bins, n_channels)`` and the result is every masked source
    ``(n_sources, n_samples, n_channels)``, computed one source at a time (no ``n_sources``-fold
    complex copy is held). Bins at and above ``F`` get Spleeter's ``mask_extension``: ``"zeros"`` or
    ``"average"`` (each frame's mean mask over the ``F`` bins).
    """
    import scipy.fft

    spec = np.asarray(spec)
    window = hann_numpy(n_fft) * np.float32(WINDOW_COMPENSATION)
    workers = _fft_workers()

    def inverse(s: np.ndarray) -> np.ndarray:  # (..., C, n_frames, n_bins) -> (..., C, n)
        frames = scipy.fft.irfft(s, n=n_fft, axis=-1, workers=workers).astype(np.float32, copy=False)
        frames *= window
        return _overlap_add(frames, hop_length)

    if masks is None:
        return np.moveaxis(inverse(np.moveaxis(spec, -1, -3)), -2, -1)
    masks = np.asarray(masks, np.float32)
    if extension not in ("zeros", "average"):
        raise ParameterError(f"mask extension must be 'zeros' or 'average', got {extension!r}")
    n_frames, n_bins, n_channels = spec.shape
    n_mask, n_sources = masks.shape[1], masks.shape[3]
    spec_t = np.ascontiguousarray(np.moveaxis(spec, -1, 0))  # (C, n_frames, n_bins): contiguous rows
    masked = np.zeros(spec_t.shape, np.complex64)  # bins >= F stay zero for 'zeros'
    out = np.empty((n_sources, (n_frames - 1) * hop_length + n_fft, n_channels), np.float32)
    for k in range(n_sources):
        m = np.moveaxis(masks[..., k], -1, 0)  # (C, n_frames, F)
        np.multiply(spec_t[..., :n_mask], m, out=masked[..., :n_mask])
        if n_mask < n_bins and extension == "average":
            np.multiply(spec_t[..., n_mask:], m.mean(axis=-1, keepdims=True), out=masked[..., n_mask:])
        out[k] = inverse(masked).T
    return out


def _overlap_add(frames: np.ndarray, hop_length: int) -> np.ndarray:
    """``(..., n_frames, frame_length)`` -> ``(..., (n_frames - 1) * hop_length + frame_length)``."""
    *lead, nf, n_fft = frames.shape
    out = np.zeros(tuple(lead) + ((nf - 1) * hop_length + n_fft,), np.float32)
    if n_fft % hop_length == 0:  # n_fft/hop shifted additions of whole hop-sized pieces, all views
        r = n_fft // hop_length
        pieces = frames.reshape(tuple(lead) + (nf, r, hop_length))
        span = nf * hop_length
        for k in range(r):
            target = out[..., k * hop_length: k * hop_length + span].reshape(tuple(lead) + (nf, hop_length))
            target += pieces[..., k, :]
    else:
        for i in range(nf):
            out[..., i * hop_length: i * hop_length + n_fft] += frames[..., i, :]
    return out


def stft_fast(waveform: tf.Tensor, n_fft: int, hop_length: int, pad_end: bool = True) -> tf.Tensor:
    """:func:`stft_numpy` as a graph op (no gradient): for inference graphs."""
    out = tf.numpy_function(lambda x: stft_numpy(x, n_fft, hop_length, pad_end), [waveform], tf.complex64,
                            stateful=False)
    lead = waveform.shape[:-2]
    out.set_shape(lead.concatenate([None, n_fft // 2 + 1, waveform.shape[-1]]))
    return out


def masked_istft_fast(spec: tf.Tensor, masks: tf.Tensor, n_fft: int, hop_length: int,
                      extension: str = "zeros") -> tf.Tensor:
    """Every masked source of one STFT as a graph op (no gradient): ``spec (n_frames, n_bins, C)``,
    ``masks (n_frames, F, C, n_sources)`` -> ``(n_sources, n_samples, C)`` (see :func:`istft_numpy`)."""
    out = tf.numpy_function(lambda s, m: istft_numpy(s, n_fft, hop_length, masks=m, extension=extension),
                            [spec, masks], tf.float32, stateful=False)
    out.set_shape([masks.shape[-1], None, spec.shape[-1]])
    return out


def istft_fast(spec: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
    """:func:`istft_numpy` as a graph op (no gradient)."""
    out = tf.numpy_function(lambda s: istft_numpy(s, n_fft, hop_length), [spec], tf.float32, stateful=False)
    out.set_shape(spec.shape[:-3].concatenate([None, spec.shape[-1]]))
    return out


def spleeter_frames(n_samples: int, n_fft: int, hop_length: int) -> int:
    """Frames of Spleeter's separation STFT for ``n_samples`` (``n_fft`` zeros prepended, ``pad_end``)."""
    return -(-(int(n_samples) + n_fft) // hop_length)


def pad_and_partition(tensor: tf.Tensor, segment_len: int) -> tf.Tensor:
    """Zero-pad axis 0 to a multiple of ``segment_len`` and split it: ``(n, ...) -> (n_patches, segment_len, ...)``."""
    n = tf.shape(tensor)[0]
    pad = tf.math.floormod(segment_len - tf.math.floormod(n, segment_len), segment_len)
    padded = tf.pad(tensor, [[0, pad]] + [[0, 0]] * (tensor.shape.rank - 1))
    n_patches = (n + pad) // segment_len
    return tf.reshape(padded, tf.concat([[n_patches, segment_len], tf.shape(padded)[1:]], axis=0))
