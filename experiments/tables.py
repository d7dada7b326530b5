"""Table 1 / Figure 2 (six single models) and Table 2 / Figure 4 (phase two), built from the ledger."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from spleeter_ext.errors import SpleeterExtError
from spleeter_ext.log import logger

from . import figures
from .common import (
    INSTRUMENTS,
    SINGLE_MODELS,
    Context,
    ModelSpec,
    display_path,
    git_commit,
    model_spec,
    stack_of,
    versions,
    write_json,
)
from .ledger import Ledger
from .runner import ORACLES, Runner

PAPER_METRICS = ("SDR", "SAR", "SIR", "ISR")
COLUMNS = PAPER_METRICS + ("avg_overall", "avg_without_SIR", "uSDR")
COLUMN_LABELS = {"avg_overall": "average overall", "avg_without_SIR": "average without SIR", "uSDR": "uSDR (MDX)"}
ORACLE_LABELS = {"IRM1": "IRM1 (oracle, magnitude ratio mask)", "IRM2": "IRM2 (oracle, power ratio mask)",
                 "IBM1": "IBM1 (oracle, binary mask)", "MWF": "MWF (oracle multichannel Wiener filter)",
                 "MIX": "Mixture (floor: every estimate = mixture)"}
#: A model whose SIR is within this many dB of the mixture floor's barely separates the sources.
UNSEPARATED_SIR_MARGIN = 3.0
COLLAPSE_MARK = "†"
CAVEATS = [
    "SIR, SAR and ISR depend on museval's 512-tap projections onto the references, which are ill-conditioned when "
    "the references are spectrally sparse or band-limited (synthetic stems are): read them as secondary metrics. "
    "SDR does not depend on the projections.",
    "The mixture floor's SAR sits at the float64 round-off floor (its estimates are exact sums of the references); "
    "the same mechanism produces SIR values of 200+ dB whenever an estimate equals its reference up to a gain or "
    "short filter. Its 'average overall' is meaningless.",
    f"{COLLAPSE_MARK}: the stem's estimate collapsed (at least 30 dB below its reference on at least half of the test "
    "songs) in the number of seeds shown. A near-silent estimate scores about 0 dB SDR, above a model that tries and "
    "fails, so such a cell (and the averages it enters) overstates the model.",
]


def values(row: dict, target: str = "overall") -> Dict[str, float]:
    """The paper's metrics of a ledger row for ``target``, its two averages and uSDR."""
    out = {m: float(row.get(f"{m}_{target}", np.nan)) for m in PAPER_METRICS}
    out["avg_overall"] = float(np.mean([out[m] for m in PAPER_METRICS]))
    out["avg_without_SIR"] = float(np.mean([out[m] for m in ("SDR", "SAR", "ISR")]))
    out["uSDR"] = float(row.get(f"uSDR_{target}", np.nan))
    return out


def _mean_std(samples: Sequence[float]) -> tuple:
    v = np.asarray(samples, dtype=float)
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"))


def model_row(spec: ModelSpec, rows: Sequence[dict]) -> dict:
    """Mean and sample std over seeds of one model's ledger rows; per-target SDR; collapsed stems per seed."""
    if not rows:
        raise SpleeterExtError(f"no results for {spec.title}")
    per_seed = [values(r) for r in rows]
    out = {"dimension": spec.dimension, "model": spec.label, "key": spec.key, "config": rows[0]["config"],
           "kind": "stack" if spec.stacked else "model", "seeds": len(rows),
           "seed_list": " ".join(str(int(r["seed"])) for r in rows)}
    for column in COLUMNS:
        out[column], out[f"{column}_std"] = _mean_std([s[column] for s in per_seed])
    for target in INSTRUMENTS:
        out[f"SDR_{target}"], out[f"SDR_{target}_std"] = _mean_std([values(r, target)["SDR"] for r in rows])
        out[f"collapsed_{target}"] = sum(target in str(r.get("collapsed") or "").split() for r in rows)
    out["train_wall_seconds"] = float(np.nanmean([float(r.get("train_wall_seconds", np.nan)) for r in rows]))
    out["steps"] = int(rows[0]["steps"])
    out["commits"] = " ".join(sorted({str(r.get("commit", ""))[:10] for r in rows}))
    return out


def oracle_rows(rows: Sequence[dict]) -> List[dict]:
    by_method = {r["method"]: r for r in rows}
    out = []
    for method in ORACLES:
        if method not in by_method:
            continue
        v = values(by_method[method])
        row = {"dimension": "–", "model": ORACLE_LABELS[method], "key": method, "config": method, "kind": "oracle",
               "seeds": 0}
        for column in COLUMNS:
            row[column], row[f"{column}_std"] = v[column], float("nan")
        for target in INSTRUMENTS:
            row[f"SDR_{target}"], row[f"SDR_{target}_std"] = values(by_method[method], target)["SDR"], float("nan")
            row[f"collapsed_{target}"] = 0
        out.append(row)
    return out


