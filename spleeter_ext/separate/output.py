"""The stems of one input, written all or nothing: each to a temporary file, all finished, then all renamed;
any failure (full disk, permissions, a path below a regular file, a write error mid-stem) removes them all
and raises one :class:`~spleeter_ext.errors.AudioError` naming the input, the stem and the cause."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Collection, Dict, Iterator, List, Optional

import numpy as np

from ..audio import AudioWriter
from ..audio.resampling import stream_resampler
from ..errors import AudioError, SpleeterExtError


class StemSet:
    """Writers for ``paths`` (``{stem: path}``) of the input ``source``; blocks arrive at ``model_rate`` and are
    written at ``rate`` (resampled on the way when they differ)."""

    def __init__(self, source: str, paths: Dict[str, Path], model_rate: int, rate: int, n_channels: int,
                 codec: str, bitrate: str, sample_format: Optional[str], protect: Collection[str]):
        self.source, self.n_channels = source, n_channels
        self._writers: List[AudioWriter] = []
        self._resamplers = [stream_resampler(model_rate, rate, n_channels) for _ in paths] \
            if rate != model_rate else []
        with self._failing():
            for path in paths.values():
                self._writers.append(AudioWriter(path, rate, n_channels, codec=codec, bitrate=bitrate,
                                                 sample_format=sample_format, protect=protect))

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        """Any exception aborts the set and becomes one :class:`AudioError` line naming the input."""
        try:
            yield
        except Exception as error:
            self.abort()
            reason = str(error) if isinstance(error, SpleeterExtError) else f"{type(error).__name__}: {error}"
            raise AudioError(f"{self.source}: cannot write its stems: {' '.join(reason.split())}") from None

    def write(self, block: np.ndarray) -> None:
        """One block of every stem: ``(n_stems, n, n_channels)``."""
        with self._failing():
            for k, writer in enumerate(self._writers):
                data = block[k]
                if self._resamplers:
                    data = self._resamplers[k].resample_chunk(data, last=False)
                writer.write(data)

    def close(self) -> None:
        """Finish every stem, then rename them all to their final names."""
        with self._failing():
            for k, writer in enumerate(self._writers):
                if self._resamplers:
                    writer.write(self._resamplers[k].resample_chunk(
                        np.zeros((0, self.n_channels), np.float32), last=True))
                writer.finish()
            for writer in self._writers:
                writer.commit()

    def abort(self) -> None:
        """Remove every stem's temporary file (stems already renamed are complete and stay)."""
        for writer in self._writers:
            writer.abort()

