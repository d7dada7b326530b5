"""Streaming decoder (:class:`AudioReader`, block by block in constant memory) and :func:`read`."""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import av
import av.error
import numpy as np

from ..log import logger
from .checks import PathLike, _check_count, _check_rate, _check_seconds, _fspath, _reason
from .decode import (
    _BlockQueue,
    _bounds,
    _check_length,
    _Converter,
    _decode_streams,
    _DecodeFailure,
    _first_non_finite,
    _non_finite_error,
    _output_channels,
    _preroll,
    _Range,
    _Restart,
)
from .probe import _open_input, _open_probed, _stream_info

#: Default number of output samples per block yielded by :meth:`AudioReader.blocks`.
DEFAULT_BLOCK_SAMPLES = 1 << 16


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
    allow_truncated:
        Accept a decode that stops short of the declared length (or fails mid-stream): log a
        WARNING naming the file and what was decoded of what was declared, and end normally
        (``truncated`` is then True) instead of raising.

    The file is opened once, in the constructor (which reads the header into :attr:`info`),
    and the first :meth:`blocks` pass decodes from that open file, closing it when done;
    :meth:`close` (or leaving a ``with`` block) releases it when :meth:`blocks` is never
    exhausted. A later :meth:`blocks` call reopens the file.

    After :meth:`blocks` is exhausted, ``n_samples_read`` holds the number of output samples
    yielded and ``complete`` is True. Errors found while decoding -- a decoder failure, a
    decode shorter than the declared length (by any sample frame when the container declares
    frames exactly, see :attr:`AudioInfo.frames`; else by more than max(0.5 s, 2 %), see
    :func:`~spleeter_ext.audio.decode.length_tolerance`), NaN/Inf samples -- raise
    :class:`AudioError` only *after* every good sample before the problem has been yielded, so
    a streaming caller keeps the good part and decides what to do; ``complete`` stays False in
    that case (``allow_truncated`` turns a short or failed decode into a warning). MP4/M4A files are trimmed
    to their declared
    duration (the edit list), which removes the AAC encoder's trailing padding.
    """

    def __init__(self, path: PathLike, sample_rate: Optional[float] = None, n_channels: Optional[int] = 2,
                 offset: float = 0.0, duration: Optional[float] = None, stream: int = 0,
                 allow_truncated: bool = False):
        self.path = _fspath(path)
        self.allow_truncated = bool(allow_truncated)
        self.truncated = False
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
        self.truncated = _check_length(self.path, self.info, start, decoded, requested_stop, declared_end, failure,
                                       allow_truncated=self.allow_truncated)
        self.complete = True


def read(path: PathLike, offset: float = 0.0, duration: Optional[float] = None,
         sample_rate: Optional[float] = None, n_channels: Optional[int] = 2, stream: int = 0,
         allow_truncated: bool = False) -> Tuple[np.ndarray, int]:
    """Decode ``path`` into ``(waveform, sample_rate)``, waveform float32 ``(n_samples, n_channels)``.

    Same parameters and channel policy as :class:`AudioReader` (one open of the file); unlike
    the streaming reader, any decoding problem (truncation, corruption, NaN) raises
    :class:`AudioError` and no partial waveform is returned (``allow_truncated``: the decoded
    part of a truncated file is returned, with a WARNING).
    """
    with AudioReader(path, sample_rate=sample_rate, n_channels=n_channels, offset=offset,
                     duration=duration, stream=stream, allow_truncated=allow_truncated) as reader:
        blocks = list(reader.blocks())
    if not blocks:
        return np.zeros((0, reader.n_channels), dtype=np.float32), reader.sample_rate
    waveform = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return waveform, reader.sample_rate
