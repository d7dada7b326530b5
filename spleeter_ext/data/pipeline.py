"""Streaming tf.data pipelines: random augmented training segments and fixed validation excerpts.

Unlike Spleeter's ``DatasetBuilder`` (fixed chunk positions, 8-bit quantised spectrograms cached on disk,
pre-mixed mixtures, augmentation switched off), every training example here is decoded on the fly
from a random position, augmented, and re-mixed:

* example ``k`` (``k = step * batch_size + i``, ``batch_size`` being the global batch) is a pure function
  of ``(seed, k)``. The draws come from ``numpy.random.default_rng([seed, k, attempt])``, so the stream is
  reproducible with any number of parallel decoders, ``start_step`` resumes it exactly where a killed
  run stopped, and ``shard`` gives each of several workers its own examples of every global batch;
* draws per example: one track (or, with ``remix``, one track per source), a segment start (one shared
  start, or one per source with ``remix``), a gain per source in ``[low, high]`` and a left/right swap per
  source with probability 1/2. With ``skip_silent`` an example whose targets are all below -60 dBFS RMS,
  or whose mixture is, is drawn again from ``(seed, k, attempt + 1)``;
* **the mixture is the sum of the augmented sources** (never the file's own mixture);
* only the segment is decoded (``spleeter_ext.audio.io.read`` with ``offset``/``duration``; the streams
  of one ``.stem.mp4`` that an example needs at one position in one pass with ``read_streams``), inside a
  parallel ``tf.data`` map over example indices. Small datasets (decoded size within ``cache_bytes``)
  are instead decoded whole once and kept in an in-RAM LRU cache; the choice depends only on the tracks
  and ``cache_bytes``, so a stream's values never depend on cache state.

Tensors (axis names): ``mixture`` is ``(batch, samples, channels)`` float32 and ``sources`` is
``(batch, samples, channels, sources)`` float32, sources in ``instruments`` order. Both datasets work
with ``tf.distribute.Strategy.experimental_distribute_dataset`` (the batch is the global batch).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ..config import AUGMENTATION_SCHEMA
from ..errors import AudioError, DatasetError, ParameterError
from ..log import logger
from .tracks import SourceRef, Track

#: Default budget of the in-RAM decoded-track cache (bytes): datasets whose decoded size fits are
#: decoded once; larger ones (MUSDB18: ~30 GB at 44.1 kHz stereo float32) are read by offset.
DEFAULT_CACHE_BYTES = 2 << 30
#: A segment is silent when its RMS is below this level (dB relative to full scale 1.0).
SILENCE_DBFS = -60.0
#: Draws tried per example before a silent one is accepted anyway (an all-silent dataset must not hang).
MAX_ATTEMPTS = 16


# ------------------------------------------------------------------------------------------------ augmentation
@dataclass(frozen=True)
class Augmentation:
    """Training augmentation settings (the config's ``augmentation`` section).

    ``remix``: each source from its own random track and position; ``gain``: ``(low, high)`` range of the
    uniform per-source gain; ``channel_swap``: reverse the channel order (left/right) of each source with
    probability 1/2; ``skip_silent``: redraw examples whose targets or mixture are silent.
    """

    remix: bool = False
    gain: Tuple[float, float] = (1.0, 1.0)
    channel_swap: bool = False
    skip_silent: bool = False

    @classmethod
    def from_config(cls, value: "dict | Augmentation | None") -> "Augmentation":
        """``None``: no augmentation at all. A dict: the config's ``augmentation`` section, its missing keys
        taking the config defaults (:data:`spleeter_ext.config.AUGMENTATION_SCHEMA`)."""
        if value is None:
            return cls()
        if isinstance(value, Augmentation):
            return value
        if not isinstance(value, dict):
            raise ParameterError(f"augmentation must be a dict or None, got {type(value).__name__}")
        unknown = sorted(set(value) - set(AUGMENTATION_SCHEMA))
        if unknown:
            raise ParameterError(f"unknown augmentation key(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(AUGMENTATION_SCHEMA)}")
        merged = {key: value.get(key, spec[1]) for key, spec in AUGMENTATION_SCHEMA.items()}
        gain = merged["gain"]
        if (not isinstance(gain, (list, tuple)) or len(gain) != 2
                or not all(isinstance(g, (int, float)) for g in gain) or not 0 <= gain[0] <= gain[1]):
            raise ParameterError(f"augmentation.gain must be [low, high] with 0 <= low <= high, got {gain!r}")
        return cls(remix=bool(merged["remix"]), gain=(float(gain[0]), float(gain[1])),
                   channel_swap=bool(merged["channel_swap"]), skip_silent=bool(merged["skip_silent"]))


class Plan(NamedTuple):
    """The random draws of one example; every tuple has one entry per source (``instruments`` order).

    ``tracks``: indices into the track list; ``starts``: segment start in samples at the model rate;
    ``gains``: linear gains; ``swaps``: channel order reversed; ``attempt``: the silent-skip redraw that
    produced it (0 for the first draw).
    """

    tracks: Tuple[int, ...]
    starts: Tuple[int, ...]
    gains: Tuple[float, ...]
    swaps: Tuple[bool, ...]
    attempt: int


class Example(NamedTuple):
    """One decoded example: ``mixture`` ``(samples, channels)``, ``sources`` ``(samples, channels, sources)``,
    both float32, and the ``plan`` that produced them."""

    mixture: np.ndarray
    sources: np.ndarray
    plan: Plan


# ------------------------------------------------------------------------------------------------ decoding
class DecodedCache:
    """Thread-safe LRU of whole decoded streams, bounded by their total size in bytes.

    A stream larger than the whole budget is returned without being stored.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._items: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
        self._lock = threading.Lock()
        self._loading: Dict[tuple, threading.Event] = {}

    def get(self, key: tuple, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The array cached under ``key``, calling ``load()`` once on a miss (concurrent misses wait for it)."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                pending = self._loading.get(key)
                if pending is None:
                    pending = self._loading[key] = threading.Event()
                    break
            pending.wait()
        try:
            value = load()
        finally:
            with self._lock:
                del self._loading[key]
            pending.set()
        with self._lock:
            if value.nbytes <= self.max_bytes and key not in self._items:
                self._items[key] = value
                self.nbytes += value.nbytes
                while self.nbytes > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self.nbytes -= old.nbytes
        return value


class Request(NamedTuple):
    """One segment to read: samples ``[start, start + n_samples)`` of ``instrument`` of ``track``."""

    track: Track
    instrument: str
    start: int
    n_samples: int


class SegmentReader:
    """Decodes ``(samples, channels)`` float32 segments of a track's sources at the model's rate.

    Reads by offset (only the segment is decoded) unless given a :class:`DecodedCache`, in which case
    whole streams are decoded once and sliced. Reading by offset, :meth:`read_many` decodes the streams
    of one file that share a segment (the stems of a MUSDB ``.stem.mp4``) in one pass with one open
    (:func:`spleeter_ext.audio.io.read_streams`); the samples are the same as one read per stream.
    """

    def __init__(self, sample_rate: int, n_channels: int, cache: Optional[DecodedCache] = None):
        self.sample_rate = int(sample_rate)
        self.n_channels = int(n_channels)
        self.cache = cache

    def read(self, track: Track, instrument: str, start: int, n_samples: int) -> np.ndarray:
        """Samples ``[start, start + n_samples)`` of ``instrument`` (the sum of its streams for a derived
        target): ``(samples, channels)`` float32 with at most ``n_samples`` rows (fewer past the end of
        the track). It may be a view of the cache: do not modify it.

        Raises:
            DatasetError: a file cannot be decoded (names the track and file).
        """
        return self.read_many([Request(track, instrument, start, n_samples)])[0]

    def read_many(self, requests: Sequence[Request]) -> List[np.ndarray]:
        """:meth:`read` of every request, in order. Streams needed by several requests at the same segment
        are decoded once, and the streams of one file at one segment are decoded together. The arrays may
        be views of the cache or shared between requests: do not modify them."""
        segments: Dict[Tuple[SourceRef, int, int], np.ndarray] = {}
        if self.cache is None:
            # (path, start, n_samples) -> (a track naming it in errors, its distinct streams in first-use order)
            files: Dict[Tuple[str, int, int], Tuple[Track, List[SourceRef]]] = {}
            for request in requests:
                for ref in request.track.refs(request.instrument):
                    _, refs = files.setdefault((ref.path, request.start, request.n_samples), (request.track, []))
                    if ref not in refs:
                        refs.append(ref)
            for (_, start, n_samples), (track, refs) in files.items():
                for ref, x in zip(refs, self._read_refs(track, refs, start, n_samples)):
                    segments[ref, start, n_samples] = x
        out = []
        for request in requests:
            track, start, n_samples = request.track, request.start, request.n_samples
            if self.cache is None:
                parts = [segments[ref, start, n_samples] for ref in track.refs(request.instrument)]
            else:
                parts = [self._cached(track, ref, start, n_samples) for ref in track.refs(request.instrument)]
            if len(parts) == 1:
                out.append(parts[0])
                continue
            total = np.zeros((n_samples, self.n_channels), np.float32)
            for x in parts:
                total[:len(x)] += x
            out.append(total)
        return out

    def _failure(self, track: Track, refs: Sequence[SourceRef], start: int, exc: AudioError) -> DatasetError:
        streams = ("streams " if len(refs) > 1 else "stream ") + ", ".join(str(ref.stream) for ref in refs)
        return DatasetError(f"track '{track.name}': cannot decode {refs[0].path} ({streams}) at "
                            f"{start / self.sample_rate:.2f}s: {exc}; replace the file or remove the track")

    def _read_refs(self, track: Track, refs: Sequence[SourceRef], start: int, n_samples: int) -> List[np.ndarray]:
        """Segments of ``refs`` (streams of one file) decoded by offset: one read, whatever their number."""
        from ..audio import io as audio_io

        offset, duration = start / self.sample_rate, n_samples / self.sample_rate
        try:
            if len(refs) == 1:
                xs = [audio_io.read(refs[0].path, offset=offset, duration=duration, sample_rate=self.sample_rate,
                                    n_channels=self.n_channels, stream=refs[0].stream)[0]]
            else:
                xs, _ = audio_io.read_streams(refs[0].path, [ref.stream for ref in refs], offset=offset,
                                              duration=duration, sample_rate=self.sample_rate,
                                              n_channels=self.n_channels)
        except AudioError as exc:
            raise self._failure(track, refs, start, exc) from None
        return [np.asarray(x[:n_samples], dtype=np.float32) for x in xs]

    def _cached(self, track: Track, ref: SourceRef, start: int, n_samples: int) -> np.ndarray:
        from ..audio import io as audio_io

        try:
            full = self.cache.get((ref.path, ref.stream, self.sample_rate, self.n_channels),
                                  lambda: self._decode(audio_io, ref))
        except AudioError as exc:
            raise self._failure(track, [ref], start, exc) from None
        return full[start:start + n_samples]

    def _decode(self, audio_io, ref: SourceRef) -> np.ndarray:
        x, _ = audio_io.read(ref.path, sample_rate=self.sample_rate, n_channels=self.n_channels, stream=ref.stream)
        x = np.ascontiguousarray(x, dtype=np.float32)
        x.flags.writeable = False  # shared by every example that reads this stream
        return x


def _power(x: np.ndarray) -> float:
    """Mean square of a contiguous float32 array (BLAS dot: no float64 temporary)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    return float(np.dot(flat, flat)) / flat.size if flat.size else 0.0


def _silent(mixture_power: float, source_powers: Sequence[float]) -> bool:
    """The ``skip_silent`` rule on mean squares: the mixture, or every source, below :data:`SILENCE_DBFS`."""
    threshold = 10.0 ** (SILENCE_DBFS / 10.0)
    return mixture_power < threshold or max(source_powers) < threshold


def mix(sources: Sequence[np.ndarray]) -> np.ndarray:
    """The mixture: ``sources[0] + sources[1] + ...`` in float32, summed in this order."""
    total = np.array(sources[0], dtype=np.float32, copy=True)
    for x in sources[1:]:
        total += x
    return total


# ------------------------------------------------------------------------------------------------ examples
class ExampleSampler:
    """Example ``k`` of a training stream as a pure function of ``(seed, k)``.

    Args:
        tracks: training tracks (durations are probed here if still unknown).
        instruments: sources, in output order.
        sample_rate, n_channels: model audio format (files are resampled / up- or down-mixed).
        segment_samples: samples per example.
        seed: non-negative stream seed.
        augmentation: see :class:`Augmentation` (``None``: none).
        cache_bytes: budget of the decoded-track cache; the tracks are decoded whole and cached only
            when their estimated decoded size fits (0 disables it: always read by offset).
    """

    def __init__(self, tracks: Sequence[Track], instruments: Sequence[str], sample_rate: int, n_channels: int,
                 segment_samples: int, seed: int, augmentation: "dict | Augmentation | None" = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        _check_common(tracks, instruments, sample_rate, n_channels)
        if int(segment_samples) <= 0:
            raise ParameterError(f"segment_samples must be positive, got {segment_samples}")
        if int(seed) < 0:
            raise ParameterError(f"seed must be non-negative, got {seed}")
        self.tracks = list(tracks)
        self.instruments = list(instruments)
        self.sample_rate, self.n_channels = int(sample_rate), int(n_channels)
        self.segment_samples, self.seed = int(segment_samples), int(seed)
        self.augmentation = Augmentation.from_config(augmentation)
        self.lengths = np.array([int(t.duration * self.sample_rate) for t in self.tracks], dtype=np.int64)
        short = [t.name for t, n in zip(self.tracks, self.lengths) if n < self.segment_samples]
        if short:
            logger.warning("%d track(s) shorter than the %.2f s segment are zero-padded: %s", len(short),
                           self.segment_samples / self.sample_rate,
                           ", ".join(short[:5]) + (" ..." if len(short) > 5 else ""))
        decoded = _decoded_bytes(self.tracks, self.instruments, self.sample_rate, self.n_channels)
        cache = DecodedCache(cache_bytes) if 0 < decoded <= cache_bytes else None
        logger.info("training stream: %d tracks, %.2f s segments, %s", len(self.tracks),
                    self.segment_samples / self.sample_rate,
                    f"decoded once into RAM ({decoded / 2**20:.0f} MiB)" if cache
                    else f"read by offset ({decoded / 2**30:.1f} GiB decoded exceeds the "
                         f"{cache_bytes / 2**30:.1f} GiB cache)")
        self.reader = SegmentReader(self.sample_rate, self.n_channels, cache)

    def plan(self, k: int, attempt: int = 0) -> Plan:
        """The random draws of example ``k`` at redraw ``attempt`` (no audio is read).

        Draw order (fixed, whatever the flags): track index(es), start fraction(s), gains, swap coins.
        """
        n_src = len(self.instruments)
        aug = self.augmentation
        rng = np.random.default_rng([self.seed, int(k), int(attempt)])
        n_draws = n_src if aug.remix else 1
        tracks = rng.integers(0, len(self.tracks), size=n_draws)
        fractions = rng.random(n_draws)
        gains = rng.uniform(aug.gain[0], aug.gain[1], size=n_src)
        coins = rng.random(n_src) < 0.5
        if not aug.remix:
            tracks, fractions = np.repeat(tracks, n_src), np.repeat(fractions, n_src)
        room = np.maximum(self.lengths[tracks] - self.segment_samples + 1, 1)
        starts = np.minimum((fractions * room).astype(np.int64), room - 1)
        swaps = coins if aug.channel_swap and self.n_channels > 1 else np.zeros(n_src, bool)
        return Plan(tuple(int(t) for t in tracks), tuple(int(s) for s in starts),
                    tuple(float(g) for g in gains), tuple(bool(s) for s in swaps), int(attempt))

    def render(self, plan: Plan) -> Tuple[np.ndarray, np.ndarray]:
        """Decode and augment the sources of ``plan``: ``(mixture (samples, channels),
        sources (samples, channels, sources))``, mixture = sum of the augmented sources."""
        mixture, sources, _ = self._render(plan)
        return mixture, sources

    def _render(self, plan: Plan) -> Tuple[np.ndarray, np.ndarray, List[float]]:
        """``render`` plus the mean square of each augmented source (for the silence test)."""
        n_samples, n_channels = self.segment_samples, self.n_channels
        sources = np.zeros((n_samples, n_channels, len(self.instruments)), np.float32)  # zeros: padding
        powers = []
        segments = self.reader.read_many([Request(self.tracks[t], inst, start, n_samples)
                                          for inst, t, start in zip(self.instruments, plan.tracks, plan.starts)])
        for i, (x, gain, swap) in enumerate(zip(segments, plan.gains, plan.swaps)):
            order = range(n_channels - 1, -1, -1) if swap else range(n_channels)
            for c_out, c_in in enumerate(order):
                np.multiply(x[:, c_in], np.float32(gain), out=sources[:len(x), c_out, i])
            powers.append(_power(x) * gain ** 2 * len(x) / n_samples)
        return mix([sources[..., i] for i in range(sources.shape[-1])]), sources, powers

    def example(self, k: int) -> Example:
        """Example ``k``: redrawn from ``(seed, k, attempt + 1)`` while silent when ``skip_silent`` is on."""
        attempts = MAX_ATTEMPTS if self.augmentation.skip_silent else 1
        for attempt in range(attempts):
            plan = self.plan(k, attempt)
            mixture, sources, powers = self._render(plan)
            if not (self.augmentation.skip_silent and _silent(_power(mixture), powers)):
                break
        else:
            logger.debug("example %d: still silent after %d draws; using it", k, attempts)
        return Example(mixture, sources, plan)

    @staticmethod
    def is_silent(mixture: np.ndarray, sources: np.ndarray) -> bool:
        """True when the mixture ``(samples, channels)``, or every source of ``sources``
        ``(samples, channels, sources)``, is below -60 dBFS RMS (the ``skip_silent`` rule)."""
        return _silent(_power(mixture), [_power(sources[..., i]) for i in range(sources.shape[-1])])

    def arrays(self, k) -> Tuple[np.ndarray, np.ndarray]:
        """``example(k)`` without the plan (the ``tf.numpy_function`` entry point)."""
        ex = self.example(int(k))
        return ex.mixture, ex.sources


def _check_common(tracks, instruments, sample_rate, n_channels) -> None:
    if not tracks:
        raise DatasetError("no tracks given to the data pipeline; check the dataset root and subset")
    if not instruments:
        raise ParameterError("instruments must be a non-empty list of names")
    if int(sample_rate) <= 0 or int(n_channels) <= 0:
        raise ParameterError(f"sample_rate and n_channels must be positive, got {sample_rate}, {n_channels}")
    for track in tracks:
        for inst in instruments:
            track.refs(inst)
        if not track.duration > 0:  # probes the headers if unknown: unreadable files fail here, not in tf.data
            raise DatasetError(f"track '{track.name}': duration {track.duration} s; fix the CSV's duration column "
                               "or remove the track")


def _decoded_bytes(tracks: Sequence[Track], instruments: Sequence[str], sample_rate: int, n_channels: int) -> int:
    """Estimated float32 size of every stream the instruments need, decoded at the model's format."""
    refs = {}
    for track in tracks:
        for inst in instruments:
            for ref in track.refs(inst):
                refs[ref] = track.duration
    return int(sum(d * sample_rate * n_channels * 4 for d in refs.values()))


def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    # Datasets handed to experimental_distribute_dataset are sharded by element (there are no files); the
    # training stream is instead sharded by example index (training_dataset's ``shard``).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _map_examples(indices: tf.data.Dataset, function: Callable, n_samples: int, n_channels: int, n_sources: int,
                  num_parallel_calls) -> tf.data.Dataset:
    def load(k):
        mixture, sources = tf.numpy_function(function, [k], [tf.float32, tf.float32], name="decode_example")
        mixture.set_shape((n_samples, n_channels))
        sources.set_shape((n_samples, n_channels, n_sources))
        return mixture, sources

    return indices.map(load, num_parallel_calls=num_parallel_calls, deterministic=True)


# ------------------------------------------------------------------------------------------------ datasets
def training_dataset(tracks: Sequence[Track], instruments: Sequence[str], sample_rate: int, n_channels: int,
                     segment_samples: int, batch_size: int, seed: int,
                     augmentation: "dict | Augmentation | None" = None, start_step: int = 0,
                     num_parallel_calls=tf.data.AUTOTUNE, cache_bytes: int = DEFAULT_CACHE_BYTES,
                     shard: Tuple[int, int] = (0, 1), replica_batch: Optional[int] = None) -> tf.data.Dataset:
    """The infinite, deterministic training stream (or one worker's shard of it).

    Args:
        tracks: training tracks (:func:`spleeter_ext.data.tracks.discover`).
        instruments: sources in output order (the config's ``instrument_list``).
        sample_rate, n_channels: model audio format.
        segment_samples: samples per example (waveform models: ``segment_seconds * sample_rate``;
            2D models: derived from ``T`` by the caller).
        batch_size: the global batch size.
        seed: stream seed (the config's ``random_seed``).
        augmentation: the config's ``augmentation`` dict (missing keys: config defaults), an
            :class:`Augmentation`, or None for none.
        start_step: first step of the stream: batch ``0`` of the result is batch ``start_step`` of the
            stream started at 0 (resume after a restart).
        num_parallel_calls: parallel decoders (``tf.data.AUTOTUNE`` by default); values are the same
            for any setting.
        cache_bytes: decoded-track cache budget (see :class:`ExampleSampler`).
        shard: ``(index, count)``: this input pipeline's part of every global batch, for ``count`` workers
            that each read only their own examples. Pipeline ``index`` reads examples
            ``k = step * batch_size + index * share + j`` for ``j < share = batch_size // count``, so the
            pipelines together read exactly the global batches of the unsharded stream, each example once.
        replica_batch: batch size of the result (default: the shard's ``share`` of the global batch); a
            divisor of ``share``, e.g. the per-replica batch when a worker feeds several devices.

    Returns:
        A dataset of ``(mixture (batch, samples, channels), sources (batch, samples, channels, sources))``
        float32 batches, with a static batch dimension.
    """
    if int(batch_size) <= 0:
        raise ParameterError(f"batch_size must be positive, got {batch_size}")
    if int(start_step) < 0:
        raise ParameterError(f"start_step must be non-negative, got {start_step}")
    index, count = (int(v) for v in shard)
    if count < 1 or not 0 <= index < count or int(batch_size) % count:
        raise ParameterError(f"shard {shard!r}: need 0 <= index < count and batch_size ({batch_size}) a multiple "
                             "of count (the number of workers)")
    share = int(batch_size) // count
    out_batch = int(replica_batch or share)
    if out_batch <= 0 or share % out_batch:
        raise ParameterError(f"replica_batch {replica_batch} must divide the shard's {share} examples per step")
    sampler = ExampleSampler(tracks, instruments, sample_rate, n_channels, segment_samples, seed, augmentation,
                             cache_bytes)
    position = tf.data.Dataset.counter(start=int(start_step) * share, dtype=tf.int64)
    indices = position if count == 1 else position.map(
        lambda m: m // share * int(batch_size) + index * share + m % share)
    dataset = _map_examples(indices, sampler.arrays, sampler.segment_samples, sampler.n_channels,
                            len(sampler.instruments), num_parallel_calls)
    return dataset.batch(out_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(_options())


def validation_excerpt(track: Track, instruments: Sequence[str], reader: SegmentReader,
                       n_samples: int) -> Tuple[np.ndarray, np.ndarray]:
    """The central ``n_samples`` of ``track`` (zero-padded when shorter): ``(mixture (samples, channels),
    sources (samples, channels, sources))``, mixture = sum of the sources, no augmentation."""
    length = int(track.duration * reader.sample_rate)
    start = max(0, (length - n_samples) // 2)
    sources = np.zeros((n_samples, reader.n_channels, len(instruments)), np.float32)  # zeros: padding
    for i, x in enumerate(reader.read_many([Request(track, inst, start, n_samples) for inst in instruments])):
        sources[:len(x), :, i] = x
    return mix([sources[..., i] for i in range(len(instruments))]), sources


def validation_excerpts(tracks: Sequence[Track], instruments: Sequence[str], sample_rate: int, n_channels: int,
                        seconds: float) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The central ``seconds`` of every track as NumPy ``(mixture (samples, channels), sources (samples,
    channels, sources))`` pairs (what the learning curves are scored on)."""
    _check_common(tracks, instruments, sample_rate, n_channels)
    n_samples = int(round(float(seconds) * sample_rate))
    if n_samples <= 0:
        raise ParameterError(f"validation excerpt must be positive, got {seconds} s")
    reader = SegmentReader(sample_rate, n_channels)
    return [validation_excerpt(track, list(instruments), reader, n_samples) for track in tracks]


def validation_dataset(tracks: Sequence[Track], instruments: Sequence[str], sample_rate: int, n_channels: int,
                       seconds: float, batch_size: int, num_parallel_calls=tf.data.AUTOTUNE,
                       segment_samples: Optional[int] = None, cache: bool = True) -> tf.data.Dataset:
    """The finite, deterministic validation set: the central excerpt of each track, in track order.

    Args:
        tracks: validation tracks.
        instruments, sample_rate, n_channels: as for :func:`training_dataset`.
        seconds: excerpt length (the config's ``validation_seconds``); tracks shorter are zero-padded.
        batch_size: batch size (the last batch may be smaller).
        num_parallel_calls: parallel decoders.
        segment_samples: excerpt length in samples, overriding ``seconds`` (e.g. a 2D model's T frames).
        cache: keep the decoded excerpts in RAM after the first full pass (tracks x sources x samples x
            channels x 4 bytes), so that evaluating at every checkpoint decodes once.

    Returns:
        A dataset of ``(mixture (batch, samples, channels), sources (batch, samples, channels, sources))``.
    """
    _check_common(tracks, instruments, sample_rate, n_channels)
    n_samples = int(segment_samples) if segment_samples is not None else int(round(float(seconds) * sample_rate))
    if n_samples <= 0:
        raise ParameterError(f"validation excerpt must be positive, got {n_samples} samples")
    if int(batch_size) <= 0:
        raise ParameterError(f"batch_size must be positive, got {batch_size}")
    tracks, instruments = list(tracks), list(instruments)
    reader = SegmentReader(sample_rate, n_channels)

    def load(i):
        return validation_excerpt(tracks[int(i)], instruments, reader, n_samples)

    dataset = _map_examples(tf.data.Dataset.range(len(tracks)), load, n_samples, int(n_channels), len(instruments),
                            num_parallel_calls)
    if cache:
        dataset = dataset.cache()
    return dataset.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE).with_options(_options())


def pipeline_throughput(tracks: Sequence[Track], instruments: Sequence[str], sample_rate: int, n_channels: int,
                        segment_samples: int, batch_size: int = 8, seed: int = 0,
                        augmentation: "dict | Augmentation | None" = None, n_batches: int = 20,
                        warmup_batches: int = 2, num_parallel_calls=tf.data.AUTOTUNE,
                        cache_bytes: int = DEFAULT_CACHE_BYTES) -> float:
    """Examples per second delivered by :func:`training_dataset` (after ``warmup_batches`` batches,
    which also fill the decoded-track cache when it applies), for benchmarks."""
    dataset = training_dataset(tracks, instruments, sample_rate, n_channels, segment_samples, batch_size, seed,
                               augmentation, num_parallel_calls=num_parallel_calls, cache_bytes=cache_bytes)
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    begin = time.perf_counter()
    for _ in range(n_batches):
        next(iterator)
    return n_batches * batch_size / (time.perf_counter() - begin)
