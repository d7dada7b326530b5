"""The streaming reader: channels, exact offsets and seeking, constant memory, damaged files, opening once."""
from __future__ import annotations

import logging
import math
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.audio import RESAMPLE_QUALITY, AudioReader, AudioWriter, probe, read, write
from spleeter_ext.errors import AudioError, ParameterError

from .files import SR, one_line_naming, six_channels, truncate_half
from .signals import music, noise, sine

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


@pytest.mark.parametrize("writer", ["soundfile", "pyav"])
def test_5_1_is_downmixed_with_itu_weights_and_logged(tmp_path, audio_log, writer):
    x = six_channels(SR // 2)
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


@pytest.mark.parametrize("ext", ["wav", "mp3", "flac"])
def test_truncated_file_yields_good_part_then_raises(tmp_path, ext):
    x = music(6.0, SR)
    path = tmp_path / f"cut.{ext}"
    write(path, x, SR)
    truncate_half(path)
    reader = AudioReader(path)
    good = []
    with pytest.raises(AudioError) as caught:
        for block in reader.blocks(block_samples=SR // 2):
            good.append(block)
    message = one_line_naming(caught.value, path)
    assert "truncated or corrupt" in message and "of 6.0" in message and "re-download" in message
    received = sum(len(b) for b in good)
    assert reader.n_samples_read == received and not reader.complete
    assert 2.5 * SR < received < 3.5 * SR
    with pytest.raises(AudioError, match="truncated"):
        read(path)
    head, _ = read(path, duration=2.0)  # a caller-limited read inside the good part is fine
    assert len(head) == 2 * SR


@pytest.mark.parametrize("container, ext", [("WAV", "wav"), ("RF64", "wav"), ("W64", "w64"), ("AIFF", "aiff"),
                                            ("CAF", "caf"), ("FLAC", "flac")])
def test_lossless_inputs_are_checked_to_the_sample_frame(tmp_path, audio_log, container, ext):
    """Cutting the last 4 bytes (one 16-bit stereo frame; FLAC: its last frame becomes undecodable) is an
    error naming the file and what was decoded of what the header declares; ``allow_truncated`` keeps the
    decoded part and says so in the log."""
    x = noise(1.0, SR, 2)
    path = tmp_path / f"x.{ext}"
    sf.write(path, x, SR, format=container, subtype="PCM_16")
    assert probe(path).frames == len(x) and read(path)[0].shape == x.shape
    path.write_bytes(path.read_bytes()[:-4])
    assert probe(path).frames == len(x)  # FFmpeg alone would see the bytes present
    with pytest.raises(AudioError) as caught:
        read(path)
    message = one_line_naming(caught.value, path)
    decoded = len(x) - 1 if container != "FLAC" else int(message.split("decoded ")[1].split()[0])
    assert f"decoded {decoded} of the {len(x)} sample frames its header declares" in message
    assert "--allow-truncated" in message
    y, _ = read(path, allow_truncated=True)
    assert len(y) == decoded and decoded < len(x)
    np.testing.assert_allclose(y, x[:decoded], atol=1 / 32768)
    warnings = [r.getMessage() for r in audio_log.records if r.levelno == logging.WARNING]
    assert any(str(path) in w and f"decoded {decoded} of the {len(x)}" in w and "keeping the decoded part" in w
               for w in warnings)


def test_exact_length_check_counts_from_the_offset_and_to_the_duration(tmp_path):
    x = noise(2.0, SR, 2)
    path = tmp_path / "x.wav"
    write(path, x, SR)
    path.write_bytes(path.read_bytes()[:-4 * 100])  # the last 100 frames are gone
    head, _ = read(path, offset=0.5, duration=1.0)  # inside the decodable part: fine
    assert len(head) == SR
    with pytest.raises(AudioError, match=rf"decoded {SR - 100} of the {SR} sample frames its header declares "
                                         r"after the offset"):
        read(path, offset=1.0)


def test_lossy_lengths_have_a_tolerance_and_why(tmp_path):
    """A lossy stream's declared length is not exact: Opus declares the encoder's priming (pre-skip, 312
    samples at 48 kHz) that the decoder drops, and FFmpeg times an MP3 without Xing/LAME header or raw
    ADTS AAC from the bit rate of its first packets. So a lossy decode is short only beyond max(0.5 s, 2 %)."""
    from spleeter_ext.audio.decode import length_tolerance

    x = music(6.0, SR)
    opus = tmp_path / "x.ogg"
    write(opus, x, SR)
    info = probe(opus)
    assert info.frames is None and not info.lossless
    y, rate = read(opus, sample_rate=info.sample_rate)
    assert rate == 48000 and info.n_samples - len(y) == 312  # short of the declaration, and complete
    assert length_tolerance(info, info.n_samples) == 24000
    assert length_tolerance(info, 60 * 48000) == round(0.02 * 60 * 48000)
    assert length_tolerance(probe(write_flac(tmp_path / "x.flac", x)), 6 * SR) == 0
    mp3 = tmp_path / "x.mp3"
    write(mp3, x, SR)
    data = mp3.read_bytes()
    mp3.write_bytes(data[: len(data) - len(data) // 100])  # ~0.06 s of the end: within the tolerance
    assert 5.8 * SR < len(read(mp3)[0]) < 6 * SR
    mp3.write_bytes(data[: len(data) * 8 // 10])  # ~1.2 s: beyond it
    with pytest.raises(AudioError, match=r"truncated or corrupt: decoded 4\.\d s of 6\.0 s"):
        read(mp3)


def write_flac(path, x):
    write(path, x, SR)
    return path


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
    assert "contains NaN/Inf samples at 1.50 s" in one_line_naming(caught.value, path)
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


def test_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, spleeter_ext.audio, spleeter_ext.audio.io, spleeter_ext.audio.streams, "
            "spleeter_ext.audio.writer; print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert RESAMPLE_QUALITY in ("HQ", "VHQ")
