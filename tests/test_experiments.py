"""experiments/tables.py: Table 1/2 and Figures 2/4 from evaluation results, reuse of runs, run cards.

The fast tests feed the table code with made-up evaluation results; the slow one trains every model
for two steps on a tiny numpy synthetic set and builds both tables end to end.
"""
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spleeter_ext.evaluation.evaluate import EvaluationResult

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("experiments_tables", REPO / "experiments" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def fake_result(method, sdr, rng, oracle=False):
    """An EvaluationResult holding one method whose overall SDR is about ``sdr``."""
    rows = {}
    for k, target in enumerate(("vocals", "drums", "bass", "other")):
        value = sdr + 0.5 * k - 0.75 + 0.05 * rng.standard_normal()
        rows[target] = {"SDR_median": value, "ISR_median": value + 4, "SIR_median": value + 6,
                        "SAR_median": value + 3 if method != "MIX" else 240.0, "uSDR_mean": value + 0.2,
                        "nan_frame_share": 0.1}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["overall"] = table.mean()
    table.index.name = "target"
    return EvaluationResult(output_dir=Path("."), subset="test", model=None if oracle else method, methods=[method],
                            tables={method: table}, protocol={}, flags={method: []})


def fake_runs(tables, specs, seeds, sdr_of, rng):
    runs = []
    for spec in specs:
        for seed in range(seeds):
            run = tables.Run(spec, spec.key + "_small", seed, Path(f"/runs/{spec.key}/seed{seed}"), 800, 600.0, True)
            run.result = fake_result(run.method, sdr_of[spec.key] + 0.1 * seed, rng)
            runs.append(run)
    return runs


def fake_oracles(tables, rng):
    results = [fake_result(m, s, rng, oracle=True) for m, s in zip(tables.TABLE_ORACLES, (10, 12, 9, 13, -2))]
    return EvaluationResult(output_dir=Path("."), subset="test", model=None, methods=list(tables.TABLE_ORACLES),
                            tables={r.methods[0]: r.tables[r.methods[0]] for r in results}, protocol={}, flags={})


def data_info(tables, tmp_path):
    return tables.DataInfo(tmp_path, "0123456789", "made-up results")


def test_table1_has_every_row_with_finite_values(tables, tmp_path):
    rng = np.random.default_rng(0)
    sdr_of = {s.key: 1.0 + i for i, s in enumerate(tables.SINGLE_MODELS)}
    runs = fake_runs(tables, tables.SINGLE_MODELS, 2, sdr_of, rng)
    oracles = fake_oracles(tables, rng)
    rows = tables.model_rows(runs, tables.SINGLE_MODELS) + tables.oracle_rows(oracles)
    paths = tables.write_table1(tmp_path, rows, tables.BUDGETS["default"], data_info(tables, tmp_path), 2, 800,
                                tables.per_instrument_frame(runs, oracles))
    frame = pd.read_csv(paths["csv"])
    assert len(frame) == 6 + 5
    assert list(frame["kind"]) == ["model"] * 6 + ["oracle"] * 5
    assert set(zip(frame["dimension"][:6], frame["model"][:6])) == {
        (d, m) for d in ("1D", "2D") for m in ("Spleeter U-Net", "Wave-U-Net", "Demucs")}
    for column in ("SDR", "SAR", "SIR", "ISR", "avg_overall", "avg_without_SIR", "uSDR"):
        assert np.isfinite(frame[column]).all(), column
        assert np.isfinite(frame[f"{column}_std"][:6]).all(), column
    first = frame.iloc[0]
    assert np.isclose(first["avg_overall"], np.mean([first[m] for m in ("SDR", "SAR", "SIR", "ISR")]))
    assert np.isclose(first["avg_without_SIR"], np.mean([first[m] for m in ("SDR", "SAR", "ISR")]))
    md = paths["md"].read_text()
    header = "| dimension | model | SDR | SAR | SIR | ISR | average overall | average without SIR | uSDR (MDX) |"
    assert header in md
    assert " ± " in md and "Mixture (floor" in md and "IRM2 (oracle" in md and "SiSEC18" in md
    assert paths["png"].read_bytes()[:8] == PNG_MAGIC
    per_instrument = pd.read_csv(paths["per_instrument"])
    assert len(per_instrument) == (12 + 5) * 5


def test_table2_judges_the_difference_against_seed_spread(tables, tmp_path):
    rng = np.random.default_rng(1)
    sdr_of = {s.key: 1.0 + i for i, s in enumerate(tables.SINGLE_MODELS)}
    sdr_of["stack_unet"] = sdr_of["demucs_2d"] + 1.0
    runs = fake_runs(tables, tables.SINGLE_MODELS, 3, sdr_of, rng)
    best = tables.best_single(tables.model_rows(runs, tables.SINGLE_MODELS))
    assert best["config"] == "demucs_2d_small"
    stacked = tables.model_rows(fake_runs(tables, [tables.STACKED], 3, sdr_of, rng), [tables.STACKED])[0]
    sentence, exceeds = tables.compare(best, stacked, 3)
    assert abs(stacked["SDR"] - best["SDR"] - 1.0) < 0.2
    assert exceeds is True and "EXCEEDS" in sentence and "stacked − best = +" in sentence
    close = dict(stacked, SDR=best["SDR"] + 0.01)
    assert tables.compare(best, close, 3)[1] is False
    sentence, verdict = tables.compare(best, stacked, 1)
    assert verdict is None and "cannot be judged" in sentence
    paths = tables.write_table2(tmp_path, best, stacked, tables.BUDGETS["default"], data_info(tables, tmp_path), 3,
                                800, [sentence])
    frame = pd.read_csv(paths["csv"])
    assert list(frame["model"]) == ["Demucs (best single model of Table 1)", "Stacked U-Net",
                                    "difference (stacked − best)"]
    assert np.isfinite(frame[["SDR", "SAR", "SIR", "ISR", "avg_overall", "avg_without_SIR"]].to_numpy()).all()
    assert paths["png"].read_bytes()[:8] == PNG_MAGIC
    assert "cannot be judged" in paths["md"].read_text()


def test_budgets_and_helpers(tables, tmp_path):
    default = tables.BUDGETS["default"]
    assert 700 <= default.steps <= 900 and default.batch_size == 4 and default.config_suffix == "_small"
    assert default.data.engine == "realistic" and default.metrics == "all"
    paper = tables.BUDGETS["paper"]
    assert paper.steps == 100_000 and paper.batch_size == 4 and paper.config_suffix == "" and paper.data is None
    with pytest.raises(tables.DatasetError, match="needs --data"):
        tables.prepare_data(paper, None)
    commit = tables.git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "vocals.wav").write_bytes(b"1234")
    first = tables.data_fingerprint(tmp_path)
    assert first == tables.data_fingerprint(tmp_path)
    (tmp_path / "train" / "a" / "vocals.wav").write_bytes(b"12345")
    assert tables.data_fingerprint(tmp_path) != first


