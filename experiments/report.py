"""The learning-curves report: when does the ranking of the models settle, at equal steps, FLOPs and time;
the stack's gain over its first stage's architecture at every budget; verdicts on the paper's H1 and H2."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from spleeter_ext.log import logger

from . import figures, tables
from .common import INSTRUMENTS, SINGLE_MODELS, Context, ModelSpec, display_path, model_spec, stack_of, write_json
from .ledger import Ledger
from .runner import Runner

AXES = {"step": "steps", "train_flops": "training FLOPs", "cpu_seconds": "training time (CPU seconds)"}


def mean_curves(rows: Sequence[dict], keys: Sequence[str], seeds: int) -> Dict[str, pd.DataFrame]:
    """Per model: the steps every seed reached, with mean SDR, its sample std and the mean of the cost axes."""
    frame = pd.DataFrame(list(rows))
    out = {}
    for key in keys:
        mine = frame[(frame["model"] == key) & (frame["seed"] < seeds)] if not frame.empty else frame
        if mine.empty:
            continue
        counts = mine.groupby("step")["seed"].nunique()
        steps = counts[counts == mine["seed"].nunique()].index
        mine = mine[mine["step"].isin(steps)]
        g = mine.groupby("step")
        agg = g[["SDR", "train_flops", "wall_seconds", "cpu_seconds"]].mean()
        agg["SDR_std"] = g["SDR"].std(ddof=1)
        agg["seeds"] = g["seed"].nunique()
        for name in INSTRUMENTS:
            if f"SDR_{name}" in mine:
                agg[f"SDR_{name}"] = g[f"SDR_{name}"].mean()
        agg["collapsed"] = g["collapsed"].apply(
            lambda c: " ".join(sorted({s for v in c.fillna("") for s in str(v).split()})))
        out[key] = agg.reset_index()
    return out


#: a run whose validation SDR moves less than this over three or more curve steps has stopped learning
STALL_DB = 0.01


def stalled(rows: Sequence[dict], keys: Sequence[str], seeds: int) -> List[dict]:
    """Runs (model, seed) whose validation SDR stayed within ``STALL_DB`` of one value over at least three
    consecutive curve steps: the output no longer follows the weights (e.g. every mask saturated at zero),
    a failure the level-based collapse flag misses when the mixture still leaks through."""
    frame = pd.DataFrame(list(rows))
    found = []
    if frame.empty:
        return found
    for (key, seed), f in frame[frame["model"].isin(keys) & (frame["seed"] < seeds)].groupby(["model", "seed"]):
        f = f.sort_values("step")
        sdr, steps = f["SDR"].to_numpy(float), f["step"].to_numpy(int)
        start = 0
        for end in range(1, len(sdr) + 1):
            if end == len(sdr) or abs(sdr[end] - sdr[start]) >= STALL_DB:
                if end - start >= 3:
                    found.append({"model": key, "seed": int(seed), "from": int(steps[start]),
                                  "to": int(steps[end - 1]), "SDR": float(sdr[start])})
                start = end
    return found


def ranking(scores: Dict[str, float]) -> List[str]:
    """Model keys by decreasing score (NaN last)."""
    return sorted(scores, key=lambda k: (-scores[k] if np.isfinite(scores[k]) else math.inf, k))


def tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau between two rankings of the same models."""
    common = [k for k in a if k in b]
    if len(common) < 2:
        return float("nan")
    return float(kendalltau([a.index(k) for k in common], [b.index(k) for k in common])[0])


def settled_from(rankings: Dict[int, List[str]]) -> Optional[int]:
    """The smallest budget from which every larger budget ranks the models as the last one does; None when the
    ranking still changed at the last budget (not settled within this budget)."""
    steps = sorted(rankings)
    final = rankings[steps[-1]]
    first = steps[-1]
    for s in reversed(steps):
        if rankings[s] != final:
            break
        first = s
    if len(steps) > 1 and first == steps[-1]:
        return None
    return first


