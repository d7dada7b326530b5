"""Spleeter ``AudioAdapter`` backed by PyAV: Spleeter's CLI and API without an ffmpeg binary.

Use it from Spleeter's CLI with ``-a spleeter_ext.audio.adapter.PyAVAudioAdapter``
(``spleeter separate`` and ``spleeter train``): Spleeter's ``AudioAdapter.get`` imports the
module part of the dotted name and instantiates the class with no argument.

Differences from Spleeter's ``FFMPEGProcessAudioAdapter``, all on the safe side:

* waveforms are always stereo ``(n_samples, 2)``: mono is duplicated (as Spleeter's separator
  does) and more than 2 channels are downmixed with ITU-R BS.775 weights instead of keeping
  only the first two;
* ``save`` creates missing directories and writes atomically (temporary file + rename);
* errors are :class:`PyAVAudioError`, which is both a Spleeter ``SpleeterError`` and a
  spleeter-ext :class:`~spleeter_ext.errors.AudioError`, with one-line messages.

This module imports TensorFlow (through ``spleeter.audio.adapter``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np
from spleeter import SpleeterError
from spleeter.audio import Codec
from spleeter.audio.adapter import AudioAdapter

from ..errors import AudioError
from .reader import read
from .writer import write

__all__ = ["PyAVAudioAdapter", "PyAVAudioError"]


class PyAVAudioError(AudioError, SpleeterError):
    """An audio file cannot be read or written (caught by both Spleeter and spleeter-ext handlers)."""


class PyAVAudioAdapter(AudioAdapter):
    """Spleeter's ``AudioAdapter`` interface implemented with :mod:`spleeter_ext.audio`."""

    def load(self, audio_descriptor: Any, offset: Optional[float] = None, duration: Optional[float] = None,
             sample_rate: Optional[float] = None, dtype: Union[bytes, str, np.dtype] = b"float32"
             ) -> Tuple[np.ndarray, int]:
        """Load ``audio_descriptor`` (a path as str, bytes or ``Path``) as ``(waveform, sample_rate)``.

        ``waveform`` has shape ``(n_samples, 2)`` and dtype ``dtype``; ``offset`` and ``duration``
        are in seconds (``None``: from the start / to the end); ``sample_rate`` ``None`` keeps the
        file's rate.
        """
        if isinstance(dtype, bytes):
            dtype = dtype.decode()
        try:
            waveform, rate = read(audio_descriptor, offset=0.0 if offset is None else offset,
                                  duration=duration, sample_rate=sample_rate, n_channels=2)
        except AudioError as error:
            raise PyAVAudioError(str(error)) from None
        return waveform.astype(np.dtype(dtype), copy=False), rate

    def save(self, path: Union[Path, str, bytes], data: np.ndarray, sample_rate: float,
             codec: Optional[Union[Codec, str]] = None, bitrate: Optional[str] = None) -> None:
        """Write ``data`` ``(n_samples, n_channels)`` to ``path`` with ``codec`` (``Codec`` or name).

        ``codec`` ``None`` picks the format from the extension; ``bitrate`` (``'128k'``) applies to
        lossy codecs. wav is 16-bit PCM, as with Spleeter's ffmpeg adapter.
        """
        try:
            write(path, data, sample_rate, codec=codec, bitrate=bitrate)
        except AudioError as error:
            raise PyAVAudioError(str(error)) from None
