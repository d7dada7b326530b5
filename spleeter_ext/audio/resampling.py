"""Resampling with soxr: whole arrays (:func:`resample`) and streams (:func:`stream_resampler`)."""
from __future__ import annotations

import numpy as np
import soxr

from .channels import as_channels_last
from .checks import _check_rate

#: soxr quality recipe used for every resampling ('HQ': 20-bit precision, linear phase).
RESAMPLE_QUALITY = "HQ"


def stream_resampler(sr_in: int, sr_out: int, n_channels: int) -> "soxr.ResampleStream":
    """A streaming float32 resampler at :data:`RESAMPLE_QUALITY`: its chunks joined equal one-shot
    :func:`resample` of the whole signal (``resample_chunk(chunk, last=...)``)."""
    return soxr.ResampleStream(sr_in, sr_out, n_channels, dtype="float32", quality=RESAMPLE_QUALITY)


def resample(waveform: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """Resample an in-memory waveform ``(n_samples, n_channels)`` (or 1-D) from ``sr_in`` to ``sr_out`` Hz.

    Uses ``soxr.resample`` with quality :data:`RESAMPLE_QUALITY`; returns float32
    ``(round(n_samples * sr_out / sr_in), n_channels)``.
    """
    data = as_channels_last(waveform)
    sr_in, sr_out = _check_rate(sr_in, "sr_in"), _check_rate(sr_out, "sr_out")
    if sr_in == sr_out:
        return data.copy() if data is waveform else data
    return np.ascontiguousarray(soxr.resample(data, sr_in, sr_out, quality=RESAMPLE_QUALITY), dtype=np.float32)
