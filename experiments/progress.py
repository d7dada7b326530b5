"""``python -m experiments status``: which runs of a budget the ledger holds, which are missing, and the
training time still needed, estimated from the finished runs; read from the committed ledger alone."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from .common import SINGLE_MODELS, Budget, ModelSpec, display_path, stack_of
from .ledger import Ledger


def progress(ledger: Ledger, budget: Budget, steps: int, seeds: int,
             specs: Sequence[ModelSpec] = SINGLE_MODELS) -> List[Dict]:
    """One row per model: the seeds with a test-set result, the missing ones, the mean wall seconds of a
    finished run (training + both evaluations) and the estimate for the missing seeds (NaN when no seed
    of the model has finished). Rows of another data fingerprint or batch size count separately: the one
    with the most finished seeds is shown."""
    runs = [r for r in ledger.rows("runs", steps=steps, batch_size=budget.batch_size) if int(r["seed"]) < seeds]
    out = []
    for spec in specs:
        config = spec.key + budget.config_suffix
        mine = [r for r in runs if r["config"] == config]
        by_data: Dict[str, List[dict]] = {}
        for r in mine:
            by_data.setdefault(str(r["data"]), []).append(r)
        rows = max(by_data.values(), key=lambda rs: len({int(r["seed"]) for r in rs if r["testset"] == "test"}),
                   default=[])
        done = sorted({int(r["seed"]) for r in rows if r["testset"] == "test"})
        per_seed: Dict[int, float] = {}
        for r in rows:
            seed = int(r["seed"])
            per_seed.setdefault(seed, float(r.get("train_wall_seconds") or 0.0))
            per_seed[seed] += float(r.get("eval_wall_seconds") or 0.0)
        mean = float(np.mean([per_seed[s] for s in done])) if done else float("nan")
        tested = [float(r["SDR_overall"]) for r in rows if r["testset"] == "test"]
        missing = [s for s in range(seeds) if s not in done]
        out.append({"key": spec.key, "title": spec.title, "config": config, "done": done, "missing": missing,
                    "run_seconds": mean, "left_seconds": mean * len(missing) if missing else 0.0,
                    "SDR": float(np.mean(tested)) if tested else float("nan")})
    return out


def leader(rows: Sequence[Dict]) -> Optional[ModelSpec]:
    """The single model of :func:`progress` rows with the highest mean test SDR over its finished seeds
    (provisional while seeds are missing), or None before any run finished."""
    scores = {r["key"]: r["SDR"] for r in rows if np.isfinite(r["SDR"])}
    if not scores:
        return None
    best = max(scores, key=scores.get)
    return next(s for s in SINGLE_MODELS if s.key == best)


def format_progress(ledger: Ledger, budget: Budget, steps: int, seeds: int) -> List[str]:
    """The status table of the six single models and the stack of the (provisional) winner."""
    rows = progress(ledger, budget, steps, seeds)
    best = leader(rows)
    if best is not None:
        rows += progress(ledger, budget, steps, seeds, [stack_of(best)])
    lines = [f"budget '{budget.name}', {steps} steps at batch {budget.batch_size}, seeds 0..{seeds - 1}; "
             f"results in {display_path(ledger.folder)}", "",
             "| model | seeds done | missing | wall per run (min) | left (min) |", "|---|---|---|---:|---:|"]
    for r in rows:
        per = f"{r['run_seconds'] / 60:.1f}" if np.isfinite(r["run_seconds"]) else "?"
        left = f"{r['left_seconds'] / 60:.0f}" if np.isfinite(r["left_seconds"]) else "?"
        lines.append(f"| {r['title']} | {' '.join(map(str, r['done'])) or '-'} | "
                     f"{' '.join(map(str, r['missing'])) or '-'} | {per} | {left} |")
    known = sum(r["left_seconds"] for r in rows if np.isfinite(r["left_seconds"]))
    unknown = [r["title"] for r in rows if not np.isfinite(r["left_seconds"])]
    lines += ["", f"left: {known / 3600:.1f} h of wall time measured on the finished runs"
              + (f", plus {', '.join(unknown)} (no finished run to estimate from)" if unknown else "")]
    if best is not None:
        lines.append(f"the stack is of the current leader, {best.title}"
                     + (" (provisional: seeds are missing)" if any(r["missing"] for r in rows[:len(SINGLE_MODELS)])
                        else ""))
    return lines
