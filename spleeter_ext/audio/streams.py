"""Several audio streams of one file (MUSDB18 ``.stem.mp4``) decoded in one pass: :func:`read_streams`,
:func:`read_stems`."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import av
import av.error
import numpy as np

from ..errors import AudioError, ParameterError
from ..log import logger
from .checks import PathLike, _check_rate, _check_seconds, _fspath, _reason
from .decode import (
    _LOSSY_PREROLL_SECONDS,
    _bounds,
    _check_length,
    _Converter,
    _decode_streams,
    _DecodeFailure,
    _first_non_finite,
    _non_finite_error,
    _output_channels,
    _Range,
    _Restart,
)
from .probe import AudioInfo, _check_streams, _open_input, _open_probed, _stream_info

#: Stream order of MUSDB18 / Native Instruments ``.stem.mp4`` files.
MUSDB_STEMS: Tuple[str, ...] = ("mixture", "drums", "bass", "other", "vocals")


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
