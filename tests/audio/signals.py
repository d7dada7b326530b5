"""Synthetic test signals and comparison helpers; arrays are float32 ``(n_samples, n_channels)``."""
from __future__ import annotations

import numpy as np


def music(seconds: float, sample_rate: int = 44100, n_channels: int = 2) -> np.ndarray:
    """A deterministic music-like signal: a stepping harmonic tone with tremolo (left), a
    delayed, quieter copy plus a 3 kHz partial (right). Peak below 0.8."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    f0 = 220.0 * 2.0 ** ((np.floor(t * 4) % 5) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tone = sum(0.25 / k * np.sin(k * phase) for k in range(1, 8)) * (0.6 + 0.4 * np.cos(2 * np.pi * 4 * t))
    right = 0.8 * np.roll(tone, 37) + 0.05 * np.sin(2 * np.pi * 3000 * t)
    channels = [tone, right] + [np.roll(tone, 11 * k) * (0.5 / k) for k in range(1, n_channels - 1)]
    return np.stack(channels[:n_channels], axis=1).astype(np.float32)


def noise(seconds: float, sample_rate: int = 44100, n_channels: int = 2, amplitude: float = 0.5,
          seed: int = 0) -> np.ndarray:
    """Uniform white noise in [-amplitude, amplitude]."""
    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * sample_rate))
    return rng.uniform(-amplitude, amplitude, (n_samples, n_channels)).astype(np.float32)


def sine(seconds: float, frequency: float, sample_rate: int = 44100, amplitude: float = 0.5) -> np.ndarray:
    """A mono sine, shape ``(n_samples, 1)``."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[:, np.newaxis]


def chirp(seconds: float, sample_rate: int = 44100, f_start: float = 100.0, f_end: float = 8000.0,
          amplitude: float = 0.5) -> np.ndarray:
    """A mono exponential sine sweep, shape ``(n_samples, 1)``."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rate = np.log(f_end / f_start) / seconds
    phase = 2 * np.pi * f_start * (np.exp(rate * t) - 1) / rate
    return (amplitude * np.sin(phase)).astype(np.float32)[:, np.newaxis]


def best_lag(reference: np.ndarray, test: np.ndarray, max_lag: int = 4096) -> int:
    """Lag ``d`` maximising the cross-correlation of channel 0: ``test[n + d] ~ reference[n]``."""
    a = reference[:, 0].astype(np.float64)
    b = test[:, 0].astype(np.float64)
    size = len(a) + len(b)
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    return int(lags[np.argmax(np.r_[corr[:max_lag + 1], corr[-max_lag:]])])


def aligned(reference: np.ndarray, test: np.ndarray, lag: int):
    """``reference`` and ``test`` cut to their overlap after shifting ``test`` by ``lag``."""
    if lag >= 0:
        test = test[lag:]
    else:
        reference = reference[-lag:]
    n = min(len(reference), len(test))
    return reference[:n], test[:n]


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-error ratio in dB."""
    error = np.sum((reference.astype(np.float64) - test) ** 2)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / max(error, 1e-30)))


def correlation(reference: np.ndarray, test: np.ndarray) -> float:
    """Pearson correlation of the flattened arrays."""
    return float(np.corrcoef(reference.ravel(), test.ravel())[0, 1])
