"""The decoding engine shared by the streaming reader and the whole-array reads: one demuxing pass over
one or more audio streams, exact sample ranges, channel conversion, streaming resampling, length checks."""
from __future__ import annotations

from fractions import Fraction
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import av
import av.error
import av.stream
import numpy as np

from ..errors import AudioError, ParameterError
from ..log import logger
from .channels import downmix_for
from .checks import _check_count, _reason
from .probe import MP4_FAMILY, AudioInfo, _audio_stream
from .resampling import stream_resampler

#: Seconds decoded and discarded before ``offset`` for lossy codecs: after a seek, MP3 needs
#: two frames (bit reservoir), AAC one (MDCT overlap) and Opus ~0.3 s to converge exactly.
_LOSSY_PREROLL_SECONDS = 0.5
#: A decode of a stream whose container does not declare its frames exactly (lossy codecs; lossless ones in
#: containers that give a rounded time, e.g. Matroska's milliseconds) is short when it misses more than
#: max(0.5 s, 2 %) of the declared length: such lengths can be estimates (an MP3 without Xing/LAME header
#: and raw ADTS AAC are timed from the bit rate of their first packets, off by seconds for VBR) or count
#: encoder priming and padding that the decoder drops (Opus: a 312-sample pre-skip at 48 kHz).
LOSSY_TOLERANCE_SECONDS = 0.5
LOSSY_TOLERANCE_FRACTION = 0.02
#: ``Stream.discard`` value that makes the demuxer skip a stream's packets (PyAV >= 18; ``None`` before,
#: when the packets of streams not being read are dropped after demuxing instead).
_DISCARD_ALL = getattr(getattr(av.stream, "Discard", None), "all", None)


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
    if declared_end is not None and MP4_FAMILY & set(info.format.split(",")):
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
        self._resampler = None if info.sample_rate == sample_rate else stream_resampler(
            info.sample_rate, sample_rate, n_channels)

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


def length_tolerance(info: AudioInfo, expected: int) -> int:
    """Input samples a decode of ``expected`` samples may miss before it is called truncated: none when the
    container declares the stream's frames exactly (:attr:`AudioInfo.frames`), else max(0.5 s, 2 %)."""
    if info.frames is not None:
        return 0
    return int(max(LOSSY_TOLERANCE_SECONDS * info.sample_rate, LOSSY_TOLERANCE_FRACTION * expected))


def _check_length(path: str, info: AudioInfo, start: int, decoded: int, requested_stop: Optional[int],
                  declared_end: Optional[int], failure: Optional[str], label: str = "",
                  allow_truncated: bool = False) -> bool:
    """Raise :class:`AudioError` when decoding failed or stopped short of the declared end (beyond
    :func:`length_tolerance`); with ``allow_truncated``, log a warning instead. Returns True when the
    decode was short or failed.

    ``label`` names the stream in the message (e.g. ``' in audio stream 2'``).
    """
    sr_in = info.sample_rate
    expected_end = declared_end
    if requested_stop is not None and expected_end is not None:
        expected_end = min(requested_stop, expected_end)
    short = False
    expected = 0
    if expected_end is not None:
        expected = max(expected_end - start, 0)
        short = decoded < expected - length_tolerance(info, expected)
    if failure is None and not short:
        return False
    what = "truncated or corrupt" + (f" ({failure})" if failure else "")
    if expected_end is None:
        got = f"decoded {(start + decoded) / sr_in:.1f} s"
    elif info.frames is not None:
        got = (f"decoded {decoded} of the {expected} sample frames its header declares"
               f"{' after the offset' if start else ''} ({(start + decoded) / sr_in:.2f} s of "
               f"{expected_end / sr_in:.2f} s)")
    else:
        got = f"decoded {(start + decoded) / sr_in:.1f} s of {expected_end / sr_in:.1f} s"
    message = f"{path}: {what}{label}: {got}"
    if allow_truncated:
        logger.warning("%s; keeping the decoded part (truncated input allowed)", message)
        return True
    raise AudioError(f"{message}; re-encode or re-download the file, or allow truncated input "
                     "(--allow-truncated) to keep the decoded part")


def _non_finite_error(path: str, seconds: float, label: str = "") -> AudioError:
    return AudioError(f"{path}: contains NaN/Inf samples at {seconds:.2f} s{label}; "
                      "repair the file (e.g. re-export it with clipping) or replace it")
