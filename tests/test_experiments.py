"""experiments/: the results ledger, Tables 1-2 and the curves report regenerated from it, budgets.

The fast tests feed hand-made ledger rows and curves; the slow one trains every model for two steps on a
tiny numpy synthetic set and builds the tables and the curves report end to end.
"""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from experiments import report, tables
from experiments.common import BUDGETS, INSTRUMENTS, METRICS, SINGLE_MODELS, TARGETS, Context, DataInfo, stack_of
from experiments.ledger import Ledger
from experiments.runner import ORACLES, Runner
from tests.conftest import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_ctx(tmp_path, steps=1600):
    return Context(BUDGETS["default"], DataInfo(tmp_path, "d0", "made-up data"), DataInfo(tmp_path, "s0", "shifted"),
                   steps, tmp_path / "results", tmp_path / "runs")


def metric_columns(sdr, collapsed=""):
    row = {}
    for k, target in enumerate(TARGETS):
        value = sdr + (0.5 * k - 0.75 if target != "overall" else 0.0)
        for metric in METRICS:
            row[f"{metric}_{target}"] = value + {"SDR": 0, "SAR": 3, "SIR": 6, "ISR": 4, "uSDR": 0.2}[metric]
    row["collapsed"] = collapsed
    return row


def fill_ledger(ctx, sdr_of, seeds=3, collapsed=None, shift_offset=-2.0):
    ledger = Ledger(ctx.results)
    runner = Runner(ctx, ledger)
    rng = np.random.default_rng(0)
    for key, sdr in sdr_of.items():
        spec = next((s for s in SINGLE_MODELS if s.key == key), None) or stack_of(
            next(s for s in SINGLE_MODELS if f"stack_{s.key}" == key))
        for seed in range(seeds):
            for testset, offset in (("test", 0.0), ("shift", shift_offset)):
                value = sdr + offset + 0.05 * rng.standard_normal()
                ledger.add_run({**runner.key(spec, seed, testset), "model": key, "commit": "abc",
                                "train_wall_seconds": 60.0, **metric_columns(value, (collapsed or {}).get(key, ""))})
    for testset, data in (("test", "d0"), ("shift", "s0")):
        ledger.add_oracles([{"method": m, "data": data, "testset": testset, "commit": "abc",
                             **metric_columns(s)} for m, s in zip(ORACLES, (10, 12, 9, 13, -5))])
    return ledger


SDR_OF = {"spleeter_1d": 1.0, "spleeter_2d": 2.0, "wave_unet_1d": 5.0, "wave_unet_2d": 0.5, "demucs_1d": 3.0,
          "demucs_2d": 1.5}


def test_ledger_replaces_rows_of_the_same_key_and_keeps_the_rest(tmp_path):
    ledger = Ledger(tmp_path)
    base = {"config": "a_small", "steps": 10, "batch_size": 4, "data": "d0", "testset": "test"}
    ledger.add_run({**base, "seed": 1, "SDR_overall": 1.0, "commit": "old"})
    ledger.add_run({**base, "seed": 0, "SDR_overall": 2.0, "commit": "old"})
    ledger.add_run({**base, "seed": 1, "SDR_overall": 3.0, "commit": "new"})
    rows = ledger.rows("runs")
    assert [(r["seed"], r["SDR_overall"], r["commit"]) for r in rows] == [(0, 2.0, "old"), (1, 3.0, "new")]
    assert ledger.find("runs", **base, seed=1)["SDR_overall"] == 3.0
    assert ledger.find("runs", **dict(base, data="other"), seed=1) is None


def test_table1_from_the_ledger_marks_collapsed_stems_and_shows_the_shift(tmp_path):
    ctx = make_ctx(tmp_path)
    fill_ledger(ctx, SDR_OF, collapsed={"demucs_2d": "bass"})
    paths = tables.table1(ctx, 3, train=False)
    frame = pd.read_csv(paths["csv"])
    assert list(frame["kind"]) == ["model"] * 6 + ["oracle"] * 5
    assert np.isfinite(frame[["SDR", "SAR", "SIR", "ISR", "avg_overall", "avg_without_SIR", "uSDR"]]).all().all()
    assert np.isfinite(frame["SDR_std"][:6]).all()
    md = paths["md"].read_text()
    assert "| dimension | model | SDR | SAR | SIR | ISR | average overall | average without SIR | uSDR (MDX) |" in md
    assert md.count("†3/3") == 2  # 2D Demucs' bass, in every seed, on the test and on the shifted set
    assert "Ranking by SDR: Wave-U-Net 1D" in md
    assert "shifted test set" in md and "Ranking by SDR under the shift: Wave-U-Net 1D" in md
    assert paths["png"].read_bytes()[:8] == PNG_MAGIC
    again = tables.table1(ctx, 3, train=False)  # regenerated from the committed ledger: identical
    assert again["md"].read_text() == md


