"""Reader, writer and probe: round trips, seeking, channels, resampling, memory and errors.

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
import math
import os
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from spleeter_ext.audio import AudioInfo, AudioReader, AudioWriter, probe, read, read_stems, resample, write
from spleeter_ext.audio import io as audio_io
from spleeter_ext.errors import AudioError, ParameterError

from .signals import aligned, best_lag, chirp, correlation, music, noise, sine, snr_db

SR = 44100


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


def test_default_wav_is_16_bit_and_probe_describes_it(tmp_path):
    path = tmp_path / "d.wav"
    write(path, noise(0.5, 22050, 1), 22050)
    info = probe(path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.n_channels, info.n_streams, info.codec, info.format) == (
        22050, 1, 1, "pcm_s16le", "wav")
    assert info.duration == pytest.approx(0.5) and info.n_samples == 11025
    assert info.path == str(path)


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


# --------------------------------------------------------------------------- channels


def test_mono_is_duplicated_to_stereo_or_kept(tmp_path):
    x = sine(0.5, 440.0)
    path = tmp_path / "mono.wav"
    write(path, x, SR, sample_format="f32")
    stereo, _ = read(path)
    assert stereo.shape == (len(x), 2)
    np.testing.assert_array_equal(stereo[:, 0], x[:, 0])
    np.testing.assert_array_equal(stereo[:, 1], x[:, 0])
    kept, _ = read(path, n_channels=None)
    assert kept.shape == (len(x), 1)


def test_stereo_to_mono_averages(tmp_path):
    x = noise(0.2, SR, 2)
    path = tmp_path / "s.wav"
    write(path, x, SR, sample_format="f32")
    y, _ = read(path, n_channels=1)
    np.testing.assert_allclose(y[:, 0], x.mean(axis=1), atol=1e-7)


def _six_channels(n_samples: int) -> np.ndarray:
    """FL FR FC LFE BL BR, each a distinct sine so the mix is traceable."""
    t = np.arange(n_samples) / SR
    freqs = [200, 300, 500, 60, 700, 1100]
    return np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in freqs], axis=1).astype(np.float32)


@pytest.mark.parametrize("writer", ["soundfile", "pyav"])
def test_5_1_is_downmixed_with_itu_weights_and_logged(tmp_path, audio_log, writer):
    x = _six_channels(SR // 2)
    path = tmp_path / "surround.wav"
    if writer == "soundfile":  # no channel mask: layout unspecified, 5.1 order assumed
        sf.write(path, x, SR, subtype="FLOAT")
    else:  # PyAV writes WAVE_FORMAT_EXTENSIBLE with the 5.1 mask
        write(path, x, SR, sample_format="f32")
    y, _ = read(path)
    g = 1 / math.sqrt(2)
    fl, fr, fc, _lfe, bl, br = x.T
    np.testing.assert_allclose(y[:, 0], fl + g * fc + g * bl, atol=1e-6)
    np.testing.assert_allclose(y[:, 1], fr + g * fc + g * br, atol=1e-6)
    lines = [r.getMessage() for r in audio_log.records if r.levelno == logging.INFO and "downmixing" in r.getMessage()]
    assert len(lines) == 1
    assert str(path) in lines[0] and "5.1" in lines[0] and "FL FR FC LFE BL BR" in lines[0]
    assert "LFE omitted" in lines[0]
    kept, _ = read(path, n_channels=None)
    np.testing.assert_array_equal(kept, x)


def test_cannot_upmix_to_more_than_two_channels(tmp_path):
    path = tmp_path / "s.wav"
    write(path, noise(0.1, SR, 2), SR)
    with pytest.raises(ParameterError, match="n_channels"):
        AudioReader(path, n_channels=6)


# --------------------------------------------------------------------------- resampling


def test_blockwise_resampling_equals_one_shot_soxr(tmp_path):
    x = np.concatenate([chirp(2.0, 48000), 0.5 * chirp(2.0, 48000)[::-1]], axis=1)
    path = tmp_path / "c48.wav"
    write(path, x, 48000, sample_format="f32")
    reader = AudioReader(path, sample_rate=44100)
    blocks = list(reader.blocks(block_samples=1000))
    y = np.concatenate(blocks)
    reference = soxr.resample(x, 48000, 44100, quality="HQ")
    assert reader.complete and reader.n_samples_read == len(y) == len(reference)
    assert all(len(b) == 1000 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 1000
    assert np.abs(y - reference).max() < 1e-5


def test_resample_function_matches_soxr():
    x = noise(0.5, 48000, 2)
    y = resample(x, 48000, 44100)
    np.testing.assert_allclose(y, soxr.resample(x, 48000, 44100, quality="HQ"), atol=1e-6)
    assert y.shape == (22050, 2) and y.dtype == np.float32
    same = resample(x, 48000, 48000)
    np.testing.assert_array_equal(same, x)
    assert same is not x


# --------------------------------------------------------------------------- offset / duration / seeking


@pytest.mark.parametrize("ext, sample_format", [("wav", "f32"), ("flac", "s24")])
def test_offset_and_duration_are_exact_to_the_sample(tmp_path, ext, sample_format):
    x = noise(10.0, SR, 2)
    path = tmp_path / f"long.{ext}"
    write(path, x, SR, sample_format=sample_format)
    full, _ = read(path)
    for offset, duration in [(0.0, 0.25), (1.2345, 0.5), (7.77, None), (9.9999, 1.0)]:
        y, _ = read(path, offset=offset, duration=duration)
        start = round(offset * SR)
        stop = len(x) if duration is None else min(len(x), start + round(duration * SR))
        np.testing.assert_array_equal(y, full[start:stop])


def test_offset_seeks_instead_of_decoding_from_the_start(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    write(path, noise(20.0, 8000, 1), 8000)
    seeks = []
    original = AudioReader._decode_pass

    def spy(self, start, stop, seek_to):
        seeks.append(seek_to)
        return original(self, start, stop, seek_to)

    monkeypatch.setattr(AudioReader, "_decode_pass", spy)
    y, _ = read(path, offset=15.0, duration=1.0, n_channels=None)
    assert seeks == [15 * 8000] and len(y) == 8000


@pytest.mark.parametrize("ext, tolerance", [("mp3", 1e-6), ("ogg", 1e-4), ("m4a", 2e-3)])
def test_lossy_offset_read_matches_full_decode(tmp_path, ext, tolerance):
    """After a seek the decoder pre-rolls, so the slice matches the same samples of a full decode:
    bit-exact for MP3 after its two-frame pre-roll; Opus converges exponentially (measured
    < 1e-5 after 0.5 s); AAC differs only by perceptual noise substitution, whose random
    generator restarts at the seek (measured 4.5e-4)."""
    x = music(6.0, 48000 if ext == "ogg" else SR)
    rate = 48000 if ext == "ogg" else SR
    path = tmp_path / f"m.{ext}"
    write(path, x, rate)
    full, _ = read(path)
    y, _ = read(path, offset=4.321, duration=0.5)
    start = round(4.321 * rate)
    assert len(y) == round(0.5 * rate)
    assert np.abs(y - full[start:start + len(y)]).max() <= tolerance


def test_duration_zero_and_offset_past_the_end_give_empty_blocks(tmp_path):
    path = tmp_path / "s.wav"
    write(path, noise(1.0, SR, 2), SR)
    empty, _ = read(path, duration=0.0)
    assert empty.shape == (0, 2)
    reader = AudioReader(path, offset=5.0)
    assert list(reader.blocks()) == [] and reader.complete and reader.n_samples_read == 0


# --------------------------------------------------------------------------- streaming and memory


def test_ten_minute_wav_streams_in_constant_memory(tmp_path):
    block_seconds, minutes = 1.0, 10
    path = tmp_path / "ten_minutes.wav"
    second = noise(block_seconds, SR, 2)
    with AudioWriter(path, SR, 2) as writer:
        for _ in range(int(minutes * 60 / block_seconds)):
            writer.write(second)
    block_samples = 1 << 15
    block_bytes = block_samples * 2 * 4
    reader = AudioReader(path)
    tracemalloc.start()
    try:
        count = 0
        for block in reader.blocks(block_samples=block_samples):
            assert block.shape[0] <= block_samples and block.dtype == np.float32
            count += 1
            del block  # a streaming consumer keeps nothing between blocks
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n_samples = minutes * 60 * SR
    assert reader.complete and reader.n_samples_read == n_samples
    assert count == math.ceil(n_samples / block_samples)
    assert peak < 2 * block_bytes, f"peak {peak} B for {block_bytes} B blocks"


# --------------------------------------------------------------------------- multi-stream files


def _write_stem_mp4(path: Path, frequencies, seconds: float = 1.0, faststart: bool = False) -> None:
    """An MP4 with one AAC stereo stream per frequency (a MUSDB-like .stem.mp4); ``faststart`` puts
    the moov box (the index) before the audio data."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        streams = []
        for _ in frequencies:
            stream = container.add_stream("aac", rate=SR)
            stream.layout, stream.format, stream.bit_rate = "stereo", "fltp", 128000
            streams.append(stream)
        signals = [np.repeat(sine(seconds, f, SR, 0.3), 2, axis=1) for f in frequencies]
        step = 4096
        for begin in range(0, len(signals[0]), step):
            for stream, signal in zip(streams, signals):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal[begin:begin + step].T),
                                                   format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = SR, begin
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                container.mux(packet)


