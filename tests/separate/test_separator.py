"""The Separator on generated audio: exact chunking, edge cases of the input, formats and rates."""
import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.errors import ModelNotFoundError, ParameterError
from tests.conftest import passthrough_config, run_cli, write_wav


@pytest.fixture(scope="module")
def passthrough(tmp_path_factory):
    from spleeter_ext import Separator

    cfg = passthrough_config(tmp_path_factory.mktemp("pt") / "pt.json")
    return cfg, Separator(str(cfg), segment=1.0, overlap=0.25)


@pytest.mark.parametrize("seconds", [0.01, 0.93, 1.0, 2.37, 6.1])
def test_segmenting_is_exact_for_a_passthrough_model(passthrough, music, seconds):
    _, sep = passthrough
    x = music[0][: int(seconds * 44100)]
    out = sep.separate(x, 44100)
    assert out["vocals"].shape == x.shape
    np.testing.assert_allclose(out["vocals"], x, atol=1e-5, rtol=0)
    assert np.abs(out["accompaniment"]).max() <= 1e-5


@pytest.mark.parametrize("segment,overlap", [(0.5, 0.0), (0.7, 0.5), (2.0, 0.1), (3.3, 0.9)])
def test_any_segment_and_overlap_is_exact(passthrough, music, segment, overlap):
    from spleeter_ext import Separator

    sep = Separator(str(passthrough[0]), segment=segment, overlap=overlap)
    x = music[0][: int(4.2 * 44100)]
    np.testing.assert_allclose(sep.separate(x)["vocals"], x, atol=1e-5, rtol=0)


def test_silent_input_gives_silent_finite_stems(stock_model):
    from spleeter_ext import Separator

    out = Separator(str(stock_model["config"])).separate(np.zeros((44100, 2), np.float32))
    for stem in out.values():
        assert np.isfinite(stem).all() and np.abs(stem).max() == 0.0


def test_array_errors(passthrough):
    _, sep = passthrough
    with pytest.raises(ParameterError, match="channels-first"):
        sep.separate(np.zeros((2, 44100), np.float32))
    bad = np.zeros((1000, 2), np.float32)
    bad[500, 1] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        sep.separate(bad)
    with pytest.raises(ParameterError, match="no samples"):
        sep.separate(np.zeros((0, 2), np.float32))


def test_mono_and_resampled_inputs(passthrough, music):
    _, sep = passthrough
    mono = music[0][:44100, 0]
    out = sep.separate(mono, 44100)["vocals"]
    assert out.shape == (44100, 2)
    np.testing.assert_allclose(out[:, 0], mono, atol=1e-5)
    np.testing.assert_allclose(out[:, 1], mono, atol=1e-5)
    x48 = np.random.default_rng(0).uniform(-0.5, 0.5, (48000, 2)).astype(np.float32)
    assert sep.separate(x48, 48000)["vocals"].shape == (44100, 2)


def test_untrained_model_is_refused(tmp_path):
    import json

    from spleeter_ext import Separator

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"instrument_list": ["vocals", "drums"], "frame_length": 512, "frame_step": 128,
                               "T": 64, "F": 128, "model_dir": str(tmp_path / "nothing"),
                               "model": {"type": "unet.unet", "params": {"conv_n_filters": [4, 4, 4, 4, 4, 4]}}}))
    with pytest.raises(ModelNotFoundError, match="no checkpoint"):
        Separator(str(cfg))


@pytest.mark.parametrize("preset", ["2stems", "4stems-16kHz"])
def test_pretrained_without_network_fails_cleanly(tmp_path, preset):
    """Stock weights that cannot be downloaded: one line saying where to put them, no stems (the 16 kHz
    presets use the same published weights)."""
    folder = preset.split("-")[0]
    song = write_wav(tmp_path / "song.wav", np.zeros((4410, 2), np.float32))
    res = run_cli("separate", "-p", f"spleeter:{preset}", "-o", tmp_path / "out", song,
                  env={"MODEL_PATH": str(tmp_path / "models"), "GITHUB_HOST": "http://127.0.0.1:9"})
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"spleeter:{preset}" in lines[0] and str(tmp_path / "models" / folder) in lines[0]
    assert f"{folder}.tar.gz" in lines[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "models" / folder).exists()  # no empty folder left to fool the next run


def test_input_rate_option_and_formats(passthrough, music, tmp_path):
    import librosa

    cfg, _ = passthrough
    x = librosa.resample(music[0][: 2 * 44100].T, orig_sr=44100, target_sr=48000).T.astype(np.float32)
    song = write_wav(tmp_path / "in48.wav", x, 48000)
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "a", "--input-rate", "--sample-format", "f32", song)
    assert res.returncode == 0, res.stderr
    y, sr = sf.read(tmp_path / "a" / "in48" / "vocals.wav", dtype="float32")
    assert sr == 48000 and abs(len(y) - len(x)) <= 2
    n = min(len(x), len(y))
    # resampled twice (48 -> 44.1 -> 48 kHz): band-limited copy of the input
    assert np.corrcoef(x[:n, 0], y[:n, 0])[0, 1] > 0.999
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "b", "-c", "mp3", "-b", "192k", song)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "b" / "in48" / "vocals.mp3").stat().st_size > 10_000
    z, sr = sf.read(tmp_path / "a" / "in48" / "accompaniment.wav")
    assert np.abs(z).max() < 1e-4


@pytest.mark.parametrize("preset", ["demo", "stock"])
def test_scipy_and_tensorflow_stft_paths_give_the_same_stems(preset, stock_model, music):
    """The fast path (SciPy FFT, masks extended inside the inverse) against Spleeter's graph ops, on
    the bundled demo model (mask_extension 'average') and a stock checkpoint ('zeros')."""
    from spleeter_ext import Separator

    params = "demo" if preset == "demo" else str(stock_model["config"])
    x = music[0][: 5 * 44100]
    fast = Separator(params, segment=2.0, overlap=0.2).separate(x)
    graph = Separator(params, segment=2.0, overlap=0.2, fft="tensorflow").separate(x)
    assert fast.keys() == graph.keys()
    for name in fast:
        assert np.abs(fast[name]).max() > 1e-3
        # TensorFlow's float32 FFT error (~4e-6 of the peak per transform) dominates
        np.testing.assert_allclose(fast[name], graph[name], atol=5e-5)


def test_lossless_input_short_of_its_header_fails_unless_allowed(passthrough, music, tmp_path):
    """A WAV missing its last 100 sample frames: one error line naming the file and what was decoded of what
    was declared, exit 1, no stems, the batch goes on; --allow-truncated separates the decoded part and logs it."""
    cfg, _ = passthrough
    good = write_wav(tmp_path / "good.wav", music[0][:44100], subtype="PCM_16")
    cut = write_wav(tmp_path / "cut.wav", music[0][:88200], subtype="PCM_16")
    cut.write_bytes(cut.read_bytes()[:-4 * 100])
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "a", cut, good)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(cut) in errors[0]
    assert "decoded 88100 of the 88200 sample frames its header declares" in errors[0]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "a" / "cut").exists() or not any((tmp_path / "a" / "cut").iterdir())
    assert sf.info(str(tmp_path / "a" / "good" / "vocals.wav")).frames == 44100
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "b", "--allow-truncated", cut)
    assert res.returncode == 0, res.stderr
    assert any("WARNING" in line and str(cut) in line and "decoded 88100 of the 88200" in line
               for line in res.stderr.splitlines())
    assert sf.info(str(tmp_path / "b" / "cut" / "vocals.wav")).frames == 88100
