"""Evaluate a separation model, and the oracle bounds, on a dataset split: the ``evaluate`` command.

:func:`evaluate` runs every track of a split through the same :class:`~spleeter_ext.Separator` as
``spleeter-ext separate`` (the model is built and loaded once), scores the estimates against the
references and writes:

* museval's per-track JSON for every method: ``output_dir/<method>/<subset>/<track>.json``
  (loadable with ``museval.EvalStore``/``MethodStore``);
* ``output_dir/report.md``: the protocol, a summary and one aggregate table per method, and the
  sanity flags; ``report.csv`` (one row per method and target) with its protocol in
  ``report.protocol.json``; ``tracks.csv`` (per-track medians); ``flags.json``.

Scores
    ``metrics='sdr'``: museval's framewise SDR (BSSEval v4, 1 s frames, computed exactly by
    :func:`~spleeter_ext.evaluation.sdr.framewise_sdr`; milliseconds per track).
    ``metrics='all'``: SDR/ISR/SIR/SAR from ``museval.evaluate`` itself (slow: ~1-2 s per second of
    audio for four stereo stems); its SDR is cross-checked against the fast path.
    Both add the MDX whole-track uSDR.  Every method is aggregated three ways (see
    :mod:`.report`): SiSEC18 (median over frames, then median over tracks), the mean over tracks of
    the same per-track medians, and the MDX mean of uSDR.

Oracles
    ``oracles`` (default IRM1, IRM2, IBM1, MWF and the mixture floor MIX) are computed from the
    same mixture and references with the STFT of the Spleeter models (periodic Hann, 4096/1024) and
    scored exactly like the model.  :func:`evaluate_oracles` computes them without a model.

Tracks whose reference or estimate is silent over the whole track cannot be scored by museval
(it raises).  museval's rule for a frame (any silent source makes the frame NaN for every source)
is then applied to the whole track: all its frames are NaN, it drops out of the SiSEC18 median,
and a flag says so.

Parallelism and memory
    Separation always happens in this process, one track at a time.  With ``jobs > 1`` the scoring
    (oracle estimates, museval) runs in ``jobs`` worker processes (``spawn``ed, one BLAS thread per
    core share) while the next tracks are separated; with ``jobs=1`` it runs in this process.
    Arrays go to the workers through ``.npy`` files in ``output_dir/.work`` (deleted as tracks
    finish) and at most ``workers + 1`` tracks are in flight.  museval's memory is dominated by
    FFTs of length ``2**ceil(log2(n_samples + 511))`` of every reference and estimate channel:
    measured peaks are 1.4 GiB for 30 s, 3.6 GiB for 120 s, 7.3 GiB for 300 s and 12.3 GiB for
    the longest MUSDB18 test track (430 s) with 4 stereo stems.  :func:`task_peak_bytes` bounds
    that from above, and the number of workers is capped so that the longest track fits
    ``MEMORY_FRACTION`` of the memory available when scoring starts (``MemAvailable``).  The metric
    is never computed on shorter chunks to save memory: museval's filters span the whole track,
    so chunking would change SIR/ISR/SAR.  The cap is logged and recorded in the protocol.

Command line (also wired as ``spleeter-ext evaluate``)::

    python -m spleeter_ext.evaluation.evaluate -p MODEL -d DATA [--subset test] [-o DIR] [--jobs N]
        [--metrics sdr|all] [--no-oracles] [--max-tracks N] [--seconds S]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..errors import ParameterError, SpleeterExtError
from ..log import configure_logging, logger, track as progress
from .metrics import METRICS, TrackScores, evaluate_track, museval_version, save_museval_json
from .oracle import ORACLES, oracle_estimates
from .report import OVERALL, aggregate, format_markdown, make_protocol, sanity_flags, track_medians, write_csv
from .sdr import _channel_sum

__all__ = ["evaluate", "evaluate_oracles", "EvaluationResult", "DEFAULT_ORACLES", "ORACLE_STFT",
           "MEMORY_FRACTION", "task_peak_bytes", "plan_workers", "method_name", "main"]

#: oracle rows computed by default (SiSEC18's names; IBM2 is available too)
DEFAULT_ORACLES = ("IRM1", "IRM2", "IBM1", "MWF", "MIX")
#: STFT of the oracles: the grid of the Spleeter models
ORACLE_STFT = {"n_fft": 4096, "hop": 1024}
#: share of the available memory the scoring workers may use together
MEMORY_FRACTION = 0.8
#: window and hop of the framewise metrics (SiSEC18)
WIN_SECONDS = 1.0
GIB = 2 ** 30

_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# ------------------------------------------------------------------------------------------------ result
@dataclass
class EvaluationResult:
    """What :func:`evaluate` produced.

    Attributes
    ----------
    output_dir : Path
    subset : str
    model : str or None
        Method name of the model (None for :func:`evaluate_oracles`).
    methods : list of str
        The model first, then the oracles, in report order.
    tables : dict
        ``method -> DataFrame`` of :func:`~spleeter_ext.evaluation.report.aggregate`: one row per
        instrument plus ``overall``; columns ``<M>_median`` (SiSEC18), ``<M>_mean``, ``uSDR_mean``...
    protocol : dict
        What was scored and how (also in ``report.protocol.json``).
    flags : dict
        ``method -> list of str``: sanity flags per method.
    scores : dict
        ``method -> list of TrackScores`` (empty when loaded from disk with :meth:`load`).
    timings : dict
        Seconds spent loading the model, separating, scoring and in total.
    """

    output_dir: Path
    subset: str
    model: Optional[str]
    methods: List[str]
    tables: Dict[str, pd.DataFrame]
    protocol: Dict[str, object]
    flags: Dict[str, List[str]]
    scores: Dict[str, List[TrackScores]] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def report_md(self) -> Path:
        return self.output_dir / "report.md"

    @property
    def report_csv(self) -> Path:
        return self.output_dir / "report.csv"

    @property
    def protocol_json(self) -> Path:
        return self.output_dir / "report.protocol.json"

    def overall(self, method: Optional[str] = None, column: str = "SDR_median") -> float:
        """The ``overall`` row's value of ``column`` for ``method`` (default: the model)."""
        method = method or self.model
        if method not in self.tables:
            raise ParameterError(f"no method {method!r} in this evaluation (have {self.methods})")
        table = self.tables[method]
        if column not in table.columns:
            raise ParameterError(f"no column {column!r} for {method} (have {list(table.columns)}); "
                                 "SIR/ISR/SAR need metrics='all'")
        return float(table.loc[OVERALL, column])

    def summary(self) -> pd.DataFrame:
        """All methods in one frame indexed by ``(method, target)`` (the content of ``report.csv``)."""
        frames = []
        for method in self.methods:
            table = self.tables[method].copy()
            table.insert(0, "kind", "oracle" if method in ORACLES else "model")
            table.insert(0, "method", method)
            frames.append(table.reset_index())
        return pd.concat(frames, ignore_index=True).set_index(["method", "target"])

    @classmethod
    def load(cls, output_dir: Union[str, Path]) -> "EvaluationResult":
        """Read a finished evaluation back from ``report.csv``, its protocol and ``flags.json``."""
        output_dir = Path(output_dir)
        csv, protocol_path, flags_path = (output_dir / "report.csv", output_dir / "report.protocol.json",
                                          output_dir / "flags.json")
        for path in (csv, protocol_path, flags_path):
            if not path.is_file():
                raise ParameterError(f"{path}: missing; {output_dir} holds no finished evaluation")
        frame = pd.read_csv(csv)
        protocol = json.loads(protocol_path.read_text())
        flags = json.loads(flags_path.read_text())
        methods = list(dict.fromkeys(frame["method"]))
        tables = {}
        for method in methods:
            table = frame[frame["method"] == method].drop(columns=["method", "kind"]).set_index("target")
            table.attrs["protocol"] = protocol
            tables[method] = table
        return cls(output_dir=output_dir, subset=str(protocol.get("subset")), model=protocol.get("model"),
                   methods=methods, tables=tables, protocol=protocol, flags=flags,
                   timings=dict(protocol.get("timings_seconds") or {}))