def test_finished_runs_are_reused(tables, tmp_path, monkeypatch):
    budget = tables.BUDGETS["tiny"]
    runner = tables.Runner(budget, tables.DataInfo(tmp_path, "feedc0ffee", "test"), tmp_path / "runs")
    spec = tables.SINGLE_MODELS[0]
    run_dir = runner.run_dir(spec, 1)
    assert run_dir.name == "seed1" and run_dir.parent.name == "spleeter_1d_small-2steps-b1-dfeedc0ffee"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n')
    assert tables.checkpoint_step(run_dir) == 2
    (run_dir / "table_run.json").write_text(json.dumps({"key": runner._key(spec, 1), "train_wall_seconds": 12.5}))

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not be trained again")

    monkeypatch.setattr("spleeter_ext.train.train", no_training)
    run = runner.train(spec, 1)
    assert not run.trained_now and run.steps == 2 and run.train_seconds == 12.5
    # another budget (more steps) is a different run directory
    assert tables.Runner(budget, runner.data, tmp_path / "runs", steps=5).run_dir(spec, 1) != run_dir


def test_command_line_errors(tables, capsys):
    with pytest.raises(SystemExit):
        tables.main(["table1", "--budget", "nope"])
    with pytest.raises(SystemExit):
        tables.main(["table3"])
    assert tables.main(["table1", "--budget", "paper"]) == 1
    assert "needs --data" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_budget_end_to_end(tables, tmp_path):
    """Both tables on the hidden tiny budget: every model trained two steps, museval on 2 x 4 s tracks."""
    from spleeter_ext.data.make_dataset import make_dataset

    data = make_dataset(tmp_path / "data", n_train=3, n_test=2, seconds=4.0, seed=0)
    out, runs = tmp_path / "results", tmp_path / "runs"
    common = ["--budget", "tiny", "--data", str(data), "--out", str(out), "--runs", str(runs)]
    assert tables.main(["table2", *common]) == 0
    assert len(pd.read_csv(out / "table2.csv")) == 3
    assert tables.main(["table1", *common]) == 0
    frame = pd.read_csv(out / "table1.csv")
    assert len(frame) == 11
    for column in ("SDR", "SAR", "SIR", "ISR", "avg_overall", "avg_without_SIR", "uSDR"):
        assert np.isfinite(frame[column]).all(), column
    for name in ("table1.md", "figure2.png", "table1_runcard.json", "table2.md", "figure4.png", "table2_runcard.json"):
        assert (out / name).is_file(), name
    card = json.loads((out / "table1_runcard.json").read_text())
    assert card["budget"]["steps"] == 2 and card["seeds"] == [0] and card["data"]["root"] == str(data.resolve())
    assert len(card["models"]) == 6
    # table2 trained everything; table1 reused the checkpoints and the evaluations
    assert not any(m["trained_in_this_run"] or m["evaluated_in_this_run"] for m in card["models"].values())
    assert all(m["steps"] == 2 and m["train_wall_seconds"] > 0 for m in card["models"].values())
    assert not card["oracles"]["evaluated_in_this_run"]
    card2 = json.loads((out / "table2_runcard.json").read_text())
    assert "stack_unet-seed0" in card2["models"] and card2["difference_exceeds_seed_spread"]["SDR"] is None


