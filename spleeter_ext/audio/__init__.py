"""Audio I/O for spleeter-ext: PyAV decoding/encoding (no ffmpeg binary), soxr resampling.

Waveforms are float32 arrays of shape ``(n_samples, n_channels)``. Importing this package
does not import TensorFlow; :class:`PyAVAudioAdapter` (Spleeter's ``AudioAdapter``
interface, which imports TensorFlow) is loaded on first access.
"""
from .channels import as_channels_last, downmix_for, to_channels
from .formats import parse_bitrate, resolve_output_format
from .io import (
    DEFAULT_BLOCK_SAMPLES,
    MUSDB_STEMS,
    RESAMPLE_QUALITY,
    AudioInfo,
    AudioReader,
    AudioWriter,
    probe,
    probe_streams,
    read,
    read_stems,
    read_streams,
    resample,
    write,
)

__all__ = [
    "AudioInfo", "probe", "probe_streams", "AudioReader", "read", "read_streams", "read_stems", "AudioWriter",
    "write", "resample",
    "as_channels_last", "to_channels", "downmix_for", "parse_bitrate", "resolve_output_format",
    "DEFAULT_BLOCK_SAMPLES", "MUSDB_STEMS", "RESAMPLE_QUALITY",
]


def __getattr__(name: str):
    if name == "PyAVAudioAdapter":
        from .adapter import PyAVAudioAdapter

        return PyAVAudioAdapter
    raise AttributeError(f"module 'spleeter_ext.audio' has no attribute {name!r}")
