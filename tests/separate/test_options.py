"""The Separator's output and run options: stems, two stems, shifts, mask extension, device, chunking."""
import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.errors import ParameterError
from tests.conftest import passthrough_config, run_cli, write_wav

SR = 44100


@pytest.fixture(scope="module")
def stock_sep(stock_model):
    from spleeter_ext import Separator

    return Separator(str(stock_model["config"]), segment=1.0)


@pytest.fixture(scope="module")
def mixture(music):
    return music[0][: int(2.5 * SR)]


def test_stems_and_two_stems(stock_model, stock_sep, mixture):
    from spleeter_ext import Separator

    full = stock_sep.separate(mixture)
    assert list(full) == stock_sep.stems == stock_sep.instruments == ["vocals", "drums", "bass"]
    some = Separator(str(stock_model["config"]), segment=1.0, stems="bass,vocals")
    out = some.separate(mixture)
    assert list(out) == some.stems == ["bass", "vocals"] and some.instruments == ["vocals", "drums", "bass"]
    for name in out:
        np.testing.assert_array_equal(out[name], full[name])
    two = Separator(str(stock_model["config"]), segment=1.0, two_stems="drums").separate(mixture)
    assert list(two) == ["drums", "no_drums"]
    np.testing.assert_array_equal(two["drums"], full["drums"])
    np.testing.assert_allclose(two["no_drums"], full["vocals"] + full["bass"], atol=1e-6)
    np.testing.assert_allclose(two["drums"] + two["no_drums"], sum(full.values()), atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"stems": "vocals,piano"}, "'piano' is not a stem of .*its stems are vocals, drums, bass"),
    ({"stems": "vocals,vocals"}, "distinct stems"),
    ({"stems": ""}, "distinct stems"),
    ({"two_stems": "guitar"}, "two_stems: 'guitar' is not a stem"),
    ({"stems": "vocals", "two_stems": "vocals"}, "choose one"),
    ({"shifts": -1}, "shifts must be an integer >= 0"),
    ({"mask_extension": "ones"}, "mask_extension must be one of zeros, average"),
    ({"device": "tpu"}, "device must be one of auto, cpu, gpu"),
    ({"chunking": "overlap"}, "chunking must be one of auto, grid, crossfade"),
])
def test_option_errors(stock_model, kwargs, message):
    from spleeter_ext import Separator

    with pytest.raises(ParameterError, match=message):
        Separator(str(stock_model["config"]), **kwargs)


def test_cli_two_stems_and_stems_with_the_bundled_model(tmp_path, mixture):
    song = write_wav(tmp_path / "song.wav", mixture)
    res = run_cli("separate", "-p", "demo", "-o", tmp_path / "a", "--two-stems", "vocals", "--sample-format", "f32",
                  song)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "a" / "song").iterdir()) == ["no_vocals.wav", "vocals.wav"]
    res = run_cli("separate", "-p", "demo", "-o", tmp_path / "b", "--stems", "drums,bass", "--sample-format", "f32",
                  song)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "b" / "song").iterdir()) == ["bass.wav", "drums.wav"]
    novocals, _ = sf.read(tmp_path / "a" / "song" / "no_vocals.wav", dtype="float32")
    drums, _ = sf.read(tmp_path / "b" / "song" / "drums.wav", dtype="float32")
    bass, _ = sf.read(tmp_path / "b" / "song" / "bass.wav", dtype="float32")
    assert np.abs(novocals - drums - bass).max() > 1e-3  # 'other' is in no_vocals too
    res = run_cli("separate", "-p", "demo", "-o", tmp_path / "c", "--stems", "piano", song)
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode != 0 and len(lines) == 1 and "piano" in lines[0] and "vocals, drums, bass, other" in lines[0]


def test_shifts_average_separations_of_delayed_inputs(stock_model, stock_sep, mixture):
    """shifts=N: the mean of N separations, each of the input delayed by a seeded 0-0.5 s and realigned."""
    from spleeter_ext import Separator

    sep = Separator(str(stock_model["config"]), segment=1.0, shifts=3, seed=7)
    assert len(sep.delays) == 3 and all(0 <= d <= SR // 2 for d in sep.delays) and len(set(sep.delays)) == 3
    assert Separator(str(stock_model["config"]), shifts=3, seed=7).delays == sep.delays
    assert Separator(str(stock_model["config"]), shifts=3, seed=8).delays != sep.delays
    out = sep.separate(mixture)
    expected = {name: 0 for name in out}
    for d in sep.delays:
        delayed = np.concatenate([np.zeros((d, 2), np.float32), mixture])
        for name, y in stock_sep.separate(delayed).items():
            expected[name] = expected[name] + y[d:] / len(sep.delays)
    plain = stock_sep.separate(mixture)
    for name in out:
        np.testing.assert_allclose(out[name], expected[name], atol=1e-5)
        assert np.abs(out[name] - plain[name]).max() > 1e-3  # the shifts changed the estimate


def test_shifts_keep_a_shift_invariant_model_exact(tmp_path, music):
    from spleeter_ext import Separator

    sep = Separator(str(passthrough_config(tmp_path / "pt.json")), segment=1.0, shifts=2)
    x = music[0][: 3 * SR]
    np.testing.assert_allclose(sep.separate(x)["vocals"], x, atol=1e-5)


def test_mask_extension_is_the_full_band_switch(stock_model, music):
    """The stock test model masks the first 256 of 513 bins (up to 11.0 kHz): 'zeros' leaves the stems empty
    above, 'average' extends each frame's mean mask there, so the stems add up to the full-band mixture."""
    from spleeter_ext import Separator

    rng = np.random.default_rng(0)
    x = (music[0][: 2 * SR] + 0.05 * rng.standard_normal((2 * SR, 2))).astype(np.float32)

    def high_band(y):
        spectrum = np.abs(np.fft.rfft(y[:, 0])) ** 2
        return spectrum[np.fft.rfftfreq(len(y), 1 / SR) > 12000].sum()

    zeros = Separator(str(stock_model["config"]), mask_extension="zeros").separate(x)
    average = Separator(str(stock_model["config"]), mask_extension="average").separate(x)
    assert high_band(sum(zeros.values())) < 1e-4 * high_band(x)
    np.testing.assert_allclose(sum(average.values()), x, atol=1e-4)
    assert high_band(sum(average.values())) > 0.99 * high_band(x)


def test_device_choice_is_logged_and_a_missing_gpu_is_an_error(tmp_path, mixture):
    import tensorflow as tf

    from spleeter_ext.separate.separator import resolve_device

    gpus = tf.config.list_physical_devices("GPU")
    assert resolve_device("cpu") == ("/CPU:0", "CPU")
    assert resolve_device("auto")[0] == ("/GPU:0" if gpus else "/CPU:0")
    cfg = passthrough_config(tmp_path / "pt.json")
    song = write_wav(tmp_path / "song.wav", mixture[:SR])
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "cpu", "--device", "cpu", song)
    assert res.returncode == 0 and "ready on CPU" in res.stderr
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "gpu", "--device", "gpu", song)
    if gpus:
        assert res.returncode == 0 and "ready on GPU:0" in res.stderr
    else:
        lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode != 0 and len(lines) == 1 and "TensorFlow sees no GPU" in lines[0]
        assert "--device cpu" in lines[0] and not (tmp_path / "gpu").exists()