def test_a_model_that_barely_separates_is_called_out(tables):
    """High SAR with SIR at the mixture floor (a filtered mixture) gets a note; a separating model does not."""
    def row(model, kind, sdr, sar, sir, config=""):
        return {"dimension": "2D", "model": model, "kind": kind, "config": config, "SDR": sdr, "SAR": sar, "SIR": sir}

    rows = [row("Good", "model", 5.0, 6.4, 9.5), row("Lazy", "model", 0.8, 28.6, -5.4),
            row("Mixture", "oracle", -5.7, 181.5, -5.3, config="MIX")]
    notes = tables.unseparated_notes(rows)
    assert len(notes) == 1 and notes[0].startswith("2D Lazy") and "SDR is the ranking" in notes[0]
    assert tables.unseparated_notes(rows[:2]) == []  # no mixture row: nothing to compare with


def test_seed_spread_trains_every_seed_and_reports_the_spread(tables, tmp_path):
    from spleeter_ext.data.make_dataset import make_dataset

    data = make_dataset(tmp_path / "data", n_train=3, n_test=2, seconds=4.0, seed=0)
    out, runs = tmp_path / "results", tmp_path / "runs"
    common = ["--budget", "tiny", "--data", str(data), "--out", str(out), "--runs", str(runs)]
    assert tables.main(["spread", "--seeds", "2", "--models", "demucs_2d", *common]) == 0
    per_seed = pd.read_csv(out / "seed_spread.csv")
    assert list(per_seed["seed"]) == [0, 1] and np.isfinite(per_seed["SDR"]).all()
    # two seeds give two different models (different initialisation and data order)
    assert per_seed["SDR"].iloc[0] != per_seed["SDR"].iloc[1]
    text = (out / "seed_spread.md").read_text()
    assert "± " in text or "±" in text
    with pytest.raises(SystemExit):
        tables.main(["spread", "--seeds", "1", *common])
    assert tables.main(["spread", "--seeds", "2", "--models", "nope", *common]) == 1