def interpolate(frame: pd.DataFrame, axis: str, level: float) -> float:
    """SDR at ``level`` of ``axis`` (linear in log ``axis``); NaN outside the curve."""
    x = frame[axis].to_numpy(dtype=float)
    y = frame["SDR"].to_numpy(dtype=float)
    if not len(x) or level < x.min() * (1 - 1e-9) or level > x.max() * (1 + 1e-9):
        return float("nan")
    return float(np.interp(np.log(level), np.log(x), y))


def levels(curves: Dict[str, pd.DataFrame], axis: str, n: int = 4) -> List[float]:
    """``n`` log-spaced levels of ``axis`` that every curve covers (the overlap of their ranges); when the ranges
    do not overlap, the smallest final value (models that never got that cheap drop out)."""
    lo = max(float(f[axis].min()) for f in curves.values())
    hi = min(float(f[axis].max()) for f in curves.values())
    if lo <= hi:
        return [float(v) for v in np.geomspace(lo, hi, n)] if hi > lo else [hi]
    return [hi]


def rankings_at(curves: Dict[str, pd.DataFrame], axis: str) -> List[dict]:
    out = []
    for level in levels(curves, axis):
        scores = {k: interpolate(f, axis, level) for k, f in curves.items()}
        out.append({"level": level, "scores": scores, "ranking": [k for k in ranking(scores)
                                                                   if np.isfinite(scores[k])]})
    return out


def stack_gain(curves: Dict[str, pd.DataFrame], base: str, stacked: str) -> pd.DataFrame:
    """SDR of the stack minus its first stage's architecture at every common step, with the standard error."""
    a, b = curves[base].set_index("step"), curves[stacked].set_index("step")
    steps = [s for s in b.index if s in a.index]
    rows = []
    for s in steps:
        n_a, n_b = a.loc[s, "seeds"], b.loc[s, "seeds"]
        se = math.sqrt(a.loc[s, "SDR_std"] ** 2 / n_a + b.loc[s, "SDR_std"] ** 2 / n_b) if min(n_a, n_b) > 1 \
            else float("nan")
        rows.append({"step": int(s), "single": a.loc[s, "SDR"], "stacked": b.loc[s, "SDR"],
                     "gain": b.loc[s, "SDR"] - a.loc[s, "SDR"], "se": se,
                     "flops_ratio": b.loc[s, "train_flops"] / a.loc[s, "train_flops"]})
    return pd.DataFrame(rows)


def _name(labels: Dict[str, str], key: str) -> str:
    return labels.get(key, key)


def verdict_h1(rankings: Dict[int, List[str]], compute: List[dict], labels: Dict[str, str],
               candidate: str = "demucs_2d") -> str:
    """H1 (the paper): "2D Demucs would continue to be the best model if all models were trained more"."""
    steps = sorted(rankings)
    final = rankings[steps[-1]]
    leader = final[0]
    lead_since = steps[-1]
    for s in reversed(steps):
        if rankings[s][0] != leader:
            break
        lead_since = s
    pos = final.index(candidate) + 1 if candidate in final else None
    text = (f"At {steps[-1]} steps the best model is {_name(labels, leader)}, first at every budget from {lead_since} "
            f"steps on" + (f"; 2D Demucs ranks {pos} of {len(final)}." if pos else "."))
    if compute:
        best = _name(labels, compute[-1]["ranking"][0])
        text += f" At equal training FLOPs (the largest common level) the best is {best}."
    if leader == candidate:
        return "H1 is consistent with these curves: " + text
    return ("H1 is not supported at this budget: " + text + " The paper's winner does not lead here, and the leader "
            "has not changed since " + f"{lead_since} steps.")


