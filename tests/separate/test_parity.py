"""Same numbers as stock Spleeter on a checkpoint that stock ``spleeter train`` wrote, at any length: inside
one segment, across segment boundaries (short segments here; ~100 s at the default segment in the slow test),
in memory and through files."""
import subprocess

import numpy as np
import pytest
import soundfile as sf

from spleeter_ext import stock
from tests.conftest import run_cli, write_wav

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
