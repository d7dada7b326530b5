"""The audio API under its former single-module name: ``from spleeter_ext.audio import io`` keeps working.

Each job has its own module: :mod:`.probe` (describe a file), :mod:`.reader` (stream one audio stream),
:mod:`.streams` (several streams of one file in one pass), :mod:`.writer` (atomic encoding),
:mod:`.resampling` (soxr), with the shared decoding engine in :mod:`.decode`.
"""
from .channels import as_channels_last, to_channels
from .probe import AudioInfo, probe, probe_streams
from .reader import DEFAULT_BLOCK_SAMPLES, AudioReader, read
from .resampling import RESAMPLE_QUALITY, resample
from .streams import MUSDB_STEMS, read_stems, read_streams
from .writer import AudioWriter, write

__all__ = [
    "AudioInfo", "probe", "probe_streams", "AudioReader", "read", "read_streams", "read_stems", "AudioWriter",
    "write", "resample",
    "as_channels_last", "to_channels", "DEFAULT_BLOCK_SAMPLES", "MUSDB_STEMS", "RESAMPLE_QUALITY",
]
