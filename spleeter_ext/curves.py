"""Learning curves: validation SDR at log-spaced training steps, with the compute spent to reach them.

``train`` calls :class:`CurveRecorder` at the steps of :func:`curve_steps`; each call appends a row to
``<model_dir>/curves.csv`` (step, wall/CPU seconds of training, training FLOPs so far, SDR per stem and
overall, the estimate's level relative to its reference per stem).
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import ConfigError
from .evaluation.report import COLLAPSE_DB

CURVES_FILE = "curves.csv"
CLOCK_FILE = "clock.json"
FIRST_CURVE_STEP = 100


def curve_steps(total_steps: int, steps: Optional[Sequence[int]] = None, first: int = FIRST_CURVE_STEP) -> List[int]:
    """The steps at which a run is scored: ``steps`` if given, else ``first * 2**k`` below ``total_steps``;
    ``total_steps`` always ends the list."""
    total = int(total_steps)
    if steps is not None:
        bad = [s for s in steps if not isinstance(s, int) or isinstance(s, bool) or s < 1]
        if bad:
            raise ConfigError(f"'curve_steps' must be positive integers, got {bad!r}")
        chosen = {int(s) for s in steps if s < total}
    else:
        chosen, s = set(), int(first)
        while s < total:
            chosen.add(s)
            s *= 2
    return sorted(chosen | {total})


def training_macs_per_example(estimator) -> int:
    """Multiply-accumulates of one forward pass of every trained network on one training example.

    Training costs about three forward passes (forward, and a backward pass of about twice the
    forward), so one step's FLOPs are ``2 * 3 * macs * batch_size`` (see :func:`step_flops`).
    """
    from .models import info

    parts = getattr(estimator, "parts", None)
    if parts is not None:  # a composite (stacked) estimator lists its networks and their input shapes
        return int(sum(info.forward_macs(body, shape) for body, shape in parts()))
    n = estimator.training_segment_samples()
    if estimator.domain == "2d":
        shape = (1, estimator.T, estimator.F, estimator.n_channels)
    else:
        shape = (1, int(estimator.body.valid_length(n)), estimator.n_channels)
    return int(info.forward_macs(estimator.body, shape))


def step_flops(macs_per_example: int, batch_size: int) -> float:
    """FLOPs of one training step: 2 FLOPs per MAC, forward + backward = 3 forward passes."""
    return 6.0 * float(macs_per_example) * int(batch_size)


def score(references: Sequence[np.ndarray], estimates: Sequence[np.ndarray], instruments: Sequence[str],
          sample_rate: int) -> Dict[str, float]:
    """SDR of validation excerpts, as museval aggregates it (median over 1 s frames of a track, median over
    tracks, ``overall`` the mean over stems), and each stem's estimate level relative to its reference.

    ``references``/``estimates``: one ``(n_sources, n_samples, n_channels)`` array per track.
    """
    from .evaluation.sdr import framewise_sdr

    per_track = {name: [] for name in instruments}
    energy_ref = np.zeros(len(instruments))
    energy_est = np.zeros(len(instruments))
    for ref, est in zip(references, estimates):
        sdr = framewise_sdr(ref, est, win=sample_rate, hop=sample_rate, silent_source="nan")
        for k, name in enumerate(instruments):
            finite = sdr[k][np.isfinite(sdr[k])]
            per_track[name].append(float(np.median(finite)) if finite.size else np.nan)
        energy_ref += np.sum(np.square(ref, dtype=np.float64), axis=(1, 2))
        energy_est += np.sum(np.square(est, dtype=np.float64), axis=(1, 2))
    row: Dict[str, float] = {}
    for k, name in enumerate(instruments):
        values = np.array(per_track[name], dtype=float)
        row[f"SDR_{name}"] = float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
        with np.errstate(divide="ignore"):
            row[f"level_{name}"] = float(10 * np.log10(energy_est[k] / energy_ref[k])) if energy_ref[k] > 0 \
                else float("nan")
    row["SDR"] = float(np.nanmean([row[f"SDR_{n}"] for n in instruments]))
    return row


def collapsed(row: Dict[str, float], instruments: Sequence[str], threshold_db: float = COLLAPSE_DB) -> List[str]:
    """Stems of a curve row whose estimate is at least ``-threshold_db`` dB below the reference."""
    return [n for n in instruments if np.isfinite(row.get(f"level_{n}", np.nan))
            and row[f"level_{n}"] <= threshold_db]


class Clock:
    """Wall and process-CPU seconds spent training, persisted beside the checkpoints so that a resumed
    run keeps counting from the checkpoint it resumes (time spent scoring is excluded)."""

    def __init__(self, model_dir: Path, start_step: int):
        self.path = Path(model_dir) / CLOCK_FILE
        saved = self._read()
        self.base_wall = self.base_cpu = 0.0
        if saved and int(saved.get("step", -1)) == int(start_step):
            self.base_wall, self.base_cpu = float(saved["wall_seconds"]), float(saved["cpu_seconds"])
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._paused_wall = self._paused_cpu = 0.0

    def _read(self) -> Optional[dict]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def elapsed(self) -> tuple:
        """``(wall_seconds, cpu_seconds)`` of training so far."""
        wall = self.base_wall + time.perf_counter() - self._wall0 - self._paused_wall
        cpu = self.base_cpu + time.process_time() - self._cpu0 - self._paused_cpu
        return wall, cpu

    def pause(self):
        """Context manager: time spent inside does not count as training."""
        clock = self

        class _Pause:
            def __enter__(self):
                self.w, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                clock._paused_wall += time.perf_counter() - self.w
                clock._paused_cpu += time.process_time() - self.c
                return False

        return _Pause()

    def save(self, step: int) -> None:
        wall, cpu = self.elapsed()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"step": int(step), "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)}))
        os.replace(tmp, self.path)


def read_curves(path: Path) -> List[dict]:
    """Rows of a ``curves.csv`` (numbers as floats, ``step`` as int)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = []
        for r in csv.DictReader(f):
            row = {k: (float(v) if v not in ("", None) else float("nan")) for k, v in r.items() if k != "collapsed"}
            row["step"] = int(row["step"])
            row["collapsed"] = r.get("collapsed", "")
            rows.append(row)
    return rows


