"""How many scoring processes fit in memory: an upper bound per task and the worker plan.

The bound is checked against museval's measured peaks in docs/benchmarks.md.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Iterator, Optional, Tuple

from ..log import logger

__all__ = ["task_peak_bytes", "available_memory", "plan_workers", "blas_threads", "MEMORY_FRACTION"]

#: share of the available memory the scoring workers may use together
MEMORY_FRACTION = 0.8
GIB = 2 ** 30

_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def task_peak_bytes(n_samples: int, n_sources: int, n_channels: int, metrics: str) -> int:
    """Upper bound of one scoring task's memory for a track of ``n_samples`` samples.

    ``'all'``: museval, whose memory is dominated by FFTs of length ``nfft = 2**ceil(log2(n_samples +
    511))`` of every reference and estimate channel: ``0.6 GiB + 0.45 GiB x (nfft / 2**20) x (n_sources x
    n_channels / 8)``, above museval's measured peaks (docs/benchmarks.md).  ``'sdr'``: the float32
    arrays of the task (mixture, references, estimates) three times over for float64 temporaries and
    oracle blocks, plus 0.4 GiB.
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
def blas_threads(n: int) -> Iterator[None]:
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