def best_single(rows: Sequence[dict]) -> dict:
    """The single model with the highest mean SDR (ties: the higher average without SIR)."""
    return max((r for r in rows if r["kind"] == "model"), key=lambda r: (r["SDR"], r["avg_without_SIR"]))


def compare(a: dict, b: dict, column: str = "SDR") -> tuple:
    """``(sentence, exceeds)``: whether ``b - a`` in ``column`` exceeds two standard errors of the seed spread
    (None when a model has a single seed)."""
    delta = b[column] - a[column]
    what = f"{COLUMN_LABELS.get(column, column)}: {b['model']} {b['dimension']} − {a['model']} {a['dimension']} = " \
           f"{delta:+.2f} dB"
    na, nb = a["seeds"], b["seeds"]
    if min(na, nb) < 2:
        return (f"{what} with one seed: the seed spread is unknown, so this difference cannot be judged against seed "
                "noise (rerun with --seeds 3)"), None
    sa, sb = a[f"{column}_std"], b[f"{column}_std"]
    se = math.sqrt(sa ** 2 / na + sb ** 2 / nb)
    exceeds = abs(delta) > 2 * se
    return (f"{what} (means of {nb} and {na} seeds; seed std {sb:.2f} / {sa:.2f} dB, standard error of the "
            f"difference {se:.2f} dB): the difference {'EXCEEDS' if exceeds else 'does NOT exceed'} the seed spread "
            f"(|Δ| {'>' if exceeds else '<='} 2 standard errors)"), exceeds


def _cell(row: dict, column: str) -> str:
    mean, std = row.get(column, np.nan), row.get(f"{column}_std", np.nan)
    if not np.isfinite(mean):
        return "–"
    text = f"{mean:.2f} ± {std:.2f}" if np.isfinite(std) else f"{mean:.2f}"
    if column.startswith("SDR_") and row.get(f"collapsed_{column[4:]}", 0):
        text += f" {COLLAPSE_MARK}{int(row[f'collapsed_{column[4:]}'])}/{row['seeds']}"
    return text


def markdown_table(rows: Sequence[dict], columns: Sequence[str], labels: Dict[str, str]) -> List[str]:
    head = ["dimension", "model"] + [labels.get(c, c) for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(columns)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join([str(row["dimension"]), str(row["model"])]
                                       + [_cell(row, c) for c in columns]) + " |")
    return lines


def header(title: str, ctx: Context, seeds: int, testset: str = "test") -> List[str]:
    b = ctx.budget
    data = ctx.data if testset == "test" else ctx.shift
    return [
        f"# {title}", "",
        f"- budget: `{b.name}` ({b.description})",
        f"- training: {ctx.steps} steps, batch size {b.batch_size}, seeds 0..{seeds - 1} "
        f"({'mean ± sample std over seeds' if seeds > 1 else 'one seed: no spread shown'})",
        f"- training data: {ctx.data.source}; fingerprint {ctx.data.fingerprint}",
        f"- test data: {data.source if testset != 'test' else 'its test split'}; fingerprint {data.fingerprint}",
        "- evaluation: museval 0.4.1 BSSEval v4 (images, 1 s frames); every value is SiSEC18's aggregate: median over "
        "the non-NaN frames of a track, median over tracks, mean of the four targets. average overall = mean(SDR, SAR, "
        "SIR, ISR); average without SIR = mean(SDR, SAR, ISR); uSDR = MDX whole-track SDR, mean over tracks and "
        "targets.",
        "",
    ]


def unseparated_notes(rows: Sequence[dict]) -> List[str]:
    """Models whose SIR is near the mixture floor's while their SAR is high: close to a filtered mixture, which
    BSSEval scores as artefact-free, so SAR and the averages that include it overrate them."""
    floor = next((r for r in rows if r["kind"] == "oracle" and r["key"] == "MIX"), None)
    if floor is None or not np.isfinite(floor["SIR"]):
        return []
    models = [r for r in rows if r["kind"] in ("model", "stack")]
    notes = []
    for r in models:
        if r["SIR"] - floor["SIR"] <= UNSEPARATED_SIR_MARGIN and any(
                m["SAR"] < r["SAR"] and m["SIR"] > r["SIR"] for m in models if m is not r):
            notes.append(f"{r['dimension']} {r['model']}: SIR {r['SIR']:.2f} dB, within {UNSEPARATED_SIR_MARGIN:g} dB "
                         f"of the mixture floor's {floor['SIR']:.2f} dB, with SAR {r['SAR']:.2f} dB: its estimates are "
                         "close to a filtered mixture. SAR and the averages that include it rank it above models that "
                         "separate better by SDR; SDR is the ranking to read.")
    return notes


