"""Deterministic music-like test material (sources and degraded estimates) for the evaluation tests and benchmarks.

Why it has a -60 dB noise floor: docs/evaluation.md.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

__all__ = ["music_like_sources", "degraded_estimates"]

# (low Hz, high Hz, fundamental Hz or 0, percussive) per source: bass, drums, other, vocals-like
_PROFILES = (
    (40.0, 300.0, 55.0, False),
    (60.0, 12000.0, 0.0, True),
    (200.0, 6000.0, 220.0, False),
    (300.0, 4000.0, 440.0, False),
)


def music_like_sources(n_sources: int = 4, seconds: float = 4.5, sample_rate: int = 44100, n_channels: int = 2,
                       seed: int = 0) -> np.ndarray:
    """Return ``(n_sources, n_samples, n_channels)`` float64 stems with peak ~0.3 each."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    nyquist = sample_rate / 2
    out = np.empty((n_sources, n, n_channels))
    for j in range(n_sources):
        low, high, f0, percussive = _PROFILES[j % len(_PROFILES)]
        low *= 1.0 + 0.1 * (j // len(_PROFILES))
        sos = butter(4, [low / nyquist, min(high, 0.45 * sample_rate) / nyquist], btype="band", output="sos")
        mono = sosfilt(sos, rng.standard_normal(n))
        mono /= np.max(np.abs(mono)) + 1e-12
        if f0:
            detune = 1.0 + 0.01 * rng.standard_normal()
            for k in range(1, 6):
                mono += (0.6 / k) * np.sin(2 * np.pi * f0 * detune * k * t + rng.uniform(0, 2 * np.pi))
        if percussive:
            period = int(sample_rate * rng.uniform(0.2, 0.3))
            envelope = np.exp(-(np.arange(n) % period) / (0.03 * sample_rate))
        else:
            envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.7) * t + rng.uniform(0, 2 * np.pi))
        mono *= envelope
        for c in range(n_channels):
            gain = 0.5 + 0.5 * rng.uniform()
            delay = int(rng.integers(0, 40))
            out[j, :, c] = gain * np.roll(mono, delay) + 1e-3 * rng.standard_normal(n)
        out[j] *= 0.3 / np.max(np.abs(out[j]))
    return out


def degraded_estimates(sources: np.ndarray, leak: float = 0.15, noise: float = 0.02, cutoff_hz: float = 8000.0,
                       sample_rate: int = 44100, seed: int = 1) -> np.ndarray:
    """Plausible imperfect estimates: low-passed target + ``leak`` × the other sources + white noise."""
    rng = np.random.default_rng(seed)
    sos = butter(6, cutoff_hz / (sample_rate / 2), output="sos")
    mix = sources.sum(axis=0)
    est = np.empty_like(sources)
    for j in range(sources.shape[0]):
        est[j] = sosfilt(sos, sources[j], axis=0) + leak * (mix - sources[j])
        est[j] += noise * np.std(sources[j]) * rng.standard_normal(sources[j].shape)
    return est
