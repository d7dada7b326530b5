"""The writer: lossless and lossy round trips, atomic commit, clipping, argument errors.

All audio is generated here. Lossy tolerances (measured on :func:`signals.music`, 2 s stereo,
44.1 kHz, default bitrates, FFmpeg 8 libraries in PyAV 18.1):

=========  ======  ===========  ========  =============  ===================================
codec      kbit/s  encoder      SNR (dB)  correlation    length / alignment
=========  ======  ===========  ========  =============  ===================================
mp3        192     libmp3lame   30.5      0.99999        exact (LAME gapless header)
ogg        160     libopus      34.8      0.9998         exact (Opus pre-skip; 48 kHz inside)
m4a        192     aac          23.7      0.998          exact (edit list; tail trimmed)
wma        192     wmav2        43.1      0.99998        first 2048 samples lost, 136 short
=========  ======  ===========  ========  =============  ===================================

Encoder delay is handled by FFmpeg's gapless metadata, so mp3/ogg/m4a need no alignment: the
tests assert a lag of 0 and an exact length. WMA has no such metadata in FFmpeg's round trip;
its test aligns by cross-correlation.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from spleeter_ext.audio import AudioWriter, probe, read, write
from spleeter_ext.errors import AudioError, ParameterError

from .files import SR, six_channels
from .signals import aligned, best_lag, correlation, music, noise, snr_db

# --------------------------------------------------------------------------- lossless round trips


@pytest.mark.parametrize("ext, sample_format, step", [
    ("wav", "s16", 1 / 32768),
    ("wav", "s24", 1 / 2 ** 23),
    ("flac", "s16", 1 / 32768),
    ("flac", "s24", 1 / 2 ** 23),
])
def test_integer_round_trip_is_exact_to_quantisation(tmp_path, ext, sample_format, step):
    x = noise(1.0, SR, 2, amplitude=0.99)
    path = tmp_path / f"n.{ext}"
    write(path, x, SR, sample_format=sample_format)
    y, rate = read(path)
    assert rate == SR and y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - x).max() <= step / 2 + 1e-9
    # Exactly the quantised values: FLAC is bit-exact with PCM of the same depth.
    expected = np.round(x.astype(np.float64) / step) * step
    np.testing.assert_array_equal(y, expected.astype(np.float32))


def test_float_wav_round_trip_is_bit_exact(tmp_path):
    x = noise(1.0, SR, 2, amplitude=3.0)  # beyond [-1, 1]: kept, no clipping in f32
    path = tmp_path / "f.wav"
    write(path, x, SR, sample_format="f32")
    y, _ = read(path)
    np.testing.assert_array_equal(y, x)
    assert probe(path).codec == "pcm_f32le"


# --------------------------------------------------------------------------- lossy round trips


@pytest.mark.parametrize("ext, min_snr, min_corr", [("mp3", 27.0, 0.999), ("ogg", 31.0, 0.999),
                                                    ("m4a", 20.0, 0.995)])
def test_lossy_round_trip_is_aligned_and_close(tmp_path, ext, min_snr, min_corr):
    x = music(2.0, SR)
    path = tmp_path / f"m.{ext}"
    write(path, x, SR)
    y, rate = read(path, sample_rate=SR)
    assert rate == SR
    assert len(y) == len(x), "encoder delay and padding must be trimmed"
    assert best_lag(x, y) == 0
    edge = 2048  # codec start-up transient on the abrupt onset
    assert correlation(x[edge:-edge], y[edge:-edge]) > min_corr
    assert snr_db(x[edge:-edge], y[edge:-edge]) > min_snr


def test_wma_round_trip_after_alignment(tmp_path):
    x = music(2.0, SR)
    path = tmp_path / "m.wma"
    write(path, x, SR)
    y, _ = read(path)
    lag = best_lag(x, y)
    assert abs(lag) <= 4096 and abs(len(y) - len(x)) <= 4096
    a, b = aligned(x, y, lag)
    assert correlation(a[2048:-2048], b[2048:-2048]) > 0.999


@pytest.mark.parametrize("ext", ["mp3", "ogg", "m4a"])
def test_bitrate_changes_file_size(tmp_path, ext):
    x = music(2.0, SR)
    write(tmp_path / f"low.{ext}", x, SR, bitrate="64k")
    write(tmp_path / f"high.{ext}", x, SR, bitrate="256k")
    assert os.path.getsize(tmp_path / f"high.{ext}") > 2 * os.path.getsize(tmp_path / f"low.{ext}")


def test_ogg_is_opus_at_48k_and_reads_back_at_any_rate(tmp_path, audio_log):
    path = tmp_path / "o.ogg"
    write(path, music(1.0, SR), SR)
    info = probe(path)
    assert (info.codec, info.format, info.sample_rate) == ("opus", "ogg", 48000)
    assert any("resampling 44100 Hz to 48000 Hz" in r.getMessage() for r in audio_log.records)
    y, rate = read(path, sample_rate=SR)
    assert rate == SR and len(y) == SR


def test_codec_override_accepts_spleeter_codec_enum_and_strings(tmp_path):
    from spleeter.audio import Codec  # the enum module does not import TensorFlow

    x = music(0.5, SR)
    write(tmp_path / "a.mp3", x, SR, codec=Codec.MP3)
    write(tmp_path / "b.audio", x, SR, codec="flac")
    assert probe(tmp_path / "a.mp3").codec == "mp3"
    assert probe(tmp_path / "b.audio").format == "flac"


# --------------------------------------------------------------------------- writer


def test_exception_inside_writer_leaves_no_file(tmp_path):
    final = tmp_path / "out" / "song.vocals.wav"
    with pytest.raises(RuntimeError):
        with AudioWriter(final, SR, 2) as writer:
            writer.write(noise(0.5, SR, 2))
            temp = Path(writer.temp_path)
            assert temp.exists() and not final.exists()
            assert temp.name == f".song.vocals.wav.part-{os.getpid()}"
            raise RuntimeError("model crashed")
    assert not final.exists() and not temp.exists()
    assert os.listdir(final.parent) == []


def test_failed_rewrite_keeps_the_previous_file(tmp_path):
    final = tmp_path / "keep.flac"
    write(final, noise(0.2, SR, 2), SR)
    before = final.read_bytes()
    writer = AudioWriter(final, SR, 2)
    writer.write(noise(0.3, SR, 2, seed=1))
    writer.abort()
    assert final.read_bytes() == before and not Path(writer.temp_path).exists()
    with pytest.raises(AudioError, match="aborted"):
        writer.close()
    with pytest.raises(AudioError, match="aborted"):
        writer.write(noise(0.1, SR, 2))


def test_writer_creates_directories_and_renames_on_close(tmp_path):
    final = tmp_path / "a" / "b" / "song.mp3"
    writer = AudioWriter(final, SR, 2, bitrate="128k")
    writer.write(music(0.5, SR))
    assert not final.exists()
    writer.close()
    writer.close()  # idempotent
    assert final.exists() and writer.closed
    assert sorted(os.listdir(final.parent)) == ["song.mp3"]


def test_protected_paths_are_refused(tmp_path):
    source = tmp_path / "input.wav"
    write(source, noise(0.2, SR, 2), SR)
    before = source.read_bytes()
    for alias in (source, str(source), tmp_path / "." / "input.wav"):
        with pytest.raises(AudioError) as caught:
            AudioWriter(alias, SR, 2, protect={str(source)})
        assert "refusing to overwrite an input file" in str(caught.value)
    with pytest.raises(AudioError, match="refusing"):
        write(source, noise(0.2, SR, 2), SR, protect=[source])
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["input.wav"]


def test_clipping_warns_once_per_file_with_the_count(tmp_path, audio_log):
    x = noise(1.0, SR, 2, amplitude=0.5)
    x[:10] = 1.5
    x[100:103, 0] = -2.0
    path = tmp_path / "loud.wav"
    with AudioWriter(path, SR, 2) as writer:
        writer.write(x[:SR // 2])
        writer.write(x[SR // 2:])
    warnings = [r.getMessage() for r in audio_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}: clipped 23 samples beyond [-1, 1]")
    y, _ = read(path)
    assert y.max() == pytest.approx(32767 / 32768) and y.min() == -1.0
    write(tmp_path / "loud_f32.wav", x, SR, sample_format="f32")
    write(tmp_path / "loud.mp3", x, SR)
    assert len([r for r in audio_log.records if r.levelno == logging.WARNING]) == 1


def test_writer_argument_errors(tmp_path):
    x = noise(0.1, SR, 2)
    with pytest.raises(ParameterError, match="unknown audio extension"):
        AudioWriter(tmp_path / "a.xyz", SR, 2)
    with pytest.raises(ParameterError, match="codec"):
        AudioWriter(tmp_path / "a.wav", SR, 2, codec="aiff")
    with pytest.raises(ParameterError, match="sample_format"):
        AudioWriter(tmp_path / "a.mp3", SR, 2, sample_format="s24")
    with pytest.raises(ParameterError, match="sample_format"):
        AudioWriter(tmp_path / "a.flac", SR, 2, sample_format="f32")
    with pytest.raises(ParameterError, match="bitrate"):
        AudioWriter(tmp_path / "a.mp3", SR, 2, bitrate="fast")
    with pytest.raises(ParameterError, match="at most 2 channels"):
        AudioWriter(tmp_path / "a.mp3", SR, 6)
    with pytest.raises(ParameterError, match="cannot encode 96000 Hz"):
        AudioWriter(tmp_path / "a.mp3", 96000, 2)
    with AudioWriter(tmp_path / "a.wav", SR, 2) as writer:
        with pytest.raises(ParameterError, match="n_channels=2"):
            writer.write(noise(0.1, SR, 1))
        with pytest.raises(ParameterError, match="channels-first"):
            writer.write(x.T)
        writer.write(x)
    bad = x.copy()
    bad[5, 0] = np.inf
    with pytest.raises(ParameterError, match=r"NaN/Inf at sample 5"):
        write(tmp_path / "b.wav", bad, SR)
    assert sorted(os.listdir(tmp_path)) == ["a.wav"]


def test_multichannel_flac_and_m4a_round_trip(tmp_path):
    x = six_channels(SR // 2)
    write(tmp_path / "six.flac", x, SR, sample_format="s24")
    y, _ = read(tmp_path / "six.flac", n_channels=None)
    assert np.abs(y - x).max() < 2 ** -23
    assert probe(tmp_path / "six.flac").layout == "5.1"
    write(tmp_path / "six.m4a", x, SR)
    z, _ = read(tmp_path / "six.m4a", n_channels=None)
    assert z.shape == x.shape
