"""Streaming audio I/O through PyAV (FFmpeg's libraries, bundled: no ``ffmpeg`` binary needed).

Conventions: waveforms are float32 arrays of shape ``(n_samples, n_channels)`` (axis 0: time
in samples, axis 1: channels), ``sample_rate`` is in Hz, times (``offset``, ``duration``) are
in seconds. Every error is an :class:`~spleeter_ext.errors.AudioError` (the file) or a
:class:`~spleeter_ext.errors.ParameterError` (an argument) whose one-line message reads
``<file>: <what was wrong>; <how to fix>``.

* :func:`probe` (:func:`probe_streams` for several streams) describes a file without decoding
  it (:class:`AudioInfo`). Files are opened once per call, with FFmpeg's probe size cut to
  32 KiB for the demuxers where that was measured to describe files identically.
* :class:`AudioReader` decodes block by block in constant memory, seeking to ``offset``,
  trimming to the exact sample, converting channels and resampling with a streaming soxr
  resampler (block-wise output equals one-shot ``soxr.resample``).
* :class:`AudioWriter` encodes block by block to a temporary file that is renamed to the
  final name only when the writer closes without error.
* :func:`read`, :func:`read_streams` (several streams of one file, e.g. a ``.stem.mp4``, in one
  pass), :func:`read_stems`, :func:`write` and :func:`resample` work on whole arrays.

This module does not import TensorFlow.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Collection, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import av
import av.error
import av.stream
import numpy as np
import soxr

from ..errors import AudioError, ParameterError
from ..log import logger
from .channels import DEFAULT_LAYOUTS, as_channels_last, downmix_for, to_channels
from .formats import EXTENSIONS, OutputFormat, parse_bitrate, resolve_output_format

__all__ = [
    "AudioInfo", "probe", "probe_streams", "AudioReader", "read", "read_streams", "read_stems", "AudioWriter",
    "write", "resample",
    "as_channels_last", "to_channels", "DEFAULT_BLOCK_SAMPLES", "MUSDB_STEMS", "RESAMPLE_QUALITY",
]

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: Default number of output samples per block yielded by :meth:`AudioReader.blocks`.
DEFAULT_BLOCK_SAMPLES = 1 << 16
#: soxr quality recipe used for every resampling ('HQ': 20-bit precision, linear phase).
RESAMPLE_QUALITY = "HQ"
#: Stream order of MUSDB18 / Native Instruments ``.stem.mp4`` files.
MUSDB_STEMS: Tuple[str, ...] = ("mixture", "drums", "bass", "other", "vocals")

#: Seconds decoded and discarded before ``offset`` for lossy codecs: after a seek, MP3 needs
#: two frames (bit reservoir), AAC one (MDCT overlap) and Opus ~0.3 s to converge exactly.
_LOSSY_PREROLL_SECONDS = 0.5
#: A decode is "clearly short" when it misses more than max(0.5 s, 2 %) of the declared length.
_TRUNCATION_SECONDS = 0.5
_TRUNCATION_FRACTION = 0.02
#: Samples per frame handed to the encoder (PyAV re-frames to the codec's frame size).
_WRITE_FRAME_SAMPLES = 1 << 14
_MP4_FAMILY = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "ipod"}
#: Codec names that share a container (no warning when the extension names the other one).
_FAMILY = {"opus": "ogg", "aac": "m4a"}
#: Open options of the small probe. FFmpeg's default ``probesize`` (5 MB) makes every open of a
#: 16-bit PCM WAV read 5 MB (its S/PDIF-in-WAV check): ~45 ms on a 30 s file against ~1.5 ms
#: with 32 KiB. Format detection has its own limit (``formatprobesize``, 1 MiB) and is not
#: affected: an MP3 behind a large ID3v2 tag (cover art) is still recognised. (``analyzeduration``
#: is left alone: 0 would mean FFmpeg's default, and ``probesize`` is the limit that matters.)
_SMALL_PROBE = {"probesize": "32768"}
#: Demuxers that declare every stream in their header and whose stream parameters, start times and
#: durations were measured identical with the small probe and the default one (FFmpeg 8: PCM and
#: WAVE_FORMAT_EXTENSIBLE 5.1 wav, aiff, flac with a 480 KB picture, mp3 with a 480 KB ID3v2 cover
#: and without Xing header, ogg/opus, m4a, 5-stream .stem.mp4, wma, mka, caf). Other demuxers are
#: probed with FFmpeg's default: raw ADTS ``aac`` (its duration is estimated from the bit rate of the
#: probed packets, so it depends on the probe size) and headerless formats (MPEG-TS/PS, FLV), whose
#: streams may appear after the probed bytes.
_SMALL_PROBE_FORMATS = frozenset({"wav", "aiff", "flac", "mp3", "ogg", "mov,mp4,m4a,3gp,3g2,mj2", "asf",
                                  "matroska,webm", "caf"})
#: ``Stream.discard`` value that makes the demuxer skip a stream's packets (PyAV >= 18; ``None`` before,
#: when the packets of streams not being read are dropped after demuxing instead).
_DISCARD_ALL = getattr(getattr(av.stream, "Discard", None), "all", None)


# --------------------------------------------------------------------------- helpers


def _fspath(path: PathLike, name: str = "path") -> str:
    """``str`` path from a ``str``, ``bytes`` (as Spleeter's TF pipeline passes) or path-like."""
    if isinstance(path, np.ndarray) and path.ndim == 0:
        path = path.item()
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise ParameterError(f"{name}: got {type(path).__name__}; pass a file path (str or pathlib.Path)"
                             ) from None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(error: BaseException) -> str:
    """Short one-line reason from a PyAV/OS error (its strerror, without the file name)."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return _one_line(text)


def _check_rate(value: object, name: str = "sample_rate") -> int:
    """A positive integral sample rate in Hz (ints, integral floats and numpy scalars accepted)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name}: got {value!r}; pass a positive sample rate in Hz such as 44100")
    number = float(value)
    if not math.isfinite(number) or number <= 0 or not number.is_integer():
        raise ParameterError(f"{name}: got {value!r}; pass a positive integer sample rate in Hz such as 44100")
    return int(number)


