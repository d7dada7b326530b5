"""Streaming encoder with an atomic commit (:class:`AudioWriter`) and :func:`write`."""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Collection, Optional, Union

import av
import av.error
import numpy as np

from ..errors import AudioError, ParameterError
from ..log import logger
from .channels import DEFAULT_LAYOUTS, as_channels_last
from .checks import PathLike, _check_count, _check_rate, _fspath, _reason
from .formats import EXTENSIONS, OutputFormat, parse_bitrate, resolve_output_format
from .resampling import stream_resampler

#: Samples per frame handed to the encoder (PyAV re-frames to the codec's frame size).
_WRITE_FRAME_SAMPLES = 1 << 14
#: Codec names that share a container (no warning when the extension names the other one).
_FAMILY = {"opus": "ogg", "aac": "m4a"}


def _layout_name(n_channels: int) -> str:
    if n_channels in DEFAULT_LAYOUTS:
        return DEFAULT_LAYOUTS[n_channels][0]
    return f"{n_channels} channels"


def _file_in_the_way(directory: str) -> Optional[str]:
    """The closest existing ancestor of ``directory`` (itself included) when it is not a directory."""
    path = directory
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return path if path and not os.path.isdir(path) else None


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
            blocker = _file_in_the_way(directory)
            reason = f"{blocker} is a file, not a directory" if blocker else _reason(error)
            raise AudioError(f"{self.path}: cannot create directory {directory} ({reason}); "
                             "check the path and permissions") from None
        self.temp_path = os.path.join(directory, f".{os.path.basename(self.path)}.part-{os.getpid()}")
        self.n_samples_written = 0
        self.n_clipped = 0
        self._peak = 0.0
        self._pts = 0
        self._layout = _layout_name(self.n_channels)
        self._resampler = None if self.file_sample_rate == self.sample_rate else stream_resampler(
            self.sample_rate, self.file_sample_rate, self.n_channels)
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
        if getattr(self, "_state", None) in ("open", "finished"):
            self.abort()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` (or :meth:`finish`) or :meth:`abort` has run."""
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
        self.finish()
        self.commit()

    def finish(self) -> None:
        """Flush the encoder and complete the file under its temporary name (see :meth:`commit`); several
        files that belong together can be finished first and committed only when all succeeded."""
        if self._state == "finished":
            return
        if self._state != "open":
            raise AudioError(f"{self.path}: writer was {self._state}; nothing to finish, open a new AudioWriter")
        if self._resampler is not None:
            self._encode(self._resampler.resample_chunk(
                np.zeros((0, self.n_channels), np.float32), last=True))
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self.abort()
            raise AudioError(f"{self.path}: cannot finish the file ({_reason(error)}); check free disk space "
                             "and permissions") from None
        self._state = "finished"

    def commit(self) -> None:
        """Rename the finished temporary file to ``path`` (no-op when already closed)."""
        if self._state == "closed":
            return
        if self._state != "finished":
            raise AudioError(f"{self.path}: writer is {self._state}; finish() it before commit()")
        try:
            os.replace(self.temp_path, self.path)
        except OSError as error:
            self.abort()
            raise AudioError(f"{self.path}: cannot rename the finished file into place ({_reason(error)}); "
                             "check the path and permissions") from None
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
