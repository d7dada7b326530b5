"""Chunked inference outside the model: an input of any length cut into segments, each separated alone,
put back together (:class:`Chunking` says how) in memory bounded by a few segments (:class:`Stream`)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

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


@dataclass(frozen=True)
class Chunking:
    """How an input is cut: ``segment`` samples per model call, ``overlap`` shared with the next segment.

    Two ways of putting segments back. ``crossfade`` (any model): neighbours' shared samples are blended
    with complementary ramps. ``sum`` (spectrogram models whose masks are patch-local, :meth:`grid`):
    segments are windows of the whole input's STFT frame grid holding whole T-frame patches, after
    ``n_fft`` zeros (Spleeter's first frame); their inverse STFTs share ``n_fft - hop`` samples, whose sum
    is the whole input's inverse STFT, so the stems equal one pass over the whole input at any length.

    ``mode`` ``"crossfade"`` blends shared samples and zero-pads the last segment to ``segment``;
    ``"sum"`` adds them, and cuts the last segment to ``overlap`` plus the fewest multiples of ``unit``
    (one patch of frames) that cover the rest. ``lead`` zeros precede the input and are dropped from the
    output (``sum``: the STFT's first frame; a shift adds its delay).
    """

    segment: int
    overlap: int
    mode: str = "crossfade"
    lead: int = 0
    unit: int = 0

    def __post_init__(self):
        if self.mode not in ("crossfade", "sum"):
            raise ParameterError(f"chunking mode must be 'crossfade' or 'sum', got {self.mode!r}")
        if not 0 <= self.overlap < self.segment:
            raise ParameterError(f"overlap must be in [0, segment), got {self.overlap} of {self.segment}")
        if self.mode == "sum" and (self.unit <= 0 or (self.segment - self.overlap) % self.unit):
            raise ParameterError(f"sum chunking needs a stride that is a multiple of unit, got segment "
                                 f"{self.segment}, overlap {self.overlap}, unit {self.unit}")

    @classmethod
    def grid(cls, n_fft: int, hop: int, T: int, n_patches: int) -> "Chunking":
        """Windows of ``n_patches`` T-frame patches on the frame grid of a ``n_fft``/``hop`` STFT whose first
        frame ends at the first input sample (Spleeter's ``n_fft`` zeros before the input)."""
        unit = T * hop
        return cls(n_patches * unit + n_fft - hop, n_fft - hop, "sum", lead=n_fft, unit=unit)

    @property
    def stride(self) -> int:
        return self.segment - self.overlap

    def reach(self, length: int) -> int:
        """Samples of a segment of ``length`` that are final once it is added: all of them when crossfading;
        all but the shared tail when summing (the tail also needs the next segment's frames)."""
        return length if self.mode == "crossfade" else length - self.overlap

    def last_segment(self, remaining: int) -> int:
        """Length of the last segment when ``remaining`` samples (lead included) are left from its start."""
        if self.mode == "crossfade":
            return self.segment
        # Frames start every hop; a frame that starts before the end is needed: ceil(remaining / unit) patches.
        return min(self.segment, self.overlap + max(1, -(-remaining // self.unit)) * self.unit)

    def shifted(self, delay: int) -> "Chunking":
        """The same chunking of the input delayed by ``delay`` samples."""
        return replace(self, lead=self.lead + int(delay))


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
    """Segments needed to cover ``n_samples`` (crossfade chunking)."""
    if n_samples <= segment:
        return 1
    stride = segment - overlap
    return 1 + -(-(n_samples - segment) // stride)


class Segmenter:
    """Blocks in, ``(start, segment (length, n_channels), is_last)`` out (``start`` counts the lead).

    Call :meth:`feed` for each decoded block and :meth:`finish` at the end of the input; both return the
    segments that became complete. Only the samples a future segment needs are kept.
    """

    def __init__(self, chunking: Chunking, n_channels: int):
        self.chunking, self.n_channels = chunking, n_channels
        self.segment, self.overlap, self.stride = chunking.segment, chunking.overlap, chunking.stride
        lead = np.zeros((chunking.lead, n_channels), np.float32)
        self._buf = np.zeros((0, n_channels), np.float32)
        self._buf_start = 0  # absolute index of _buf[0]
        self._parts: List[np.ndarray] = [lead] if len(lead) else []  # joined only when a segment is due
        self._held = len(lead)  # samples in _buf and _parts
        self._next = 0  # start of the next segment
        self.n_samples = 0  # input samples fed (without the lead)
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
        if self.n_samples == 0:
            return out
        end = self.chunking.lead + self.n_samples
        if self._pending is not None:
            start, seg = self._pending
            self._pending = None
            last = start + self.chunking.reach(len(seg)) >= end
            out.append((start, seg, last))
            if last:
                return out
        # The rest, shorter than a segment, zero-padded; summing may need one more full segment before the last.
        self._join()
        while True:
            i = self._next - self._buf_start
            tail = self._buf[i: i + self.segment]
            seg = np.zeros((self.chunking.last_segment(end - self._next), self.n_channels), np.float32)
            seg[: len(tail)] = tail[: len(seg)]
            last = self._next + self.chunking.reach(len(seg)) >= end
            out.append((self._next, seg, last))
            if last:
                return out
            self._next += self.stride


class OverlapAdd:
    """Separated segments in (in order), finished output blocks ``(n_sources, n, n_channels)`` out.

    Only the ``overlap`` samples shared by neighbours are computed (crossfade: a weighted sum over summed
    weights, in float64; sum: their sum); the rest of a segment is passed on as it is. The first ``lead``
    samples are dropped.
    """

    def __init__(self, chunking: Chunking):
        self.chunking = chunking
        self.segment, self.overlap, self.stride = chunking.segment, chunking.overlap, chunking.stride
        self._tail: Optional[np.ndarray] = None  # the previous segment's last `overlap` samples
        self._emitted = 0
        self._drop = chunking.lead
        ramp = segment_weights(self.segment, self.overlap, fade_in=True, fade_out=False)[:self.overlap]
        self._fade_in, self._fade_out = ramp, ramp[::-1]

    def add(self, start: int, separated: np.ndarray, is_last: bool, n_samples: Optional[int] = None) -> np.ndarray:
        """Add one separated segment ``(n_sources, length, n_channels)``; return the samples that are final.
        ``n_samples`` (the input's true length, lead included) is required with the last segment, to crop
        the zero-padded tail."""
        if start != self._emitted:
            raise ParameterError(f"segments must arrive in order: expected start {self._emitted}, got {start}")
        sep = np.asarray(separated, np.float32)
        if self._tail is not None:
            k = self.overlap
            if not sep.flags.writeable:
                sep = sep.copy()
            if self.chunking.mode == "sum":
                sep[:, :k] += self._tail
            else:
                a, b = self._fade_out[None, :, None], self._fade_in[None, :, None]
                sep[:, :k] = (self._tail * a + sep[:, :k].astype(np.float64) * b) / (a + b)
            self._tail = None
        if is_last:
            end = (n_samples - start) if n_samples is not None else sep.shape[1]
            out = sep[:, :end]
        else:
            if self.overlap:
                tail = sep[:, self.stride:]
                self._tail = tail.copy() if self.chunking.mode == "sum" else tail.astype(np.float64)
            out = sep[:, : self.stride]
        self._emitted += out.shape[1]
        if self._drop:
            cut = min(self._drop, out.shape[1])
            self._drop -= cut
            out = out[:, cut:]
        return out


class Job(NamedTuple):
    """One segment to separate: ``part`` (which shifted copy of the input), ``start``, ``segment``, ``last``."""

    part: int
    start: int
    segment: np.ndarray
    last: bool


class _Mean:
    """Output blocks of several streams in, their element-wise mean out, as far as every stream has reached."""

    def __init__(self, n: int):
        self.pending: List[List[np.ndarray]] = [[] for _ in range(n)]
        self.held = [0] * n

    def add(self, k: int, block: np.ndarray) -> Optional[np.ndarray]:
        if len(self.pending) == 1:
            return block
        if block.shape[1]:
            self.pending[k].append(block)
            self.held[k] += block.shape[1]
        m = min(self.held)
        if not m:
            return None
        total = None
        for k2, blocks in enumerate(self.pending):
            joined = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
            head, rest = joined[:, :m], joined[:, m:]
            total = head.astype(np.float64) if total is None else total + head
            self.pending[k2] = [rest] if rest.shape[1] else []
            self.held[k2] -= m
        return (total / len(self.pending)).astype(np.float32)


class Stream:
    """One input through a model, as a stream: :meth:`feed` blocks (and :meth:`finish`) to get the
    :class:`Job` s to separate; hand each separated job back, in order, to :meth:`put`, which returns the
    output samples ``(n_sources, n, n_channels)`` that became final (possibly none).

    ``delays`` (samples, one separation per delay) are Demucs-style shifts: each copy of the input is
    delayed by its delay, separated, realigned, and the copies' outputs are averaged.
    """

    def __init__(self, chunking: Chunking, n_channels: int, delays: Sequence[int] = (0,)):
        delays = list(delays) or [0]
        self.segmenters = [Segmenter(chunking.shifted(d), n_channels) for d in delays]
        self.adders = [OverlapAdd(chunking.shifted(d)) for d in delays]
        self._mean = _Mean(len(delays))

    @property
    def n_samples(self) -> int:
        """Input samples fed so far."""
        return self.segmenters[0].n_samples

    def feed(self, block: np.ndarray) -> List[Job]:
        return [Job(k, *item) for k, seg in enumerate(self.segmenters) for item in seg.feed(block)]

    def finish(self) -> List[Job]:
        return [Job(k, *item) for k, seg in enumerate(self.segmenters) for item in seg.finish()]

    def put(self, job: Job, separated: np.ndarray) -> Optional[np.ndarray]:
        seg = self.segmenters[job.part]
        total = seg.chunking.lead + seg.n_samples if job.last else None
        return self._mean.add(job.part, self.adders[job.part].add(job.start, separated, job.last, total))


def batches(jobs: List[Job], batch_size: int, final: bool = False) -> Tuple[List[List[Job]], List[Job]]:
    """Cut ``jobs`` into batches of at most ``batch_size`` segments of one length; returns ``(batches, rest)``,
    the rest being a last incomplete batch kept for later (none when ``final``)."""
    out: List[List[Job]] = []
    i = 0
    while i < len(jobs):
        j = i + 1
        while j < len(jobs) and j - i < batch_size and len(jobs[j].segment) == len(jobs[i].segment):
            j += 1
        if j - i < batch_size and j == len(jobs) and not final:
            break
        out.append(jobs[i:j])
        i = j
    return out, jobs[i:]


SeparateFn = Callable[[np.ndarray], np.ndarray]


def separate_blocks(blocks: Iterable[np.ndarray], separate_fn: SeparateFn, segment: "int | Chunking",
                    overlap: int = 0, n_channels: int = 2, batch_size: int = 1,
                    delays: Sequence[int] = (0,)) -> Iterator[np.ndarray]:
    """Stream ``blocks`` through ``separate_fn`` (``(n_seg, length, C) -> (n_seg, S, length, C)``).

    ``segment`` is a :class:`Chunking` (``overlap`` unused) or a crossfade segment length. Yields finished
    output blocks ``(n_sources, n, n_channels)`` whose lengths add up to the input's.
    """
    chunking = segment if isinstance(segment, Chunking) else Chunking(int(segment), int(overlap))
    stream = Stream(chunking, n_channels, delays)
    pending: List[Job] = []

    def run(items: List[Job]) -> Iterator[np.ndarray]:
        out = separate_fn(np.stack([job.segment for job in items]))
        for job, sep in zip(items, out):
            block = stream.put(job, sep)
            if block is not None and block.shape[1]:
                yield block

    for block in blocks:
        ready, pending = batches(pending + stream.feed(block), batch_size)
        for items in ready:
            yield from run(items)
    ready, _ = batches(pending + stream.finish(), batch_size, final=True)
    for items in ready:
        yield from run(items)


def separate_array(waveform: np.ndarray, separate_fn: SeparateFn, segment: "int | Chunking", overlap: int = 0,
                   batch_size: int = 1, delays: Sequence[int] = (0,)) -> np.ndarray:
    """In-memory convenience: ``(n_samples, C)`` -> ``(n_sources, n_samples, C)``."""
    parts = list(separate_blocks([waveform], separate_fn, segment, overlap, waveform.shape[1], batch_size, delays))
    return np.concatenate(parts, axis=1)