def _dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_multi_stream_mp4_reads_each_stream(tmp_path):
    frequencies = [440.0, 110.0, 220.0, 880.0, 1760.0]
    path = tmp_path / "song.stem.mp4"
    _write_stem_mp4(path, frequencies)
    info = probe(path)
    assert info.n_streams == 5 and info.sample_rate == SR and info.n_channels == 2
    stems = read_stems(path)
    assert list(stems) == ["mixture", "drums", "bass", "other", "vocals"]
    for (name, x), frequency in zip(stems.items(), frequencies):
        assert x.shape == (SR, 2), name
        assert _dominant_frequency(x, SR) == pytest.approx(frequency, abs=2.0), name
    vocals, _ = read(path, stream=4, offset=0.25, duration=0.5)
    np.testing.assert_allclose(vocals, stems["vocals"][round(0.25 * SR):round(0.75 * SR)], atol=1e-4)
    with pytest.raises(AudioError, match=r"stream=5 is out of range"):
        probe(path, stream=5)
    with pytest.raises(AudioError, match="5 audio stream"):
        read_stems(path, names=["mixture", "accompaniment"])


def _stempeg_excerpt() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("stempeg")  # locate without importing (stempeg needs ffmpeg)
    assert spec is not None and spec.origin, "stempeg (a musdb dependency) must be installed: run `make install`"
    path = Path(spec.origin).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    assert path.exists(), f"{path} is not shipped with this stempeg"
    return path


