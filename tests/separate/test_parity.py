"""Same numbers as stock Spleeter on a checkpoint that stock ``spleeter train`` wrote, at any length: inside
one segment, across segment boundaries (short segments here; ~100 s at the default segment in the slow test),
in memory and through files."""
import subprocess

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import run_cli, write_wav
from tools import stock

TOL = 1e-4


DURATIONS = [0.3, 2.0, 6.5]
#: Lengths (samples) crossing several 1 s segments: a multiple of the model's hop and patch, and a prime.
LONG = [12 * 16384, 7 * 44100 - 1, 305017]


@pytest.fixture(scope="module")
def stock_outputs(stock_model, music):
    """Stock Spleeter's stems for each duration and length (computed in a subprocess: see stock.separate_arrays)."""
    arrays = {f"{s}": music[0][: int(s * 44100)] for s in DURATIONS}
    arrays.update({f"n{n}": music[0][:n] for n in LONG})
    return stock.separate_arrays(stock_model["config"], arrays)


def max_diff(ours: dict, ref: dict) -> float:
    assert ours.keys() == ref.keys()
    for name in ours:
        assert ours[name].shape == ref[name].shape, name
        assert np.abs(ref[name]).max() > 1e-3  # the comparison is not between silences
    return max(float(np.abs(ours[name] - ref[name]).max()) for name in ours)


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


@pytest.mark.parametrize("n", LONG)
def test_stems_equal_stock_across_segment_boundaries(stock_outputs, stock_model, music, n):
    """1 s segments (3 patches of frames each): 3-6 boundaries, each on the whole input's patch grid."""
    from spleeter_ext import Separator

    sep = Separator(str(stock_model["config"]), segment=1.0)
    assert sep.chunking.mode == "sum" and n > 3 * sep.segment
    assert max_diff(sep.separate(music[0][:n]), stock_outputs[f"n{n}"]) <= TOL


def test_crossfade_differs_from_stock_across_boundaries(stock_outputs, stock_model, music):
    """What the grid fixes: crossfaded segments are estimates stock Spleeter never makes."""
    from spleeter_ext import Separator

    n = LONG[1]
    sep = Separator(str(stock_model["config"]), segment=1.0, chunking="crossfade")
    assert sep.chunking.mode == "crossfade"
    assert max_diff(sep.separate(music[0][:n]), stock_outputs[f"n{n}"]) > 10 * TOL


def test_files_equal_stock_across_segment_boundaries(stock_outputs, stock_model, music, tmp_path):
    """The file pipeline (decode, segments in flight, encode) on 1 s segments, stems written as float."""
    from spleeter_ext import Separator

    n = LONG[2]
    song = write_wav(tmp_path / "song.wav", music[0][:n])
    sep = Separator(str(stock_model["config"]), segment=1.0)
    result = sep.separate_to_file(str(song), str(tmp_path / "out"), sample_format="f32")
    stems = {name: sf.read(path, dtype="float32")[0] for name, path in result.outputs.items()}
    assert max_diff(stems, stock_outputs[f"n{n}"]) <= TOL


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


def _prime_at_least(n: int) -> int:
    while any(n % k == 0 for k in range(2, int(n ** 0.5) + 1)):
        n += 1
    return n


@pytest.mark.slow
def test_a_hundred_seconds_at_the_default_segment_equal_stock(stock_model, tmp_path):
    """~100.3 s (a prime number of samples) at the default ~40 s segment, so two segment boundaries: the
    command line's float stems and the in-memory API against stock Spleeter's separator on the whole input."""
    from spleeter_ext import Separator
    from spleeter_ext.data.synth import render_track

    n = _prime_at_least(int(100.3 * 44100))
    mixture = sum(render_track(n / 44100 + 0.1, sample_rate=44100, seed=5).values()).astype(np.float32)[:n]
    ref = stock.separate_arrays(stock_model["config"], {"x": mixture})["x"]
    sep = Separator(str(stock_model["config"]))
    assert sep.chunking.mode == "sum" and 2 * sep.segment < n < 3 * sep.segment
    assert max_diff(sep.separate(mixture), ref) <= TOL
    song = write_wav(tmp_path / "long.wav", mixture)
    res = run_cli("separate", "-p", stock_model["config"], "-o", tmp_path / "out", "--sample-format", "f32", song)
    assert res.returncode == 0, res.stderr
    stems = {name: sf.read(tmp_path / "out" / "long" / f"{name}.wav", dtype="float32")[0] for name in ref}
    assert max_diff(stems, ref) <= TOL