def _check_seconds(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name}: got {value!r}; pass a number of seconds >= 0")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ParameterError(f"{name}: got {value!r}; pass a number of seconds >= 0")
    return number


def _check_count(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name}: got {value!r}; pass an integer >= {minimum}")
    return int(value)


def _check_input_file(path: str) -> None:
    """Raise :class:`AudioError` for a missing, directory, unreadable or empty input."""
    if not os.path.exists(path):
        hint = "check the path" if os.path.isabs(path) else f"check the path (relative to {os.getcwd()})"
        raise AudioError(f"{path}: file not found; {hint}")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file; pass the path of an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied; make the file readable")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes); re-export or re-download it")


def _open_input(path: str, options: Optional[Dict[str, str]] = None) -> "av.container.InputContainer":
    try:
        return av.open(path, mode="r", options=options or {}, metadata_errors="replace")
    except av.error.FFmpegError as error:
        raise AudioError(f"{path}: not an audio file or corrupt header ({_reason(error)}); "
                         "check that it plays, or re-encode or re-download it") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot open ({_reason(error)}); check the file and its permissions") from None


def _complete(container: "av.container.InputContainer") -> bool:
    """True when every audio stream has a decoder, a sample rate and a channel count."""
    audio = container.streams.audio
    return bool(audio) and all(s.codec_context is not None and s.codec_context.sample_rate
                               and s.codec_context.channels for s in audio)


def _open_probed(path: str) -> Tuple["av.container.InputContainer", Dict[str, str]]:
    """Open ``path`` once with the cheapest probing that describes it fully: ``(container, options)``.

    The small probe (:data:`_SMALL_PROBE`) is kept when the demuxer is one of
    :data:`_SMALL_PROBE_FORMATS` and every audio stream is complete; otherwise the file is
    opened again with FFmpeg's default probing, which also produces the error messages.
    ``options`` reopens the file the same way.
    """
    _check_input_file(path)
    try:
        container = _open_input(path, _SMALL_PROBE)
    except AudioError:
        container = None
    if container is not None:
        name = container.format.name
        if name in _SMALL_PROBE_FORMATS and _complete(container):
            return container, dict(_SMALL_PROBE)
        container.close()
        logger.debug("%s: probing again with FFmpeg's default probe size (%s)", path,
                     "incomplete audio stream info" if name in _SMALL_PROBE_FORMATS else f"{name} demuxer")
    return _open_input(path), {}


def _audio_stream(container: "av.container.InputContainer", path: str,
                  stream: int) -> "av.audio.stream.AudioStream":
    audio = container.streams.audio
    if not audio:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise AudioError(f"{path}: no audio stream (streams: {', '.join(kinds)}); pass a file that contains audio")
    if not 0 <= stream < len(audio):
        raise AudioError(f"{path}: has {len(audio)} audio stream(s), so stream={stream} is out of range; "
                         f"pass stream between 0 and {len(audio) - 1}")
    selected = audio[stream]
    context = selected.codec_context
    if context is None:
        raise AudioError(f"{path}: no decoder for the codec of audio stream {stream} in this FFmpeg build; "
                         "re-encode the file (e.g. to flac or wav)")
    if not context.sample_rate or not context.channels:
        raise AudioError(f"{path}: not an audio file or corrupt header (stream {stream} has no sample rate or "
                         "channels); re-encode or re-download it")
    return selected


def _declared_duration(container: "av.container.InputContainer",
                       stream: "av.audio.stream.AudioStream") -> Optional[float]:
    if stream.duration is not None and stream.duration > 0 and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _frame_to_array(frame: "av.AudioFrame", n_channels: int) -> np.ndarray:
    """Samples of a decoded frame as float32 ``(n_samples, n_channels)``, integers scaled to [-1, 1)."""
    if frame.format.name == "fltp":  # lossy decoders' output: interleave the planes with one copy
        out = np.empty((frame.samples, n_channels), dtype=np.float32)
        for channel, plane in enumerate(frame.planes):
            out[:, channel] = np.frombuffer(plane, dtype=np.float32, count=frame.samples)
        return out
    data = frame.to_ndarray()
    data = data.T if frame.format.is_planar else data.reshape(-1, n_channels)
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) * np.float32(1 / 128)
    elif data.dtype.kind == "i":
        data = data.astype(np.float32) * np.float32(2.0 ** (1 - 8 * data.dtype.itemsize))
    else:
        data = data.astype(np.float32, copy=False)
    return np.ascontiguousarray(data)


def _first_non_finite(chunk: np.ndarray) -> Optional[int]:
    finite = np.isfinite(chunk)
    if finite.all():
        return None
    return int(np.argmin(finite.all(axis=1)))


class _BlockQueue:
    """Cuts a stream of ``(n, n_channels)`` chunks into blocks of exactly ``block_samples`` samples.

    Chunks are copied into one preallocated block buffer, so memory holds one block being
    filled (plus whatever blocks the consumer keeps), never a list of pending chunks.
    """

    def __init__(self, block_samples: int, n_channels: int):
        self.block_samples, self.n_channels = block_samples, n_channels
        self._buffer: Optional[np.ndarray] = None
        self._fill = 0

    def push(self, chunk: np.ndarray) -> List[np.ndarray]:
        """Append ``chunk``; return the blocks it completed (usually none or one)."""
        done: List[np.ndarray] = []
        used = 0
        while used < len(chunk):
            if self._buffer is None:
                self._buffer = np.empty((self.block_samples, self.n_channels), dtype=np.float32)
                self._fill = 0
            take = min(self.block_samples - self._fill, len(chunk) - used)
            self._buffer[self._fill:self._fill + take] = chunk[used:used + take]
            self._fill += take
            used += take
            if self._fill == self.block_samples:
                done.append(self._buffer)
                self._buffer = None
        return done

    def flush(self) -> Optional[np.ndarray]:
        """The final partial block, if any samples are pending."""
        if self._buffer is None or not self._fill:
            return None
        last = self._buffer[:self._fill].copy()
        self._buffer, self._fill = None, 0
        return last


