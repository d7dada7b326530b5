"""Per-track scores: framewise cSDR (fast path), optionally museval's SIR/ISR/SAR, and museval's JSON.

How they relate to museval: docs/evaluation.md.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..log import logger
from .sdr import _channel_sum, _check_pair, framewise_sdr, pad_or_truncate, track_sdr

__all__ = ["TrackScores", "evaluate_track", "to_museval_json", "save_museval_json", "METRICS",
           "museval_version"]

#: metric names in museval's order of ``museval.evaluate``'s return values
METRICS = ("SDR", "ISR", "SIR", "SAR")
#: |fast SDR − museval SDR| above which ``evaluate_track`` warns (museval's own round-off is ~1e-14 dB)
CROSSCHECK_TOLERANCE_DB = 1e-6


def museval_version() -> str:
    """Installed museval version (read from the package metadata, without importing museval)."""
    try:
        return metadata.version("museval")
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class TrackScores:
    """Framewise scores of one track.

    Attributes
    ----------
    track_name : str
    instruments : tuple of str
        Target names, in the order of the arrays' first axis.  They were evaluated jointly: the
        NaN frames (any source silent) and SIR depend on which stems form the group.
    sample_rate : int
    win_seconds, hop_seconds : float
        Evaluation window and hop.
    n_samples : int
        Reference length in samples.
    values : dict
        ``metric -> (n_instruments, n_frames)`` float64 arrays; always ``'SDR'``, plus ``'ISR'``,
        ``'SIR'``, ``'SAR'`` when computed with ``metrics='all'``.  NaN: frame skipped (silent
        source) or +inf stored as NaN.
    usdr : np.ndarray
        ``(n_instruments,)`` whole-track MDX SDR (:func:`~spleeter_ext.evaluation.sdr.track_sdr`).
    inf_counts : dict
        ``metric -> (n_instruments,)`` number of frames that were +inf before being stored as NaN.
    sdr_crosscheck_db : float or None
        With ``metrics='all'``: max |fast SDR − museval SDR| over the frames (None otherwise).
    length_mismatch : int
        Estimate length minus reference length, in samples (estimates were padded/truncated).
    """

    track_name: str
    instruments: tuple
    sample_rate: int
    win_seconds: float
    hop_seconds: float
    n_samples: int
    values: Dict[str, np.ndarray]
    usdr: np.ndarray
    inf_counts: Dict[str, np.ndarray] = field(default_factory=dict)
    sdr_crosscheck_db: Optional[float] = None
    length_mismatch: int = 0

    @property
    def metrics(self) -> tuple:
        """Names of the metrics held, in museval's order."""
        return tuple(m for m in METRICS if m in self.values)

    @property
    def n_frames(self) -> int:
        return int(self.values["SDR"].shape[1])

    @property
    def sdr(self) -> np.ndarray:
        """Framewise SDR, ``(n_instruments, n_frames)``."""
        return self.values["SDR"]

    def frame_times(self) -> np.ndarray:
        """Start time of every frame in seconds (museval's ``time`` field: ``i * hop``)."""
        return np.arange(self.n_frames) * self.hop_seconds

    def median(self, metric: str = "SDR") -> np.ndarray:
        """Track score per instrument: median over the non-NaN frames (NaN when every frame is NaN)."""
        values = self._get(metric)
        out = np.full(values.shape[0], np.nan)
        for j, row in enumerate(values):
            finite = row[~np.isnan(row)]
            if finite.size:
                out[j] = np.median(finite)
        return out

    def nan_share(self, metric: str = "SDR") -> np.ndarray:
        """Share of NaN frames per instrument."""
        return np.isnan(self._get(metric)).mean(axis=1)

    def to_frame(self) -> pd.DataFrame:
        """Long table with museval's ``json2df`` columns: ``time, target, metric, score, track``."""
        rows = []
        times = self.frame_times()
        for metric in self.metrics:
            for j, name in enumerate(self.instruments):
                for t, score in zip(times, self.values[metric][j]):
                    rows.append((float(t), name, metric, float(score), self.track_name))
        return pd.DataFrame(rows, columns=["time", "target", "metric", "score", "track"])

    def _get(self, metric: str) -> np.ndarray:
        if metric not in self.values:
            raise ParameterError(f"TrackScores({self.track_name!r}): metric {metric!r} was not computed "
                                 f"(have {list(self.metrics)}); evaluate with metrics='all' for SIR/ISR/SAR")
        return self.values[metric]


