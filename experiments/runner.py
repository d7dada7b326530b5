"""Train and evaluate the experiments' models once: a run whose ledger rows exist is never redone, an
interrupted training resumes from its checkpoint."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from spleeter_ext.log import logger

from .common import INSTRUMENTS, METRICS, TARGETS, Context, DataInfo, ModelSpec, git_commit, write_json
from .ledger import Ledger

ORACLES = ("IRM1", "IRM2", "IBM1", "MWF", "MIX")


def checkpoint_step(run_dir: Path) -> int:
    """Step of the latest checkpoint of a model directory (``ckpt-<step>``), -1 if none."""
    index = run_dir / "checkpoint"
    if not index.is_file():
        return -1
    for line in index.read_text().splitlines():
        if line.startswith("model_checkpoint_path:"):
            name = line.split(":", 1)[1].strip().strip('"')
            try:
                return int(name.rsplit("-", 1)[1])
            except (IndexError, ValueError):
                return -1
    return -1


def metric_row(table, flags: Sequence[str]) -> Dict[str, object]:
    """Ledger columns of one evaluation: ``<metric>_<target>`` (SiSEC18 medians, uSDR means) and the
    stems flagged as collapsed."""
    from spleeter_ext.evaluation.report import collapsed_stems

    row: Dict[str, object] = {}
    for target in TARGETS:
        line = table.loc[target]
        for metric in METRICS:
            column = "uSDR_mean" if metric == "uSDR" else f"{metric}_median"
            row[f"{metric}_{target}"] = float(line.get(column, np.nan))
    n_tracks = int(table.loc["overall", "n_tracks"])
    row["collapsed"] = " ".join(collapsed_stems(list(flags), list(INSTRUMENTS), n_tracks))
    return row


class Runner:
    """Trains (or resumes) and evaluates (or reuses) models under one budget, writing the ledger."""

    def __init__(self, ctx: Context, ledger: Ledger):
        self.ctx = ctx
        self.ledger = ledger
        self.commit = git_commit() or "unknown"

    def config(self, spec: ModelSpec) -> str:
        return spec.key + self.ctx.budget.config_suffix

    def run_dir(self, spec: ModelSpec, seed: int) -> Path:
        b = self.ctx.budget
        name = f"{self.config(spec)}-{self.ctx.steps}steps-b{b.batch_size}-d{self.ctx.data.fingerprint}"
        return self.ctx.runs_root / name / f"seed{seed}"

    def key(self, spec: ModelSpec, seed: int, testset: str = "test") -> dict:
        data = self.ctx.data if testset == "test" else self.ctx.shift
        return {"config": self.config(spec), "steps": self.ctx.steps, "batch_size": self.ctx.budget.batch_size,
                "seed": seed, "data": self.ctx.data.fingerprint, "testset": testset,
                **({"testdata": data.fingerprint} if data is not None else {})}

    def testsets(self) -> List[str]:
        return ["test"] + (["shift"] if self.ctx.shift is not None else [])

    # ------------------------------------------------------------------------------------------
    def ensure(self, spec: ModelSpec, seed: int) -> Dict[str, dict]:
        """The ledger rows (one per test set) of ``spec`` trained with ``seed``; trains/evaluates what is missing."""
        rows = {}
        for testset in self.testsets():
            key = self.key(spec, seed, testset)
            found = self.ledger.find("runs", **key)
            if found is not None:
                rows[testset] = found
        if len(rows) == len(self.testsets()):
            return rows
        run_dir, train_info = self.train(spec, seed)
        for testset in self.testsets():
            if testset not in rows:
                rows[testset] = self.evaluate(spec, seed, run_dir, train_info, testset)
        return rows

    def train(self, spec: ModelSpec, seed: int):
        from spleeter_ext.config import load_config
        from spleeter_ext.train import train

        run_dir = self.run_dir(spec, seed)
        marker = run_dir / "experiment_run.json"
        steps = self.ctx.steps
        if marker.is_file() and checkpoint_step(run_dir) >= steps:
            info = json.loads(marker.read_text())
            logger.info("%s seed %d: reusing %s (step %d)", spec.title, seed, run_dir, checkpoint_step(run_dir))
        else:
            cfg = load_config(self.config(spec))
            for name, value in self.ctx.budget.overrides:
                cfg[name] = value
            resumed = max(0, checkpoint_step(run_dir))
            logger.info("%s seed %d: training %s for %d steps at batch %d in %s%s", spec.title, seed,
                        self.config(spec), steps, self.ctx.budget.batch_size, run_dir,
                        f" (resuming at step {resumed})" if resumed else "")
            start = time.perf_counter()
            train(cfg, str(self.ctx.data.root), steps=steps, batch_size=self.ctx.budget.batch_size,
                  model_dir=str(run_dir), seed=seed, verbose=2)
            info = {"key": self.key(spec, seed), "steps": checkpoint_step(run_dir), "resumed_from_step": resumed,
                    "wall_seconds_this_process": round(time.perf_counter() - start, 1), "commit": self.commit,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            clock = json.loads((run_dir / "clock.json").read_text()) if (run_dir / "clock.json").is_file() else {}
            info["train_wall_seconds"] = clock.get("wall_seconds", info["wall_seconds_this_process"])
            info["train_cpu_seconds"] = clock.get("cpu_seconds", float("nan"))
            write_json(marker, info)
            logger.info("%s seed %d: trained to step %d (%.1f min of training)", spec.title, seed, info["steps"],
                        float(info["train_wall_seconds"]) / 60)
        self._record_curves(spec, seed, run_dir)
        return run_dir, info

    def _record_curves(self, spec: ModelSpec, seed: int, run_dir: Path) -> None:
        from spleeter_ext.curves import CURVES_FILE, read_curves

        rows = read_curves(run_dir / CURVES_FILE)
        if not rows:
            logger.warning("%s seed %d: %s has no %s (no validation split?)", spec.title, seed, run_dir, CURVES_FILE)
            return
        base = {"config": self.config(spec), "model": spec.key, "batch_size": self.ctx.budget.batch_size,
                "seed": seed, "data": self.ctx.data.fingerprint, "run_steps": self.ctx.steps, "commit": self.commit}
        self.ledger.add_curves([{**base, **r} for r in rows])

    def evaluate(self, spec: ModelSpec, seed: int, run_dir: Path, train_info: dict, testset: str) -> dict:
        from spleeter_ext.evaluation.evaluate import evaluate

        data: DataInfo = self.ctx.data if testset == "test" else self.ctx.shift
        folder = run_dir / f"evaluation-{testset}-{data.fingerprint}"
        start = time.perf_counter()
        method = f"{spec.key}-seed{seed}"
        result = evaluate(str(run_dir), str(data.root), subset="test", output_dir=folder,
                          jobs=self.ctx.budget.eval_jobs, metrics=self.ctx.budget.metrics, oracles=(), method=method)
        seconds = time.perf_counter() - start
        row = {**self.key(spec, seed, testset), "model": spec.key, "commit": self.commit,
               "train_wall_seconds": float(train_info.get("train_wall_seconds", np.nan)),
               "train_cpu_seconds": float(train_info.get("train_cpu_seconds", np.nan)),
               "eval_wall_seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               **metric_row(result.tables[method], result.flags.get(method, []))}
        self.ledger.add_run(row)
        logger.info("%s seed %d: %s SDR %.2f dB (evaluated in %.1f min)%s", spec.title, seed, testset,
                    row["SDR_overall"], seconds / 60, f"; collapsed: {row['collapsed']}" if row["collapsed"] else "")
        return row

    def oracles(self, testset: str = "test") -> List[dict]:
        """The oracle rows of a test set (computed once per dataset)."""
        from spleeter_ext.evaluation.evaluate import evaluate_oracles

        data: DataInfo = self.ctx.data if testset == "test" else self.ctx.shift
        found = self.ledger.rows("oracles", data=data.fingerprint, testset=testset)
        if {r["method"] for r in found} >= set(ORACLES):
            return found
        folder = self.ctx.runs_root / f"oracles-d{data.fingerprint}-{self.ctx.budget.metrics}"
        start = time.perf_counter()
        result = evaluate_oracles(str(data.root), list(INSTRUMENTS), subset="test", output_dir=folder,
                                  jobs=self.ctx.budget.eval_jobs, metrics=self.ctx.budget.metrics, oracles=ORACLES)
        seconds = time.perf_counter() - start
        rows = []
        for method in ORACLES:
            rows.append({"method": method, "data": data.fingerprint, "testset": testset, "commit": self.commit,
                         "eval_wall_seconds": round(seconds, 1),
                         **metric_row(result.tables[method], result.flags.get(method, []))})
        self.ledger.add_oracles(rows)
        return rows

    def models(self, specs: Sequence[ModelSpec], seeds: Sequence[int]) -> Dict[tuple, Dict[str, dict]]:
        """Every spec and seed, seed-major (all models of seed 0 first), so partial results stay balanced."""
        out = {}
        for seed in seeds:
            for spec in specs:
                out[(spec.key, seed)] = self.ensure(spec, seed)
        return out
