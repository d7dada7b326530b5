"""The ``evaluate`` command: separate a dataset split with a model and score it beside oracle bounds.

Scoring is in :mod:`.scoring`, the worker plan in :mod:`.memory`, the reports in :mod:`.report`.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ParameterError
from ..log import logger
from ..log import track as progress
from .memory import blas_threads, plan_workers
from .oracle import ORACLES
from .report import aggregate, log_flags, make_protocol, write_reports
from .result import EvaluationResult
from .scoring import ORACLE_STFT, WIN_SECONDS, load_track, score_task, worker_init

__all__ = ["evaluate", "evaluate_oracles", "EvaluationResult", "DEFAULT_ORACLES", "method_name"]

#: oracle rows computed by default (SiSEC18's names; IBM2 is available too)
DEFAULT_ORACLES = ("IRM1", "IRM2", "IBM1", "MWF", "MIX")


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
        Scoring worker processes (capped by memory: :func:`.memory.plan_workers`); 1 scores inline.
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
        "separation": (f"spleeter_ext Separator (as `separate`): segment "
                       f"{separator.segment / separator.sample_rate:.2f} s, overlap "
                       f"{100 * separator.overlap / separator.segment:.0f}%, MWF {bool(separator.config.get('MWF'))}"),
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
            stack.enter_context(blas_threads(max(1, (os.cpu_count() or 1) // workers)))
            executor = stack.enter_context(ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                                               initializer=worker_init))
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
                        finish(score_task(task))
                    else:
                        pending[executor.submit(score_task, task)] = index
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
    write_reports(result)
    log_flags(result)
    logger.info("Evaluation written to %s (%.1f s: model load %.1f s, separation %.1f s, scoring %.1f s CPU)",
                result.report_md, timings["total"], load_seconds, separate_seconds, score_seconds)
    return result
