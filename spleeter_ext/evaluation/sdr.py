"""Fast, exact signal-to-distortion ratios: museval's framewise SDR and the MDX track-level uSDR.

Why a direct formula reproduces museval, and which museval details it keeps: docs/evaluation.md.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..errors import ParameterError

__all__ = ["framewise_sdr", "track_sdr", "pad_or_truncate", "n_frames", "frame_starts"]

SILENT_SOURCE_MODES = ("raise", "nan")


def _check_pair(references: np.ndarray, estimates: np.ndarray, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate the ``(n_sources, n_samples, n_channels)`` layout of references and estimates.

    Finiteness is checked by the callers on the energies they compute anyway (no extra pass).
    """
    references = np.asarray(references)
    estimates = np.asarray(estimates)
    for name, arr in (("references", references), ("estimates", estimates)):
        if arr.ndim != 3:
            raise ParameterError(
                f"{where}: {name} must have shape (n_sources, n_samples, n_channels), got {arr.shape}; "
                "add a channel axis with x[..., None] for mono")
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            raise ParameterError(f"{where}: {name} must be real numbers, got dtype {arr.dtype}")
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ParameterError(f"{where}: {name} is empty (shape {arr.shape}); pass at least one sample")
        if arr.shape[2] > arr.shape[1]:
            raise ParameterError(
                f"{where}: {name} has more channels than samples (shape {arr.shape}); the layout must be "
                "(n_sources, n_samples, n_channels), transpose (n_sources, n_channels, n_samples) input")
    if references.shape[0] != estimates.shape[0] or references.shape[2] != estimates.shape[2]:
        raise ParameterError(
            f"{where}: references {references.shape} and estimates {estimates.shape} differ in sources or "
            "channels; pass one estimate per reference with the same channel count")
    return references, estimates


