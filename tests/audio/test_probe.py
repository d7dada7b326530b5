"""Probing: what a header says, errors naming the file, the small probe."""
from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.audio import AudioInfo, AudioReader, probe, probe_streams, read, write
from spleeter_ext.audio.probe import _stream_info
from spleeter_ext.errors import AudioError

from .files import SR, one_line_naming, six_channels, write_stem_mp4
from .signals import music, noise


def test_default_wav_is_16_bit_and_probe_describes_it(tmp_path):
    path = tmp_path / "d.wav"
    write(path, noise(0.5, 22050, 1), 22050)
    info = probe(path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.n_channels, info.n_streams, info.codec, info.format) == (
        22050, 1, 1, "pcm_s16le", "wav")
    assert info.duration == pytest.approx(0.5) and info.n_samples == 11025
    assert info.path == str(path)


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
            assert what in one_line_naming(caught.value, path)


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
    assert "no audio stream (streams: video)" in one_line_naming(caught.value, path)


def _default_probe(path: Path, stream: int = 0) -> AudioInfo:
    """What probe() said before the small probe: the same fields from FFmpeg's default probing."""
    with av.open(str(path), metadata_errors="replace") as container:
        return _stream_info(container, str(path), stream)


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
    write(paths["extensible51.wav"], six_channels(3 * SR // 2), SR, sample_format="f32")
    paths["cover.mp3"] = tmp_path / "cover.mp3"
    paths["cover.mp3"].write_bytes(_with_id3_cover(paths["s.mp3"].read_bytes(), _jpeg(200_000)))
    paths["song.stem.mp4"] = tmp_path / "song.stem.mp4"
    write_stem_mp4(paths["song.stem.mp4"], [440.0, 110.0, 220.0, 880.0, 1760.0], seconds=1.5)
    return paths


def test_small_probe_describes_files_like_default_probing(tmp_path, av_opens):
    """One open per probe, and the same AudioInfo as FFmpeg's default 5 MB probe, for every format
    of the small-probe list: PCM and 5.1 WAVE_FORMAT_EXTENSIBLE wav, flac, mp3 (also behind a
    200 KB ID3v2 cover), ogg/opus, m4a, wma and a 5-stream .stem.mp4."""
    for name, path in _probe_cases(tmp_path).items():
        del av_opens[:]
        infos = probe_streams(path)
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
