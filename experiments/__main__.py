"""``python -m experiments``: train, evaluate and tabulate the paper's experiments (see experiments/README.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from spleeter_ext.cli import command
from spleeter_ext.errors import SpleeterExtError

from .common import BUDGETS, DEFAULT_RUNS, PUBLIC_BUDGETS, RESULTS, SINGLE_MODELS, Context, model_spec, prepare_data
from .ledger import Ledger

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

BudgetOption = typer.Option("default", "--budget", help=f"one of {', '.join(PUBLIC_BUDGETS)}")
SeedsOption = typer.Option(3, "--seeds", min=1, help="trainings per model, seeds 0..N-1")
DataOption = typer.Option(None, "--data", help="dataset root (required by --budget paper; default: the budget's "
                                                "synthetic set, generated when missing)")
StepsOption = typer.Option(None, "--steps", min=1, help="override the budget's training steps")
OutOption = typer.Option(None, "--out", help="results folder (default experiments/results/<budget>)")
RunsOption = typer.Option(str(DEFAULT_RUNS), "--runs", help="where model directories go (reused across runs)")


def context(budget: str, data: Optional[str], steps: Optional[int], out: Optional[str], runs: str) -> Context:
    if budget not in BUDGETS:
        raise SpleeterExtError(f"--budget must be one of {', '.join(PUBLIC_BUDGETS)}, got {budget!r}")
    b = BUDGETS[budget]
    info = prepare_data(b.data, data, b.name)
    shift = prepare_data(b.shift, None, b.name) if (b.shift is not None and not data) else None
    steps = int(steps or b.steps)
    return Context(b, info, shift, steps, results_folder(budget, steps, out), Path(runs))


def results_folder(budget: str, steps: int, out: Optional[str]) -> Path:
    """``--out``, else ``results/<budget>`` (``results/<budget>-<N>steps`` for another number of steps)."""
    b = BUDGETS[budget]
    return Path(out) if out else RESULTS / (b.name if steps == b.steps else f"{b.name}-{steps}steps")


def _print(paths) -> None:
    for path in paths:
        typer.echo(path)


@command(target=app)
def run(models: List[str] = typer.Argument(None, help="model keys (default: the six single models)"),
        budget: str = BudgetOption, seeds: int = SeedsOption, data: Optional[str] = DataOption,
        steps: Optional[int] = StepsOption, out: Optional[str] = OutOption, runs: str = RunsOption) -> None:
    """Train and evaluate models (seed-major) into the results ledger; nothing already there is redone."""
    from .runner import Runner

    ctx = context(budget, data, steps, out, runs)
    runner = Runner(ctx, Ledger(ctx.results))
    specs = [model_spec(k) for k in models] if models else list(SINGLE_MODELS)
    for testset in runner.testsets():
        runner.oracles(testset)
    runner.models(specs, range(seeds))
    _print([ctx.results])


@command(target=app)
def table1(budget: str = BudgetOption, seeds: int = SeedsOption, data: Optional[str] = DataOption,
           steps: Optional[int] = StepsOption, out: Optional[str] = OutOption, runs: str = RunsOption) -> None:
    """Table 1 and Figure 2: the six single models under equal conditions."""
    from . import tables

    _print(tables.table1(context(budget, data, steps, out, runs), seeds).values())


@command(target=app)
def table2(budget: str = BudgetOption, seeds: int = SeedsOption, data: Optional[str] = DataOption,
           steps: Optional[int] = StepsOption, out: Optional[str] = OutOption, runs: str = RunsOption,
           stage1: Optional[str] = typer.Option(None, "--stage1", help="architecture of both stages (default: "
                                                                       "Table 1's winner), e.g. demucs_2d")) -> None:
    """Table 2 and Figure 4: the paper's phase two, Table 1's winner against two networks of its architecture."""
    from . import tables

    _print(tables.table2(context(budget, data, steps, out, runs), seeds, stage1).values())


@command(target=app)
def curves(budget: str = BudgetOption, seeds: int = SeedsOption, data: Optional[str] = DataOption,
           steps: Optional[int] = StepsOption, out: Optional[str] = OutOption, runs: str = RunsOption) -> None:
    """Learning curves of the six models and the stack of the winner: Figure 5 and the curves report."""
    from . import report

    _print(report.curves(context(budget, data, steps, out, runs), seeds).values())


@command(target=app)
def status(budget: str = BudgetOption, seeds: int = SeedsOption, steps: Optional[int] = StepsOption,
           out: Optional[str] = OutOption) -> None:
    """What the ledger holds of a budget, what is missing and the wall time still needed (reads the ledger
    only: no data, no training)."""
    from .progress import format_progress

    if budget not in BUDGETS:
        raise SpleeterExtError(f"--budget must be one of {', '.join(PUBLIC_BUDGETS)}, got {budget!r}")
    b = BUDGETS[budget]
    steps = int(steps or b.steps)
    for line in format_progress(Ledger(results_folder(budget, steps, out)), b, steps, seeds):
        typer.echo(line)


def main() -> None:
    app(prog_name="python -m experiments")


if __name__ == "__main__":
    sys.exit(main())