def test_table2_stacks_the_winner_with_its_own_architecture(tmp_path):
    ctx = make_ctx(tmp_path)
    fill_ledger(ctx, dict(SDR_OF, stack_wave_unet_1d=6.0, stack_demucs_2d=1.0))
    paths = tables.table2(ctx, 3, train=False)
    frame = pd.read_csv(paths["csv"])
    assert list(frame["key"]) == ["wave_unet_1d", "stack_wave_unet_1d", "difference"]
    assert frame["SDR"].iloc[2] == pytest.approx(1.0, abs=0.2)
    md = paths["md"].read_text()
    assert "stage one = Wave-U-Net 1D, stage two = one Wave-U-Net 1D per stem" in md
    assert "EXCEEDS the seed spread" in md and "winner of Table 1" in md
    card = json.loads(paths["card"].read_text())
    assert card["stage1"] == "wave_unet_1d" and card["stacked"] == "stack_wave_unet_1d"
    # the paper's fixed choice
    paths = tables.table2(ctx, 3, stage1="demucs_2d", train=False)
    assert list(pd.read_csv(paths["csv"])["key"]) == ["demucs_2d", "stack_demucs_2d", "difference"]
    assert "chosen with --stage1 demucs_2d" in paths["md"].read_text()


def test_compare_needs_two_seeds(tmp_path):
    a = {"model": "A", "dimension": "1D", "SDR": 1.0, "SDR_std": 0.1, "seeds": 1}
    sentence, verdict = tables.compare(a, dict(a, SDR=2.0), "SDR")
    assert verdict is None and "cannot be judged" in sentence


def curve(steps, sdr, flops_per_step, cpu_per_step, std=0.1, seeds=3):
    return pd.DataFrame({"step": steps, "SDR": sdr, "SDR_std": [std] * len(steps), "seeds": [seeds] * len(steps),
                         "train_flops": [s * flops_per_step for s in steps],
                         "cpu_seconds": [s * cpu_per_step for s in steps], "collapsed": [""] * len(steps)})


def test_settled_ranking_kendall_tau_and_equal_compute_on_hand_made_curves():
    steps = [100, 200, 400, 800, 1600]
    curves = {
        "a": curve(steps, [1.0, 2.0, 3.0, 4.0, 5.0], 1e9, 0.5),     # slow start, best in the end
        "b": curve(steps, [2.0, 2.5, 2.8, 3.0, 3.1], 4e9, 2.0),     # fast start, 4x the cost per step
        "c": curve(steps, [0.0, 0.5, 1.0, 1.5, 2.0], 1e9, 0.5),
        "stack_a": curve(steps, [0.5, 1.8, 3.2, 4.5, 5.8], 2e9, 1.0),
    }
    labels = {k: k.upper() for k in curves}
    out = report.analyse(curves, labels, ["a", "b", "c"], "stack_a", "a")
    assert out["rankings"][100] == ["b", "a", "stack_a", "c"]
    assert out["rankings"][400] == ["stack_a", "a", "b", "c"]
    assert out["settled_from"] == 400
    assert out["pairs"][0]["tau"] == pytest.approx(1.0) and not out["pairs"][0]["changed"]
    assert out["pairs"][1]["changed"] and out["pairs"][1]["tau"] == pytest.approx(0.0)  # 3 pairs swap, 3 keep
    assert out["pairs"][-1]["changed"] is False and out["pairs"][-1]["tau"] == pytest.approx(1.0)
    # at equal FLOPs b's 4x cost per step counts against it: at 4e11 FLOPs, a (400 steps, 3.0 dB) beats b (100 steps)
    first = out["flops"][0]
    assert first["level"] == pytest.approx(4e11) and first["ranking"][:2] == ["a", "b"]
    gain = out["gain"]
    assert list(gain["gain"].round(2)) == [-0.5, -0.2, 0.2, 0.5, 0.8]
    assert gain["flops_ratio"].iloc[0] == pytest.approx(2.0)
    assert out["h2"].startswith("H2 is supported") and "+0.80 dB at 1600 steps" in out["h2"]
    assert out["h1"].startswith("H1 is not supported") and "2D Demucs ranks" not in out["h1"]
    # a ranking that still changes at the last budget is not settled
    curves["c"] = curve(steps, [0.0, 0.5, 1.0, 1.5, 9.0], 1e9, 0.5)
    assert report.analyse(curves, labels, ["a", "b", "c"])["settled_from"] is None