def _riff_declared_duration(path: str) -> Optional[float]:
    """Seconds declared by a RIFF/WAVE header (``fmt `` rate and block align, ``data`` size).

    FFmpeg clamps a PCM WAV's duration to the bytes present, which hides truncation; the
    header keeps the length the writer intended. ``None`` for non-RIFF files and for the
    0 / 0xFFFFFFFF placeholders that streaming writers leave.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            rate = align = 0
            for _ in range(64):
                header = handle.read(8)
                if len(header) < 8:
                    return None
                ident, size = header[:4], int.from_bytes(header[4:], "little")
                if ident == b"fmt ":
                    body = handle.read(min(size, 16))
                    if len(body) < 16:
                        return None
                    rate = int.from_bytes(body[4:8], "little")
                    align = int.from_bytes(body[12:14], "little")
                    handle.seek(size - 16 + (size & 1), os.SEEK_CUR)
                elif ident == b"data":
                    if not rate or not align or size in (0, 0xFFFFFFFF):
                        return None
                    return size / align / rate
                else:
                    handle.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`probe` learns from a file's header.

    ``sample_rate`` (Hz), ``n_channels`` and ``codec`` describe the selected audio ``stream``
    (0-based among the audio streams); ``duration`` is the declared length in seconds (``None``
    when unknown); ``n_streams`` counts the audio streams; ``format`` is FFmpeg's demuxer name
    (e.g. ``'wav'``, ``'mp3'``, ``'mov,mp4,m4a,3gp,3g2,mj2'``); ``layout`` and
    ``channel_names`` are FFmpeg's channel layout (``'5.1'``, ``'stereo'``, ``'6 channels'``
    when unspecified) and speaker names (``'FL'``, ``'FR'``..., ``'NONE'`` when unspecified);
    ``lossless`` is True for PCM, FLAC, ALAC and other lossless codecs.
    """

    path: str
    sample_rate: int
    n_channels: int
    duration: Optional[float]
    n_streams: int
    codec: str
    format: str
    stream: int = 0
    layout: str = ""
    channel_names: Tuple[str, ...] = ()
    lossless: bool = False

    @property
    def n_samples(self) -> Optional[int]:
        """Declared length in samples at ``sample_rate`` (``None`` when the duration is unknown)."""
        return None if self.duration is None else int(round(self.duration * self.sample_rate))


def _stream_info(container: "av.container.InputContainer", path: str, stream: int) -> AudioInfo:
    """:class:`AudioInfo` of audio ``stream`` of an open ``container``."""
    selected = _audio_stream(container, path, stream)
    context = selected.codec_context
    layout = selected.layout
    duration = _declared_duration(container, selected)
    if container.format.name == "wav":
        header = _riff_declared_duration(path)
        if header is not None and (duration is None or header > duration + 1 / context.sample_rate):
            duration = header
    return AudioInfo(
        path=path,
        sample_rate=int(context.sample_rate),
        n_channels=int(context.channels),
        duration=duration,
        n_streams=len(container.streams.audio),
        codec=context.codec.canonical_name,
        format=container.format.name,
        stream=stream,
        layout=layout.name,
        channel_names=tuple(channel.name for channel in layout.channels),
        lossless=bool(context.codec.lossless and not context.codec.lossy),
    )


def _check_streams(streams: Optional[Sequence[int]], container: "av.container.InputContainer",
                   path: str) -> List[int]:
    """Audio stream indices to read: ``streams`` validated (distinct integers >= 0), or all of them."""
    if streams is None:
        _audio_stream(container, path, 0)  # raises when there is no usable audio stream
        return list(range(len(container.streams.audio)))
    if isinstance(streams, (str, bytes)) or not isinstance(streams, Sequence) or not streams:
        raise ParameterError(f"streams: got {streams!r}; pass a non-empty list of audio stream indices such as "
                             "[1, 2, 3, 4], or None for all")
    indices = [_check_count(index, "streams", minimum=0) for index in streams]
    if len(set(indices)) != len(indices):
        raise ParameterError(f"streams: {indices} has duplicates; pass each stream index once")
    return indices


def probe(path: PathLike, stream: int = 0) -> AudioInfo:
    """Describe audio ``stream`` of ``path`` (sample rate, channels, duration, codec) without decoding.

    Opens the file once, with a small probe size where that is known to give the same answer.
    Raises :class:`AudioError` for a missing file, a directory, a 0-byte file, a file that
    is not audio or has a corrupt header, a file without audio stream, or ``stream`` out of range.
    """
    path = _fspath(path)
    stream = _check_count(stream, "stream", minimum=0)
    container, _ = _open_probed(path)
    with container:
        return _stream_info(container, path, stream)


def probe_streams(path: PathLike, streams: Optional[Sequence[int]] = None) -> List[AudioInfo]:
    """:func:`probe` of several audio streams of one file (``None``: all of them) with one open.

    Returns one :class:`AudioInfo` per stream, in the order of ``streams``; same errors as :func:`probe`.
    """
    path = _fspath(path)
    container, _ = _open_probed(path)
    with container:
        return [_stream_info(container, path, index) for index in _check_streams(streams, container, path)]


# --------------------------------------------------------------------------- reader


class _Restart(Exception):
    """Internal: a seek cannot be trusted; decode from the start instead."""


class _DecodeFailure(Exception):
    """Internal: decoding cannot continue (reported as truncated/corrupt after the good part)."""


class _Range(NamedTuple):
    """Internal: input samples ``[start, stop)`` of one audio stream (``stop`` None: to the end)."""

    info: AudioInfo
    start: int
    stop: Optional[int]


def _bounds(info: AudioInfo, offset: float, duration: Optional[float]
            ) -> Tuple[int, Optional[int], Optional[int], Optional[int]]:
    """``(start, requested_stop, stop, declared_end)`` in input samples of ``info``'s stream.

    ``stop`` is the requested stop, clipped for MP4/M4A to the declared duration (the edit list),
    which removes the AAC encoder's trailing padding.
    """
    start = int(round(offset * info.sample_rate))
    requested_stop = None if duration is None else start + int(round(duration * info.sample_rate))
    declared_end = info.n_samples
    stop = requested_stop
    if declared_end is not None and _MP4_FAMILY & set(info.format.split(",")):
        stop = declared_end if stop is None else min(stop, declared_end)
    return start, requested_stop, stop, declared_end


def _preroll(info: AudioInfo) -> int:
    """Input samples decoded and discarded before the offset after a seek (0 for lossless codecs)."""
    return 0 if info.lossless else int(_LOSSY_PREROLL_SECONDS * info.sample_rate)