# ------------------------------------------------------------------------------------------------ memory
def task_peak_bytes(n_samples: int, n_sources: int, n_channels: int, metrics: str) -> int:
    """Upper bound of one scoring task's memory for a track of ``n_samples`` samples.

    ``'all'``: museval, ``0.6 GiB + 0.45 GiB x (nfft / 2**20) x (n_sources x n_channels / 8)``
    with ``nfft = 2**ceil(log2(n_samples + 511))`` (above the measured 1.37/3.56/7.32/12.3 GiB for
    30/120/300/430 s of 4 stereo stems).  ``'sdr'``: the float32 arrays of the task (mixture,
    references, estimates) three times over for float64 temporaries and oracle blocks, plus 0.4 GiB.
    """
    n_samples, n_sources, n_channels = int(n_samples), int(n_sources), int(n_channels)
    arrays = 3 * (2 * n_sources + 1) * n_samples * n_channels * 4 + int(0.4 * GIB)
    if metrics != "all":
        return arrays
    nfft = 2 ** math.ceil(math.log2(n_samples + 511))
    museval = int(0.6 * GIB + 0.45 * GIB * (nfft / 2 ** 20) * (n_sources * n_channels / 8))
    return max(museval, arrays)


def available_memory() -> Optional[int]:
    """Bytes of memory available to new processes (Linux ``MemAvailable``), None when unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def plan_workers(jobs: int, longest_samples: int, n_sources: int, n_channels: int, metrics: str,
                 n_tasks: int, memory: Optional[int] = None) -> Tuple[int, str]:
    """Scoring worker count for ``jobs`` requested, bounded by memory; returns ``(workers, explanation)``.

    ``workers == 1`` means scoring in this process.  ``memory`` defaults to :func:`available_memory`.
    """
    peak = task_peak_bytes(longest_samples, n_sources, n_channels, metrics)
    memory = available_memory() if memory is None else memory
    workers = max(1, min(int(jobs), int(n_tasks)))
    if memory is None:
        text = (f"{workers} scoring worker(s); up to {peak / GIB:.1f} GiB each for the longest track "
                "(available memory unknown: not capped)")
        return workers, text
    fit = int(MEMORY_FRACTION * memory // peak)
    if fit < 1:
        logger.warning("scoring the longest track may need %.1f GiB, more than %.0f%% of the %.1f GiB available; "
                       "it may be killed: free memory or evaluate shorter excerpts (--seconds)",
                       peak / GIB, 100 * MEMORY_FRACTION, memory / GIB)
    capped = max(1, min(workers, fit))
    text = (f"{capped} scoring worker(s) ({jobs} requested); each needs up to {peak / GIB:.1f} GiB for the longest "
            f"track ({metrics!r} metrics), workers capped to fit {100 * MEMORY_FRACTION:.0f}% of the "
            f"{memory / GIB:.1f} GiB available")
    if capped < workers:
        logger.warning("only %d of %d scoring workers fit in memory: %s", capped, workers, text)
    return capped, text


@contextlib.contextmanager
def _blas_threads(n: int) -> Iterator[None]:
    """Environment inherited by spawned workers: ``n`` BLAS/OpenMP threads each (this process's
    libraries are already initialised and keep their own setting)."""
    saved = {name: os.environ.get(name) for name in _BLAS_THREAD_VARIABLES}
    os.environ.update({name: str(n) for name in _BLAS_THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------------------------------------ audio
def method_name(params) -> str:
    """A file-system-safe method name for a model descriptor: the model directory's or config file's
    name, the preset name, ``spleeter_4stems`` for ``spleeter:4stems``."""
    text = str(params).rstrip("/")
    if text.startswith("spleeter:"):
        name = text.replace(":", "_")
    else:
        path = Path(text)
        name = path.stem if path.suffix == ".json" else path.name
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._") or "model"
    if name.upper() in ORACLES:
        name = f"model_{name}"
    return name


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


# ------------------------------------------------------------------------------------------------ scoring
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


def _score_task(task: dict) -> dict:
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


def _worker_init() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ------------------------------------------------------------------------------------------------ driver
def evaluate(params, data: Union[str, Path], subset: str = "test", output_dir: Union[str, Path] = "evaluation",
             jobs: int = 1, metrics: str = "sdr", oracles: Sequence[str] = DEFAULT_ORACLES,
             max_tracks: Optional[int] = None, seconds: Optional[float] = None, method: Optional[str] = None,
             mwf: bool = False, save_estimates: bool = False) -> EvaluationResult:
    """Separate and score every track of ``subset`` of ``data``; write museval JSONs and reports.

    Parameters
    ----------
    params : str, Path or Separator
        The model: anything ``spleeter-ext separate -p`` accepts (a trained model directory, a config,
        a preset, ``spleeter:4stems``), or an already built :class:`~spleeter_ext.Separator`.
    data : str or Path
        Dataset root (MUSDB18 stems or wav, a synthetic set, a folder tree; see
        :func:`spleeter_ext.data.tracks.discover`).
    subset : {'test', 'train', 'valid'}
    output_dir : str or Path
        Where JSONs and reports go (created).
    jobs : int
        Scoring worker processes (capped by memory, see the module docstring); 1 scores inline.
    metrics : {'sdr', 'all'}
        ``'sdr'``: museval-exact SDR (fast); ``'all'``: museval's SDR/ISR/SIR/SAR (slow).
    oracles : sequence of str
        Oracle rows to add (keys of :data:`~spleeter_ext.evaluation.oracle.ORACLES`); ``()`` for none.
    max_tracks : int, optional
        Only the first ``max_tracks`` tracks (sorted by name).
    seconds : float, optional
        Only the first ``seconds`` of each track (quick checks; not comparable with full-track numbers,
        and recorded in the protocol).
    method : str, optional
        Name of the model's rows and JSON folder (default: :func:`method_name` of ``params``).
    mwf : bool
        Separate with the multichannel Wiener filter (as ``separate --mwf``).
    save_estimates : bool
        Also write every estimate as float wav: ``output_dir/<method>/<subset>/<track>/<instrument>.wav``.
    """
    from ..config import load_config
    from ..separate.separator import Separator

    start = time.perf_counter()
    oracles = _check_args(subset, jobs, metrics, oracles, max_tracks, seconds)
    if isinstance(params, Separator):
        if mwf:
            raise ParameterError("mwf=True needs a model descriptor, not a built Separator; build it with MWF=True")
        tracks = _tracks(data, params.instruments, subset, max_tracks)
        separator = params
    else:
        # the dataset is checked before the (slow) model load
        tracks = _tracks(data, load_config(params)["instrument_list"], subset, max_tracks)
        separator = Separator(params, MWF=mwf)
    load_seconds = time.perf_counter() - start
    name = method or method_name(separator.config.get("_source") if isinstance(params, Separator) else params)
    model_info = {
        "model": name,
        "model_source": str(separator.config.get("_source")),
        "checkpoint": str(separator.checkpoint) if separator.checkpoint else "none (parameter-free model)",
        "model_type": str((separator.config.get("model") or {}).get("type")),
        "separation": (f"spleeter_ext Separator (as `separate`): segment {separator.segment / separator.sample_rate:.2f} s, "
                       f"overlap {100 * separator.overlap / separator.segment:.0f}%, MWF {bool(separator.config.get('MWF'))}"),
    }
    return _run(separator, name, data, tracks, separator.instruments, separator.sample_rate, separator.n_channels,
                subset, output_dir, jobs, metrics, oracles, seconds, save_estimates, model_info, load_seconds, start)


def evaluate_oracles(data: Union[str, Path], instruments: Sequence[str] = ("vocals", "drums", "bass", "other"),
                     subset: str = "test", output_dir: Union[str, Path] = "evaluation", jobs: int = 1,
                     metrics: str = "sdr", oracles: Sequence[str] = DEFAULT_ORACLES, max_tracks: Optional[int] = None,
                     seconds: Optional[float] = None, sample_rate: int = 44100, n_channels: int = 2,
                     save_estimates: bool = False) -> EvaluationResult:
    """The oracle rows alone (no model): same tracks, STFT, scoring and reports as :func:`evaluate`."""
    if not oracles:
        raise ParameterError("evaluate_oracles: no oracle requested; pass e.g. oracles=('IRM2', 'MIX')")
    start = time.perf_counter()
    oracles = _check_args(subset, jobs, metrics, oracles, max_tracks, seconds)
    tracks = _tracks(data, instruments, subset, max_tracks)
    return _run(None, None, data, tracks, list(instruments), int(sample_rate), int(n_channels), subset, output_dir,
                jobs, metrics, oracles, seconds, save_estimates, {"model": None}, 0.0, start)


def _tracks(data, instruments: Sequence[str], subset: str, max_tracks: Optional[int]) -> list:
    from ..data.tracks import discover

    tracks = discover(data, list(instruments), subset)
    return tracks[: int(max_tracks)] if max_tracks is not None else tracks


def _check_args(subset, jobs, metrics, oracles, max_tracks, seconds) -> List[str]:
    from ..data.tracks import SUBSETS

    if subset not in SUBSETS:
        raise ParameterError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    if metrics not in ("sdr", "all"):
        raise ParameterError(f"metrics must be 'sdr' or 'all', got {metrics!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ParameterError(f"jobs must be a positive integer, got {jobs!r}")
    oracles = [str(o) for o in (oracles or ())]
    unknown = [o for o in oracles if o not in ORACLES]
    if unknown:
        raise ParameterError(f"unknown oracle(s) {unknown}; choose from {sorted(ORACLES)}")
    if len(set(oracles)) != len(oracles):
        raise ParameterError(f"oracles {oracles} has duplicates")
    if max_tracks is not None and (isinstance(max_tracks, bool) or int(max_tracks) < 1):
        raise ParameterError(f"max_tracks must be a positive integer, got {max_tracks!r}")
    if seconds is not None and not float(seconds) >= WIN_SECONDS:
        raise ParameterError(f"seconds must be at least {WIN_SECONDS:g} (one evaluation frame), got {seconds!r}")
    return oracles


def _run(separator, model: Optional[str], data, tracks: list, instruments: List[str], sample_rate: int,
         n_channels: int, subset: str, output_dir, jobs: int, metrics: str, oracles: List[str],
         seconds: Optional[float], save_estimates: bool, model_info: Dict[str, object], load_seconds: float,
         start: float) -> EvaluationResult:
    output_dir = Path(output_dir)
    methods = ([model] if model else []) + oracles
    if not methods:
        raise ParameterError("nothing to evaluate: no model and no oracle")
    longest = max(min(t.duration, seconds or math.inf) for t in tracks)
    workers, memory_text = plan_workers(jobs, int(math.ceil(longest * sample_rate)), len(instruments), n_channels,
                                        metrics, len(tracks) * len(methods))
    logger.info("Evaluating %s on %d %s track(s) of %s (metrics %r): %s", ", ".join(methods), len(tracks), subset,
                data, metrics, memory_text)

    work = output_dir / ".work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: Dict[Tuple[str, int], dict] = {}
    separate_seconds = 0.0
    executor = None
    pending: Dict[Future, int] = {}
    open_tasks: Dict[int, int] = {}  # track index -> unfinished tasks (its .npy files are deleted at 0)

    def finish(outcome: dict) -> None:
        results[(outcome["method"], outcome["index"])] = outcome
        open_tasks[outcome["index"]] -= 1
        if open_tasks[outcome["index"]] == 0:
            shutil.rmtree(work / str(outcome["index"]), ignore_errors=True)

    def drain(max_open: int) -> None:
        while pending and len({i for i in pending.values()}) > max_open:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                finish(future.result())

    with contextlib.ExitStack() as stack:
        if workers > 1:
            stack.enter_context(_blas_threads(max(1, (os.cpu_count() or 1) // workers)))
            executor = stack.enter_context(ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                                               initializer=_worker_init))
        try:
            for index, item in enumerate(progress(tracks, total=len(tracks), desc=f"evaluating {', '.join(methods)}",
                                                  unit="track")):
                mixture, references = load_track(item, instruments, sample_rate, n_channels, seconds)
                folder = work / str(index)
                folder.mkdir()
                files = {"mixture": folder / "mixture.npy", "references": folder / "references.npy"}
                np.save(files["mixture"], mixture)
                np.save(files["references"], references)
                if separator is not None:
                    t0 = time.perf_counter()
                    stems = separator.separate(mixture, sample_rate=sample_rate)
                    separate_seconds += time.perf_counter() - t0
                    files["estimates"] = folder / "estimates.npy"
                    np.save(files["estimates"], np.stack([stems[name] for name in instruments]).astype(np.float32))
                    del stems
                del mixture, references
                open_tasks[index] = len(methods)
                for method in methods:
                    task = {"method": method, "oracle": method != model, "track": item.name, "index": index,
                            "instruments": list(instruments), "sample_rate": sample_rate, "metrics": metrics,
                            "json": str(output_dir / method / subset / f"{item.name}.json"),
                            "estimates_dir": str(output_dir / method / subset / item.name) if save_estimates else None,
                            **{key: str(path) for key, path in files.items()}}
                    if executor is None:
                        finish(_score_task(task))
                    else:
                        pending[executor.submit(_score_task, task)] = index
                drain(max_open=workers)
            drain(max_open=0)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    scores = {m: [results[(m, i)]["scores"] for i in range(len(tracks))] for m in methods}
    flags = {m: [f for i in range(len(tracks)) for f in results[(m, i)]["flags"]] for m in methods}
    score_seconds = sum(r["seconds"] for r in results.values())
    timings = {"model_load": round(load_seconds, 3), "separation": round(separate_seconds, 3),
               "scoring_cpu": round(score_seconds, 3), "total": round(time.perf_counter() - start, 3)}
    extra = {
        **model_info,
        "dataset_root": str(Path(data).expanduser().resolve()),
        "oracles": oracles,
        "oracle_stft": f"periodic Hann, n_fft {ORACLE_STFT['n_fft']}, hop {ORACLE_STFT['hop']} (oracle.py)",
        "excerpt": f"first {seconds:g} s of each track (not comparable with full tracks)" if seconds else "full tracks",
        "sample_rate": sample_rate,
        "scoring": memory_text,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    dataset = Path(str(data)).name or str(data)
    tables = {m: aggregate(scores[m], dataset=dataset, subset=subset, extra_protocol=extra) for m in methods}
    protocol = make_protocol(scores[methods[0]], dataset=dataset, subset=subset, extra=extra)
    protocol["tracks_evaluated"] = len(tracks)
    protocol["timings_seconds"] = timings
    result = EvaluationResult(output_dir=output_dir, subset=subset, model=model, methods=methods, tables=tables,
                              protocol=protocol, flags=flags, scores=scores, timings=timings)
    _write_reports(result)
    _log_flags(result)
    logger.info("Evaluation written to %s (%.1f s: model load %.1f s, separation %.1f s, scoring %.1f s CPU)",
                result.report_md, timings["total"], load_seconds, separate_seconds, score_seconds)
    return result


# ------------------------------------------------------------------------------------------------ reports
_EXPECTED = {"MIX": "expected for the mixture floor: every estimate is the mixture (SAR at the round-off floor)"}


def _summary_frame(result: EvaluationResult) -> pd.DataFrame:
    rows = {}
    for method in result.methods:
        table = result.tables[method]
        row: Dict[str, float] = {}
        for target in table.index:
            if target != OVERALL:
                row[f"SDR {target}"] = table.loc[target, "SDR_median"]
        row["SDR"] = table.loc[OVERALL, "SDR_median"]
        for metric in METRICS[1:]:
            if f"{metric}_median" in table.columns:
                row[metric] = table.loc[OVERALL, f"{metric}_median"]
        row["SDR mean over tracks"] = table.loc[OVERALL, "SDR_mean"]
        row["uSDR (MDX)"] = table.loc[OVERALL, "uSDR_mean"]
        row["NaN frames"] = table.loc[OVERALL, "nan_frame_share"]
        rows[method] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "method"
    return frame


def _markdown(frame: pd.DataFrame) -> List[str]:
    lines = ["| " + " | ".join([frame.index.name or ""] + list(frame.columns)) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|"]
    for label, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            if isinstance(value, float) and np.isnan(value):
                cells.append("–")
            elif column == "NaN frames":
                cells.append(f"{100 * value:.1f} %")
            else:
                cells.append(f"{value:.2f}")
        lines.append("| " + " | ".join([str(label)] + cells) + " |")
    return lines


def _write_reports(result: EvaluationResult) -> None:
    out = result.output_dir
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result.summary(), out / "report.csv", protocol=result.protocol)
    frames = [track_medians(result.scores[m]).assign(method=m) for m in result.methods]
    pd.concat(frames, ignore_index=True)[["method", "track", "target", "metric", "score"]].to_csv(
        out / "tracks.csv", index=False, float_format="%.6g")
    (out / "flags.json").write_text(json.dumps(result.flags, indent=2))

    title = result.model or "oracles"
    lines = [f"# Evaluation of {title} on {result.protocol['dataset']} ({result.subset})", ""]
    lines.append("Protocol:")
    for key, value in result.protocol.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or "none"
        lines.append(f"- {key}: {value}")
    lines += ["", "## Summary", "",
              "SDR per target and SDR/ISR/SIR/SAR overall: SiSEC18 (median over 1 s frames, then median over tracks; "
              "overall = mean of the targets). 'SDR mean over tracks': mean of the per-track medians. "
              "uSDR: MDX whole-track SDR, mean over tracks and targets. NaN frames: frames skipped because a "
              "reference or estimate is silent.", ""]
    lines += _markdown(_summary_frame(result))
    for method in result.methods:
        lines += ["", f"## {method}" + (" (oracle)" if method in ORACLES else ""), ""]
        lines.append(format_markdown(result.tables[method], protocol={}).rstrip("\n"))
    lines += ["", "## Sanity flags", ""]
    lines.append("NaN frames (skipped because a reference or estimate is silent in the frame; 22-31 % in the SiSEC18 "
                 "submissions): " + ", ".join(f"{m} {100 * result.tables[m].loc[OVERALL, 'nan_frame_share']:.1f} %"
                                             for m in result.methods) + ".")
    lines.append("")
    any_flag = False
    for method in result.methods:
        method_flags = result.flags.get(method) or []
        if not method_flags:
            continue
        any_flag = True
        note = f" ({_EXPECTED[method]})" if method in _EXPECTED else ""
        lines.append(f"### {method}{note}")
        lines.append("")
        lines += [f"- {flag}" for flag in method_flags]
        lines.append("")
    if not any_flag:
        lines.append("No flag: no metric above 100 dB, no scaled copy of a reference or of the mixture, no NaN frame.")
    (out / "report.md").write_text("\n".join(lines).rstrip("\n") + "\n")


def _log_flags(result: EvaluationResult, limit: int = 20) -> None:
    for method in result.methods:
        share = result.tables[method].loc[OVERALL, "nan_frame_share"]
        logger.info("%s: %.1f%% of the frames are NaN (a silent reference or estimate) and skipped", method,
                    100 * share)
        method_flags = result.flags.get(method) or []
        if not method_flags:
            continue
        if method in _EXPECTED or method != result.model:
            logger.info("%s: %d sanity flag(s) (oracle row%s); see %s", method, len(method_flags),
                        f", {_EXPECTED[method]}" if method in _EXPECTED else "", result.report_md)
            continue
        for flag in method_flags[:limit]:
            logger.warning("sanity: %s: %s", method, flag)
        if len(method_flags) > limit:
            logger.warning("sanity: %s: %d more flag(s) in %s", method, len(method_flags) - limit, result.report_md)


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m spleeter_ext.evaluation.evaluate -p MODEL -d DATA ...`` (same options as ``spleeter-ext evaluate``)."""
    parser = argparse.ArgumentParser(prog="python -m spleeter_ext.evaluation.evaluate",
                                     description="Separate a dataset split with a model and score it like museval.")
    parser.add_argument("-p", "--params", "--params_filename", required=True, help="model (as for separate -p)")
    parser.add_argument("-d", "--data", required=True, help="dataset root (MUSDB18, synthetic set, folder tree)")
    parser.add_argument("--subset", default="test", choices=("test", "train", "valid"))
    parser.add_argument("-o", "--output", default="evaluation", help="output folder (default: evaluation)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="scoring worker processes (capped by memory)")
    parser.add_argument("--metrics", default="sdr", choices=("sdr", "all"),
                        help="sdr: museval-exact SDR (fast); all: museval SDR/ISR/SIR/SAR (slow)")
    parser.add_argument("--no-oracles", action="store_true", help="skip the oracle rows")
    parser.add_argument("--max-tracks", type=int, default=None, help="only the first N tracks")
    parser.add_argument("--seconds", type=float, default=None, help="only the first S seconds of each track")
    parser.add_argument("--mwf", action="store_true", help="separate with the multichannel Wiener filter")
    parser.add_argument("--verbose", action="store_true")
    ns = parser.parse_args(argv)
    configure_logging(ns.verbose)
    try:
        result = evaluate(ns.params, ns.data, subset=ns.subset, output_dir=ns.output, jobs=ns.jobs, metrics=ns.metrics,
                          oracles=() if ns.no_oracles else DEFAULT_ORACLES, max_tracks=ns.max_tracks,
                          seconds=ns.seconds, mwf=ns.mwf)
    except SpleeterExtError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    print(result.report_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