def collect(ledger: Ledger, runner: Runner, specs: Sequence[ModelSpec], seeds: int, testset: str = "test"
            ) -> List[dict]:
    """One row per spec from the ledger (seeds 0..seeds-1 of this budget and data)."""
    out = []
    for spec in specs:
        rows = []
        for seed in range(seeds):
            found = ledger.find("runs", **runner.key(spec, seed, testset))
            if found is None:
                raise SpleeterExtError(f"{spec.title} seed {seed} ({testset}) is not in {ledger.paths['runs']}")
            rows.append(found)
        out.append(model_row(spec, rows))
    return out


def _write(paths: Dict[str, Path], rows: Sequence[dict], lines: Sequence[str]) -> None:
    pd.DataFrame(list(rows)).to_csv(paths["csv"], index=False, float_format="%.4f")
    paths["md"].write_text("\n".join(lines) + "\n")


def run_card(ctx: Context, name: str, seeds: int, started: float, extra: dict) -> dict:
    b = ctx.budget
    return {"table": name, "git_commit": git_commit(), "budget": {
        "name": b.name, "description": b.description, "config_suffix": b.config_suffix, "steps": ctx.steps,
        "batch_size": b.batch_size, "eval_jobs": b.eval_jobs, "metrics": b.metrics, "overrides": dict(b.overrides)},
        "data": ctx.data.card(), "shift_data": ctx.shift.card() if ctx.shift else None, "seeds": list(range(seeds)),
        "versions": versions(), "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.time() - started, 1), **extra}


def table1(ctx: Context, seeds: int, train: bool = True) -> Dict[str, Path]:
    """Train/evaluate what the ledger lacks, then write Table 1 (+ the shifted test set) and Figure 2."""
    started = time.time()
    ledger = Ledger(ctx.results)
    runner = Runner(ctx, ledger)
    if train:
        for testset in runner.testsets():
            runner.oracles(testset)
        runner.models(SINGLE_MODELS, range(seeds))
    rows = collect(ledger, runner, SINGLE_MODELS, seeds)
    oracles = oracle_rows(ledger.rows("oracles", data=ctx.data.fingerprint, testset="test"))
    ctx.results.mkdir(parents=True, exist_ok=True)
    paths = {"csv": ctx.results / "table1.csv", "md": ctx.results / "table1.md", "png": ctx.results / "figure2.png"}
    lines = header("Table 1: single models under equal training conditions", ctx, seeds)
    lines += markdown_table(rows + oracles, COLUMNS, COLUMN_LABELS)
    lines += ["", "SDR per target (SiSEC18 median):", ""]
    lines += markdown_table(rows + oracles, [f"SDR_{t}" for t in INSTRUMENTS], {f"SDR_{t}": t for t in INSTRUMENTS})
    ranked = sorted(rows, key=lambda r: -r["SDR"])
    lines += ["", "Ranking by SDR: " + " > ".join(f"{r['model']} {r['dimension']} ({r['SDR']:.2f})" for r in ranked)]
    if ctx.shift is not None:
        shifted = collect(ledger, runner, SINGLE_MODELS, seeds, "shift")
        shift_oracles = oracle_rows(ledger.rows("oracles", data=ctx.shift.fingerprint, testset="shift"))
        lines += ["", "## The same models on the shifted test set", "",
                  f"{ctx.shift.source}; fingerprint {ctx.shift.fingerprint}.", ""]
        lines += markdown_table(shifted + [o for o in shift_oracles if o["key"] in ("IRM2", "MIX")],
                                ("SDR", "uSDR") + tuple(f"SDR_{t}" for t in INSTRUMENTS),
                                dict(COLUMN_LABELS, **{f"SDR_{t}": f"SDR {t}" for t in INSTRUMENTS}))
        ranked_shift = sorted(shifted, key=lambda r: -r["SDR"])
        lines += ["", "Ranking by SDR under the shift: " + " > ".join(
            f"{r['model']} {r['dimension']} ({r['SDR']:.2f})" for r in ranked_shift)]
        pd.DataFrame(shifted).to_csv(ctx.results / "table1_shift.csv", index=False, float_format="%.4f")
        paths["shift_csv"] = ctx.results / "table1_shift.csv"
    lines += ["", "Notes:", ""] + [f"- {c}" for c in CAVEATS + unseparated_notes(rows + oracles)]
    lines += ["", f"Figure 2 (`{paths['png'].name}`): average without SIR per model (bars), SDR (diamonds)."]
    _write(paths, rows + oracles, lines)
    figures.figure2(rows, oracles, paths["png"], seeds)
    paths["card"] = ctx.results / "table1_runcard.json"
    write_json(paths["card"], run_card(ctx, "table1", seeds, started, {
        "rows": {r["key"]: {"seeds": r["seed_list"], "commits": r["commits"],
                            "train_wall_seconds_mean": r["train_wall_seconds"]} for r in rows},
        "outputs": {k: display_path(p) for k, p in paths.items()}}))
    logger.info("Table 1 written to %s", paths["md"])
    return paths


def table2(ctx: Context, seeds: int, stage1: Optional[str] = None, train: bool = True) -> Dict[str, Path]:
    """The paper's phase two: Table 1's winner (or ``stage1``) against a stack of two networks of its architecture,
    at the same budget and seeds."""
    started = time.time()
    first = table1(ctx, seeds, train=train)
    ledger = Ledger(ctx.results)
    runner = Runner(ctx, ledger)
    singles = collect(ledger, runner, SINGLE_MODELS, seeds)
    winner = best_single(singles)
    base_spec = model_spec(stage1) if stage1 else model_spec(winner["key"])
    if base_spec.stacked:
        raise SpleeterExtError(f"--stage1 {stage1}: name a single model, not a stack")
    base = next(r for r in singles if r["key"] == base_spec.key)
    spec = stack_of(base_spec)
    if train:
        runner.models([spec], range(seeds))
    stacked = collect(ledger, runner, [spec], seeds)[0]
    verdicts, exceeds = [], {}
    for column in ("SDR", "avg_without_SIR"):
        sentence, verdict = compare(base, stacked, column)
        verdicts.append(sentence)
        exceeds[column] = verdict
    delta = {"dimension": "", "model": "difference (stacked − single)", "key": "difference", "config": "",
             "kind": "difference", "seeds": seeds}
    for column in COLUMNS + tuple(f"SDR_{t}" for t in INSTRUMENTS):
        delta[column], delta[f"{column}_std"] = stacked[column] - base[column], float("nan")
    choice = (f"chosen with --stage1 {stage1}" if stage1 else
              f"the winner of Table 1 (highest SDR, {winner['SDR']:.2f} dB)")
    rows = [dict(base, model=f"{base['model']} (single model; {'fixed choice' if stage1 else 'Table 1 winner'})"),
            dict(stacked), delta]
    paths = {"csv": ctx.results / "table2.csv", "md": ctx.results / "table2.md", "png": ctx.results / "figure4.png"}
    lines = header("Table 2: the best single model against a stack of two networks of its architecture", ctx, seeds)
    lines += [f"Stage one and the refiners: {base_spec.title} (`{base['config']}`), {choice}; stacked model "
              f"`{stacked['config']}`: stage one = {base_spec.title}, stage two = one {base_spec.title} per stem "
              "refining that stem's estimate (input: the estimate and the mixture), trained end to end with the same "
              "steps, batch size, data and seeds.", ""]
    lines += markdown_table(rows, COLUMNS + tuple(f"SDR_{t}" for t in INSTRUMENTS),
                            dict(COLUMN_LABELS, **{f"SDR_{t}": f"SDR {t}" for t in INSTRUMENTS}))
    lines += ["", "Seed spread:", ""] + [f"- {v}" for v in verdicts]
    if ctx.shift is not None:
        b_shift = collect(ledger, runner, [base_spec], seeds, "shift")[0]
        s_shift = collect(ledger, runner, [spec], seeds, "shift")[0]
        lines += ["", "On the shifted test set:", "", f"- {compare(b_shift, s_shift, 'SDR')[0]}"]
    lines += ["", "Notes:", ""] + [f"- {c}" for c in (CAVEATS[0], CAVEATS[2])]
    lines += ["", f"Figure 4 (`{paths['png'].name}`): SDR and average without SIR."]
    _write(paths, rows, lines)
    figures.figure4(base, stacked, paths["png"], seeds)
    paths["card"] = ctx.results / "table2_runcard.json"
    write_json(paths["card"], run_card(ctx, "table2", seeds, started, {
        "stage1": base_spec.key, "stage1_choice": "given" if stage1 else "Table 1 winner", "stacked": spec.key,
        "difference_exceeds_seed_spread": exceeds, "verdicts": verdicts,
        "outputs": {k: display_path(p) for k, p in {**first, **paths}.items()}}))
    logger.info("Table 2 written to %s", paths["md"])
    return paths
