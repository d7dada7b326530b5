"""Learning curves: the schedule, the scores (against the evaluation's SDR), and rows written by train."""
import csv

import numpy as np
import pytest

from spleeter_ext import curves
from spleeter_ext.errors import ConfigError
from spleeter_ext.evaluation.sdr import framewise_sdr
from tests.conftest import run_cli, tiny_training_config
from tests.test_train import FAMILIES


def test_schedule_is_log_spaced_and_ends_at_the_last_step():
    assert curves.curve_steps(1600) == [100, 200, 400, 800, 1600]
    assert curves.curve_steps(1000) == [100, 200, 400, 800, 1000]
    assert curves.curve_steps(50) == [50]
    assert curves.curve_steps(10, [3, 7, 30]) == [3, 7, 10]
    with pytest.raises(ConfigError):
        curves.curve_steps(10, [0])


def test_score_matches_framewise_sdr_medians_and_flags_a_silent_stem():
    rng = np.random.default_rng(0)
    sr = 8000
    refs = [rng.standard_normal((2, 3 * sr, 2)).astype(np.float32) for _ in range(3)]
    ests = [r + 0.3 * rng.standard_normal(r.shape).astype(np.float32) for r in refs]
    for e in ests:
        e[1] *= 1e-3  # the second stem 60 dB below its reference
    row = curves.score(refs, ests, ["a", "b"], sr)
    expected_a = np.median([np.median(framewise_sdr(r, e, sr, sr)[0]) for r, e in zip(refs, ests)])
    assert row["SDR_a"] == pytest.approx(expected_a, abs=1e-9)
    assert row["SDR"] == pytest.approx((row["SDR_a"] + row["SDR_b"]) / 2)
    assert row["level_b"] == pytest.approx(-60.0 + 10 * np.log10(1.09), abs=0.05)  # (1 + 0.3**2) energy
    assert abs(row["level_a"]) < 0.5
    assert curves.collapsed(row, ["a", "b"]) == ["b"]


def test_train_writes_curves_at_the_requested_steps_and_resumes_them(synth_data, tmp_path):
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=4,
                               save_every=10, curve_steps=[1, 3])
    model_dir = tmp_path / "model"
    res = run_cli("train", "-p", cfg, "-d", synth_data, "--model-dir", model_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader((model_dir / "curves.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 3, 4]
    flops = [float(r["train_flops"]) for r in rows]
    assert flops[0] > 0 and flops[1] == pytest.approx(3 * flops[0]) and flops[2] == pytest.approx(4 * flops[0])
    walls = [float(r["wall_seconds"]) for r in rows]
    assert 0 < walls[0] < walls[1] < walls[2]
    for r in rows:
        assert np.isfinite(float(r["SDR"])) and all(f"SDR_{n}" in r for n in ("vocals", "drums", "bass", "other"))
    # resuming to a longer budget keeps the earlier rows and the clock keeps counting
    res = run_cli("train", "-p", cfg, "-d", synth_data, "--model-dir", model_dir, "--steps", "6")
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader((model_dir / "curves.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 3, 4, 6]
    assert float(rows[3]["wall_seconds"]) > float(rows[2]["wall_seconds"])
