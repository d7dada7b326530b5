"""Separation precision and XLA: bf16 close to float32 on the bundled model, float32 unchanged, option errors."""
import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.evaluation.sdr import track_sdr
from tests.conftest import run_cli, write_wav

#: SDR (dB) of bf16 stems measured against the float32 stems: bfloat16 keeps 8 significant bits (relative
#: error ~4e-3 per value) in the network; the masks and the STFT around it stay float32.
BF16_MIN_SDR = 30.0


def test_bf16_stems_close_to_float32_on_the_bundled_model(music):
    from spleeter_ext import Separator

    x = music[0][: 4 * 44100]
    ref = Separator("demo").separate(x)
    sep = Separator("demo", precision="bf16")
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # the policy does not leak
    assert sep.estimator.body.compute_dtype == "bfloat16"
    assert {v.dtype for v in sep.estimator.body.variables} == {tf.float32}
    low = sep.separate(x)
    assert low.keys() == ref.keys()
    for name in ref:
        assert low[name].dtype == np.float32
        assert np.abs(ref[name]).max() > 1e-3
        assert not np.array_equal(low[name], ref[name])  # bf16 really ran
        sdr = track_sdr(ref[name][None], low[name][None])[0]
        assert sdr > BF16_MIN_SDR, (name, sdr)


def test_float32_default_is_unchanged_and_xla_agrees(music):
    """The default builds float32 layers; XLA-compiled network calls give the same stems within float error."""
    from spleeter_ext import Separator

    x = music[0][: 3 * 44100]
    default = Separator("demo")
    assert default.precision == "float32" and default.estimator.body.compute_dtype == "float32"
    explicit = Separator("demo", precision="float32").separate(x)
    ref = default.separate(x)
    xla = Separator("demo", jit_compile=True).separate(x)
    for name in ref:
        np.testing.assert_array_equal(explicit[name], ref[name])
        np.testing.assert_allclose(xla[name], ref[name], atol=2e-5 * max(1.0, np.abs(ref[name]).max()))


def test_unknown_precision_is_one_error_line(music, tmp_path):
    from spleeter_ext import Separator
    from spleeter_ext.errors import ParameterError

    with pytest.raises(ParameterError, match="precision must be one of float32, bf16"):
        Separator("demo", precision="float16")
    song = tmp_path / "song.wav"
    write_wav(song, music[0][:44100])
    res = run_cli("separate", "-p", "demo", "--precision", "fp8", "-o", tmp_path / "out", song)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "precision" in lines[-1] and "fp8" in lines[-1], res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.wav"))


def test_separate_cli_bf16_and_jit(music, tmp_path):
    import soundfile as sf

    song = tmp_path / "song.wav"
    write_wav(song, music[0][: 2 * 44100])
    res = run_cli("separate", "-p", "demo", "--precision", "bf16", "--jit-compile", "-o", tmp_path / "out", song)
    assert res.returncode == 0, res.stderr[-2000:]
    vocals, sr = sf.read(tmp_path / "out" / "song" / "vocals.wav")
    assert sr == 44100 and len(vocals) == 2 * 44100 and np.abs(vocals).max() > 1e-3