# --------------------------------------------------------------------------- 16 kHz


@pytest.mark.slow
def test_16khz_config_equals_stock_inside_and_across_segments(stock_model_16k, music):
    """A checkpoint stock ``spleeter train`` wrote for a 16 kHz config (F = 1536 of 2049 bins): the whole 7 s
    in one segment, and in 1.6 s segments (one patch each, 4 boundaries). Slow: stock training and
    separation take 80 s here."""
    from spleeter_ext import Separator

    x = music[0]
    ref = stock.separate_arrays(stock_model_16k["config"], {"x": x})["x"]
    whole = Separator(str(stock_model_16k["config"]))
    assert whole.estimator.F == 1536 and len(x) <= whole.segment
    assert max_diff(whole.separate(x), ref) <= TOL
    cut = Separator(str(stock_model_16k["config"]), segment=1.0)
    assert cut.chunking.mode == "sum" and len(x) > 4 * cut.chunking.stride
    assert max_diff(cut.separate(x), ref) <= TOL


@pytest.mark.parametrize("preset", ["2stems-16kHz", "4stems-16kHz", "5stems-16kHz"])
def test_16khz_presets_are_the_published_weights_with_1536_bins(preset):
    """Spleeter's 16 kHz presets reuse the published 2/4/5-stem weights (their model_dir) with F = 1536."""
    from spleeter_ext.config import load_config

    cfg, base = load_config(f"spleeter:{preset}"), load_config(f"spleeter:{preset.split('-')[0]}")
    assert (cfg["F"], base["F"]) == (1536, 1024) and cfg["model_dir"] == base["model_dir"]
    assert cfg["instrument_list"] == base["instrument_list"] and cfg["mask_extension"] == "zeros"


@pytest.mark.slow
def test_16khz_preset_with_published_layout_weights_equals_stock_cli(tmp_path, music):
    """``-p spleeter:2stems-16kHz`` end to end, as users run it: weights of the published 2-stem layout (full
    U-Net, T = 512), trained 1 step by stock ``spleeter train`` on the preset itself, found under MODEL_PATH
    by both tools; a 40 s input (two of our segments) through both command lines."""
    import json
    from importlib import resources

    models = tmp_path / "models"
    cfg = json.loads(resources.files("spleeter.resources").joinpath("2stems-16kHz.json").read_text())
    stock.write_training_set(tmp_path, cfg["instrument_list"], n_tracks=1, seconds=14.0)
    cfg.update({"train_csv": "train.csv", "validation_csv": "train.csv", "model_dir": str(models / "2stems"),
                "training_cache": str(tmp_path / "cache" / "t"), "validation_cache": str(tmp_path / "cache" / "v"),
                "train_max_steps": 1, "save_checkpoints_steps": 1, "batch_size": 1, "chunk_duration": 13.0,
                "n_chunks_per_song": 1, "throttle_secs": 1})
    (tmp_path / "train.json").write_text(json.dumps(cfg))
    stock.train(tmp_path / "train.json", tmp_path, timeout=3000)
    from spleeter.model.provider import ModelProvider

    ModelProvider.writeProbe(str(models / "2stems"))
    x = np.concatenate([music[0]] * 6)[: 40 * 44100]
    song = write_wav(tmp_path / "song.wav", x, subtype="PCM_16")
    env = {"MODEL_PATH": str(models), "GITHUB_HOST": "http://127.0.0.1:9"}
    import os

    subprocess.run(stock.separate_cmd([song], "spleeter:2stems-16kHz", tmp_path / "stock"), check=True,
                   capture_output=True, text=True, timeout=3000, env={**os.environ, **env})
    res = run_cli("separate", "-p", "spleeter:2stems-16kHz", "-o", tmp_path / "ours", song, env=env)
    assert res.returncode == 0, res.stderr
    for name in cfg["instrument_list"]:
        a, _ = sf.read(tmp_path / "stock" / "song" / f"{name}.wav", dtype="float32")
        b, _ = sf.read(tmp_path / "ours" / "song" / f"{name}.wav", dtype="float32")
        assert a.shape == b.shape == x.shape and np.abs(a).max() > 1e-3
        assert np.abs(a - b).max() <= TOL + 1 / 32768, name  # both 16-bit PCM: parity plus one step
