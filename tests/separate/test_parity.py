"""Same numbers as stock Spleeter on a checkpoint that stock ``spleeter train`` wrote."""
import subprocess

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import run_cli, write_wav
from tools import stock

TOL = 1e-4


DURATIONS = [0.3, 2.0, 6.5]


@pytest.fixture(scope="module")
def stock_outputs(stock_model, music):
    """Stock Spleeter's stems for each duration (computed in a subprocess: see stock.separate_arrays)."""
    arrays = {f"{s}": music[0][: int(s * 44100)] for s in DURATIONS}
    return stock.separate_arrays(stock_model["config"], arrays)


@pytest.fixture(scope="module")
def ours(stock_model):
    from spleeter_ext import Separator

    return Separator(str(stock_model["config"]))


def test_checkpoint_variables_all_mapped(stock_model, ours):
    import tensorflow as tf

    from spleeter_ext.models.spleeter_ckpt import spleeter_variable_map

    names = {n for n, _ in tf.train.list_variables(str(stock_model["model_dir"]))
             if not n.endswith(("Adam", "Adam_1")) and n not in ("beta1_power", "beta2_power", "global_step")}
    mapped = {name for _, name in spleeter_variable_map(ours.estimator.body)}
    assert mapped == names


@pytest.mark.parametrize("seconds", DURATIONS)
def test_api_matches_stock(stock_outputs, ours, music, seconds):
    mixture, _ = music
    x = mixture[: int(seconds * 44100)]
    assert len(x) <= ours.segment  # fits in one segment: parity is promised there
    ref = stock_outputs[f"{seconds}"]
    out = ours.separate(x, 44100)
    assert set(out) == {"vocals", "drums", "bass"}
    for name in out:
        assert out[name].shape == ref[name].shape == x.shape
        assert np.abs(out[name] - ref[name]).max() <= TOL, name
        assert np.abs(ref[name]).max() > 1e-3  # the comparison is not between silences


def test_mwf_matches_stock(stock_model, music):
    from spleeter_ext import Separator

    x = music[0][: 3 * 44100]
    ref = stock.separate_arrays(stock_model["config"], {"x": x}, mwf=True)["x"]
    out = Separator(str(stock_model["config"]), MWF=True).separate(x)
    for name in out:
        assert np.abs(out[name] - ref[name]).max() <= TOL, name


def test_cli_matches_stock_cli(stock_model, music, tmp_path):
    mix_path = write_wav(tmp_path / "song.wav", music[0][: 5 * 44100])
    subprocess.run(stock.separate_cmd([mix_path], stock_model["config"], tmp_path / "stock"), check=True,
                   capture_output=True, text=True, timeout=600)
    res = run_cli("separate", "-p", stock_model["config"], "-o", tmp_path / "ours", mix_path)
    assert res.returncode == 0, res.stderr
    for name in stock_model["instruments"]:
        a, sr_a = sf.read(tmp_path / "stock" / "song" / f"{name}.wav", dtype="float32")
        b, sr_b = sf.read(tmp_path / "ours" / "song" / f"{name}.wav", dtype="float32")
        assert sr_a == sr_b == 44100 and a.shape == b.shape
        # both written as 16-bit PCM: model parity plus one quantisation step
        assert np.abs(a - b).max() <= TOL + 1 / 32768, name