def _inf_to_nan(values: np.ndarray) -> tuple:
    values = np.array(values, dtype=np.float64)
    inf = np.isinf(values)
    counts = inf.sum(axis=1)
    values[inf] = np.nan
    return values, counts


def evaluate_track(references: np.ndarray, estimates: np.ndarray, instruments: Sequence[str], sample_rate: int,
                   metrics: str = "sdr", win_seconds: float = 1.0, hop_seconds: Optional[float] = None,
                   track_name: str = "track", silent_source: str = "raise") -> TrackScores:
    """Score one track's estimates against its references.

    Parameters
    ----------
    references, estimates : np.ndarray, shape ``(n_instruments, n_samples, n_channels)``
        Estimates are zero-padded or truncated to the references' length (museval's rule).
    instruments : sequence of str
        Target names, one per source.
    sample_rate : int
    metrics : {'sdr', 'all'}
        ``'sdr'``: fast exact SDR only.  ``'all'``: SDR/ISR/SIR/SAR from ``museval.evaluate`` (slow),
        SDR cross-checked against the fast path (a warning is logged above 1e-6 dB).
    win_seconds, hop_seconds : float
        Evaluation window and hop (SiSEC18: 1 s, no overlap; ``hop_seconds`` defaults to
        ``win_seconds``).  Converted to samples with ``int(seconds * sample_rate)`` as museval does.
    track_name : str
    silent_source : {'raise', 'nan'}
        What to do with a source silent over the whole track (museval raises); ``'nan'`` is only
        honoured by the fast path.
    """
    where = "evaluate_track"
    # layout only: framewise_sdr and track_sdr check the samples as they read them
    references, estimates = _check_pair(references, estimates, where)
    instruments = tuple(str(name) for name in instruments)
    if len(instruments) != references.shape[0] or len(set(instruments)) != len(instruments):
        raise ParameterError(f"{where}: need {references.shape[0]} distinct instrument names for the sources, "
                             f"got {list(instruments)}")
    if metrics not in ("sdr", "all"):
        raise ParameterError(f"{where}: metrics must be 'sdr' or 'all', got {metrics!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise ParameterError(f"{where}: sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    hop_seconds = win_seconds if hop_seconds is None else hop_seconds
    win, hop = int(win_seconds * sample_rate), int(hop_seconds * sample_rate)
    if win < 1 or hop < 1:
        raise ParameterError(f"{where}: win_seconds={win_seconds} / hop_seconds={hop_seconds} are shorter than a "
                             f"sample at {sample_rate} Hz; use e.g. win_seconds=1.0")

    n_samples = references.shape[1]
    length_mismatch = int(estimates.shape[1] - n_samples)
    if length_mismatch:
        logger.warning("%s: estimates have %+d samples vs the references; padding/truncating as museval does",
                       track_name, length_mismatch)

    start = time.perf_counter()
    fast = framewise_sdr(references, estimates, win=win, hop=hop, inf_to_nan=False, silent_source=silent_source)
    fast_values, fast_inf = _inf_to_nan(fast)
    values: Dict[str, np.ndarray] = {"SDR": fast_values}
    inf_counts: Dict[str, np.ndarray] = {"SDR": fast_inf}
    crosscheck = None
    logger.debug("%s: fast SDR in %.3f s", track_name, time.perf_counter() - start)

    if metrics == "all":
        import museval  # heavy (imports musdb/stempeg): only on this path

        padded = pad_or_truncate(references, estimates)
        for name, signals in (("reference", references), ("estimate", padded)):
            if np.any(np.all(_channel_sum(signals) == 0, axis=1)):
                raise ParameterError(f"{where}: {track_name}: a {name} is silent over the whole track, which museval "
                                     "cannot score; use metrics='sdr' with silent_source='nan' or drop the source")

        duration = n_samples / sample_rate
        logger.info("%s: museval on %.1f s of audio x %d sources (about 1-2x real time, slow)",
                    track_name, duration, len(instruments))
        start = time.perf_counter()
        result = museval.evaluate(references, padded, win=win, hop=hop)
        logger.info("%s: museval took %.1f s", track_name, time.perf_counter() - start)
        for name, raw in zip(METRICS, result):
            values[name], inf_counts[name] = _inf_to_nan(raw)
        museval_sdr = values["SDR"]
        same_nan = np.array_equal(np.isnan(museval_sdr), np.isnan(fast_values))
        both = ~np.isnan(museval_sdr) & ~np.isnan(fast_values)
        crosscheck = float(np.max(np.abs(museval_sdr[both] - fast_values[both]), initial=0.0))
        if not same_nan:
            crosscheck = float("inf")
        if crosscheck > CROSSCHECK_TOLERANCE_DB:
            logger.warning("%s: museval SDR and fast SDR differ by %.3g dB (NaN frames %s); museval's values are "
                           "kept. Expected only for near-perfect estimates (SDR > ~120 dB, museval's round-off)",
                           track_name, crosscheck, "agree" if same_nan else "differ")

    usdr = track_sdr(references, estimates)
    return TrackScores(track_name=track_name, instruments=instruments, sample_rate=int(sample_rate),
                       win_seconds=float(win_seconds), hop_seconds=float(hop_seconds), n_samples=int(n_samples),
                       values=values, usdr=usdr, inf_counts=inf_counts, sdr_crosscheck_db=crosscheck,
                       length_mismatch=length_mismatch)


def _quantise(value: float) -> float:
    """museval's ``TrackStore._q``: +inf -> NaN, else rounded to 5 decimals (half-even, exact value)."""
    if np.isinf(value) or np.isnan(value):
        return float("nan")
    return round(float(value), 5)


def to_museval_json(track_name: str, scores: TrackScores) -> dict:
    """Per-track scores as the dict museval's ``TrackStore`` writes (``musdb.schema.json``).

    ``{'targets': [{'name', 'frames': [{'time', 'duration', 'metrics': {'SDR', 'SIR', 'SAR', 'ISR'}}]}],
    'museval_version': ...}`` with ``time = i * hop_seconds``, ``duration = win_seconds`` and values
    rounded to 5 decimals like ``TrackStore._q``.  NaN stays a float NaN (``json.dumps`` and museval's
    simplejson both write it as ``NaN``).  Metrics that were not computed (SIR/ISR/SAR with
    ``metrics='sdr'``) are written as NaN so that ``museval.EvalStore`` / ``MethodStore``, whose
    ``json2df`` requires all four keys, can load the file; a top-level ``'spleeter_ext'`` entry (ignored
    by museval) records which metrics are real.  ``track_name`` names the file for museval's stores
    (they take the track name from the file stem) and is recorded in that entry.
    """
    targets: List[dict] = []
    times = scores.frame_times()
    for j, name in enumerate(scores.instruments):
        frames = []
        for i, t in enumerate(times):
            frames.append({
                "time": float(t),
                "duration": float(scores.win_seconds),
                "metrics": {m: (_quantise(scores.values[m][j, i]) if m in scores.values else float("nan"))
                            for m in ("SDR", "SIR", "SAR", "ISR")},
            })
        targets.append({"name": name, "frames": frames})
    return {
        "targets": targets,
        "museval_version": museval_version(),
        "spleeter_ext": {"track": track_name, "metrics_computed": list(scores.metrics),
                         "win_seconds": scores.win_seconds, "hop_seconds": scores.hop_seconds,
                         "sample_rate": scores.sample_rate},
    }


def save_museval_json(path: Union[str, Path], track_name: str, scores: TrackScores) -> Path:
    """Write :func:`to_museval_json` to ``path`` (museval's stores expect ``<dir>/test/<track>.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_museval_json(track_name, scores), indent=2, allow_nan=True))
    return path
