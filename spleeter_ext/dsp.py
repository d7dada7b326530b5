"""Spleeter's STFT conventions in TensorFlow (periodic Hann, ``pad_end``, x2/3 inverse compensation).

Axis names: waveforms are ``(..., n_samples, n_channels)``; STFTs are
``(..., n_frames, n_bins, n_channels)`` complex64 with ``n_bins = n_fft // 2 + 1``.
``n_fft``/``hop_length`` are Spleeter's ``frame_length``/``frame_step``.
"""
from __future__ import annotations

import tensorflow as tf

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