def _channel_converter(path: str, info: AudioInfo, n_out: int) -> Callable[[np.ndarray], np.ndarray]:
    n_in = info.n_channels
    if n_in == n_out:
        return lambda block: block
    if n_in == 1:
        return lambda block: np.ascontiguousarray(np.repeat(block, n_out, axis=1))
    stages: List[Callable[[np.ndarray], np.ndarray]] = []
    if n_in > 2:
        downmix = downmix_for(n_in, info.channel_names, info.layout)
        logger.info("%s: downmixing %s to stereo", path, downmix.description)
        stages.append(downmix.apply)
    if n_out == 1:
        stages.append(lambda block: np.ascontiguousarray(block.mean(axis=1, keepdims=True, dtype=np.float32)))

    def convert(block: np.ndarray) -> np.ndarray:
        for stage in stages:
            block = stage(block)
        return block

    return convert


def _output_channels(path: str, info: AudioInfo, n_channels: Optional[int]) -> int:
    """The validated output channel count for ``info``'s stream (``None``: the stream's own)."""
    n_channels = _check_count(info.n_channels if n_channels is None else n_channels, "n_channels")
    if n_channels > 2 and n_channels != info.n_channels:
        raise ParameterError(f"n_channels: {path} has {info.n_channels} channel(s), which cannot be "
                             f"converted to {n_channels}; pass n_channels=1, 2 or None")
    return n_channels


class _Converter:
    """Channel conversion, then streaming resampling, of one stream's decoded chunks."""

    def __init__(self, path: str, info: AudioInfo, n_channels: int, sample_rate: int):
        self.n_channels = n_channels
        self._convert = _channel_converter(path, info, n_channels)
        self._resampler = None if info.sample_rate == sample_rate else soxr.ResampleStream(
            info.sample_rate, sample_rate, n_channels, dtype="float32", quality=RESAMPLE_QUALITY)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        out = self._convert(chunk)
        return out if self._resampler is None else self._resampler.resample_chunk(out)

    def flush(self) -> Optional[np.ndarray]:
        """The resampler's last samples (``None`` without resampling)."""
        if self._resampler is None:
            return None
        return self._resampler.resample_chunk(np.zeros((0, self.n_channels), np.float32), last=True)


def _decode_streams(container: "av.container.InputContainer", path: str, ranges: Sequence[_Range],
                    seek_to: Optional[int]) -> Iterator[Tuple[int, np.ndarray]]:
    """Decode ``ranges`` (audio streams of ``container``) in one demuxing pass.

    Yields ``(index into ranges, chunk)`` in file order, each chunk float32 ``(n, n_in_channels)``
    at its stream's rate, trimmed to the stream's range. The demuxer skips the other streams
    (see :data:`_DISCARD_ALL`). ``seek_to`` (input samples of ``ranges[0]``) seeks there first,
    the other streams following the demuxer; ``None`` decodes from the current position (the
    start of a freshly opened file). Raises :class:`_Restart` when a stream's first frame after
    the seek has no timestamp or starts after its range (before any chunk of that stream is
    yielded), :class:`_DecodeFailure` or ``FFmpegError`` when decoding cannot continue.
    """
    streams = [_audio_stream(container, path, item.info.stream) for item in ranges]
    slots = {stream.index: slot for slot, stream in enumerate(streams)}
    if _DISCARD_ALL is not None:
        for other in container.streams:
            if other.index not in slots:
                other.discard = _DISCARD_ALL
    time_bases = [stream.time_base or Fraction(1, item.info.sample_rate) for stream, item in zip(streams, ranges)]
    origins = [stream.start_time or 0 for stream in streams]
    positions: List[Optional[int]] = [0] * len(ranges)
    if seek_to is not None:
        try:
            container.seek(origins[0] + int(Fraction(seek_to, ranges[0].info.sample_rate) / time_bases[0]),
                           stream=streams[0])
        except av.error.FFmpegError as error:
            raise _Restart(f"seek failed ({_reason(error)})") from None
        positions = [None] * len(ranges)
    done = [False] * len(ranges)
    remaining = len(ranges)
    for packet in container.demux(*streams):
        slot = slots[packet.stream.index]
        if done[slot]:
            continue
        item = ranges[slot]
        sr_in, n_in = item.info.sample_rate, item.info.n_channels
        for frame in packet.decode():
            position = positions[slot]
            if position is None:
                if frame.pts is None:
                    raise _Restart("no timestamp after seeking")
                position = round((frame.pts - origins[slot]) * time_bases[slot] * sr_in)
                if position > item.start:
                    raise _Restart("seek landed after the offset")
            if frame.sample_rate != sr_in or frame.layout.nb_channels != n_in:
                raise _DecodeFailure(f"format changes from {sr_in} Hz x {n_in} to {frame.sample_rate} Hz x "
                                     f"{frame.layout.nb_channels} mid-stream")
            begin = position
            position += frame.samples
            positions[slot] = position
            if position <= item.start:
                continue
            if item.stop is not None and begin >= item.stop:
                done[slot] = True
                break
            low = max(item.start - begin, 0)
            high = frame.samples if item.stop is None else min(frame.samples, item.stop - begin)
            yield slot, _frame_to_array(frame, n_in)[low:high]
            if item.stop is not None and position >= item.stop:
                done[slot] = True
                break
        if done[slot]:
            remaining -= 1
            if not remaining:
                return


def _check_length(path: str, info: AudioInfo, start: int, decoded: int, requested_stop: Optional[int],
                  declared_end: Optional[int], failure: Optional[str], label: str = "") -> None:
    """Raise :class:`AudioError` when decoding failed or stopped clearly short of the declared end.

    ``label`` names the stream in the message (e.g. ``' in audio stream 2'``).
    """
    sr_in = info.sample_rate
    expected_end = declared_end
    if requested_stop is not None and expected_end is not None:
        expected_end = min(requested_stop, expected_end)
    short = False
    if expected_end is not None:
        expected = max(expected_end - start, 0)
        short = decoded < expected - max(_TRUNCATION_SECONDS * sr_in, _TRUNCATION_FRACTION * expected)
    if failure is None and not short:
        return
    what = "truncated or corrupt" + (f" ({failure})" if failure else "")
    got = f"decoded {(start + decoded) / sr_in:.1f} s"
    if expected_end is not None:
        got += f" of {expected_end / sr_in:.1f} s"
    raise AudioError(f"{path}: {what}{label}: {got}; re-encode or re-download the file")