def write_curves(path: Path, rows: Sequence[dict]) -> None:
    """Write ``rows`` atomically (temporary name, then rename)."""
    path = Path(path)
    columns: List[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


class CurveRecorder:
    """Scores an estimator on fixed validation excerpts and appends rows to ``curves.csv``.

    ``excerpts``: ``[(mixture (n_samples, C), sources (n_samples, C, S)), ...]`` as NumPy arrays.
    Rows of steps after ``start_step`` (left by an interrupted run) are dropped on creation.
    """

    def __init__(self, model_dir: Path, estimator, excerpts, batch_size: int, start_step: int,
                 macs_per_example: Optional[int] = None):
        self.path = Path(model_dir) / CURVES_FILE
        self.estimator = estimator
        self.excerpts = list(excerpts)
        self.batch_size = int(batch_size)
        self.rows = [r for r in read_curves(self.path) if r["step"] <= start_step]
        self.macs = int(macs_per_example if macs_per_example is not None else training_macs_per_example(estimator))
        self.clock = Clock(model_dir, start_step)

    def separate(self) -> List[np.ndarray]:
        import tensorflow as tf

        outs = []
        for mixture, _ in self.excerpts:
            est = self.estimator.separate_segments(tf.convert_to_tensor(mixture[None], tf.float32)).numpy()[0]
            outs.append(est)  # (S, n, C)
        return outs

    def record(self, step: int) -> dict:
        wall, cpu = self.clock.elapsed()
        with self.clock.pause():
            refs = [np.transpose(sources, (2, 0, 1)) for _, sources in self.excerpts]
            row = {"step": int(step), "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                   "train_flops": step_flops(self.macs, self.batch_size) * int(step)}
            row.update(score(refs, self.separate(), self.estimator.instruments, self.estimator.sample_rate))
            row["collapsed"] = " ".join(collapsed(row, self.estimator.instruments))
            self.rows = [r for r in self.rows if r["step"] != row["step"]] + [row]
            write_curves(self.path, self.rows)
        return row
