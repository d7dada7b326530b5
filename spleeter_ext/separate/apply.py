"""Chunked inference: fixed-length segments with overlap-add, streaming, outside the model.

A signal of ``n_samples`` is cut into segments of ``segment`` samples starting every
``stride = segment - overlap`` samples; the last one is zero-padded. Each separated segment is
weighted by a trapezoid (linear ramps of ``overlap`` samples where it overlaps a neighbour, 1
elsewhere, so the first segment's start and the last one's end are not faded) and the weighted sum
is divided by the sum of the weights. A model that returns its input therefore reconstructs the
input exactly (up to float rounding) at every sample, for any length and segment size.

Everything streams: :class:`Segmenter` turns blocks of any size into segments, :class:`OverlapAdd`
turns separated segments back into finished blocks, and memory stays bounded by a few segments
whatever the length of the input.

Axis names: input blocks ``(n_samples, n_channels)``, separated segments
``(n_sources, segment, n_channels)``, output blocks ``(n_sources, n_samples, n_channels)``.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import ParameterError


def plan(segment: int, overlap: float) -> Tuple[int, int]:
    """``(segment, overlap_samples)`` for an overlap given as a fraction of the segment."""
    if segment < 2:
        raise ParameterError(f"segment must be at least 2 samples, got {segment}")
    if not 0 <= overlap < 1:
        raise ParameterError(f"overlap must be a fraction in [0, 1), got {overlap}")
    ov = int(round(segment * overlap))
    return segment, min(ov, segment - 1)


def segment_weights(segment: int, overlap: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """Trapezoid weights ``(segment,)``: complementary linear ramps of ``overlap`` samples."""
    w = np.ones(segment, dtype=np.float64)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
        if fade_in:
            w[:overlap] = ramp
        if fade_out:
            w[segment - overlap:] = ramp[::-1]
    return w


def n_segments(n_samples: int, segment: int, overlap: int) -> int:
    """Segments needed to cover ``n_samples``."""
    if n_samples <= segment:
        return 1
    stride = segment - overlap
    return 1 + -(-(n_samples - segment) // stride)


class Segmenter:
    """Blocks in, ``(start, segment (segment, n_channels), is_last)`` out.

    Call :meth:`feed` for each decoded block and :meth:`finish` at the end of the input; both
    return the segments that became complete. Only the samples a future segment needs are kept.
    """

    def __init__(self, segment: int, overlap: int, n_channels: int):
        self.segment, self.overlap, self.n_channels = segment, overlap, n_channels
        self.stride = segment - overlap
        self._buf = np.zeros((0, n_channels), np.float32)
        self._buf_start = 0  # absolute index of _buf[0]
        self._parts: List[np.ndarray] = []  # blocks received after _buf, joined only when a segment is due
        self._held = 0  # samples in _buf and _parts
        self._next = 0  # start of the next segment
        self.n_samples = 0
        self._pending: Optional[Tuple[int, np.ndarray]] = None

    def _join(self) -> None:
        if self._parts:
            self._buf = np.concatenate([self._buf] + self._parts) if len(self._buf) else \
                np.concatenate(self._parts)
            self._parts = []

    def feed(self, block: np.ndarray) -> List[Tuple[int, np.ndarray, bool]]:
        block = np.array(block, np.float32)  # a copy: the caller may reuse its buffer
        self.n_samples += len(block)
        self._parts.append(block)
        self._held += len(block)
        out = []
        if self._next + self.segment > self._buf_start + self._held:
            return out
        self._join()
        while self._next + self.segment <= self._buf_start + len(self._buf):
            i = self._next - self._buf_start
            seg = self._buf[i: i + self.segment]
            # Hold each segment back one step: only at the end do we know whether it is the last.
            if self._pending is not None:
                out.append((*self._pending, False))
            self._pending = (self._next, seg.copy())
            self._next += self.stride
            drop = self._next - self._buf_start
            if drop > 0:
                self._buf = self._buf[drop:]
                self._buf_start += drop
        self._held = len(self._buf)
        return out

    def finish(self) -> List[Tuple[int, np.ndarray, bool]]:
        out = []
        end = self.n_samples
        covered = self._pending[0] + self.segment if self._pending is not None else 0
        if self._pending is not None and covered >= end:
            out.append((*self._pending, True))
            self._pending = None
            return out
        if self._pending is not None:
            out.append((*self._pending, False))
            self._pending = None
        if end == 0:
            return out
        # The remaining tail (shorter than a segment) is zero-padded.
        self._join()
        i = self._next - self._buf_start
        tail = self._buf[i:]
        seg = np.zeros((self.segment, self.n_channels), np.float32)
        seg[: len(tail)] = tail
        out.append((self._next, seg, True))
        return out


class OverlapAdd:
    """Separated segments in (in order), finished output blocks ``(n_sources, n, n_channels)`` out.

    Only the ``overlap`` samples shared by neighbours are computed (weighted sum over summed weights,
    in float64); the rest of a segment, whose weight is 1, is passed on as it is.
    """

    def __init__(self, segment: int, overlap: int):
        self.segment, self.overlap = segment, overlap
        self.stride = segment - overlap
        self._tail: Optional[np.ndarray] = None  # the previous segment's last `overlap` samples
        self._emitted = 0
        ramp = segment_weights(segment, overlap, fade_in=True, fade_out=False)[:overlap]
        self._fade_in, self._fade_out = ramp, ramp[::-1]

    def add(self, start: int, separated: np.ndarray, is_last: bool, n_samples: Optional[int] = None) -> np.ndarray:
        """Add one separated segment ``(n_sources, segment, n_channels)``; return the samples that are
        final. ``n_samples`` (the input's true length) is required with the last segment, to crop the
        zero-padded tail."""
        if start != self._emitted:
            raise ParameterError(f"segments must arrive in order: expected start {self._emitted}, got {start}")
        sep = np.asarray(separated, np.float32)
        if self._tail is not None:
            k = self.overlap
            a, b = self._fade_out[None, :, None], self._fade_in[None, :, None]
            head = (self._tail * a + sep[:, :k].astype(np.float64) * b) / (a + b)
            if not sep.flags.writeable:
                sep = sep.copy()
            sep[:, :k] = head
            self._tail = None
        if is_last:
            end = (n_samples - start) if n_samples is not None else self.segment
            self._emitted += end
            return sep[:, :end]
        if self.overlap:
            self._tail = sep[:, self.stride:].astype(np.float64)
        self._emitted += self.stride
        return sep[:, : self.stride]


SeparateFn = Callable[[np.ndarray], np.ndarray]


def separate_blocks(blocks: Iterable[np.ndarray], separate_fn: SeparateFn, segment: int, overlap: int,
                    n_channels: int, batch_size: int = 1) -> Iterator[np.ndarray]:
    """Stream ``blocks`` through ``separate_fn`` (``(n_seg, segment, C) -> (n_seg, S, segment, C)``).

    Yields finished output blocks ``(n_sources, n, n_channels)`` whose lengths add up to the input's.
    """
    seg = Segmenter(segment, overlap, n_channels)
    ola = OverlapAdd(segment, overlap)
    batch: List[Tuple[int, np.ndarray, bool]] = []

    def run(items):
        out = separate_fn(np.stack([s for _, s, _ in items]))
        for (start, _, last), sep in zip(items, out):
            yield ola.add(start, sep, last, seg.n_samples if last else None)

    for block in blocks:
        for item in seg.feed(block):
            batch.append(item)
            if len(batch) >= batch_size:
                yield from run(batch)
                batch = []
    batch.extend(seg.finish())
    if batch:
        yield from run(batch)


def separate_array(waveform: np.ndarray, separate_fn: SeparateFn, segment: int, overlap: int,
                   batch_size: int = 1) -> np.ndarray:
    """In-memory convenience: ``(n_samples, C)`` -> ``(n_sources, n_samples, C)``."""
    parts = list(separate_blocks([waveform], separate_fn, segment, overlap, waveform.shape[1], batch_size))
    return np.concatenate(parts, axis=1)
