"""Shape checks and channel conversion for channels-last waveforms.

Every waveform in this package is a float32 array of shape ``(n_samples, n_channels)``
(axis 0: time in samples, axis 1: channels). This module holds the two entry points
that enforce that convention (:func:`as_channels_last`) and change the channel count
(:func:`to_channels`), plus the multichannel-to-stereo downmix they share with the
streaming reader in :mod:`spleeter_ext.audio.reader`.

Downmix policy (ITU-R BS.775 "Lo/Ro" style, no normalisation since outputs are float):

* front left/right go to their side at 0 dB, the front centre to both sides at -3 dB;
* every other left (or right) speaker -- side, back, wide, height -- goes to its side at
  -3 dB; other centre speakers (back centre, top centre) go to both sides at -6 dB;
* LFE channels are omitted, as BS.775 specifies (the log line says so);
* channels with no known position go to both sides at -6 dB (the log line says so).

A file whose channel layout is unspecified (e.g. a 6-channel WAV without a channel mask)
is assumed to use the conventional WAVE/SMPTE order for its channel count (6 channels:
FL FR FC LFE BL BR); with more than 8 unlabelled channels, all channels are averaged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ParameterError
from ..log import logger

__all__ = ["as_channels_last", "to_channels", "Downmix", "downmix_for"]

_MINUS_3DB = 1.0 / math.sqrt(2.0)
_MINUS_6DB = 0.5

#: Conventional channel order assumed for files that do not label their channels.
DEFAULT_LAYOUTS = {
    1: ("mono", ("FC",)),
    2: ("stereo", ("FL", "FR")),
    3: ("3.0", ("FL", "FR", "FC")),
    4: ("quad", ("FL", "FR", "BL", "BR")),
    5: ("5.0", ("FL", "FR", "FC", "BL", "BR")),
    6: ("5.1", ("FL", "FR", "FC", "LFE", "BL", "BR")),
    7: ("6.1", ("FL", "FR", "FC", "LFE", "BC", "SL", "SR")),
    8: ("7.1", ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR")),
}

_FRONT = {"FL": (1.0, 0.0), "FR": (0.0, 1.0), "DL": (1.0, 0.0), "DR": (0.0, 1.0)}
_CENTRE = {"FC": (_MINUS_3DB, _MINUS_3DB)}
_OTHER_CENTRES = {"BC", "TC", "TFC", "TBC", "BFC"}
_LFE = {"LFE", "LFE2", "LFE3"}
_LEFT = {"FLC", "BL", "SL", "WL", "TFL", "TBL", "SDL", "TSL", "BFL", "TTL"}
_RIGHT = {"FRC", "BR", "SR", "WR", "TFR", "TBR", "SDR", "TSR", "BFR", "TTR"}


@dataclass(frozen=True)
class Downmix:
    """A linear map from ``n_in`` channels to stereo.

    ``matrix`` has shape ``(n_in_channels, 2)``: ``stereo = block @ matrix`` for a block
    of shape ``(n_samples, n_in_channels)``. ``description`` is the human-readable
    layout and weighting used in the INFO log line.
    """

    matrix: np.ndarray
    description: str

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Downmix ``block`` of shape ``(n_samples, n_in_channels)`` to ``(n_samples, 2)`` float32."""
        return np.ascontiguousarray(block @ self.matrix, dtype=np.float32)


def downmix_for(n_channels: int, channel_names: Optional[Sequence[str]] = None,
                layout_name: Optional[str] = None) -> Downmix:
    """Build the stereo downmix for ``n_channels`` input channels.

    ``channel_names`` are FFmpeg speaker names (``FL``, ``FR``, ``FC``, ``LFE``, ``BL``...);
    pass ``None`` (or names that are all ``NONE``/empty) when the layout is unspecified,
    and the conventional layout for the channel count is assumed.
    """
    if n_channels < 1:
        raise ParameterError(f"n_channels: got {n_channels}; a waveform needs at least one channel")
    names = [str(name).upper() for name in channel_names] if channel_names is not None else []
    known = len(names) == n_channels and any(name not in ("", "NONE") for name in names)
    assumed = ""
    if not known:
        if n_channels in DEFAULT_LAYOUTS:
            layout_name, default_names = DEFAULT_LAYOUTS[n_channels]
            names = list(default_names)
            assumed = ", layout unspecified in the file so assumed"
        else:
            matrix = np.full((n_channels, 2), 1.0 / n_channels, dtype=np.float32)
            return Downmix(matrix, f"{n_channels} unlabelled channels averaged into both sides")
    matrix = np.zeros((n_channels, 2), dtype=np.float32)
    omitted, unknown = [], []
    for index, name in enumerate(names):
        if name in _FRONT:
            matrix[index] = _FRONT[name]
        elif name in _CENTRE:
            matrix[index] = _CENTRE[name]
        elif name in _LFE:
            omitted.append(name)
        elif name in _LEFT:
            matrix[index] = (_MINUS_3DB, 0.0)
        elif name in _RIGHT:
            matrix[index] = (0.0, _MINUS_3DB)
        elif name in _OTHER_CENTRES:
            matrix[index] = (_MINUS_6DB, _MINUS_6DB)
        else:
            matrix[index] = (_MINUS_6DB, _MINUS_6DB)
            unknown.append(name)
    label = layout_name or f"{n_channels} channels"
    notes = ["centre and surrounds at -3 dB"]
    if omitted:
        notes.append(f"{'/'.join(omitted)} omitted per ITU-R BS.775")
    if unknown:
        notes.append(f"unpositioned {'/'.join(unknown)} to both sides at -6 dB")
    description = (f"{label} ({' '.join(names)}{assumed}) with ITU-R BS.775 weights "
                   f"({', '.join(notes)})")
    return Downmix(matrix, description)