def verdict_h2(gain: pd.DataFrame, labels: Dict[str, str], base: str) -> str:
    """H2 (the paper): "with more training the [stack's] improvements will be much more noticeable"."""
    if gain.empty:
        return "H2 cannot be judged: the stack has no curve yet."
    first, last = gain.iloc[0], gain.iloc[-1]
    beyond = np.isfinite(last["se"]) and abs(last["gain"]) > 2 * last["se"]
    trend = last["gain"] - first["gain"]
    text = (f"The stack of {_name(labels, base)} gains {first['gain']:+.2f} dB over the single model at "
            f"{int(first['step'])} steps and {last['gain']:+.2f} dB at {int(last['step'])} steps "
            f"(standard error {last['se']:.2f} dB; the stack costs {last['flops_ratio']:.1f}x the FLOPs per step).")
    if last["gain"] > 0 and beyond and trend > 0:
        return "H2 is supported at this budget: " + text + " The gain grows with training and exceeds the seed noise."
    if last["gain"] > 0 and trend > 0:
        return "H2 is not established at this budget: " + text + " The gain grows but stays within the seed noise."
    return "H2 is not supported at this budget: " + text + " The gain does not grow with training."


def analyse(curves: Dict[str, pd.DataFrame], labels: Dict[str, str], singles: Sequence[str],
            stacked: Optional[str] = None, base: Optional[str] = None) -> dict:
    """Everything the report states, from mean curves (pure: testable on hand-made curves)."""
    single_curves = {k: curves[k] for k in singles if k in curves}
    all_curves = dict(single_curves, **({stacked: curves[stacked]} if stacked and stacked in curves else {}))
    common = sorted(set.intersection(*(set(f["step"]) for f in all_curves.values())))
    rankings = {int(s): ranking({k: float(f.set_index("step").loc[s, "SDR"]) for k, f in all_curves.items()})
                for s in common}
    pairs = [{"from": a, "to": b, "tau": tau(rankings[a], rankings[b]), "changed": rankings[a] != rankings[b]}
             for a, b in zip(common, common[1:])]
    out = {"steps": common, "rankings": rankings, "pairs": pairs, "settled_from": settled_from(rankings),
           "flops": rankings_at(all_curves, "train_flops"), "cpu": rankings_at(all_curves, "cpu_seconds"),
           "h1": verdict_h1({s: [k for k in r if k in single_curves] for s, r in rankings.items()},
                            rankings_at(single_curves, "train_flops"), labels)}
    if stacked and stacked in curves and base in curves:
        out["gain"] = stack_gain(curves, base, stacked)
        out["h2"] = verdict_h2(out["gain"], labels, base)
    return out


def _format(analysis: dict, labels: Dict[str, str]) -> List[str]:
    lines = ["## Rankings by validation SDR at equal steps", "",
             "| steps | ranking (best first) | Kendall's τ with the previous budget |", "|---:|---|---:|"]
    taus = {p["to"]: p["tau"] for p in analysis["pairs"]}
    for s in analysis["steps"]:
        t = taus.get(s)
        lines.append(f"| {s} | " + " > ".join(_name(labels, k) for k in analysis["rankings"][s])
                     + f" | {'' if t is None else f'{t:.2f}'} |")
    settled = analysis["settled_from"]
    lines += ["", ("The ranking is **settled from " + f"{settled} steps** (every later budget ranks the models as the "
                   "last one)") if settled is not None else
              "The ranking is **not settled within this budget** (it still changed at the last budget).", ""]
    for key, title in (("flops", "equal training FLOPs"), ("cpu", "equal training time (process CPU seconds)")):
        lines += [f"## Rankings at {title}", "", "| level | ranking (best first; SDR interpolated in log cost) |",
                  "|---:|---|"]
        for r in analysis[key]:
            level = f"{r['level']:.3g}"
            lines.append(f"| {level} | " + " > ".join(f"{_name(labels, k)} ({r['scores'][k]:.2f})"
                                                      for k in r["ranking"]) + " |")
        lines.append("")
    if "gain" in analysis:
        lines += ["## The stack's gain over its first stage's architecture", "",
                  "| steps | single (dB) | stacked (dB) | gain (dB) | standard error (dB) |",
                  "|---:|---:|---:|---:|---:|"]
        for _, g in analysis["gain"].iterrows():
            lines.append(f"| {int(g['step'])} | {g['single']:.2f} | {g['stacked']:.2f} | {g['gain']:+.2f} | "
                         f"{g['se']:.2f} |")
        lines.append("")
    lines += ["## Verdicts", "", f"- {analysis['h1']}"] + ([f"- {analysis['h2']}"] if "h2" in analysis else [])
    return lines


