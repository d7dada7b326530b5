#!/usr/bin/env python
"""Reproduce Table 1 / Figure 2 and Table 2 / Figure 4 of Henning, Choudhry & Ma (2021),
"Deep Learning Based Music Source Separation", under equal training conditions.

    python experiments/tables.py table1 [--budget default|paper] [--seeds N] [--data DIR] [--out DIR]
    python experiments/tables.py table2 [--budget default|paper] [--seeds N] [--data DIR] [--out DIR]

``table1`` trains the six single models (Spleeter U-Net, Wave-U-Net and Demucs, each on waveforms
(1D) and on spectrograms (2D)) on the same data with the same steps, batch size and seeds,
evaluates each on the test split with museval's SDR/SIR/SAR/ISR, and writes Table 1 (the paper's
columns plus the oracle rows and the mixture floor) and Figure 2 (the averages without SIR).
``table2`` compares the stacked U-Net with the best single model of Table 1 (highest SDR) and writes
Table 2 and Figure 4.  See experiments/README.md for the budgets and the caveats of the metrics.

Runs are reused: a run directory (``runs/experiments/<config>-<steps>steps-b<batch>-d<data hash>/seed<k>``)
whose checkpoint reached the budget's steps is not trained again, an interrupted one resumes, and an
evaluation whose protocol matches is read back instead of recomputed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from spleeter_ext.errors import DatasetError, SpleeterExtError
from spleeter_ext.log import configure_logging, logger

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = REPO / "runs" / "experiments"
DEFAULT_OUT = REPO / "experiments" / "results"
INSTRUMENTS = ("vocals", "drums", "bass", "other")
TABLE_ORACLES = ("IRM1", "IRM2", "IBM1", "MWF", "MIX")
ORACLE_LABELS = {"IRM1": "IRM1 (oracle, magnitude ratio mask)", "IRM2": "IRM2 (oracle, power ratio mask)",
                 "IBM1": "IBM1 (oracle, binary mask)", "MWF": "MWF (oracle multichannel Wiener filter)",
                 "MIX": "Mixture (floor: every estimate = mixture)"}
#: the paper's metric columns, in its order, and the two averages
PAPER_METRICS = ("SDR", "SAR", "SIR", "ISR")
AVERAGES = ("avg_overall", "avg_without_SIR")
COLUMN_LABELS = {"avg_overall": "average overall", "avg_without_SIR": "average without SIR", "uSDR": "uSDR (MDX)"}


@dataclass(frozen=True)
class ModelSpec:
    key: str          # config base name: <key><suffix> is a preset of model_configs/
    dimension: str    # '1D' (waveform) or '2D' (spectrogram)
    label: str        # model family as in the paper

    @property
    def title(self) -> str:
        return f"{self.label} {self.dimension}"


SINGLE_MODELS = (
    ModelSpec("spleeter_1d", "1D", "Spleeter U-Net"),
    ModelSpec("spleeter_2d", "2D", "Spleeter U-Net"),
    ModelSpec("wave_unet_1d", "1D", "Wave-U-Net"),
    ModelSpec("wave_unet_2d", "2D", "Wave-U-Net"),
    ModelSpec("demucs_1d", "1D", "Demucs"),
    ModelSpec("demucs_2d", "2D", "Demucs"),
)
STACKED = ModelSpec("stack_unet", "2D", "Stacked U-Net")


@dataclass(frozen=True)
class SyntheticData:
    folder: str       # relative to the repository root
    engine: str
    n_train: int
    n_test: int
    seconds: float
    seed: int = 0


@dataclass(frozen=True)
class Budget:
    name: str
    config_suffix: str
    steps: int
    batch_size: int
    data: Optional[SyntheticData]   # None: --data is required
    eval_jobs: int
    metrics: str = "all"
    #: config keys overridden for every model (the tiny budget shortens validation)
    overrides: Tuple[Tuple[str, object], ...] = ()
    description: str = ""


BUDGETS: Dict[str, Budget] = {
    "default": Budget(
        "default", "_small", steps=800, batch_size=4,
        data=SyntheticData("data/synthetic-realistic", "realistic", n_train=40, n_test=8, seconds=20.0),
        eval_jobs=2,
        description="the _small configs, 800 steps at batch 4 (~3 s segments) on 40 + 8 realistic synthetic songs "
                    "of 20 s: the whole table1 run (data, training, evaluation) fits in about two hours on a "
                    "2-core CPU"),
    "paper": Budget(
        "paper", "", steps=100_000, batch_size=4, data=None, eval_jobs=2,
        description="the paper-sized configs, 100,000 steps at batch 4 on MUSDB18 (--data required)"),
    # hidden: a few steps on a few seconds of numpy-synthesised audio, for the tests
    "tiny": Budget(
        "tiny", "_small", steps=2, batch_size=1,
        data=SyntheticData("data/synthetic-tiny", "numpy", n_train=3, n_test=2, seconds=4.0),
        eval_jobs=1, overrides=(("validation_tracks", 1), ("validation_seconds", 3.0)),
        description="smoke test: 2 steps at batch 1 on 3 + 2 numpy synthetic tracks of 4 s"),
}
PUBLIC_BUDGETS = ("default", "paper")


# ------------------------------------------------------------------------------------------------ helpers
def git_commit(root: Path = REPO) -> Optional[str]:
    """HEAD's commit read from ``.git`` directly (no git process)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(None, 1)[1]
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        pass
    return None


def versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("spleeter-ext", "spleeter", "tensorflow", "numpy", "pandas", "museval", "matplotlib"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def data_fingerprint(root: Path) -> str:
    """Short hash of the train/test file names and sizes (cheap: no audio is read)."""
    digest = hashlib.sha1()
    for subset in ("train", "test"):
        folder = root / subset
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:10]


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


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, default=str) + "\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ data
@dataclass
class DataInfo:
    root: Path
    fingerprint: str
    source: str
    generation_seconds: float = 0.0
    note: str = ""

    def card(self) -> dict:
        return {"root": str(self.root), "fingerprint": self.fingerprint, "source": self.source,
                "generation_seconds": round(self.generation_seconds, 1), "note": self.note}


def prepare_data(budget: Budget, data: Optional[str]) -> DataInfo:
    """The dataset of a run: ``--data`` as given, or the budget's synthetic set (generated if missing).

    The realistic engine falls back to the numpy one, with the reason logged, when its Debian
    packages are missing.
    """
    if data:
        root = Path(data).expanduser().resolve()
        if not root.is_dir():
            raise DatasetError(f"--data {data}: no such folder")
        return DataInfo(root, data_fingerprint(root), "given with --data")
    if budget.data is None:
        raise DatasetError(f"--budget {budget.name} needs --data /path/to/musdb18 (MUSDB18 stems or MUSDB18-HQ wav)")
    from spleeter_ext.data.make_dataset import make_dataset

    spec = budget.data
    engine, folder, note = spec.engine, spec.folder, ""
    if engine == "realistic":
        from spleeter_ext.data import realistic

        try:
            realistic.check_dependencies()
        except DatasetError as exc:
            note = f"realistic engine unavailable ({exc}); fell back to the numpy engine"
            logger.warning("%s", note)
            engine, folder = "numpy", folder.replace("realistic", "numpy")
    root = REPO / folder
    start = time.perf_counter()
    make_dataset(root, spec.n_train, spec.n_test, spec.seconds, seed=spec.seed, engine=engine,
                 jobs=min(2, os.cpu_count() or 1))
    seconds = time.perf_counter() - start
    source = (f"synthetic, engine {engine}: {spec.n_train} train + {spec.n_test} test tracks of {spec.seconds:g} s, "
              f"seed {spec.seed} (spleeter_ext.data.make_dataset)")
    return DataInfo(root, data_fingerprint(root), source, seconds, note)


# ------------------------------------------------------------------------------------------------ runs
@dataclass
class Run:
    """One trained and evaluated model (one seed)."""

    spec: ModelSpec
    config: str
    seed: int
    run_dir: Path
    steps: int
    train_seconds: float
    trained_now: bool
    result: object = None          # EvaluationResult
    eval_seconds: float = 0.0
    evaluated_now: bool = False

    @property
    def method(self) -> str:
        return f"{self.spec.key}-seed{self.seed}"

    def card(self) -> dict:
        return {"config": self.config, "seed": self.seed, "run_dir": str(self.run_dir), "steps": self.steps,
                "train_wall_seconds": round(self.train_seconds, 1), "trained_in_this_run": self.trained_now,
                "eval_wall_seconds": round(self.eval_seconds, 1), "evaluated_in_this_run": self.evaluated_now}