def test_mean_curves_average_seeds_and_keep_steps_every_seed_reached():
    rows = []
    for seed, shift in ((0, 0.0), (1, 1.0)):
        for step in (100, 200) + ((400,) if seed == 0 else ()):
            rows.append({"model": "a", "seed": seed, "step": step, "SDR": step / 100 + shift, "train_flops": step * 2.0,
                         "wall_seconds": step, "cpu_seconds": step, "collapsed": "bass" if seed == 1 else "",
                         **{f"SDR_{n}": 0.0 for n in INSTRUMENTS}})
    frame = report.mean_curves(rows, ["a"], 2)["a"]
    assert list(frame["step"]) == [100, 200]
    assert list(frame["SDR"]) == [1.5, 2.5] and frame["SDR_std"].iloc[0] == pytest.approx(np.std([1, 2], ddof=1))
    assert list(frame["collapsed"]) == ["bass", "bass"]



def test_stalled_runs_are_found_per_seed():
    # seed 0 of "a" is the default run's sigmoid Wave-U-Net 2D: 1.03 dB at 100-800 steps (to 1e-5 dB)
    curves = {("a", 0): [1.0272, 1.02719, 1.02719, 1.02718, 1.4], ("a", 1): [0.5, 1.2, 2.0, 2.6, 3.0],
              ("b", 0): [2.0, 2.005, 2.5, 2.506, 2.52]}  # two flat pairs are not a stall
    steps = [100, 200, 400, 800, 1600]
    rows = [{"model": m, "seed": seed, "step": st, "SDR": v} for (m, seed), values in curves.items()
            for st, v in zip(steps, values)]
    assert report.stalled(rows, ["a", "b"], 2) == [{"model": "a", "seed": 0, "from": 100, "to": 800, "SDR": 1.0272}]
    assert report.stalled(rows, ["b"], 2) == []
    assert report.stalled(rows, ["a"], 0) == []  # seeds beyond the budget's are ignored


def test_status_lists_missing_runs_and_the_time_they_need(tmp_path):
    ctx = make_ctx(tmp_path)
    fill_ledger(ctx, {k: v for k, v in SDR_OF.items() if k != "demucs_1d"}, seeds=2)  # 60 s of training per run
    res = subprocess.run([sys.executable, "-m", "experiments", "status", "--seeds", "3", "--out", str(ctx.results)],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in res.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    assert table["Wave-U-Net 1D"] == ["0 1", "2", "1.0", "1"]
    assert table["Demucs 1D"] == ["-", "0 1 2", "?", "?"]
    assert table["Stacked Wave-U-Net 1D"] == ["-", "0 1 2", "?", "?"]  # the stack of the leader (5.0 dB)
    assert "left: 0.1 h" in res.stdout and "Demucs 1D, Stacked Wave-U-Net 1D" in res.stdout
    assert "provisional" in res.stdout

def test_budgets_write_to_their_own_folders_and_default_has_1600_steps():
    from experiments.__main__ import context  # noqa: F401  (the CLI builds the folder from the budget)
    from experiments.common import RESULTS

    assert BUDGETS["default"].steps >= 1600 and BUDGETS["default"].shift is not None
    assert RESULTS.name == "results"
    res = subprocess.run([sys.executable, "-m", "experiments", "table1", "--budget", "nope"], capture_output=True,
                         text=True, cwd=REPO)
    assert res.returncode == 1 and res.stderr.strip().startswith("error: --budget must be one of default, paper")


@pytest.mark.slow
def test_tiny_budget_end_to_end(tmp_path):
    res = subprocess.run([sys.executable, "-m", "experiments", "curves", "--budget", "tiny", "--seeds", "1",
                          "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=REPO, timeout=3000)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("table1.md", "table2.md", "curves.md", "figure2.png", "figure4.png", "figure5.png", "runs.csv",
                 "curves.csv", "oracles.csv"):
        assert (out / name).is_file(), name
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["step"]) == {1, 2} and curves["model"].nunique() == 7
    assert "settled" in (out / "curves.md").read_text()