def test_real_musdb_stem_excerpt_from_stempeg():
    """The mixture of this AAC excerpt matches the sum of its 4 stems to 22.3 dB SNR, correlation
    0.997 (edges of 0.1 s excluded, where each stream's separate AAC encode rings)."""
    path = _stempeg_excerpt()
    info = probe(path)
    assert (info.n_streams, info.sample_rate, info.n_channels, info.codec) == (5, 44100, 2, "aac")
    assert info.duration == pytest.approx(6.08, abs=0.05)
    stems = read_stems(path)
    lengths = {len(x) for x in stems.values()}
    assert len(lengths) == 1 and lengths.pop() == info.n_samples
    edge = SR // 10
    mixture = stems["mixture"][edge:-edge]
    total = sum(stems[name] for name in ("drums", "bass", "other", "vocals"))[edge:-edge]
    assert snr_db(mixture, total) > 20.0
    assert correlation(mixture, total) > 0.99


# --------------------------------------------------------------------------- probe / reader errors


def _one_line_naming(error: Exception, path: Path) -> str:
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: ") and "; " in message
    return message


def test_missing_empty_directory_and_garbage_files(tmp_path):
    cases = {
        tmp_path / "missing.wav": "file not found",
        tmp_path: "is a directory",
        tmp_path / "empty.mp3": "empty file (0 bytes)",
        tmp_path / "garbage.mp3": "not an audio file or corrupt header",
        tmp_path / "garbage.wav": "not an audio file or corrupt header",
    }
    (tmp_path / "empty.mp3").write_bytes(b"")
    garbage = np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8).tobytes()
    (tmp_path / "garbage.mp3").write_bytes(garbage)
    (tmp_path / "garbage.wav").write_bytes(garbage)
    for path, what in cases.items():
        for call in (probe, read, AudioReader):
            with pytest.raises(AudioError) as caught:
                call(path)
            assert what in _one_line_naming(caught.value, path)