class Runner:
    """Trains (or reuses) and evaluates (or reuses) models under one budget and dataset."""

    def __init__(self, budget: Budget, data: DataInfo, runs_root: Path, steps: Optional[int] = None):
        self.budget = budget
        self.data = data
        self.runs_root = runs_root
        self.steps = int(steps or budget.steps)

    def config(self, spec: ModelSpec) -> str:
        return spec.key + self.budget.config_suffix

    def run_dir(self, spec: ModelSpec, seed: int) -> Path:
        name = f"{self.config(spec)}-{self.steps}steps-b{self.budget.batch_size}-d{self.data.fingerprint}"
        return self.runs_root / name / f"seed{seed}"

    def _key(self, spec: ModelSpec, seed: int) -> dict:
        return {"config": self.config(spec), "steps": self.steps, "batch_size": self.budget.batch_size, "seed": seed,
                "data": self.data.fingerprint, "overrides": dict(self.budget.overrides)}

    def train(self, spec: ModelSpec, seed: int) -> Run:
        from spleeter_ext.config import load_config
        from spleeter_ext.train import train

        run_dir = self.run_dir(spec, seed)
        marker = run_dir / "table_run.json"
        key = self._key(spec, seed)
        if marker.is_file() and checkpoint_step(run_dir) >= self.steps:
            previous = json.loads(marker.read_text())
            if previous.get("key") == key:
                logger.info("%s seed %d: reusing %s (step %d)", spec.title, seed, run_dir, checkpoint_step(run_dir))
                return Run(spec, key["config"], seed, run_dir, checkpoint_step(run_dir),
                           float(previous.get("train_wall_seconds", float("nan"))), trained_now=False)
        cfg = load_config(key["config"])
        for name, value in self.budget.overrides:
            cfg[name] = value
        resumed = max(0, checkpoint_step(run_dir))
        logger.info("%s seed %d: training %s for %d steps at batch %d in %s%s", spec.title, seed, key["config"],
                    self.steps, self.budget.batch_size, run_dir, f" (resuming at step {resumed})" if resumed else "")
        start = time.perf_counter()
        train(cfg, str(self.data.root), steps=self.steps, batch_size=self.budget.batch_size, model_dir=str(run_dir),
              seed=seed, verbose=2)
        seconds = time.perf_counter() - start
        step = checkpoint_step(run_dir)
        _write_json(marker, {"key": key, "train_wall_seconds": round(seconds, 1), "steps": step,
                             "resumed_from_step": resumed, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        logger.info("%s seed %d: trained to step %d in %.1f min", spec.title, seed, step, seconds / 60)
        return Run(spec, key["config"], seed, run_dir, step, seconds, trained_now=True)

    def _reusable(self, folder: Path, checkpoint: Optional[str] = None):
        """The evaluation in ``folder`` if its protocol matches this data and budget (and its checkpoint
        file name ends with ``checkpoint``), else None."""
        from spleeter_ext.evaluation.evaluate import EvaluationResult

        try:
            result = EvaluationResult.load(folder)
        except (SpleeterExtError, ValueError, OSError):
            return None
        protocol = result.protocol
        expected_metrics = ["SDR", "ISR", "SIR", "SAR"] if self.budget.metrics == "all" else ["SDR"]
        same = (protocol.get("dataset_root") == str(self.data.root) and protocol.get("subset") == "test"
                and list(protocol.get("metrics") or []) == expected_metrics
                and protocol.get("excerpt") == "full tracks"
                and (checkpoint is None or str(protocol.get("checkpoint", "")).endswith(checkpoint)))
        return result if same else None

    def evaluate(self, run: Run, jobs: Optional[int] = None) -> Run:
        from spleeter_ext.evaluation.evaluate import evaluate

        folder = run.run_dir / "evaluation"
        reused = self._reusable(folder, checkpoint=f"ckpt-{run.steps}")
        if reused is not None:
            logger.info("%s seed %d: reusing the evaluation in %s", run.spec.title, run.seed, folder)
            run.result = reused
            run.eval_seconds = float(reused.timings.get("total", float("nan")))
            return run
        start = time.perf_counter()
        run.result = evaluate(str(run.run_dir), str(self.data.root), subset="test", output_dir=folder,
                              jobs=jobs or self.budget.eval_jobs, metrics=self.budget.metrics, oracles=(),
                              method=run.method)
        run.eval_seconds = time.perf_counter() - start
        run.evaluated_now = True
        logger.info("%s seed %d: evaluated in %.1f min", run.spec.title, run.seed, run.eval_seconds / 60)
        return run

    def oracles(self):
        """The oracle rows on the same test tracks (computed once per dataset and metric set)."""
        from spleeter_ext.evaluation.evaluate import evaluate_oracles

        folder = self.runs_root / f"oracles-d{self.data.fingerprint}-{self.budget.metrics}"
        reused = self._reusable(folder)
        if reused is not None and list(reused.methods) == list(TABLE_ORACLES):
            logger.info("reusing the oracle evaluation in %s", folder)
            return reused, 0.0, False
        start = time.perf_counter()
        result = evaluate_oracles(str(self.data.root), INSTRUMENTS, subset="test", output_dir=folder,
                                  jobs=self.budget.eval_jobs, metrics=self.budget.metrics, oracles=TABLE_ORACLES)
        return result, time.perf_counter() - start, True

    def models(self, specs: Sequence[ModelSpec], seeds: int) -> List[Run]:
        """Train then evaluate every model and seed (training first, one model at a time)."""
        runs = []
        for spec in specs:
            for seed in range(seeds):
                runs.append(self.evaluate(self.train(spec, seed)))
        return runs


# ------------------------------------------------------------------------------------------------ tables
def metric_values(table: pd.DataFrame, target: str = "overall") -> Dict[str, float]:
    """SiSEC18 medians of one row of an aggregate table, the paper's two averages, and uSDR."""
    row = table.loc[target]
    values = {m: float(row.get(f"{m}_median", np.nan)) for m in PAPER_METRICS}
    values["avg_overall"] = float(np.mean([values[m] for m in PAPER_METRICS]))
    values["avg_without_SIR"] = float(np.mean([values[m] for m in ("SDR", "SAR", "ISR")]))
    values["uSDR"] = float(row.get("uSDR_mean", np.nan))
    return values


COLUMNS = PAPER_METRICS + AVERAGES + ("uSDR",)


def _mean_std(samples: List[Dict[str, float]], columns: Sequence[str] = COLUMNS) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for column in columns:
        values = np.array([s[column] for s in samples], dtype=float)
        out[column] = float(np.mean(values))
        out[f"{column}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return out


def model_rows(runs: Sequence[Run], specs: Sequence[ModelSpec]) -> List[dict]:
    """One row per model: mean and std over seeds of the overall values, per-instrument SDR means."""
    rows = []
    for spec in specs:
        mine = [r for r in runs if r.spec == spec]
        per_seed = [metric_values(r.result.tables[r.method]) for r in mine]
        row = {"dimension": spec.dimension, "model": spec.label, "config": mine[0].config, "kind": "model",
               "seeds": len(mine), **_mean_std(per_seed)}
        for target in INSTRUMENTS:
            values = [metric_values(r.result.tables[r.method], target)["SDR"] for r in mine]
            row[f"SDR_{target}"] = float(np.mean(values))
            row[f"SDR_{target}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        row["train_steps"] = mine[0].steps
        row["train_wall_seconds"] = float(np.mean([r.train_seconds for r in mine]))
        rows.append(row)
    return rows


def oracle_rows(result) -> List[dict]:
    rows = []
    for method in TABLE_ORACLES:
        values = metric_values(result.tables[method])
        row = {"dimension": "–", "model": ORACLE_LABELS[method], "config": method, "kind": "oracle", "seeds": 0}
        for column in COLUMNS:
            row[column] = values[column]
            row[f"{column}_std"] = float("nan")
        for target in INSTRUMENTS:
            row[f"SDR_{target}"] = metric_values(result.tables[method], target)["SDR"]
            row[f"SDR_{target}_std"] = float("nan")
        rows.append(row)
    return rows


def _cell(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if np.isfinite(std) else f"{mean:.2f}"


def markdown_table(frame: pd.DataFrame, columns: Sequence[str], labels: Dict[str, str]) -> List[str]:
    head = ["dimension", "model"] + [labels.get(c, c) for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(columns)) + "|"]
    for _, row in frame.iterrows():
        cells = [str(row["dimension"]), str(row["model"])]
        cells += [_cell(row[c], row.get(f"{c}_std", float("nan"))) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _header(title: str, budget: Budget, data: DataInfo, seeds: int, steps: int) -> List[str]:
    return [
        f"# {title}", "",
        f"- budget: `{budget.name}` ({budget.description})",
        f"- training: {steps} steps, batch size {budget.batch_size}, seeds 0..{seeds - 1} "
        f"({'mean ± sample std over seeds' if seeds > 1 else 'one seed: no spread shown'})",
        f"- data: {data.source}; root `{_display_path(data.root)}`, fingerprint {data.fingerprint}",
        "- evaluation: test split, museval 0.4.1 BSSEval v4 (images, 1 s frames, 512-tap filters per track); every "
        "value is SiSEC18's aggregate: median over the non-NaN frames of a track, median over tracks, mean of the "
        "four targets (vocals, drums, bass, other). average overall = mean(SDR, SAR, SIR, ISR); average without SIR = "
        "mean(SDR, SAR, ISR); uSDR = MDX whole-track SDR, mean over tracks and targets.",
        "",
    ]


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


CAVEATS = [
    "SIR, SAR and ISR depend on museval's 512-tap projections onto the references, which are ill-conditioned when "
    "the references are spectrally sparse or band-limited (synthetic stems are): read them as secondary metrics. "
    "SDR does not depend on the projections.",
    "The mixture floor's SAR sits at the float64 round-off floor (its estimates are exact sums of the references, "
    "so the artefact term is zero up to rounding); the same mechanism produces SIR values of 200+ dB whenever an "
    "estimate equals its reference up to a gain or short filter, which is why SIR around 240-250 dB in a results "
    "table signals an evaluation bug rather than a good model. Its 'average overall' is meaningless.",
]


#: A model whose SIR is within this many dB of the mixture floor's barely separates the sources.
UNSEPARATED_SIR_MARGIN = 3.0


def unseparated_notes(rows: List[dict]) -> List[str]:
    """Notes on models whose SIR is near the mixture floor's while their SAR is high: their estimates are
    close to a filtered mixture, which BSSEval scores as artefact-free, so SAR (and the averages that
    include it) rank them above models that actually separate."""
    floor = next((r for r in rows if r.get("kind") == "oracle" and r.get("config") == "MIX"), None)
    if floor is None or not np.isfinite(floor.get("SIR", np.nan)):
        return []
    notes = []
    models = [r for r in rows if r.get("kind") == "model"]
    for r in models:
        higher_sar = [m for m in models if m is not r and m["SAR"] < r["SAR"] and m["SIR"] > r["SIR"]]
        if r["SIR"] - floor["SIR"] <= UNSEPARATED_SIR_MARGIN and higher_sar:
            notes.append(
                f"{r['dimension']} {r['model']}: SIR {r['SIR']:.2f} dB, within {UNSEPARATED_SIR_MARGIN:g} dB of the "
                f"mixture floor's {floor['SIR']:.2f} dB, with SAR {r['SAR']:.2f} dB: its estimates are close to a "
                f"filtered mixture (little separation), which BSSEval counts as free of artefacts. SAR and the "
                f"averages that include it rank it above models that separate better by SDR; SDR is the ranking "
                f"to read.")
    return notes


def write_table1(out: Path, rows: List[dict], budget: Budget, data: DataInfo, seeds: int, steps: int,
                 per_instrument: pd.DataFrame) -> Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    paths = {"csv": out / "table1.csv", "md": out / "table1.md", "per_instrument": out / "table1_per_instrument.csv",
             "png": out / "figure2.png"}
    frame.to_csv(paths["csv"], index=False, float_format="%.4f")
    per_instrument.to_csv(paths["per_instrument"], index=False, float_format="%.4f")
    lines = _header("Table 1: single models under equal training conditions", budget, data, seeds, steps)
    lines += markdown_table(frame, COLUMNS, COLUMN_LABELS)
    lines += ["", "SDR per target (SiSEC18 median):", ""]
    lines += markdown_table(frame, [f"SDR_{t}" for t in INSTRUMENTS], {f"SDR_{t}": t for t in INSTRUMENTS})
    lines += ["", "Notes:", ""] + [f"- {c}" for c in CAVEATS + unseparated_notes(rows)]
    lines += ["", f"Figure 2 (`{paths['png'].name}`): average without SIR per model (bars), SDR (diamonds)."]
    paths["md"].write_text("\n".join(lines) + "\n")
    figure2(frame, paths["png"], seeds)
    return paths


def _label_bars(ax, x: np.ndarray, values: np.ndarray, errors) -> None:
    """Value labels beyond the end of each bar's error bar."""
    errors = np.zeros_like(values) if errors is None else np.nan_to_num(np.asarray(errors, dtype=float))
    for xi, value, error in zip(x, values, errors):
        up = value >= 0
        ax.annotate(f"{value:.2f}", (xi, value + error if up else value - error), ha="center",
                    va="bottom" if up else "top", fontsize=8, xytext=(0, 2 if up else -2), textcoords="offset points")


def figure2(frame: pd.DataFrame, path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = frame[frame["kind"] == "model"]
    oracles = frame[frame["kind"] == "oracle"].set_index("config")
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(models))
    colours = ["#4C72B0" if d == "1D" else "#DD8452" for d in models["dimension"]]
    errors = models["avg_without_SIR_std"].to_numpy() if seeds > 1 else None
    ax.bar(x, models["avg_without_SIR"], color=colours, yerr=errors, capsize=4)
    _label_bars(ax, x, models["avg_without_SIR"].to_numpy(), errors)
    for name, style in (("IRM2", "--"), ("IRM1", ":")):
        if name in oracles.index:
            ax.axhline(oracles.loc[name, "avg_without_SIR"], color="grey", linestyle=style, linewidth=1,
                       label=f"{name} oracle")
    # SDR beside each bar: the adjusted average includes SAR, which rewards a filtered mixture
    # (see unseparated_notes), so the two rankings can disagree.
    ax.plot(x, models["SDR"], linestyle="none", marker="D", color="black", markersize=5, label="SDR")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{m}\n{d}" for m, d in zip(models["model"], models["dimension"])], fontsize=8)
    ax.set_ylabel("average of SDR, SAR, ISR (dB); ◆ SDR")
    title = "Figure 2: adjusted average (without SIR)"
    ax.set_title(title + (f", mean ± std over {seeds} seeds" if seeds > 1 else ", one seed"), fontsize=10)
    ax.axhline(0, color="black", linewidth=0.5)
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color="#4C72B0", label="1D (waveform)"), Patch(color="#DD8452", label="2D (spectrogram)")]
    ax.legend(handles=handles, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def per_instrument_frame(runs: Sequence[Run], oracle_result=None) -> pd.DataFrame:
    """Every model seed and oracle, every target: SiSEC18 medians and uSDR."""
    rows = []
    for run in runs:
        for target in list(INSTRUMENTS) + ["overall"]:
            rows.append({"model": run.spec.title, "config": run.config, "seed": run.seed, "target": target,
                         **metric_values(run.result.tables[run.method], target)})
    if oracle_result is not None:
        for method in TABLE_ORACLES:
            for target in list(INSTRUMENTS) + ["overall"]:
                rows.append({"model": method, "config": method, "seed": -1, "target": target,
                             **metric_values(oracle_result.tables[method], target)})
    return pd.DataFrame(rows)


def best_single(rows: List[dict]) -> dict:
    """The single model with the highest mean SDR (ties: the higher average without SIR)."""
    models = [r for r in rows if r["kind"] == "model"]
    return max(models, key=lambda r: (r["SDR"], r["avg_without_SIR"]))


def compare(best: dict, stacked: dict, seeds: int, column: str = "SDR") -> Tuple[str, Optional[bool]]:
    """A sentence saying whether ``stacked − best`` in ``column`` exceeds the seed spread, and the verdict."""
    delta = stacked[column] - best[column]
    what = f"{COLUMN_LABELS.get(column, column)}: stacked − best = {delta:+.2f} dB"
    if seeds < 2:
        return (f"{what} with one seed per model: the seed spread is unknown, so this difference cannot be judged "
                "against seed noise (rerun with --seeds 3)"), None
    sa, sb = stacked[f"{column}_std"], best[f"{column}_std"]
    standard_error = math.sqrt(sa ** 2 / seeds + sb ** 2 / seeds)
    exceeds = abs(delta) > 2 * standard_error
    return (f"{what} (means of {seeds} seeds; seed std {sa:.2f} / {sb:.2f} dB, standard error of the difference "
            f"{standard_error:.2f} dB): the difference {'EXCEEDS' if exceeds else 'does NOT exceed'} the seed spread "
            f"(|Δ| {'>' if exceeds else '<='} 2 standard errors)"), exceeds


def write_table2(out: Path, best: dict, stacked: dict, budget: Budget, data: DataInfo, seeds: int, steps: int,
                 verdicts: List[str]) -> Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = [dict(best, model=f"{best['model']} (best single model of Table 1)"),
            dict(stacked, model="Stacked U-Net")]
    delta = {"dimension": "", "model": "difference (stacked − best)", "config": "", "kind": "difference",
             "seeds": seeds}
    for column in COLUMNS + tuple(f"SDR_{t}" for t in INSTRUMENTS):
        delta[column] = stacked[column] - best[column]
        delta[f"{column}_std"] = float("nan")
    frame = pd.DataFrame(rows + [delta])
    paths = {"csv": out / "table2.csv", "md": out / "table2.md", "png": out / "figure4.png"}
    frame.to_csv(paths["csv"], index=False, float_format="%.4f")
    lines = _header("Table 2: stacked U-Net vs the best single model", budget, data, seeds, steps)
    lines.append(f"Best single model of Table 1 (highest SDR): {best['model']} {best['dimension']} "
                 f"(`{best['config']}`); stacked U-Net: `{stacked['config']}` trained with the same budget.")
    lines.append("")
    columns = COLUMNS + tuple(f"SDR_{t}" for t in INSTRUMENTS)
    labels = dict(COLUMN_LABELS, **{f"SDR_{t}": f"SDR {t}" for t in INSTRUMENTS})
    lines += markdown_table(frame, columns, labels)
    lines += ["", "Seed spread:", ""] + [f"- {v}" for v in verdicts]
    lines += ["", "Notes:", ""] + [f"- {c}" for c in CAVEATS[:1]]
    lines += ["", f"Figure 4 (`{paths['png'].name}`): SDR and average without SIR."]
    paths["md"].write_text("\n".join(lines) + "\n")
    figure4(best, stacked, paths["png"], seeds)
    return paths


def figure4(best: dict, stacked: dict, path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ("SDR", "avg_without_SIR")
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(groups))
    width = 0.36
    for offset, row, label, colour in ((-width / 2, best, f"{best['model']} {best['dimension']} (best single)",
                                        "#4C72B0"),
                                       (width / 2, stacked, "Stacked U-Net", "#C44E52")):
        values = [row[g] for g in groups]
        errors = [row[f"{g}_std"] for g in groups] if seeds > 1 else None
        ax.bar(x + offset, values, width, yerr=errors, capsize=4, label=label, color=colour)
        _label_bars(ax, x + offset, np.array(values), errors)
    ax.set_xticks(x)
    ax.set_xticklabels(["SDR", "average without SIR"])
    ax.set_ylabel("dB")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title("Figure 4: stacked U-Net vs best single model" + (f" ({seeds} seeds)" if seeds > 1 else ""),
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ commands
def _run_card(command: str, budget: Budget, data: DataInfo, seeds: int, steps: int, runs: Sequence[Run],
              started: float, extra: dict) -> dict:
    return {
        "table": command,
        "command": [sys.executable] + sys.argv,
        "git_commit": git_commit(),
        "budget": {"name": budget.name, "description": budget.description, "config_suffix": budget.config_suffix,
                   "steps": steps, "batch_size": budget.batch_size, "eval_jobs": budget.eval_jobs,
                   "metrics": budget.metrics, "overrides": dict(budget.overrides)},
        "data": data.card(),
        "seeds": list(range(seeds)),
        "models": {run.method: run.card() for run in runs},
        "versions": versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        **extra,
    }


def table1(budget: Budget, seeds: int, data: Optional[str], out: Path, runs_root: Path = DEFAULT_RUNS,
           steps: Optional[int] = None, write: bool = True) -> dict:
    """Train/evaluate the six single models and the oracles; write Table 1 and Figure 2 when ``write``.

    Returns ``{'rows', 'runs', 'oracles', 'data', 'runner', 'paths'}``.
    """
    started = time.time()
    info = prepare_data(budget, data)
    runner = Runner(budget, info, runs_root, steps)
    runs = runner.models(SINGLE_MODELS, seeds)
    oracle_result, oracle_seconds, oracles_now = runner.oracles()
    rows = model_rows(runs, SINGLE_MODELS) + oracle_rows(oracle_result)
    paths: Dict[str, Path] = {}
    if write:
        paths = write_table1(out, rows, budget, info, seeds, runner.steps, per_instrument_frame(runs, oracle_result))
        card = _run_card("table1", budget, info, seeds, runner.steps, runs, started,
                         {"oracles": {"methods": list(TABLE_ORACLES), "eval_wall_seconds": round(oracle_seconds, 1),
                                      "evaluated_in_this_run": oracles_now, "folder": str(oracle_result.output_dir)},
                          "outputs": {k: _display_path(p) for k, p in paths.items()}})
        paths["card"] = out / "table1_runcard.json"
        _write_json(paths["card"], card)
        logger.info("Table 1 written to %s in %.1f min", paths["md"], (time.time() - started) / 60)
    return {"rows": rows, "runs": runs, "oracles": oracle_result, "data": info, "runner": runner, "paths": paths,
            "started": started}


def table2(budget: Budget, seeds: int, data: Optional[str], out: Path, runs_root: Path = DEFAULT_RUNS,
           steps: Optional[int] = None) -> dict:
    """The stacked U-Net vs the best single model of Table 1 (trained first when missing)."""
    started = time.time()
    first = table1(budget, seeds, data, out, runs_root, steps, write=False)
    runner: Runner = first["runner"]
    best = best_single(first["rows"])
    stacked_runs = runner.models([STACKED], seeds)
    stacked = model_rows(stacked_runs, [STACKED])[0]
    verdicts, exceeds = [], {}
    for column in ("SDR", "avg_without_SIR"):
        sentence, verdict = compare(best, stacked, seeds, column)
        verdicts.append(sentence)
        exceeds[column] = verdict
        print(sentence)
    paths = write_table2(out, best, stacked, budget, first["data"], seeds, runner.steps, verdicts)
    best_runs = [r for r in first["runs"] if r.config == best["config"]]
    card = _run_card("table2", budget, first["data"], seeds, runner.steps, best_runs + stacked_runs, started,
                     {"best_single_model": best["config"], "difference_exceeds_seed_spread": exceeds,
                      "verdicts": verdicts, "table1_models_used": [r.method for r in first["runs"]],
                      "outputs": {k: _display_path(p) for k, p in paths.items()}})
    paths["card"] = out / "table2_runcard.json"
    _write_json(paths["card"], card)
    logger.info("Table 2 written to %s in %.1f min", paths["md"], (time.time() - started) / 60)
    return {"best": best, "stacked": stacked, "verdicts": verdicts, "paths": paths, "table1": first}


def seed_spread(budget: Budget, seeds: int, data: Optional[str], out: Path, keys: Sequence[str],
                runs_root: Path = DEFAULT_RUNS, steps: Optional[int] = None) -> dict:
    """Train and evaluate ``keys`` (model keys, ``stack_unet`` included) with seeds 0..seeds-1 (reusing the
    tables' runs) and write ``seed_spread.md``/``.csv``: every seed's values, mean and sample std.

    A cheaper way than ``--seeds N`` on a whole table to learn how far two trainings of the same model
    under the same budget land apart, i.e. which differences in the tables are noise."""
    started = time.time()
    known = {spec.key: spec for spec in SINGLE_MODELS + (STACKED,)}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SpleeterExtError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    info = prepare_data(budget, data)
    runner = Runner(budget, info, runs_root, steps)
    specs = [known[k] for k in keys]
    runs = runner.models(specs, seeds)
    per_seed = []
    for run in runs:
        values = metric_values(run.result.tables[run.method])
        per_seed.append({"dimension": run.spec.dimension, "model": run.spec.label, "config": run.config,
                         "seed": run.seed, **{c: values[c] for c in COLUMNS}})
    rows = model_rows(runs, specs)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "seed_spread.csv", "md": out / "seed_spread.md"}
    pd.DataFrame(per_seed).to_csv(paths["csv"], index=False, float_format="%.4f")
    lines = _header("Seed spread: the same model trained with different seeds", budget, info, seeds, runner.steps)
    lines += ["| dimension | model | seed | " + " | ".join(COLUMN_LABELS.get(c, c) for c in COLUMNS) + " |",
              "|---|---|---:|" + "---:|" * len(COLUMNS)]
    for r in per_seed:
        lines.append(f"| {r['dimension']} | {r['model']} | {r['seed']} | "
                     + " | ".join(f"{r[c]:.2f}" for c in COLUMNS) + " |")
    lines += ["", "Mean ± sample standard deviation over seeds:", ""]
    lines += markdown_table(pd.DataFrame(rows), COLUMNS, COLUMN_LABELS)
    paths["md"].write_text("\n".join(lines) + "\n")
    card = _run_card("seed_spread", budget, info, seeds, runner.steps, runs, started, {"models": list(keys)})
    _write_json(out / "seed_spread_runcard.json", card)
    paths["card"] = out / "seed_spread_runcard.json"
    logger.info("seed spread written to %s in %.1f min", paths["md"], (time.time() - started) / 60)
    return {"rows": rows, "per_seed": per_seed, "paths": paths}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python experiments/tables.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=("table1", "table2", "spread"),
                        help="table1, table2, or spread (seed spread of --models)")
    parser.add_argument("--budget", default="default", help="default (small configs, synthetic data, ~2 h on 2 CPU "
                                                             "cores) or paper (full configs, 100k steps, MUSDB18)")
    parser.add_argument("--seeds", type=int, default=1, help="trainings per model, seeds 0..N-1 (default 1)")
    parser.add_argument("--data", default=None, help="dataset root (required for --budget paper; default: the "
                                                     "budget's synthetic set, generated if missing)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where tables, figures and run cards go")
    parser.add_argument("--runs", default=str(DEFAULT_RUNS), help="where model directories go (reused across runs)")
    parser.add_argument("--steps", type=int, default=None, help="override the budget's training steps")
    parser.add_argument("--models", nargs="+", default=["wave_unet_1d", "stack_unet"],
                        help="models of the spread run (default: the two of Table 2)")
    parser.add_argument("--verbose", action="store_true")
    ns = parser.parse_args(argv)
    configure_logging(ns.verbose)
    if ns.budget not in BUDGETS:
        parser.error(f"--budget must be one of {', '.join(PUBLIC_BUDGETS)}, got {ns.budget!r}")
    if ns.seeds < 1:
        parser.error("--seeds must be at least 1")
    if ns.steps is not None and ns.steps < 1:
        parser.error("--steps must be at least 1")
    budget = BUDGETS[ns.budget]
    try:
        if ns.table == "table1":
            done = table1(budget, ns.seeds, ns.data, Path(ns.out), Path(ns.runs), ns.steps)
        elif ns.table == "spread":
            if ns.seeds < 2:
                parser.error("spread needs --seeds 2 or more")
            done = seed_spread(budget, ns.seeds, ns.data, Path(ns.out), ns.models, Path(ns.runs), ns.steps)
        else:
            done = table2(budget, ns.seeds, ns.data, Path(ns.out), Path(ns.runs), ns.steps)
    except SpleeterExtError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for path in done["paths"].values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
