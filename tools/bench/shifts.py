"""Test-time shifts (``separate --shifts N``): SDR change and cost on a model and a dataset's test split.

``python -m tools.bench.shifts --data data/synthetic-realistic [--params demo] [--shifts 0,1,2,5]
[--max-tracks N] [--out docs/benchmarks.md]``

The bundled model's test set is made by its model card's recipe
(``spleeter-ext make-dataset data/synthetic-realistic --train 40 --test 8 --seconds 20 --seed 0 --engine realistic``).
Every track is separated in memory once per shift count (seeded shifts, as the command line); SDR is museval's
framewise SDR (1 s frames), median over frames, then over tracks (SiSEC18); cost is the separation's wall and
process CPU seconds against the unshifted run, after a warm-up that builds the graphs of every track length.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .common import markdown_table, write_section


@dataclass
class ShiftRun:
    shifts: int
    sdr: Dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    cpu: float = 0.0
    audio_seconds: float = 0.0

    @property
    def mean_sdr(self) -> float:
        return float(np.mean(list(self.sdr.values())))


def run(params: str, data: str, shift_counts: Sequence[int], max_tracks: Optional[int] = None,
        seed: int = 0) -> List[ShiftRun]:
    """Separate the test split of ``data`` with ``params`` once per entry of ``shift_counts``; one
    :class:`ShiftRun` each (SDR per instrument, wall and CPU seconds of the separations)."""
    from spleeter_ext.data.tracks import discover
    from spleeter_ext.evaluation.scoring import load_track
    from spleeter_ext.evaluation.sdr import framewise_sdr
    from spleeter_ext.separate.separator import Separator

    runs = []
    tracks = None
    for n in shift_counts:
        sep = Separator(params, shifts=n, seed=seed)
        if tracks is None:
            found = discover(data, sep.instruments, "test")[:max_tracks]
            tracks = [load_track(t, sep.instruments, sep.sample_rate, sep.n_channels) for t in found]
        result = ShiftRun(n, audio_seconds=sum(len(mix) for mix, _ in tracks) / sep.sample_rate)
        for length in sorted({len(mix) for mix, _ in tracks}):  # warm-up: trace the graphs of every length
            sep.separate(np.zeros((length, sep.n_channels), np.float32))
        per_track: Dict[str, List[float]] = {name: [] for name in sep.instruments}
        for mixture, references in tracks:
            wall, cpu = time.perf_counter(), time.process_time()
            stems = sep.separate(mixture)
            result.wall += time.perf_counter() - wall
            result.cpu += time.process_time() - cpu
            estimates = np.stack([stems[name] for name in sep.instruments])
            frames = framewise_sdr(references, estimates, win=sep.sample_rate, hop=sep.sample_rate,
                                   silent_source="nan")
            for k, name in enumerate(sep.instruments):
                if np.isfinite(frames[k]).any():
                    per_track[name].append(float(np.nanmedian(frames[k])))
        result.sdr = {name: statistics.median(v) if v else float("nan") for name, v in per_track.items()}
        runs.append(result)
        print(f"  shifts {n}: SDR {result.mean_sdr:.2f} dB, {result.wall:.1f} s wall, {result.cpu:.1f} CPU s",
              flush=True)
    return runs


def report(runs: List[ShiftRun], params: str, data: str, n_tracks: Optional[int]) -> str:
    base = next((r for r in runs if r.shifts == 0), runs[0])
    names = list(base.sdr)
    rows = []
    for r in runs:
        rows.append([str(r.shifts)] + [f"{r.sdr[n]:.2f}" for n in names]
                    + [f"{r.mean_sdr:.2f}", f"{r.mean_sdr - base.mean_sdr:+.2f}", f"{r.wall:.1f}",
                       f"{r.cpu:.1f}", f"{r.wall / base.wall:.2f}x", f"{r.audio_seconds / r.wall:.1f}"])
    header = ["shifts"] + [f"SDR {n}" for n in names] + ["SDR mean", "change", "wall s", "CPU s",
                                                         f"wall vs shifts {base.shifts}", "x real time"]
    tracks = f"the first {n_tracks} tracks of" if n_tracks else "every track of"
    return "\n".join([
        markdown_table(header, rows), "",
        f"Model `{params}`, {tracks} the test split of `{data}` ({base.audio_seconds:.0f} s of audio), separated in "
        "memory (`Separator(params, shifts=N).separate`, seeded shifts of 0-0.5 s as `separate --shifts N`). "
        "SDR: museval framewise SDR, 1 s frames, median over frames then over tracks (dB). Wall and CPU "
        "seconds of the separations only (model loading and decoding excluded)."])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset root with a test split")
    ap.add_argument("--params", default="demo", help="model (default: the bundled one)")
    ap.add_argument("--shifts", default="0,1,2,5", help="comma-separated shift counts (include 0: the reference)")
    ap.add_argument("--max-tracks", type=int, help="only the first N test tracks")
    ap.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update (section 'shifts')")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.shifts.split(",")]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    runs = run(args.params, args.data, counts, args.max_tracks)
    body = report(runs, args.params, args.data, args.max_tracks)
    cmd = f"python -m tools.bench.shifts --data {args.data} --params {args.params} --shifts {args.shifts}"
    cmd += f" --max-tracks {args.max_tracks}" if args.max_tracks else ""
    write_section(args.out, "shifts", "Test-time shifts (`separate --shifts N`): SDR and cost", body, cmd)
    print(body, flush=True)


if __name__ == "__main__":
    main()
