"""Scoring one track like museval: reading a track, scoring its estimates, and the job a worker runs."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ParameterError
from ..log import logger
from .metrics import METRICS, TrackScores, evaluate_track, save_museval_json
from .oracle import oracle_estimates
from .report import sanity_flags
from .sdr import _channel_sum

__all__ = ["load_track", "score_track", "score_task", "worker_init", "ORACLE_STFT", "WIN_SECONDS"]

#: STFT of the oracles: the grid of the Spleeter models
ORACLE_STFT = {"n_fft": 4096, "hop": 1024}
#: window and hop of the framewise metrics (SiSEC18)
WIN_SECONDS = 1.0


def _read_sum(track, instrument: str, sample_rate: int, n_channels: int, seconds: Optional[float]) -> np.ndarray:
    from ..audio import io as audio_io

    total = None
    for ref in track.refs(instrument):
        wave, _ = audio_io.read(ref.path, sample_rate=sample_rate, n_channels=n_channels, stream=ref.stream,
                                duration=seconds)
        if total is None:
            total = wave.astype(np.float32)
        else:
            n = min(len(total), len(wave))
            total = total[:n] + wave[:n]
    return total


def load_track(track, instruments: Sequence[str], sample_rate: int, n_channels: int,
               seconds: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(mixture (n, C), references (J, n, C))`` float32 at ``sample_rate``, cut to a common length.

    The mixture is the track's own mixture file when it has one (MUSDB18: what a model is given),
    else the sum of the references.
    """
    from ..audio import io as audio_io

    references = [_read_sum(track, name, sample_rate, n_channels, seconds) for name in instruments]
    if track.mixture is not None:
        mixture, _ = audio_io.read(track.mixture.path, sample_rate=sample_rate, n_channels=n_channels,
                                   stream=track.mixture.stream, duration=seconds)
    else:
        n = min(len(r) for r in references)
        mixture = np.sum([r[:n] for r in references], axis=0, dtype=np.float32)
    n = min([len(mixture)] + [len(r) for r in references])
    if n == 0:
        raise ParameterError(f"track '{track.name}': no audio samples decoded")
    if max([len(mixture)] + [len(r) for r in references]) - n > sample_rate // 10:
        logger.warning("%s: mixture and stems differ in length by more than 0.1 s; cutting all to %.2f s",
                       track.name, n / sample_rate)
    return (np.ascontiguousarray(mixture[:n], dtype=np.float32),
            np.ascontiguousarray(np.stack([r[:n] for r in references]), dtype=np.float32))


def _silent_whole_track(signals: np.ndarray) -> np.ndarray:
    """Per source: channel sum exactly 0 at every sample (museval's whole-track silence test)."""
    return np.all(_channel_sum(signals) == 0, axis=1)



def score_track(references: np.ndarray, estimates: np.ndarray, mixture: Optional[np.ndarray],
                instruments: Sequence[str], sample_rate: int, metrics: str, track_name: str
                ) -> Tuple[TrackScores, List[str]]:
    """Score one track's estimates like museval and return ``(scores, sanity flags)``.

    A reference or estimate that is silent over the whole track (museval raises) makes every frame
    of the track NaN (museval's per-frame rule applied to the whole track) and is flagged.
    """
    flags: List[str] = []
    n = references.shape[1]
    aligned = estimates[:, :n] if estimates.shape[1] >= n else None
    silent_ref = _silent_whole_track(references)
    silent_est = _silent_whole_track(aligned if aligned is not None else estimates)
    if silent_ref.any() or silent_est.any():
        names = [f"reference {instruments[j]}" for j in np.flatnonzero(silent_ref)]
        names += [f"estimate {instruments[j]}" for j in np.flatnonzero(silent_est)]
        flags.append(f"{track_name}: {', '.join(names)} silent over the whole track: museval cannot score it, so "
                     "every frame of the track is NaN for every source (museval's frame rule)")
        scores = evaluate_track(references, estimates, instruments, sample_rate, metrics="sdr",
                                win_seconds=WIN_SECONDS, track_name=track_name, silent_source="nan")
        if metrics == "all":
            for metric in METRICS[1:]:
                scores.values[metric] = np.full_like(scores.values["SDR"], np.nan)
                scores.inf_counts[metric] = np.zeros(len(instruments), dtype=int)
    else:
        scores = evaluate_track(references, estimates, instruments, sample_rate, metrics=metrics,
                                win_seconds=WIN_SECONDS, track_name=track_name)
    flags.extend(sanity_flags(references, estimates, mixture, scores))
    return scores, flags


def score_task(task: dict) -> dict:
    """One (method, track) scoring job; runs in a worker process or inline.  Arrays come from ``.npy``
    files; the museval JSON (and optionally the estimates) are written here."""
    start = time.perf_counter()
    mixture = np.load(task["mixture"], mmap_mode="r")
    references = np.load(task["references"], mmap_mode="r")
    if task["oracle"]:
        estimates = oracle_estimates(task["method"], mixture, references, **ORACLE_STFT).astype(np.float32)
    else:
        estimates = np.load(task["estimates"], mmap_mode="r")
    scores, flags = score_track(references, estimates, mixture, task["instruments"], task["sample_rate"],
                                task["metrics"], task["track"])
    save_museval_json(task["json"], task["track"], scores)
    if task.get("estimates_dir"):
        import soundfile as sf

        folder = Path(task["estimates_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        for j, name in enumerate(task["instruments"]):  # float wav: the scored samples exactly, unclipped
            sf.write(str(folder / f"{name}.wav"), np.asarray(estimates[j]), task["sample_rate"], subtype="FLOAT")
    return {"method": task["method"], "track": task["track"], "index": task["index"], "scores": scores,
            "flags": flags, "seconds": time.perf_counter() - start}


def worker_init() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