def _non_finite_error(path: str, seconds: float, label: str = "") -> AudioError:
    return AudioError(f"{path}: contains NaN/Inf samples at {seconds:.2f} s{label}; "
                      "repair the file (e.g. re-export it with clipping) or replace it")


class AudioReader:
    """Streaming decoder: yields float32 blocks ``(n_samples, n_channels)`` in constant memory.

    Parameters
    ----------
    path:
        Audio file (anything FFmpeg reads: wav, flac, mp3, ogg, m4a/mp4, wma...).
    sample_rate:
        Output rate in Hz; ``None`` keeps the file's rate. Resampling uses
        ``soxr.ResampleStream`` with quality :data:`RESAMPLE_QUALITY`, so the concatenated
        blocks equal a one-shot ``soxr.resample`` of the whole signal.
    n_channels:
        Output channels: ``2`` (default) duplicates mono and downmixes more than two channels
        with ITU-R BS.775 weights (INFO log line naming the file and layout); ``1`` averages
        to mono; ``None`` keeps the file's channels.
    offset, duration:
        Seconds in the *input* timeline, exact to the input sample: the reader seeks
        (decoding a short pre-roll for lossy codecs, never from the start) and trims by
        timestamp. ``duration=None`` reads to the end.
    stream:
        Index among the file's audio streams (``.stem.mp4``: 0 mixture, 1 drums, 2 bass,
        3 other, 4 vocals).

    The file is opened once, in the constructor (which reads the header into :attr:`info`),
    and the first :meth:`blocks` pass decodes from that open file, closing it when done;
    :meth:`close` (or leaving a ``with`` block) releases it when :meth:`blocks` is never
    exhausted. A later :meth:`blocks` call reopens the file.

    After :meth:`blocks` is exhausted, ``n_samples_read`` holds the number of output samples
    yielded and ``complete`` is True. Errors found while decoding -- a decoder failure, a
    decode clearly shorter than the declared duration (by more than max(0.5 s, 2 %)), NaN/Inf
    samples -- raise :class:`AudioError` only *after* every good sample before the problem
    has been yielded, so a streaming caller keeps the good part and decides what to do;
    ``complete`` stays False in that case. MP4/M4A files are trimmed to their declared
    duration (the edit list), which removes the AAC encoder's trailing padding.
    """

    def __init__(self, path: PathLike, sample_rate: Optional[float] = None, n_channels: Optional[int] = 2,
                 offset: float = 0.0, duration: Optional[float] = None, stream: int = 0):
        self.path = _fspath(path)
        self.offset = _check_seconds(offset, "offset")
        self.duration = None if duration is None else _check_seconds(duration, "duration")
        self.stream = _check_count(stream, "stream", minimum=0)
        container, self._open_options = _open_probed(self.path)
        self._container: Optional["av.container.InputContainer"] = container
        try:
            self.info = _stream_info(self._container, self.path, self.stream)
            self.sample_rate = self.info.sample_rate if sample_rate is None else _check_rate(sample_rate)
            self.n_channels = _output_channels(self.path, self.info, n_channels)
        except BaseException:
            self.close()
            raise
        self.n_samples_read = 0
        self.complete = False

    def __repr__(self) -> str:
        return (f"AudioReader({self.path!r}, sample_rate={self.sample_rate}, n_channels={self.n_channels}, "
                f"offset={self.offset}, duration={self.duration}, stream={self.stream})")

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks()

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close()

    def close(self) -> None:
        """Release the file opened by the constructor if :meth:`blocks` has not consumed it (idempotent)."""
        container, self._container = self._container, None
        if container is not None:
            container.close()

    # -- decoding

    def _take_container(self) -> "av.container.InputContainer":
        """The container opened by the constructor (once), else the file opened again."""
        container, self._container = self._container, None
        return container if container is not None else _open_input(self.path, self._open_options)

    def _decode_range(self, start: int, stop: Optional[int]) -> Iterator[np.ndarray]:
        """Input samples ``[start, stop)`` as float32 ``(n, n_in_channels)`` chunks, file's rate."""
        preroll = _preroll(self.info)
        if start - preroll > 0:
            try:
                yield from self._decode_pass(start, stop, seek_to=start - preroll)
                return
            except _Restart as restart:
                logger.debug("%s: %s; decoding from the start", self.path, restart)
        yield from self._decode_pass(start, stop, seek_to=None)

    def _decode_pass(self, start: int, stop: Optional[int], seek_to: Optional[int]) -> Iterator[np.ndarray]:
        with self._take_container() as container:
            for _, chunk in _decode_streams(container, self.path, [_Range(self.info, start, stop)], seek_to):
                yield chunk

    def blocks(self, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> Iterator[np.ndarray]:
        """Yield float32 blocks of shape ``(block_samples, n_channels)`` at ``sample_rate``.

        Every block has exactly ``block_samples`` output samples except the last, which may
        be shorter. Memory stays bounded by about one block plus one decoded frame whatever
        the file length. See the class docstring for the error policy (good part first).
        """
        block_samples = _check_count(block_samples, "block_samples")
        self.n_samples_read, self.complete = 0, False
        sr_in = self.info.sample_rate
        start, requested_stop, stop, declared_end = _bounds(self.info, self.offset, self.duration)
        converter = _Converter(self.path, self.info, self.n_channels, self.sample_rate)
        queue = _BlockQueue(block_samples, self.n_channels)
        decoded = 0
        failure: Optional[str] = None
        bad_time: Optional[float] = None
        chunks = self._decode_range(start, stop)
        try:
            while bad_time is None:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except (av.error.FFmpegError, _DecodeFailure) as error:
                    failure = _reason(error)
                    break
                bad = _first_non_finite(chunk)
                if bad is not None:
                    bad_time = (start + decoded + bad) / sr_in
                    chunk = chunk[:bad]
                decoded += len(chunk)
                for block in queue.push(converter(chunk)):
                    self.n_samples_read += len(block)
                    yield block
                    del block  # hold no reference while the consumer works on it
        finally:
            chunks.close()
            self.close()
        tail = converter.flush()
        blocks = queue.push(tail) if tail is not None else []
        last = queue.flush()
        for block in blocks + ([] if last is None else [last]):
            self.n_samples_read += len(block)
            yield block
        if bad_time is not None:
            raise _non_finite_error(self.path, bad_time)
        _check_length(self.path, self.info, start, decoded, requested_stop, declared_end, failure)
        self.complete = True


# --------------------------------------------------------------------------- whole-array helpers


def read(path: PathLike, offset: float = 0.0, duration: Optional[float] = None,
         sample_rate: Optional[float] = None, n_channels: Optional[int] = 2, stream: int = 0
         ) -> Tuple[np.ndarray, int]:
    """Decode ``path`` into ``(waveform, sample_rate)``, waveform float32 ``(n_samples, n_channels)``.

    Same parameters and channel policy as :class:`AudioReader` (one open of the file); unlike
    the streaming reader, any decoding problem (truncation, corruption, NaN) raises
    :class:`AudioError` and no partial waveform is returned.
    """
    with AudioReader(path, sample_rate=sample_rate, n_channels=n_channels, offset=offset,
                     duration=duration, stream=stream) as reader:
        blocks = list(reader.blocks())
    if not blocks:
        return np.zeros((0, reader.n_channels), dtype=np.float32), reader.sample_rate
    waveform = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return waveform, reader.sample_rate


def _read_pass(container: "av.container.InputContainer", path: str, ranges: Sequence[_Range],
               channels: Sequence[int], sample_rate: int, seek_to: Optional[int], multi: bool
               ) -> Tuple[List[np.ndarray], List[int], Optional[str]]:
    """One decoding pass of :func:`read_streams` over ``container`` (closed on return): the output
    waveforms, the input samples decoded per stream and the decoding failure (``None``: none)."""
    converters = [_Converter(path, item.info, n, sample_rate) for item, n in zip(ranges, channels)]
    outputs: List[List[np.ndarray]] = [[] for _ in ranges]
    decoded = [0] * len(ranges)
    failure: Optional[str] = None
    with container:
        try:
            for slot, chunk in _decode_streams(container, path, ranges, seek_to):
                bad = _first_non_finite(chunk)
                if bad is not None:
                    item = ranges[slot]
                    label = f" in audio stream {item.info.stream}" if multi else ""
                    raise _non_finite_error(path, (item.start + decoded[slot] + bad) / item.info.sample_rate, label)
                decoded[slot] += len(chunk)
                outputs[slot].append(converters[slot](chunk))
        except (av.error.FFmpegError, _DecodeFailure) as error:
            failure = _reason(error)
    waveforms = []
    for converter, parts in zip(converters, outputs):
        tail = converter.flush()
        if tail is not None:
            parts.append(tail)
        if not parts:
            waveforms.append(np.zeros((0, converter.n_channels), np.float32))
        else:
            waveforms.append(parts[0] if len(parts) == 1 else np.concatenate(parts))
    return waveforms, decoded, failure


def _read_open_streams(container: "av.container.InputContainer", options: Dict[str, str], path: str,
                       infos: Sequence[AudioInfo], offset: float, duration: Optional[float],
                       sample_rate: Optional[float], n_channels: Optional[int]) -> Tuple[List[np.ndarray], int]:
    """:func:`read_streams` of ``infos``' streams from ``container``, opened by :func:`_open_probed`
    with ``options`` (it is closed on return)."""
    try:
        rate = infos[0].sample_rate if sample_rate is None else _check_rate(sample_rate)
        channels = [_output_channels(path, info, n_channels) for info in infos]
    except BaseException:
        container.close()
        raise
    bounds = [_bounds(info, offset, duration) for info in infos]
    ranges = [_Range(info, start, stop) for info, (start, _, stop, _) in zip(infos, bounds)]
    multi = len(infos) > 1 or infos[0].stream != 0
    lossy = any(not info.lossless for info in infos)  # one seek for all: pre-roll if any stream needs it
    seek_to = ranges[0].start - (int(_LOSSY_PREROLL_SECONDS * infos[0].sample_rate) if lossy else 0)
    result = None
    if seek_to > 0:
        try:
            result = _read_pass(container, path, ranges, channels, rate, seek_to, multi)
        except _Restart as restart:
            logger.debug("%s: %s; decoding from the start", path, restart)
            container = _open_input(path, options)
    if result is None:
        result = _read_pass(container, path, ranges, channels, rate, None, multi)
    waveforms, decoded, failure = result
    for info, (start, requested_stop, _, declared_end), count in zip(infos, bounds, decoded):
        label = f" in audio stream {info.stream}" if multi else ""
        _check_length(path, info, start, count, requested_stop, declared_end, failure, label)
    return waveforms, rate


def read_streams(path: PathLike, streams: Optional[Sequence[int]] = None, offset: float = 0.0,
                 duration: Optional[float] = None, sample_rate: Optional[float] = None,
                 n_channels: Optional[int] = 2) -> Tuple[List[np.ndarray], int]:
    """Decode several audio streams of one file (MUSDB18 ``.stem.mp4``) in one pass: ``(waveforms, sample_rate)``.

    ``streams`` lists audio stream indices (``None``: all, in order); ``waveforms`` has one float32
    ``(n_samples, n_channels)`` array per stream, in the order of ``streams``, each holding the
    samples ``read(path, offset, duration, sample_rate, n_channels, stream=index)[0]`` holds, exact
    to the sample (bit for bit when the streams share one frame layout, as MUSDB's do). The file
    is opened once, seeked once and demuxed once, each stream decoded by its own decoder.
    ``sample_rate=None`` is the rate of the first listed stream (every stream is resampled to
    it); other parameters are as for :func:`read`, and so are the errors (any decoding problem
    raises :class:`AudioError` naming the stream).
    """
    path = _fspath(path)
    offset = _check_seconds(offset, "offset")
    duration = None if duration is None else _check_seconds(duration, "duration")
    container, options = _open_probed(path)
    try:
        infos = [_stream_info(container, path, index) for index in _check_streams(streams, container, path)]
    except BaseException:
        container.close()
        raise
    return _read_open_streams(container, options, path, infos, offset, duration, sample_rate, n_channels)


def read_stems(path: PathLike, sample_rate: Optional[float] = None, n_channels: Optional[int] = 2,
               names: Sequence[str] = MUSDB_STEMS) -> Dict[str, np.ndarray]:
    """Decode every audio stream of a multi-stream file (MUSDB18 ``.stem.mp4``) in one pass.

    Returns ``{name: waveform}`` in stream order, each waveform float32
    ``(n_samples, n_channels)`` at ``sample_rate`` (``None``: the file's rate, see
    :func:`probe`). ``names`` defaults to MUSDB's order (mixture, drums, bass, other,
    vocals) and must have one entry per audio stream.
    """
    path = _fspath(path)
    names = list(names)
    container, options = _open_probed(path)
    try:
        infos = [_stream_info(container, path, index) for index in _check_streams(None, container, path)]
        if len(set(names)) != len(names):
            raise ParameterError(f"names: {names} has duplicates; pass one distinct name per stream")
        if len(infos) != len(names):
            raise AudioError(f"{path}: has {len(infos)} audio stream(s) but {len(names)} names were given "
                             f"({', '.join(names)}); pass names= with one name per stream")
    except BaseException:
        container.close()
        raise
    waveforms, _ = _read_open_streams(container, options, path, infos, 0.0, None, sample_rate, n_channels)
    return dict(zip(names, waveforms))


def resample(waveform: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """Resample an in-memory waveform ``(n_samples, n_channels)`` (or 1-D) from ``sr_in`` to ``sr_out`` Hz.

    Uses ``soxr.resample`` with quality :data:`RESAMPLE_QUALITY`; returns float32
    ``(round(n_samples * sr_out / sr_in), n_channels)``.
    """
    data = as_channels_last(waveform)
    sr_in, sr_out = _check_rate(sr_in, "sr_in"), _check_rate(sr_out, "sr_out")
    if sr_in == sr_out:
        return data.copy() if data is waveform else data
    return np.ascontiguousarray(soxr.resample(data, sr_in, sr_out, quality=RESAMPLE_QUALITY), dtype=np.float32)


# --------------------------------------------------------------------------- writer


def _layout_name(n_channels: int) -> str:
    if n_channels in DEFAULT_LAYOUTS:
        return DEFAULT_LAYOUTS[n_channels][0]
    return f"{n_channels} channels"


def _is_protected(path: str, protect: Collection[PathLike]) -> bool:
    real = os.path.realpath(path)
    for item in protect:
        other = _fspath(item, "protect")
        if os.path.realpath(other) == real:
            return True
        if os.path.exists(path) and os.path.exists(other) and os.path.samefile(path, other):
            return True
    return False


class AudioWriter:
    """Streaming encoder with an atomic commit; use as a context manager.

    ``AudioWriter(path, sample_rate, n_channels, codec=None, bitrate=None, sample_format=None,
    protect=None)`` encodes blocks of shape ``(n_samples, n_channels)`` (float32, or 1-D for
    mono) passed to :meth:`write`. The format follows the extension (.wav, .flac, .mp3, .ogg,
    .m4a/.mp4, .wma, .opus) unless ``codec`` (Spleeter's names: wav, mp3, ogg, m4a, wma, flac)
    overrides it; see :mod:`spleeter_ext.audio.formats` for the encoders. ``sample_format``
    chooses wav's ``'s16'`` (default), ``'s24'`` or ``'f32'`` and flac's ``'s16'``/``'s24'``;
    ``bitrate`` (``'128k'``) applies to lossy codecs and is ignored for wav/flac.

    Integer formats clip samples beyond [-1, 1]; one WARNING per file reports how many
    samples were clipped. Data goes to a hidden temporary file in the destination directory
    (``.<name>.part-<pid>``, container format passed explicitly) which is renamed to ``path``
    only by a successful :meth:`close`. An exception inside the ``with`` block, a failed close
    or :meth:`abort` deletes the temporary file, so ``path`` never holds a half-written file.
    Missing parent directories are created. ``protect`` is a collection of paths (the
    inputs) that must never be overwritten: writing to one raises :class:`AudioError`.
    """

    def __init__(self, path: PathLike, sample_rate: float, n_channels: int, codec: Optional[str] = None,
                 bitrate: Union[str, int, None] = None, sample_format: Optional[str] = None,
                 protect: Optional[Collection[PathLike]] = None):
        self._state = "new"
        self.path = _fspath(path)
        self.sample_rate = _check_rate(sample_rate)
        self.n_channels = _check_count(n_channels, "n_channels")
        self.format: OutputFormat = resolve_output_format(self.path, codec, sample_format)
        fmt = self.format
        if fmt.max_channels is not None and self.n_channels > fmt.max_channels:
            raise ParameterError(f"{self.path}: {fmt.codec} holds at most {fmt.max_channels} channels, got "
                                 f"{self.n_channels}; downmix with to_channels(waveform, 2) or write flac/wav")
        self.file_sample_rate = self.sample_rate
        if fmt.rates is not None and self.sample_rate not in fmt.rates:
            if fmt.resample_to is None:
                raise ParameterError(f"{self.path}: {fmt.encoder} cannot encode {self.sample_rate} Hz; resample to "
                                     f"one of {', '.join(map(str, fmt.rates))} Hz or write flac/wav")
            self.file_sample_rate = fmt.resample_to
            logger.info("%s: %s runs at fixed rates; resampling %d Hz to %d Hz while writing",
                        self.path, fmt.encoder, self.sample_rate, self.file_sample_rate)
        self.bitrate = parse_bitrate(bitrate) if fmt.lossy else None
        if not fmt.lossy and bitrate is not None:
            logger.debug("%s: bitrate %s ignored for lossless %s", self.path, bitrate, fmt.codec)
        named = EXTENSIONS.get(os.path.splitext(self.path)[1].lower())
        family = _FAMILY.get(fmt.codec, fmt.codec)
        if codec is not None and named is not None and _FAMILY.get(named, named) != family:
            logger.warning("%s: writing %s data to a file whose extension says %s", self.path, fmt.codec, named)
        if protect and _is_protected(self.path, protect):
            raise AudioError(f"{self.path}: refusing to overwrite an input file; write to another directory "
                             "or filename")
        if os.path.isdir(self.path):
            raise AudioError(f"{self.path}: is a directory; pass a file name for the output")
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise AudioError(f"{self.path}: cannot create directory {directory} ({_reason(error)}); "
                             "check the path and permissions") from None
        self.temp_path = os.path.join(directory, f".{os.path.basename(self.path)}.part-{os.getpid()}")
        self.n_samples_written = 0
        self.n_clipped = 0
        self._peak = 0.0
        self._pts = 0
        self._layout = _layout_name(self.n_channels)
        self._resampler = None if self.file_sample_rate == self.sample_rate else soxr.ResampleStream(
            self.sample_rate, self.file_sample_rate, self.n_channels, dtype="float32", quality=RESAMPLE_QUALITY)
        self._container = None
        self._state = "open"
        try:
            self._container = av.open(self.temp_path, mode="w", format=fmt.container)
            self._stream = self._container.add_stream(fmt.encoder, rate=self.file_sample_rate,
                                                      options=dict(fmt.options))
            self._stream.layout = self._layout
            self._stream.format = fmt.frame_format
            if self.bitrate is not None or fmt.default_bitrate is not None:
                self._stream.bit_rate = self.bitrate or fmt.default_bitrate
            self._container.start_encoding()
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self.abort()
            raise AudioError(f"{self.path}: cannot start {fmt.encoder} encoding ({_reason(error)}); "
                             "check the codec, sample rate, channels and bitrate") from None

    def __repr__(self) -> str:
        return (f"AudioWriter({self.path!r}, sample_rate={self.sample_rate}, n_channels={self.n_channels}, "
                f"codec={self.format.codec!r}, state={self._state!r})")

    def __enter__(self) -> "AudioWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open":
            self.abort()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`abort` has run."""
        return self._state != "open"

    def write(self, block: np.ndarray) -> None:
        """Encode ``block`` of shape ``(n_samples, n_channels)`` (float, [-1, 1]); 1-D is mono."""
        if self._state != "open":
            raise AudioError(f"{self.path}: writer is already {self._state}; open a new AudioWriter")
        try:
            data = as_channels_last(block, "block", self.sample_rate)
        except ParameterError as error:
            raise ParameterError(f"{self.path}: {error}") from None
        if data.shape[1] != self.n_channels:
            raise ParameterError(f"{self.path}: block has {data.shape[1]} channel(s) but the writer has "
                                 f"n_channels={self.n_channels}; convert with to_channels(block, {self.n_channels})")
        for begin in range(0, len(data), _WRITE_FRAME_SAMPLES):
            chunk = data[begin:begin + _WRITE_FRAME_SAMPLES]
            if self._resampler is not None:
                chunk = self._resampler.resample_chunk(chunk)
            self._encode(chunk)
        self.n_samples_written += len(data)

    def _quantise(self, chunk: np.ndarray) -> np.ndarray:
        bits = self.format.int_bits
        assert bits is not None
        over = np.abs(chunk) > 1.0
        n_over = int(np.count_nonzero(over))
        if n_over:
            self.n_clipped += n_over
            self._peak = max(self._peak, float(np.abs(chunk).max()))
        scale = float(1 << (bits - 1))
        values = np.clip(np.rint(chunk.astype(np.float64) * scale), -scale, scale - 1)
        if bits == 16:
            return values.astype(np.int16)
        return values.astype(np.int32) << 8

    def _encode(self, chunk: np.ndarray) -> None:
        if not len(chunk):
            return
        fmt = self.format
        samples = self._quantise(chunk) if fmt.int_bits is not None else chunk
        array = np.ascontiguousarray(samples.T) if fmt.planar else samples.reshape(1, -1)
        try:
            frame = av.AudioFrame.from_ndarray(array, format=fmt.frame_format, layout=self._layout)
            frame.sample_rate = self.file_sample_rate
            frame.time_base = Fraction(1, self.file_sample_rate)
            frame.pts = self._pts
            self._pts += len(chunk)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self.abort()
            raise AudioError(f"{self.path}: encoding failed ({_reason(error)}); check free disk space "
                             "and the codec settings") from None

    def close(self) -> None:
        """Flush the encoder, finish the file and rename it to ``path`` (no-op when already closed)."""
        if self._state == "closed":
            return
        if self._state != "open":
            raise AudioError(f"{self.path}: writer was aborted; nothing to close, open a new AudioWriter")
        if self._resampler is not None:
            self._encode(self._resampler.resample_chunk(
                np.zeros((0, self.n_channels), np.float32), last=True))
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self.temp_path, self.path)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self.abort()
            raise AudioError(f"{self.path}: cannot finish the file ({_reason(error)}); check free disk space "
                             "and permissions") from None
        self._state = "closed"
        if self.n_clipped:
            logger.warning("%s: clipped %d samples beyond [-1, 1] (peak %.3f); lower the gain or write "
                           "sample_format='f32' wav", self.path, self.n_clipped, self._peak)
        logger.debug("%s: wrote %d samples at %d Hz", self.path, self.n_samples_written, self.sample_rate)

    def abort(self) -> None:
        """Stop writing and delete the temporary file; ``path`` is left untouched."""
        if self._state in ("closed", "aborted"):
            return
        self._state = "aborted"
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except (av.error.FFmpegError, OSError, ValueError):
                pass
        try:
            os.remove(self.temp_path)
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("%s: cannot remove temporary file %s (%s); delete it by hand",
                           self.path, self.temp_path, _reason(error))


def write(path: PathLike, waveform: np.ndarray, sample_rate: float, codec: Optional[str] = None,
          bitrate: Union[str, int, None] = None, sample_format: Optional[str] = None,
          protect: Optional[Collection[PathLike]] = None) -> None:
    """Write ``waveform`` ``(n_samples, n_channels)`` (or 1-D mono) to ``path`` atomically.

    See :class:`AudioWriter` for formats, clipping, atomicity and ``protect``.
    """
    data = as_channels_last(waveform, "waveform", sample_rate)
    with AudioWriter(path, sample_rate, data.shape[1], codec=codec, bitrate=bitrate,
                     sample_format=sample_format, protect=protect) as writer:
        writer.write(data)
