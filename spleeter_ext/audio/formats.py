"""Output formats: file extension / Spleeter codec name -> FFmpeg muxer, encoder and sample format.

Everything here runs through the FFmpeg libraries bundled in PyAV (no ``ffmpeg`` binary).
Encoders bundled in PyAV 18.1 (FFmpeg 8 libraries), and the choice made for each codec:

* ``wav``: ``pcm_s16le`` / ``pcm_s24le`` / ``pcm_f32le`` (``sample_format`` s16 / s24 / f32);
* ``flac``: FFmpeg's ``flac`` encoder, 16 or 24 bit (``sample_format`` s16 / s24);
* ``mp3``: ``libmp3lame`` (LAME is bundled), at most 2 channels;
* ``m4a``: FFmpeg's native ``aac`` encoder (``libfdk_aac`` is not bundled) in an MP4/M4A container;
* ``ogg``: ``libvorbis`` when the PyAV build has it; PyAV 18.1 does not, and FFmpeg's native
  ``vorbis`` encoder is experimental, stereo-only and ignores the bitrate, so ``ogg`` is written
  as Opus (``libopus``, bundled) in an Ogg container. Opus runs at 48 kHz (or 24/16/12/8 kHz):
  other sample rates are resampled to 48 kHz with soxr while writing, and the file reads back
  at 48 kHz unless a ``sample_rate`` is requested;
* ``wma``: ``wmav2`` in an ASF container, at most 2 channels.

``opus`` (Ogg Opus, ``.opus``) and ``aac`` (an alias of ``m4a``) are accepted too.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

import av

from ..errors import ParameterError

__all__ = ["OutputFormat", "resolve_output_format", "parse_bitrate", "CODECS", "EXTENSIONS",
           "ogg_encoder"]

#: Spleeter's codec names (``spleeter.audio.Codec``) plus ``opus`` and ``aac``.
CODECS = ("wav", "flac", "mp3", "ogg", "m4a", "wma", "opus", "aac")

#: File extension -> codec name.
EXTENSIONS: Dict[str, str] = {
    ".wav": "wav", ".wave": "wav", ".flac": "flac", ".mp3": "mp3", ".ogg": "ogg", ".oga": "ogg",
    ".opus": "opus", ".m4a": "m4a", ".mp4": "m4a", ".wma": "wma",
}

_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
_PCM = {"s16": ("pcm_s16le", "s16", 16), "s24": ("pcm_s24le", "s32", 24), "f32": ("pcm_f32le", "flt", None)}
_FLAC = {"s16": ("s16", 16), "s24": ("s32", 24)}


@dataclass(frozen=True)
class OutputFormat:
    """How one output file is encoded.

    ``frame_format`` is the PyAV sample format of the frames handed to the encoder;
    ``int_bits`` is the integer bit depth (16 or 24) for PCM/FLAC, where samples are
    clipped to [-1, 1] and quantised, ``None`` for float and lossy formats.
    ``rates`` lists the sample rates the encoder accepts (``None``: any), and
    ``resample_to`` the rate used when the requested one is not accepted (``None``: refuse).
    """

    codec: str
    container: str
    encoder: str
    frame_format: str
    int_bits: Optional[int] = None
    lossy: bool = False
    default_bitrate: Optional[int] = None
    max_channels: Optional[int] = None
    rates: Optional[Tuple[int, ...]] = None
    resample_to: Optional[int] = None
    options: Dict[str, str] = field(default_factory=dict)

    @property
    def planar(self) -> bool:
        """True when the encoder takes planar frames (one plane per channel)."""
        return self.frame_format.endswith("p")


def ogg_encoder() -> str:
    """The encoder used for ``ogg``: ``libvorbis`` when bundled, else ``libopus``."""
    return "libvorbis" if "libvorbis" in av.codecs_available else "libopus"


def parse_bitrate(bitrate: Union[str, int, float, None], name: str = "bitrate") -> Optional[int]:
    """Parse ``'128k'``, ``'1.5M'``, ``'192000'`` or a number into bits per second (``None`` passes)."""
    if bitrate is None:
        return None
    if isinstance(bitrate, bytes):
        bitrate = bitrate.decode()
    text = str(bitrate).strip()
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kKmM]?)(?:b(?:ps|it/s)?)?", text)
    if not match:
        raise ParameterError(f"{name}: {bitrate!r} is not a bitrate; pass e.g. '128k' or 192000")
    value = float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[match.group(2).lower()]
    if not 1000 <= value <= 10_000_000:
        raise ParameterError(f"{name}: {bitrate!r} is out of range; pass a value between '1k' and '10M', "
                             "e.g. '192k'")
    return int(round(value))


def _codec_name(codec: Union[str, bytes]) -> str:
    value = getattr(codec, "value", codec)
    if isinstance(value, bytes):
        value = value.decode()
    return str(value).strip().lower().lstrip(".")


def resolve_output_format(path: str, codec: Optional[str] = None, sample_format: Optional[str] = None
                          ) -> OutputFormat:
    """Choose muxer, encoder and sample format for ``path``.

    The format comes from the file extension unless ``codec`` (a Spleeter codec name; a
    ``spleeter.audio.Codec`` is a ``str`` enum and works too) is given, which overrides it.
    ``sample_format`` (``'s16'``,
    ``'s24'``, ``'f32'``) applies to wav (default s16) and flac (s16 or s24, default s16).
    """
    extension = os.path.splitext(path)[1].lower()
    if codec is None:
        if extension not in EXTENSIONS:
            raise ParameterError(
                f"{path}: unknown audio extension {extension!r}; name the file .wav, .flac, .mp3, "
                ".ogg, .m4a or .wma, or pass codec=")
        name = EXTENSIONS[extension]
    else:
        name = _codec_name(codec)
        if name not in CODECS:
            raise ParameterError(f"codec: {codec!r} is not supported; pass one of {', '.join(CODECS)}")
    if name == "aac":
        name = "m4a"
    if sample_format is not None:
        sample_format = str(sample_format).lower()
        allowed = {"wav": _PCM, "flac": _FLAC}.get(name)
        if allowed is None:
            raise ParameterError(f"sample_format: {name} is a lossy codec with no sample format choice; "
                                 "drop sample_format or write wav/flac")
        if sample_format not in allowed:
            raise ParameterError(f"sample_format: {sample_format!r} is not available for {name}; "
                                 f"pass one of {', '.join(allowed)}")
    if name == "wav":
        encoder, frame_format, bits = _PCM[sample_format or "s16"]
        return OutputFormat("wav", "wav", encoder, frame_format, int_bits=bits)
    if name == "flac":
        frame_format, bits = _FLAC[sample_format or "s16"]
        return OutputFormat("flac", "flac", "flac", frame_format, int_bits=bits)
    if name == "mp3":
        return OutputFormat("mp3", "mp3", "libmp3lame", "fltp", lossy=True, default_bitrate=192_000,
                            max_channels=2, rates=(8000, 11025, 12000, 16000, 22050, 24000, 32000,
                                                   44100, 48000))
    if name == "m4a":
        container = "mp4" if extension == ".mp4" else "ipod"
        return OutputFormat("m4a", container, "aac", "fltp", lossy=True, default_bitrate=192_000,
                            rates=(7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100,
                                   48000, 64000, 88200, 96000))
    if name == "wma":
        return OutputFormat("wma", "asf", "wmav2", "fltp", lossy=True, default_bitrate=192_000,
                            max_channels=2)
    if name == "ogg" and ogg_encoder() == "libvorbis":
        return OutputFormat("ogg", "ogg", "libvorbis", "fltp", lossy=True, default_bitrate=192_000)
    return OutputFormat(name, "ogg", "libopus", "flt", lossy=True, default_bitrate=160_000,
                        rates=_OPUS_RATES, resample_to=48000)