def curves(ctx: Context, seeds: int, train: bool = True) -> Dict[str, Path]:
    """Table 2 (which trains the six models and the stack of the winner), then Figure 5 and the curves report."""
    started = time.time()
    paths = tables.table2(ctx, seeds, train=train)
    ledger = Ledger(ctx.results)
    runner = Runner(ctx, ledger)
    singles = tables.collect(ledger, runner, SINGLE_MODELS, seeds)
    base: ModelSpec = model_spec(tables.best_single(singles)["key"])
    stacked = stack_of(base)
    specs = list(SINGLE_MODELS) + [stacked]
    labels = {s.key: s.title for s in specs}
    rows = [r for r in ledger.rows("curves", data=ctx.data.fingerprint, batch_size=ctx.budget.batch_size)
            if int(r["run_steps"]) == ctx.steps]
    mc = mean_curves(rows, [s.key for s in specs], seeds)
    analysis = analyse(mc, labels, [s.key for s in SINGLE_MODELS], stacked.key, base.key)
    out = {"md": ctx.results / "curves.md", "csv": ctx.results / "curves_summary.csv",
           "png": ctx.results / "figure5.png"}
    pd.concat([f.assign(model=k) for k, f in mc.items()]).to_csv(out["csv"], index=False, float_format="%.6g")
    figures.figure5(mc, labels, out["png"], seeds, ctx.budget.batch_size)
    lines = tables.header("Learning curves: when does the ranking settle?", ctx, seeds)
    lines += [f"Validation SDR (SiSEC18 median over 1 s frames and songs, mean of 4 stems) of the six single models "
              f"and the stack of Table 1's winner ({base.title}) at log-spaced steps; mean over seeds. Training FLOPs "
              "count forward + backward (3 forward passes, 2 FLOPs per multiply-accumulate). CPU seconds exclude "
              "scoring.", ""]
    lines += _format(analysis, labels)
    revived = []
    for key, f in mc.items():
        hit = f[f["collapsed"] != ""]
        if not hit.empty:
            last = f.iloc[-1]
            when = ", ".join(f"{int(s)} steps: {c}" for s, c in zip(hit["step"], hit["collapsed"]))
            revived.append(f"- {labels[key]}: collapsed stems {when}; "
                           f"at {int(last['step'])} steps: {last['collapsed'] or 'none (revived)'}")
    lines += ["", "## Collapsed stems on the validation songs (estimate ≥ 30 dB below the reference, any seed)", ""]
    lines += revived or ["- none"]
    lines += ["", f"## Stalled runs (validation SDR within {STALL_DB} dB over three or more curve steps)", ""]
    lines += [f"- {labels[r['model']]}, seed {r['seed']}: {r['SDR']:.2f} dB from {r['from']} to {r['to']} steps"
              for r in stalled(rows, [s.key for s in specs], seeds)] or ["- none"]
    lines += ["", f"Figure 5 (`{out['png'].name}`): SDR against steps and against training FLOPs."]
    out["md"].write_text("\n".join(lines) + "\n")
    out["card"] = ctx.results / "curves_runcard.json"
    write_json(out["card"], tables.run_card(ctx, "curves", seeds, started, {
        "settled_from": analysis["settled_from"], "h1": analysis["h1"], "h2": analysis.get("h2"),
        "outputs": {k: display_path(p) for k, p in {**paths, **out}.items()}}))
    logger.info("curves report written to %s", out["md"])
    return {**paths, **out}