def _shape_text(shape: Tuple[int, ...]) -> str:
    return "(" + ", ".join(str(dim) for dim in shape) + ("," if len(shape) == 1 else "") + ")"


def as_channels_last(waveform: Union[np.ndarray, Sequence[float]], name: str = "waveform",
                     sample_rate: Optional[float] = None) -> np.ndarray:
    """Return ``waveform`` as a C-contiguous float32 array of shape ``(n_samples, n_channels)``.

    An input that already is one is returned as is (no copy).

    Accepts a 1-D array ``(n_samples,)`` (returned as ``(n_samples, 1)``) or a 2-D array
    ``(n_samples, n_channels)``. A 2-D array that looks channels-first, i.e.
    ``shape[0] <= 8 < shape[1]``, is refused with a :class:`ParameterError` telling the
    caller to pass ``waveform.T``; tiny arrays with both dimensions ``<= 8`` are taken as
    channels-last. Integer arrays are refused (their scale is ambiguous), as are
    non-finite samples: the message names the first bad sample index, and its time in
    seconds when ``sample_rate`` is given.
    """
    array = np.asarray(waveform)
    if array.dtype.kind != "f":
        if array.dtype.kind in "iub":
            raise ParameterError(
                f"{name} has dtype {array.dtype}; pass float samples in [-1, 1] "
                f"(e.g. {name} / 32768 for int16 PCM)")
        raise ParameterError(f"{name} has dtype {array.dtype}; pass a real float array of samples")
    if array.ndim == 1:
        array = array[:, np.newaxis]
    elif array.ndim != 2:
        raise ParameterError(
            f"{name} has shape {_shape_text(array.shape)}; expected (n_samples, n_channels) or (n_samples,)")
    elif array.shape[0] <= 8 < array.shape[1]:
        raise ParameterError(
            f"{name} has shape {_shape_text(array.shape)}, which looks channels-first "
            f"(n_channels, n_samples); pass {name}.T (expected (n_samples, n_channels))")
    if array.shape[1] == 0:
        raise ParameterError(f"{name} has shape {_shape_text(array.shape)} with no channels; "
                             "expected (n_samples, n_channels) with n_channels >= 1")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite.all(axis=1)))
        when = f" ({index / sample_rate:.2f} s)" if sample_rate else ""
        raise ParameterError(f"{name} contains NaN/Inf at sample {index}{when}; "
                             "clean or clip it (e.g. np.nan_to_num) before use")
    return array


def to_channels(waveform: Union[np.ndarray, Sequence[float]], n_channels: int, name: str = "waveform",
                channel_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Convert ``waveform`` ``(n_samples, n_in_channels)`` to ``(n_samples, n_channels)`` float32.

    * same count: returned unchanged (as float32, channels-last);
    * mono to ``n_channels``: the channel is duplicated;
    * more than 2 channels to stereo: ITU-R BS.775 downmix (see module docstring), with an
      INFO log line naming ``name`` and the layout; ``channel_names`` gives the speaker
      names (``FL``, ``FR``, ``FC``, ``LFE``...) when known;
    * 2 or more channels to mono: downmix to stereo if needed, then average left and right.

    Any other conversion (e.g. stereo to 6 channels) raises :class:`ParameterError`.
    """
    array = as_channels_last(waveform, name)
    n_in = array.shape[1]
    if not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise ParameterError(f"n_channels: got {n_channels!r}; pass a positive integer such as 1 or 2")
    if n_in == n_channels:
        return array
    if n_in == 1:
        return np.ascontiguousarray(np.repeat(array, n_channels, axis=1))
    if n_channels > 2:
        raise ParameterError(f"{name}: cannot convert {n_in} channels to {n_channels}; "
                             "pass n_channels=1, 2 or the input's own channel count")
    if n_in > 2:
        downmix = downmix_for(n_in, channel_names)
        logger.info("%s: downmixing %s to stereo", name, downmix.description)
        array = downmix.apply(array)
    if n_channels == 1:
        return np.ascontiguousarray(array.mean(axis=1, keepdims=True, dtype=np.float32))
    return array
