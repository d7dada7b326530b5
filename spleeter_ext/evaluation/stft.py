"""A perfect-reconstruction numpy STFT on the Spleeter models' grid that can be processed in blocks of frames.

Its geometry and why blocks give the whole-signal result: docs/evaluation.md.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sp_fft

from ..errors import ParameterError

__all__ = ["hann_periodic", "stft", "istft", "BlockSTFT"]


def hann_periodic(n_fft: int) -> np.ndarray:
    """Periodic Hann window of length ``n_fft`` (float64)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


class BlockSTFT:
    """STFT geometry of one signal length, with block-wise analysis and overlap-add synthesis.

    Parameters
    ----------
    n_samples : int
        Length of the signals that will be analysed.
    n_fft, hop : int
        Window length and hop in samples.
    block_frames : int
        Frames per block of :meth:`blocks`.

    Signals are ``(..., n_samples, n_channels)`` arrays; spectrograms of a block are
    ``(..., n_block_frames, n_bins, n_channels)`` complex128 arrays (frames, bins, channels: the
    layout of norbert and of the Spleeter models).
    """

    def __init__(self, n_samples: int, n_fft: int = 4096, hop: int = 1024, block_frames: int = 256):
        for name, value in (("n_samples", n_samples), ("n_fft", n_fft), ("hop", hop), ("block_frames", block_frames)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"STFT: {name} must be a positive integer, got {value!r}")
        if n_fft < 2 or hop > n_fft // 2:
            raise ParameterError(
                f"STFT: hop={hop} with n_fft={n_fft} does not give perfect reconstruction with a Hann window; "
                "use hop <= n_fft // 2 (e.g. n_fft=4096, hop=1024)")
        self.n_samples = int(n_samples)
        self.n_fft = int(n_fft)
        self.hop = int(hop)
        self.block_frames = int(block_frames)
        self.pad = self.n_fft // 2
        self.n_frames = 1 + self.n_samples // self.hop
        self.n_bins = self.n_fft // 2 + 1
        self.window = hann_periodic(self.n_fft)
        # length of the padded time axis that holds every frame
        self._padded_length = (self.n_frames - 1) * self.hop + self.n_fft

    def blocks(self) -> Iterator[Tuple[int, int]]:
        """Yield ``(first_frame, stop_frame)`` ranges of at most ``block_frames`` frames."""
        for t0 in range(0, self.n_frames, self.block_frames):
            yield t0, min(t0 + self.block_frames, self.n_frames)

    def _segment(self, x: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Samples of frames ``t0..t1-1`` from the (conceptually) zero-padded signal ``x``."""
        start = t0 * self.hop - self.pad
        stop = (t1 - 1) * self.hop + self.n_fft - self.pad
        out = np.zeros(x.shape[:-2] + (stop - start, x.shape[-1]), dtype=np.float64)
        lo, hi = max(start, 0), min(stop, self.n_samples)
        if hi > lo:
            out[..., lo - start:hi - start, :] = x[..., lo:hi, :]
        return out

    def analyse(self, x: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """STFT frames ``t0..t1-1`` of ``x`` (``(..., n_samples, n_channels)``) -> ``(..., T, F, C)``."""
        seg = self._segment(x, t0, t1)
        # (..., T, C, n_fft): a strided view, one row per frame
        frames = sliding_window_view(seg, self.n_fft, axis=-2)[..., :: self.hop, :, :]
        spec = sp_fft.rfft(frames * self.window, axis=-1)
        return np.swapaxes(spec, -1, -2)

    def new_output(self, leading: Tuple[int, ...], n_channels: int) -> np.ndarray:
        """Zeroed overlap-add buffer for :meth:`synthesise_into`."""
        return np.zeros(tuple(leading) + (self._padded_length, n_channels))

    def synthesise_into(self, out: np.ndarray, spec: np.ndarray, t0: int) -> None:
        """Overlap-add the windowed inverse FFT of ``spec`` (``(..., T, F, C)``, frames from ``t0``)."""
        frames = sp_fft.irfft(np.swapaxes(spec, -1, -2), n=self.n_fft, axis=-1) * self.window
        frames = np.swapaxes(frames, -1, -2)  # (..., T, n_fft, C)
        for k in range(frames.shape[-3]):
            start = (t0 + k) * self.hop
            out[..., start:start + self.n_fft, :] += frames[..., k, :, :]

    def finish(self, out: np.ndarray) -> np.ndarray:
        """Normalise an overlap-add buffer by the window energy, in place, and crop it to ``n_samples``.

        Returns a view of ``out`` (the buffer is only ``n_fft`` samples longer than the signal).
        """
        wsum = np.zeros(self._padded_length)
        w2 = self.window ** 2
        for t in range(self.n_frames):
            wsum[t * self.hop:t * self.hop + self.n_fft] += w2
        crop = slice(self.pad, self.pad + self.n_samples)
        signal = out[..., crop, :]
        signal /= wsum[crop, None]  # in place: no second track-sized array
        return signal


def _as_signal(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] > x.shape[0]:
        raise ParameterError(f"{where}: signal must have shape (n_samples, n_channels), got {x.shape}; "
                             "add a channel axis with x[:, None] for mono")
    return x


def stft(x: np.ndarray, n_fft: int = 4096, hop: int = 1024) -> np.ndarray:
    """STFT of ``x`` (``(n_samples, n_channels)``) -> ``(n_frames, n_bins, n_channels)`` complex128."""
    x = _as_signal(x, "stft")
    geometry = BlockSTFT(x.shape[0], n_fft, hop, block_frames=1 + x.shape[0] // hop)
    return geometry.analyse(x, 0, geometry.n_frames)


def istft(spec: np.ndarray, n_samples: int, n_fft: int = 4096, hop: int = 1024) -> np.ndarray:
    """Inverse of :func:`stft`: ``(n_frames, n_bins, n_channels)`` -> ``(n_samples, n_channels)``."""
    spec = np.asarray(spec)
    geometry = BlockSTFT(n_samples, n_fft, hop)
    if spec.ndim != 3 or spec.shape[:2] != (geometry.n_frames, geometry.n_bins):
        raise ParameterError(
            f"istft: expected a spectrogram of shape ({geometry.n_frames}, {geometry.n_bins}, n_channels) for "
            f"n_samples={n_samples}, n_fft={n_fft}, hop={hop}; got {spec.shape}")
    out = geometry.new_output((), spec.shape[-1])
    geometry.synthesise_into(out, spec, 0)
    return geometry.finish(out)