def test_file_without_audio_stream(tmp_path):
    path = tmp_path / "video.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(AudioError) as caught:
        probe(path)
    assert "no audio stream (streams: video)" in _one_line_naming(caught.value, path)


def _truncate_half(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize("ext", ["wav", "mp3", "flac"])
def test_truncated_file_yields_good_part_then_raises(tmp_path, ext):
    x = music(6.0, SR)
    path = tmp_path / f"cut.{ext}"
    write(path, x, SR)
    _truncate_half(path)
    reader = AudioReader(path)
    good = []
    with pytest.raises(AudioError) as caught:
        for block in reader.blocks(block_samples=SR // 2):
            good.append(block)
    message = _one_line_naming(caught.value, path)
    assert "truncated or corrupt" in message and "of 6.0 s" in message and "re-download" in message
    received = sum(len(b) for b in good)
    assert reader.n_samples_read == received and not reader.complete
    assert 2.5 * SR < received < 3.5 * SR
    with pytest.raises(AudioError, match="truncated"):
        read(path)
    head, _ = read(path, duration=2.0)  # a caller-limited read inside the good part is fine
    assert len(head) == 2 * SR


def test_nan_in_float_wav_yields_good_part_then_raises(tmp_path):
    x = noise(3.0, SR, 2)
    x[round(1.5 * SR) + 7, 1] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    reader = AudioReader(path)
    good = []
    with pytest.raises(AudioError) as caught:
        for block in reader.blocks(block_samples=4096):
            good.append(block)
    assert "contains NaN/Inf samples at 1.50 s" in _one_line_naming(caught.value, path)
    y = np.concatenate(good)
    assert len(y) == round(1.5 * SR) + 7 and np.isfinite(y).all()
    np.testing.assert_array_equal(y, x[:len(y)])


def test_reader_parameter_errors(tmp_path):
    path = tmp_path / "s.wav"
    write(path, noise(0.1, SR, 2), SR)
    for kwargs in ({"offset": -1.0}, {"duration": float("nan")}, {"sample_rate": 44100.5}, {"sample_rate": 0},
                   {"n_channels": 0}, {"stream": -1}):
        with pytest.raises(ParameterError):
            AudioReader(path, **kwargs)
    with pytest.raises(ParameterError, match="block_samples"):
        next(AudioReader(path).blocks(block_samples=0))
    y, rate = read(path, sample_rate=np.float64(22050.0))
    assert rate == 22050 and len(y) == 2205


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
    x = _six_channels(SR // 2)
    write(tmp_path / "six.flac", x, SR, sample_format="s24")
    y, _ = read(tmp_path / "six.flac", n_channels=None)
    assert np.abs(y - x).max() < 2 ** -23
    assert probe(tmp_path / "six.flac").layout == "5.1"
    write(tmp_path / "six.m4a", x, SR)
    z, _ = read(tmp_path / "six.m4a", n_channels=None)
    assert z.shape == x.shape


def test_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, spleeter_ext.audio, spleeter_ext.audio.io; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert audio_io.RESAMPLE_QUALITY in ("HQ", "VHQ")


# --------------------------------------------------------------------------- opening once, small probe


@pytest.fixture
def av_opens(monkeypatch):
    """The paths passed to ``av.open`` while the test runs (how many times files are opened)."""
    calls = []
    original = av.open

    def counting_open(file, *args, **kwargs):
        calls.append(str(file))
        return original(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    return calls


def _default_probe(path: Path, stream: int = 0) -> AudioInfo:
    """What probe() said before the small probe: the same fields from FFmpeg's default probing."""
    with av.open(str(path), metadata_errors="replace") as container:
        return audio_io._stream_info(container, str(path), stream)


def _jpeg(n_bytes: int) -> bytes:
    """A baseline JPEG of at least ``n_bytes`` (noise compresses badly), as cover art."""
    from fractions import Fraction

    side = math.ceil(math.sqrt(1.2 * n_bytes))  # about 1 byte per pixel at this quality
    context = av.CodecContext.create("mjpeg", "w")
    context.width = context.height = side
    context.pix_fmt, context.time_base, context.qmin, context.qmax = "yuvj420p", Fraction(1, 25), 2, 2
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuvj420p")
    data = b"".join(bytes(packet) for packet in [*context.encode(frame), *context.encode(None)])
    assert len(data) >= n_bytes
    return data


def _with_id3_cover(mp3: bytes, cover: bytes) -> bytes:
    """``mp3`` with its ID3v2 tag replaced by an ID3v2.3 tag holding a title and ``cover`` (APIC)."""
    def syncsafe(n: int) -> bytes:
        return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))

    def frame(ident: bytes, body: bytes) -> bytes:
        return ident + len(body).to_bytes(4, "big") + b"\x00\x00" + body

    if mp3[:3] == b"ID3":
        mp3 = mp3[10 + sum(b << (7 * (3 - i)) for i, b in enumerate(mp3[6:10])):]
    frames = frame(b"TIT2", b"\x00cover test") + frame(b"APIC", b"\x00image/jpeg\x00\x03cover\x00" + cover)
    return b"ID3\x03\x00\x00" + syncsafe(len(frames)) + frames + mp3


def _probe_cases(tmp_path: Path) -> dict:
    x = music(1.5, SR)
    paths = {}
    for name, kwargs in {"pcm.wav": {}, "f32.wav": {"sample_format": "f32"}, "s.flac": {}, "s.mp3": {},
                         "s.ogg": {}, "s.m4a": {}, "s.wma": {}}.items():
        paths[name] = tmp_path / name
        write(paths[name], x, SR, **kwargs)
    paths["soundfile.wav"] = tmp_path / "soundfile.wav"  # WAVE_FORMAT_PCM: FFmpeg's slowest default probe
    sf.write(paths["soundfile.wav"], x, SR, subtype="PCM_16")
    paths["extensible51.wav"] = tmp_path / "extensible51.wav"  # WAVE_FORMAT_EXTENSIBLE, 5.1 channel mask
    write(paths["extensible51.wav"], _six_channels(3 * SR // 2), SR, sample_format="f32")
    paths["cover.mp3"] = tmp_path / "cover.mp3"
    paths["cover.mp3"].write_bytes(_with_id3_cover(paths["s.mp3"].read_bytes(), _jpeg(200_000)))
    paths["song.stem.mp4"] = tmp_path / "song.stem.mp4"
    _write_stem_mp4(paths["song.stem.mp4"], [440.0, 110.0, 220.0, 880.0, 1760.0], seconds=1.5)
    return paths


def test_small_probe_describes_files_like_default_probing(tmp_path, av_opens):
    """One open per probe, and the same AudioInfo as FFmpeg's default 5 MB probe, for every format
    of the small-probe list: PCM and 5.1 WAVE_FORMAT_EXTENSIBLE wav, flac, mp3 (also behind a
    200 KB ID3v2 cover), ogg/opus, m4a, wma and a 5-stream .stem.mp4."""
    for name, path in _probe_cases(tmp_path).items():
        del av_opens[:]
        infos = audio_io.probe_streams(path)
        assert av_opens == [str(path)], name
        assert infos == [_default_probe(path, i) for i in range(len(infos))], name
        assert probe(path, len(infos) - 1) == infos[-1]
    assert probe(tmp_path / "extensible51.wav").layout == "5.1"
    assert probe(tmp_path / "cover.mp3").n_streams == 1  # the cover is a video stream, not audio


def test_formats_outside_the_small_probe_list_fall_back_to_default_probing(tmp_path, av_opens):
    """Raw ADTS AAC: FFmpeg estimates its duration from the bit rate of the probed packets, so it is
    probed again with the default probe size (and gives exactly the old answer)."""
    path = tmp_path / "raw.aac"
    with av.open(str(path), mode="w", format="adts") as container:
        stream = container.add_stream("aac", rate=SR)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(music(1.0, SR).T), format="fltp", layout="stereo")
        frame.sample_rate = SR
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    del av_opens[:]
    info = probe(path)
    assert info.format == "aac" and av_opens == [str(path)] * 2
    assert info == _default_probe(path)


def test_mp3_behind_a_large_id3_cover_reads_like_the_bare_mp3(tmp_path, av_opens):
    x = music(4.0, SR)
    bare = tmp_path / "bare.mp3"
    write(bare, x, SR)
    tagged = _with_id3_cover(bare.read_bytes(), _jpeg(200_000))
    covered, unnamed = tmp_path / "covered.mp3", tmp_path / "covered.bin"  # .bin: detected from content alone
    covered.write_bytes(tagged)
    unnamed.write_bytes(tagged)
    full, _ = read(bare)
    reference = probe(bare)
    for path in (covered, unnamed):
        info = probe(path)
        assert (info.format, info.codec, info.sample_rate, info.n_channels, info.n_streams) == ("mp3", "mp3", SR, 2, 1)
        assert info.duration == reference.duration
        del av_opens[:]
        np.testing.assert_array_equal(read(path)[0], full)
        y, _ = read(path, offset=2.345, duration=1.0)
        assert av_opens == [str(path)] * 2  # one open per read
        start = round(2.345 * SR)
        np.testing.assert_array_equal(y, full[start:start + SR])


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg", "m4a"])
def test_a_read_by_offset_opens_the_file_once(tmp_path, av_opens, ext):
    path = tmp_path / f"s.{ext}"
    write(path, music(3.0, SR), SR)
    full, rate = read(path)
    del av_opens[:]
    y, _ = read(path, offset=1.5, duration=0.5)
    assert av_opens == [str(path)]
    start = round(1.5 * rate)
    if ext in ("wav", "flac"):
        np.testing.assert_array_equal(y, full[start:start + len(y)])
    assert len(y) == round(0.5 * rate)


def test_reader_holds_the_file_until_blocks_are_consumed_or_closed(tmp_path, av_opens):
    path = tmp_path / "s.wav"
    x = noise(1.0, SR, 2)
    write(path, x, SR, sample_format="f32")
    del av_opens[:]
    with AudioReader(path, offset=0.25) as reader:
        assert reader._container is not None and av_opens == [str(path)]
        first = np.concatenate(list(reader.blocks()))
        assert reader._container is None and av_opens == [str(path)]  # the first pass used it, then closed it
        again = np.concatenate(list(reader.blocks()))  # a second pass reopens the file
        assert len(av_opens) == 2
    np.testing.assert_array_equal(first, x[round(0.25 * SR):])
    np.testing.assert_array_equal(again, first)
    unused = AudioReader(path)
    unused.close()
    unused.close()  # idempotent
    assert unused._container is None


# --------------------------------------------------------------------------- several streams in one pass


@pytest.fixture(scope="module")
def stem_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stems") / "song.stem.mp4"
    _write_stem_mp4(path, [440.0, 110.0, 220.0, 880.0, 1760.0], seconds=3.0)
    return path


@pytest.mark.parametrize("streams, offset, duration, sample_rate, n_channels", [
    ([1, 2, 3, 4], 1.2345, 1.0, None, 2),  # seek (offset beyond the 0.5 s lossy pre-roll)
    ([4, 0, 2], 0.1, 0.5, 22050, 1),  # no seek: decoded from the start
    ([3], 2.5, None, 48000, None),  # to the end, trimmed to the declared duration
    (None, 0.0, None, None, 2),
])
def test_read_streams_equals_one_read_per_stream(stem_file, av_opens, streams, offset, duration, sample_rate,
                                                 n_channels):
    del av_opens[:]
    waveforms, rate = audio_io.read_streams(stem_file, streams, offset=offset, duration=duration,
                                            sample_rate=sample_rate, n_channels=n_channels)
    assert av_opens == [str(stem_file)]
    indices = list(range(5)) if streams is None else streams
    assert len(waveforms) == len(indices) and rate == (sample_rate or SR)
    for index, waveform in zip(indices, waveforms):
        expected, _ = read(stem_file, offset=offset, duration=duration, sample_rate=sample_rate,
                           n_channels=n_channels, stream=index)
        np.testing.assert_array_equal(waveform, expected)  # the same samples, bit for bit
        assert waveform.dtype == np.float32


def test_read_streams_pre_rolls_for_a_lossy_stream_listed_after_a_lossless_one(tmp_path):
    """ALAC (lossless: no pre-roll of its own) and AAC in one MP4: whatever their order, the seek
    leaves the AAC stream its pre-roll, and both streams equal their single-stream reads."""
    path = tmp_path / "mixed.mp4"
    x = music(3.0, SR)
    with av.open(str(path), mode="w", format="mp4") as container:
        lossless, lossy = container.add_stream("alac", rate=SR), container.add_stream("aac", rate=SR)
        lossless.layout, lossless.format, lossy.layout, lossy.format = "stereo", "s16p", "stereo", "fltp"
        for begin in range(0, len(x), 4096):
            block = x[begin:begin + 4096]
            for stream, data, sample_format in ((lossless, (block * 32767).astype(np.int16), "s16p"),
                                                (lossy, block, "fltp")):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T), format=sample_format, layout="stereo")
                frame.sample_rate, frame.pts = SR, begin
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in (lossless, lossy):
            for packet in stream.encode(None):
                container.mux(packet)
    assert [info.lossless for info in audio_io.probe_streams(path)] == [True, False]
    for streams in ([0, 1], [1, 0]):
        waveforms, _ = audio_io.read_streams(path, streams, offset=2.1, duration=0.5)
        for index, waveform in zip(streams, waveforms):
            np.testing.assert_array_equal(waveform, read(path, offset=2.1, duration=0.5, stream=index)[0])


def test_read_streams_decodes_from_the_start_when_a_seek_cannot_be_trusted(stem_file, av_opens, monkeypatch):
    expected, _ = audio_io.read_streams(stem_file, [1, 4], offset=1.5, duration=0.5)
    original = audio_io._decode_streams

    def untrusted_seek(container, path, ranges, seek_to):
        if seek_to is not None:
            raise audio_io._Restart("seek landed after the offset")
        return original(container, path, ranges, seek_to)

    monkeypatch.setattr(audio_io, "_decode_streams", untrusted_seek)
    del av_opens[:]
    waveforms, _ = audio_io.read_streams(stem_file, [1, 4], offset=1.5, duration=0.5)
    assert len(av_opens) == 2
    for waveform, reference in zip(waveforms, expected):
        np.testing.assert_array_equal(waveform, reference)


def test_read_streams_errors(stem_file, tmp_path):
    with pytest.raises(ParameterError, match="duplicates"):
        audio_io.read_streams(stem_file, [1, 1])
    with pytest.raises(ParameterError, match="streams"):
        audio_io.read_streams(stem_file, [])
    with pytest.raises(ParameterError, match="offset"):
        audio_io.read_streams(stem_file, [1], offset=-1.0)
    with pytest.raises(AudioError, match=r"stream=5 is out of range"):
        audio_io.read_streams(stem_file, [1, 5])
    with pytest.raises(AudioError, match="file not found"):
        audio_io.read_streams(tmp_path / "missing.stem.mp4", [0])
    truncated = tmp_path / "cut.stem.mp4"
    _write_stem_mp4(truncated, [440.0, 110.0], seconds=6.0, faststart=True)
    data = truncated.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index survives the cut: decoding stops half way
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(AudioError, match=r"truncated or corrupt.* in audio stream 0: decoded [23]\.\d s of 6\.0 s"):
        audio_io.read_streams(truncated, [0, 1])
