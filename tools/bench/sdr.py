"""Benchmark of the fast exact framewise SDR against ``museval.evaluate`` (which also computes ISR/SIR/SAR).

``python -m tools.bench.sdr [--seconds 30] [--sources 4] [--header]`` prints one markdown table row.
"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional

import numpy as np

from spleeter_ext.evaluation.sdr import framewise_sdr
from spleeter_ext.evaluation.signals import degraded_estimates, music_like_sources

HEADER = ("| benchmark | material | fast SDR (s) | museval.evaluate (s) | speed-up | max abs SDR diff (dB) |\n"
          "|---|---|---:|---:|---:|---:|")


def run(seconds: float = 30.0, n_sources: int = 4, sample_rate: int = 44100, repeats: int = 5) -> dict:
    """Time both implementations; returns the timings (best of ``repeats`` for the fast path)."""
    import museval

    references = music_like_sources(n_sources=n_sources, seconds=seconds, sample_rate=sample_rate)
    estimates = degraded_estimates(references, sample_rate=sample_rate)
    fast_times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fast = framewise_sdr(references, estimates, win=sample_rate, hop=sample_rate)
        fast_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    slow = museval.evaluate(references, estimates, win=sample_rate, hop=sample_rate)[0]
    museval_time = time.perf_counter() - start
    same_nan = np.array_equal(np.isnan(fast), np.isnan(slow))
    both = ~np.isnan(fast) & ~np.isnan(slow)
    max_diff = float(np.max(np.abs(fast[both] - slow[both]), initial=0.0)) if same_nan else float("inf")
    return {"seconds": seconds, "n_sources": n_sources, "fast_s": min(fast_times), "museval_s": museval_time,
            "speedup": museval_time / min(fast_times), "max_abs_diff_db": max_diff}


def markdown_row(result: dict) -> str:
    return (f"| framewise SDR, 1 s frames | {result['seconds']:g} s, {result['n_sources']} stereo sources, 44.1 kHz "
            f"| {result['fast_s']:.3f} | {result['museval_s']:.1f} | {result['speedup']:.0f}x "
            f"| {result['max_abs_diff_db']:.1e} |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="signal length (default 30)")
    parser.add_argument("--sources", type=int, default=4, help="number of stereo sources (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the fast path; the best is reported")
    parser.add_argument("--header", action="store_true", help="print the table header first")
    args = parser.parse_args(argv)
    result = run(seconds=args.seconds, n_sources=args.sources, repeats=args.repeats)
    if args.header:
        print(HEADER)
    print(markdown_row(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
