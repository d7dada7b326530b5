"""Describe audio files without decoding them: :func:`probe`, :func:`probe_streams`, :class:`AudioInfo`.

Files are opened once per call, with FFmpeg's probe size cut to 32 KiB for the demuxers where that
was measured to describe files identically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import av
import av.error

from ..errors import AudioError, ParameterError
from ..log import logger
from . import headers
from .checks import PathLike, _check_count, _fspath, _reason

#: FFmpeg's names of the MP4 family (MOV, MP4, M4A, 3GP...): their edit lists declare exact lengths.
MP4_FAMILY = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "ipod"})

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


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`probe` learns from a file's header.

    ``sample_rate`` (Hz), ``n_channels`` and ``codec`` describe the selected audio ``stream``
    (0-based among the audio streams); ``duration`` is the declared length in seconds (``None``
    when unknown); ``n_streams`` counts the audio streams; ``format`` is FFmpeg's demuxer name
    (e.g. ``'wav'``, ``'mp3'``, ``'mov,mp4,m4a,3gp,3g2,mj2'``); ``layout`` and
    ``channel_names`` are FFmpeg's channel layout (``'5.1'``, ``'stereo'``, ``'6 channels'``
    when unspecified) and speaker names (``'FL'``, ``'FR'``..., ``'NONE'`` when unspecified);
    ``lossless`` is True for PCM, FLAC, ALAC and other lossless codecs; ``frames`` is the length in
    sample frames when the container declares it exactly (lossless streams in WAV, RF64, Wave64, AIFF,
    FLAC, CAF or MP4/M4A), else ``None`` (lossy streams, whose declared length may be an estimate, and
    containers that give a rounded time or none).
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
    frames: Optional[int] = None

    @property
    def n_samples(self) -> Optional[int]:
        """Declared length in samples at ``sample_rate`` (``None`` when the duration is unknown)."""
        if self.frames is not None:
            return self.frames
        return None if self.duration is None else int(round(self.duration * self.sample_rate))


def _exact_frames(container: "av.container.InputContainer", stream: "av.audio.stream.AudioStream", path: str,
                  lossless: bool) -> Optional[int]:
    """The sample frames a lossless stream's container declares exactly (see :attr:`AudioInfo.frames`)."""
    if not lossless:
        return None
    name = container.format.name
    if name in headers.FORMATS:
        return headers.declared_frames(path, name)
    rate = stream.codec_context.sample_rate
    if MP4_FAMILY & set(name.split(",")) and stream.duration and stream.time_base == Fraction(1, rate):
        return int(stream.duration)
    return None


def _stream_info(container: "av.container.InputContainer", path: str, stream: int) -> AudioInfo:
    """:class:`AudioInfo` of audio ``stream`` of an open ``container``."""
    selected = _audio_stream(container, path, stream)
    context = selected.codec_context
    layout = selected.layout
    lossless = bool(context.codec.lossless and not context.codec.lossy)
    frames = _exact_frames(container, selected, path, lossless)
    duration = frames / context.sample_rate if frames is not None else _declared_duration(container, selected)
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
        lossless=lossless,
        frames=frames,
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
