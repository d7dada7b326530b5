"""Multi-stream files (MUSDB18 .stem.mp4): every stream, one pass, errors naming the stream."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from spleeter_ext.audio import probe, probe_streams, read, read_stems, read_streams
from spleeter_ext.audio import streams as audio_streams
from spleeter_ext.audio.decode import _Restart
from spleeter_ext.errors import AudioError, ParameterError

from .files import SR, dominant_frequency, write_stem_mp4
from .signals import correlation, music, snr_db

# --------------------------------------------------------------------------- multi-stream files


def test_multi_stream_mp4_reads_each_stream(tmp_path):
    frequencies = [440.0, 110.0, 220.0, 880.0, 1760.0]
    path = tmp_path / "song.stem.mp4"
    write_stem_mp4(path, frequencies)
    info = probe(path)
    assert info.n_streams == 5 and info.sample_rate == SR and info.n_channels == 2
    stems = read_stems(path)
    assert list(stems) == ["mixture", "drums", "bass", "other", "vocals"]
    for (name, x), frequency in zip(stems.items(), frequencies):
        assert x.shape == (SR, 2), name
        assert dominant_frequency(x, SR) == pytest.approx(frequency, abs=2.0), name
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


# --------------------------------------------------------------------------- several streams in one pass


@pytest.fixture(scope="module")
def stem_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stems") / "song.stem.mp4"
    write_stem_mp4(path, [440.0, 110.0, 220.0, 880.0, 1760.0], seconds=3.0)
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
    waveforms, rate = read_streams(stem_file, streams, offset=offset, duration=duration,
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
    assert [info.lossless for info in probe_streams(path)] == [True, False]
    for streams in ([0, 1], [1, 0]):
        waveforms, _ = read_streams(path, streams, offset=2.1, duration=0.5)
        for index, waveform in zip(streams, waveforms):
            np.testing.assert_array_equal(waveform, read(path, offset=2.1, duration=0.5, stream=index)[0])


def test_read_streams_decodes_from_the_start_when_a_seek_cannot_be_trusted(stem_file, av_opens, monkeypatch):
    expected, _ = read_streams(stem_file, [1, 4], offset=1.5, duration=0.5)
    original = audio_streams._decode_streams

    def untrusted_seek(container, path, ranges, seek_to):
        if seek_to is not None:
            raise _Restart("seek landed after the offset")
        return original(container, path, ranges, seek_to)

    monkeypatch.setattr(audio_streams, "_decode_streams", untrusted_seek)
    del av_opens[:]
    waveforms, _ = read_streams(stem_file, [1, 4], offset=1.5, duration=0.5)
    assert len(av_opens) == 2
    for waveform, reference in zip(waveforms, expected):
        np.testing.assert_array_equal(waveform, reference)


def test_read_streams_errors(stem_file, tmp_path):
    with pytest.raises(ParameterError, match="duplicates"):
        read_streams(stem_file, [1, 1])
    with pytest.raises(ParameterError, match="streams"):
        read_streams(stem_file, [])
    with pytest.raises(ParameterError, match="offset"):
        read_streams(stem_file, [1], offset=-1.0)
    with pytest.raises(AudioError, match=r"stream=5 is out of range"):
        read_streams(stem_file, [1, 5])
    with pytest.raises(AudioError, match="file not found"):
        read_streams(tmp_path / "missing.stem.mp4", [0])
    truncated = tmp_path / "cut.stem.mp4"
    write_stem_mp4(truncated, [440.0, 110.0], seconds=6.0, faststart=True)
    data = truncated.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index survives the cut: decoding stops half way
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(AudioError, match=r"truncated or corrupt.* in audio stream 0: decoded [23]\.\d s of 6\.0 s"):
        read_streams(truncated, [0, 1])
