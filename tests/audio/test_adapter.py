"""Spleeter's AudioAdapter interface backed by PyAV (imports TensorFlow, ~5 s once per session)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spleeter_ext.audio import probe, read, write
from spleeter_ext.errors import AudioError

from .signals import music, noise

ADAPTER = "spleeter_ext.audio.adapter.PyAVAudioAdapter"
SR = 44100


@pytest.fixture(scope="module")
def adapter():
    from spleeter.audio.adapter import AudioAdapter

    return AudioAdapter.get(ADAPTER)


def test_get_by_dotted_name_returns_our_adapter(adapter):
    from spleeter.audio.adapter import AudioAdapter

    from spleeter_ext.audio.adapter import PyAVAudioAdapter

    assert isinstance(adapter, PyAVAudioAdapter) and isinstance(adapter, AudioAdapter)


def test_load_accepts_bytes_paths_and_spleeter_arguments(adapter, tmp_path):
    x = music(3.0, SR)
    path = tmp_path / "song.flac"
    write(path, x, SR, sample_format="s24")
    waveform, rate = adapter.load(str(path).encode(), np.float64(0.5), np.float64(1.0), np.int32(22050),
                                  dtype=b"float32")
    assert rate == 22050 and waveform.shape == (22050, 2) and waveform.dtype == np.float32
    native, rate = adapter.load(Path(path), None, None, None, dtype=b"float64")
    assert rate == SR and native.dtype == np.float64 and native.shape == x.shape
    np.testing.assert_allclose(native, x, atol=2 ** -23)


def test_load_gives_stereo_for_mono_files(adapter, tmp_path):
    path = tmp_path / "mono.wav"
    write(path, noise(0.5, SR, 1), SR)
    waveform, _ = adapter.load(str(path))
    assert waveform.shape == (SR // 2, 2)


def test_load_errors_are_spleeter_and_spleeter_ext_errors(adapter, tmp_path):
    from spleeter import SpleeterError

    with pytest.raises(SpleeterError) as caught:
        adapter.load(str(tmp_path / "missing.mp3"))
    assert isinstance(caught.value, AudioError) and "file not found" in str(caught.value)


def test_load_waveform_runs_inside_tensorflow(adapter, tmp_path):
    """Spleeter's training pipeline calls ``load`` through ``tf.py_function`` with numpy scalars."""
    import tensorflow as tf

    path = tmp_path / "song.m4a"
    write(path, music(3.0, SR), SR)
    result = adapter.load_waveform(tf.constant(str(path)), offset=1.0, duration=1.5, sample_rate=SR)
    assert not bool(result["waveform_error"])
    assert tuple(result["waveform"].shape) == (round(1.5 * SR), 2)
    missing = adapter.load_waveform(tf.constant(str(tmp_path / "nope.wav")), offset=0.0, duration=1.0)
    assert bool(missing["waveform_error"])


def test_save_with_codec_enum_or_string(adapter, tmp_path):
    from spleeter.audio import Codec

    x = music(1.0, SR)
    adapter.save(str(tmp_path / "sub" / "vocals.mp3"), x, SR, Codec.MP3, "128k")
    adapter.save(tmp_path / "vocals.wav", x, SR, "wav", "128k")
    adapter.save(str(tmp_path / "vocals.ogg").encode(), x, SR, Codec.OGG, "96k")
    assert probe(tmp_path / "sub" / "vocals.mp3").codec == "mp3"
    assert probe(tmp_path / "vocals.wav").codec == "pcm_s16le"  # Spleeter's wav is 16-bit PCM
    assert probe(tmp_path / "vocals.ogg").format == "ogg"
    y, _ = read(tmp_path / "vocals.wav")
    assert np.abs(y - x).max() <= 1 / 32768


@pytest.mark.slow
def test_spleeter_cli_trains_and_separates_with_the_adapter(tmp_path):
    """``spleeter train`` then ``spleeter separate`` with ``-a <our adapter>`` on a tiny U-Net
    (T=64, F=128, 2 steps): about 1.5 minutes on 2 cores, no ffmpeg binary used by the adapter."""
    import spleeter

    data = tmp_path / "data"
    rows = []
    for index in range(2):
        vocals, accompaniment = music(6.0, SR) * 0.5, noise(6.0, SR, 2, amplitude=0.1, seed=index)
        write(data / f"s{index}" / "vocals.mp3", vocals, SR)
        write(data / f"s{index}" / "accompaniment.flac", accompaniment, SR)
        write(data / f"s{index}" / "mix.m4a", vocals + accompaniment, SR)
        rows.append(f"s{index}/mix.m4a,s{index}/vocals.mp3,s{index}/accompaniment.flac,6.0")
    header = "mix_path,vocals_path,accompaniment_path,duration\n"
    (tmp_path / "train.csv").write_text(header + "\n".join(rows) + "\n")
    (tmp_path / "valid.csv").write_text(header + rows[0] + "\n")
    config = json.loads((Path(spleeter.__file__).parent / "resources" / "2stems.json").read_text())
    config.update(train_csv=str(tmp_path / "train.csv"), validation_csv=str(tmp_path / "valid.csv"),
                  model_dir=str(tmp_path / "model"), T=64, F=128, batch_size=1, train_max_steps=2,
                  throttle_secs=0, save_checkpoints_steps=2, save_summary_steps=1, chunk_duration=4.0,
                  n_chunks_per_song=1, training_cache=str(tmp_path / "cache" / "train"),
                  validation_cache=str(tmp_path / "cache" / "valid"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    cli = [sys.executable, "-m", "spleeter"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(cli + ["train", "-p", str(tmp_path / "config.json"), "-d", str(data), "-a", ADAPTER],
                   check=True, cwd=tmp_path, env=env, capture_output=True)
    assert (tmp_path / "model" / ".probe").exists()
    subprocess.run(cli + ["separate", "-p", str(tmp_path / "config.json"), "-o", str(tmp_path / "out"),
                          "-a", ADAPTER, "-c", "mp3", "-b", "96k", str(data / "s0" / "mix.m4a")],
                   check=True, cwd=tmp_path, env=env, capture_output=True)
    for name in ("vocals", "accompaniment"):
        info = probe(tmp_path / "out" / "mix" / f"{name}.mp3")
        assert info.sample_rate == SR and info.n_channels == 2
        assert info.duration == pytest.approx(6.0, abs=0.05)