def pad_or_truncate(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Return ``estimates`` zero-padded or truncated along the sample axis to the references' length.

    Same rule as ``museval.pad_or_truncate`` (padding at the end, no warning there; we log nothing
    either, :func:`~spleeter_ext.evaluation.report.sanity_flags` reports the mismatch).
    """
    n_ref, n_est = references.shape[1], estimates.shape[1]
    if n_est > n_ref:
        return estimates[:, :n_ref]
    if n_est < n_ref:
        return np.pad(estimates, [(0, 0), (0, n_ref - n_est), (0, 0)], mode="constant")
    return estimates


def n_frames(n_samples: int, win: int, hop: int) -> int:
    """Number of evaluation frames museval uses for ``n_samples`` samples (``metrics.Framing.nwin``)."""
    if win < n_samples:
        return int(np.floor((n_samples - win + hop) / hop))
    return 1


def frame_starts(n_samples: int, win: int, hop: int) -> np.ndarray:
    """First sample of every evaluation frame (frames are ``[start, min(start + win, n_samples))``)."""
    return np.arange(n_frames(n_samples, win, hop)) * hop


def _check_window(win: int, hop: int, where: str) -> Tuple[int, int]:
    for name, value in (("win", win), ("hop", hop)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{where}: {name} must be a positive number of samples, got {value!r}; "
                                 "use int(seconds * sample_rate)")
    return int(win), int(hop)


def _channel_sum(signals: np.ndarray) -> np.ndarray:
    """Sum over the channel axis of ``(n_sources, n_samples, n_channels)`` -> ``(n_sources, n_samples)``.

    Bit-identical to museval's ``np.sum(sources, axis=2)``: numpy adds an innermost axis of fewer than
    8 elements sequentially, which is what the explicit loop does (it avoids numpy's slow reduction
    over a length-2 axis); longer channel axes use ``np.sum`` itself.
    """
    n_channels = signals.shape[2]
    if n_channels >= 8:
        return np.sum(signals, axis=2)
    total = signals[:, :, 0].copy()
    for c in range(1, n_channels):
        total += signals[:, :, c]
    return total


def _any_silent(signals: np.ndarray) -> bool:
    """museval's ``_any_source_silent``: some source's channel sum is 0 at every sample."""
    return bool(np.any(np.all(_channel_sum(signals) == 0, axis=1)))


def framewise_sdr(references: np.ndarray, estimates: np.ndarray, win: int = 44100, hop: int = 44100,
                  inf_to_nan: bool = True, silent_source: str = "raise") -> np.ndarray:
    """museval's framewise SDR (BSSEval v4 images), computed directly: ``(n_sources, n_frames)``.

    Parameters
    ----------
    references, estimates : np.ndarray, shape ``(n_sources, n_samples, n_channels)``
        True source images and their estimates.  Estimates are zero-padded or truncated to the
        references' length as ``museval.evaluate`` does.
    win, hop : int
        Frame length and hop in samples (``museval.evaluate`` defaults: 1 s at 44.1 kHz).
    inf_to_nan : bool
        Store +inf (an error energy of exactly 0, i.e. a perfect estimate) as NaN, which is what
        museval's ``TrackStore`` (and hence every museval JSON and aggregate) does.  With ``False``
        the values equal ``museval.evaluate(...)[0]`` including its +inf.
    silent_source : {'raise', 'nan'}
        A reference or estimate that is silent over the whole signal makes museval raise
        ``ValueError``; ``'raise'`` does the same (:class:`ParameterError` is a ``ValueError``),
        ``'nan'`` returns all-NaN frames instead (every frame then contains a silent source).

    Returns
    -------
    np.ndarray, float64, shape ``(n_sources, n_frames)``
        ``10 log10(Σ s² / Σ (ŝ − s)²)`` per frame, NaN on frames where any reference or any
        estimate is silent (museval's rules: docs/evaluation.md).
    """
    where = "framewise_sdr"
    references, estimates = _check_pair(references, estimates, where)
    win, hop = _check_window(win, hop, where)
    if silent_source not in SILENT_SOURCE_MODES:
        raise ParameterError(f"{where}: silent_source must be one of {SILENT_SOURCE_MODES}, got {silent_source!r}")
    estimates = pad_or_truncate(references, estimates)

    n_sources, n_samples, _ = references.shape
    starts = frame_starts(n_samples, win, hop)
    signal = np.empty((n_sources, starts.size))
    noise = np.empty((n_sources, starts.size))
    # sounding[k, j, t]: source j of (references, estimates)[k] has a non-zero channel sum in frame t
    sounding = np.empty((2, n_sources, starts.size), dtype=bool)
    # One frame at a time: temporaries stay the size of a frame (cache-friendly, bounded memory on
    # long tracks) and every test sees exactly the samples museval's frame slice holds.
    for t, start in enumerate(starts):
        stop = min(start + win, n_samples)
        ref = references[:, start:stop]
        est = estimates[:, start:stop]
        sounding[0, :, t] = np.any(_channel_sum(ref) != 0, axis=1)
        sounding[1, :, t] = np.any(_channel_sum(est) != 0, axis=1)
        ref64 = ref.astype(np.float64, copy=False).reshape(n_sources, -1)
        err = est.astype(np.float64, copy=False).reshape(n_sources, -1) - ref64
        signal[:, t] = np.einsum("sk,sk->s", ref64, ref64)
        noise[:, t] = np.einsum("sk,sk->s", err, err)

    # whole-signal checks of museval's ``validate``, reusing the frames when they cover the signal
    # without gaps (hop <= win) and looking at the dropped tail separately
    tail = slice(min(starts[-1] + win, n_samples), n_samples) if hop <= win else slice(0, n_samples)
    for k, (name, signals) in enumerate((("reference", references), ("estimate", estimates))):
        silent = ~(sounding[k].any(axis=1) | np.any(_channel_sum(signals[:, tail]) != 0, axis=1))
        if silent.any() and silent_source == "raise":
            raise ParameterError(
                f"{where}: {name} source(s) {np.flatnonzero(silent).tolist()} are silent over the whole signal "
                "(museval raises here too); drop the source or pass silent_source='nan'")
    if not (np.all(np.isfinite(signal)) and np.all(np.isfinite(noise))
            and np.all(np.isfinite(references[:, tail])) and np.all(np.isfinite(estimates[:, tail]))):
        raise ParameterError(f"{where}: references or estimates contain NaN or inf samples (or values beyond "
                             "1e150); fix the audio before scoring")
    frame_ok = sounding.all(axis=(0, 1))

    with np.errstate(divide="ignore", invalid="ignore"):
        sdr = 10.0 * np.log10(signal / noise)
    sdr[noise == 0] = np.nan if inf_to_nan else np.inf
    sdr[:, ~frame_ok] = np.nan
    return sdr


def track_sdr(references: np.ndarray, estimates: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Whole-track SDR per source as in the Music Demixing Challenge ("uSDR"): ``(n_sources,)``.

    ``10 log10((Σ s² + eps) / (Σ (s − ŝ)² + eps))`` over all samples and channels, with the MDX21
    ``eps = 1e-7`` (Mitsufuji et al., Front. Signal Process. 2022; ``demucs.evaluate.new_sdr``).
    There is no projection and no silence rule; unlike museval's median of 1 s frames it weights
    loud passages by their energy.  Estimates are padded or truncated to the references' length
    like :func:`framewise_sdr`.
    """
    references, estimates = _check_pair(references, estimates, "track_sdr")
    if not eps > 0:
        raise ParameterError(f"track_sdr: eps must be > 0, got {eps!r}; use the MDX value 1e-7")
    estimates = pad_or_truncate(references, estimates)
    num = np.empty(references.shape[0])
    den = np.empty(references.shape[0])
    for j in range(references.shape[0]):  # one source at a time bounds the temporaries
        ref = references[j].astype(np.float64, copy=False).ravel()
        err = ref - estimates[j].astype(np.float64, copy=False).ravel()
        num[j] = np.dot(ref, ref)
        den[j] = np.dot(err, err)
    if not (np.all(np.isfinite(num)) and np.all(np.isfinite(den))):
        raise ParameterError("track_sdr: references or estimates contain NaN or inf samples (or values beyond "
                             "1e150); fix the audio before scoring")
    return 10.0 * np.log10((num + eps) / (den + eps))
