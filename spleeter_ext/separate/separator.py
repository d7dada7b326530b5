"""The separator: a model built and loaded once, files streamed through it segment by segment (decoding,
separation and encoding overlap in threads; memory is bounded by a few segments whatever the length)."""
from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import audio
from ..config import DEFAULT_OVERLAP, load_config
from ..errors import AudioError, ParameterError, SpleeterExtError
from ..log import Progress, logger
from . import apply
from .naming import DEFAULT_FORMAT, output_paths
from .output import StemSet

BLOCK_SECONDS = 5.0
CHUNKINGS = ("auto", "grid", "crossfade")
DEVICES = ("auto", "cpu", "gpu")
MASK_EXTENSIONS = ("zeros", "average")
#: Largest delay of Demucs-style shifts (Demucs' own: half a second).
SHIFT_SECONDS = 0.5
_END = object()


@dataclass
class FileResult:
    """What happened to one input: ``ok``, the written stems, or the one-line ``error``."""

    path: str
    ok: bool
    outputs: Dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None
    seconds: float = 0.0


class Separator:
    """Separate waveforms or audio files with a model loaded once.

    Args:
        params_descriptor: ``spleeter:2stems|4stems|5stems``, a JSON config path, a model directory
            written by ``spleeter-ext train`` or a preset name (see :func:`spleeter_ext.config.load_config`).
        MWF: use the multichannel Wiener filter (spectrogram models).
        segment: segment length in seconds for chunked separation (default: the config's
            ``inference.segment_seconds`` or the estimator's choice, rounded to whole patches).
        overlap: fraction of a segment shared with its neighbour (default ``inference.overlap``).
        batch_size: segments per model call.
        threads: CPU threads for TensorFlow ops (default: all cores).
        fft: STFT implementation of spectrogram models, ``"scipy"`` (default, several times faster on
            CPU) or ``"tensorflow"`` (the graph ops Spleeter itself runs); their stems agree within 5e-5
            (TensorFlow's float32 FFT is the less accurate one).
        chunking: ``"auto"`` (default): ``"grid"`` when the model allows it, else ``"crossfade"``. ``"grid"``
            cuts spectrogram models' inputs on the whole input's STFT patch grid, so the stems equal one pass
            over the whole input (Spleeter's) at any length; ``"crossfade"`` blends overlapping segments
            (``overlap``), which any model allows.
        stems: the stems to output, a subset of the model's instruments (a list or ``"vocals,drums"``);
            default: all of them.
        two_stems: output this instrument and ``no_<instrument>``, the sum of the other estimates (so the
            two add up to the mixture estimate), as Demucs' ``--two-stems``; any model.
        precision: ``"float32"`` (default; Spleeter's numbers) or ``"bf16"``: the network is built under Keras'
            ``mixed_bfloat16`` policy (weights stay float32, layers compute in bfloat16); STFT, inverse STFT
            and masks stay float32.
        jit_compile: run the network's calls XLA-compiled (the STFT around them is not).

    ``instruments`` are the model's stems, ``stems`` the ones written and returned.

    >>> sep = Separator("spleeter:4stems")
    >>> stems = sep.separate(waveform, sample_rate=44100)   # {stem: (n_samples, 2)}
    """

    def __init__(self, params_descriptor="spleeter:4stems", MWF: bool = False, segment: Optional[float] = None,
                 overlap: Optional[float] = None, batch_size: int = 1, threads: Optional[int] = None,
                 fft: str = "scipy", chunking: str = "auto", stems: "Optional[Sequence[str] | str]" = None,
                 two_stems: Optional[str] = None, shifts: int = 0, seed: int = 0,
                 mask_extension: Optional[str] = None, device: str = "auto", precision: str = "float32",
                 jit_compile: bool = False):
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, int(threads))))
            except RuntimeError:
                logger.debug("TensorFlow already initialised; --jobs ignored for thread counts")
        from ..models.estimators import build_estimator
        from ..models.precision import SEPARATION_PRECISIONS, check_precision, policy_scope
        from .weights import load_weights

        t0 = time.monotonic()
        self.config = load_config(params_descriptor)
        if MWF:
            self.config["MWF"] = True
        if mask_extension is not None:
            if mask_extension not in MASK_EXTENSIONS:
                raise ParameterError(f"mask_extension must be one of {', '.join(MASK_EXTENSIONS)}, got "
                                     f"{mask_extension!r}")
            self.config["mask_extension"] = mask_extension
        self.instruments: List[str] = list(self.config["instrument_list"])
        self._outputs = self._plan_outputs(stems, two_stems)
        self.stems: List[str] = [name for name, _ in self._outputs]
        if batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if isinstance(shifts, bool) or not isinstance(shifts, (int, np.integer)) or shifts < 0:
            raise ParameterError(f"shifts must be an integer >= 0, got {shifts!r}")
        self.shifts = int(shifts)
        if chunking not in CHUNKINGS:
            raise ParameterError(f"chunking must be one of {', '.join(CHUNKINGS)}, got {chunking!r}")
        inf = self.config.get("inference") or {}
        seconds = segment if segment is not None else inf.get("segment_seconds")
        if seconds is not None and seconds <= 0:
            raise ParameterError(f"segment must be positive seconds, got {seconds}")
        self.precision = check_precision(precision, SEPARATION_PRECISIONS)
        self.device, where = resolve_device(device)
        with tf.device(self.device), policy_scope(SEPARATION_PRECISIONS[self.precision]):
            self.estimator = build_estimator(self.config)
            self.estimator.use_fft(fft)
            self.estimator.use_xla(bool(jit_compile))
            self.checkpoint = load_weights(self.estimator, self.config)
        self.sample_rate: int = self.estimator.sample_rate
        self.n_channels: int = self.estimator.n_channels
        # Demucs' shifts: each separation sees the input delayed by 0-0.5 s (seeded), realigned and averaged.
        max_shift = int(SHIFT_SECONDS * self.sample_rate)
        self.delays: List[int] = [int(d) for d in np.random.default_rng(seed).integers(0, max_shift + 1,
                                                                                        self.shifts)] or [0]
        ov = overlap if overlap is not None else inf.get("overlap", DEFAULT_OVERLAP)
        self.chunking = self._plan_chunking(chunking, seconds, ov, overlap is not None)
        self.segment, self.overlap = self.chunking.segment, self.chunking.overlap
        self._overlap_fraction = float(ov)
        self._fns: Dict[int, object] = {}
        self._fns_lock = threading.Lock()
        self._function(self.segment)
        how = ("on the input's patch grid" if self.chunking.mode == "sum"
               else f"crossfade {100 * self.overlap / self.segment:.0f}%")
        shifted = f", {self.shifts} shifts" if self.shifts else ""
        logger.info("Model %s ready on %s in %.1f s (segment %.1f s, %s%s)", self.config["_source"], where,
                    time.monotonic() - t0, self.segment / self.sample_rate, how, shifted)

    def _plan_chunking(self, choice: str, seconds: Optional[float], overlap: float,
                       overlap_given: bool) -> apply.Chunking:
        """The patch grid when the model's masks are patch-local (stems equal one whole-input pass at any
        length), else overlapping segments with a crossfade."""
        est = self.estimator
        local = bool(getattr(est, "patch_local", False))
        if choice == "grid" and not local:
            raise ParameterError(f"{self.config['_source']}: chunking 'grid' needs a spectrogram model whose masks "
                                 f"are computed patch by patch; '{self.config['model']['type']}' is not; use "
                                 "'crossfade' or 'auto'")
        seg = est.segment_samples(seconds)
        if choice == "crossfade" or not local:
            return apply.Chunking(*apply.plan(seg, overlap))
        if overlap_given:
            logger.debug("overlap %.2f unused: segments follow the input's patch grid", overlap)
        patch = est.T * est.hop_length
        return apply.Chunking.grid(est.n_fft, est.hop_length, est.T, (seg + est.n_fft) // patch)

    def _plan_outputs(self, stems, two_stems: Optional[str]) -> List[Tuple[str, List[int]]]:
        """``(stem name, model instrument indices summed into it)`` per output stem."""
        names = self.instruments
        source = self.config["_source"]

        def index(name: str, option: str) -> int:
            if name not in names:
                raise ParameterError(f"{option}: '{name}' is not a stem of {source}; its stems are "
                                     f"{', '.join(names)}")
            return names.index(name)

        if stems is not None and two_stems is not None:
            raise ParameterError("stems and two_stems: choose one (two_stems already names the stems)")
        if two_stems is not None:
            k = index(two_stems, "two_stems")
            return [(two_stems, [k]), (f"no_{two_stems}", [j for j in range(len(names)) if j != k])]
        if stems is None:
            return [(name, [k]) for k, name in enumerate(names)]
        wanted = [x.strip() for x in stems.split(",")] if isinstance(stems, str) else [str(x) for x in stems]
        if not wanted or not all(wanted) or len(set(wanted)) != len(wanted):
            raise ParameterError(f"stems: got {stems!r}; name distinct stems separated by commas, e.g. "
                                 f"{','.join(names[:2])}")
        return [(name, [index(name, "stems")]) for name in wanted]

    def _select(self, block: np.ndarray) -> np.ndarray:
        """The output stems of separated sources ``(n_sources, n, C)`` -> ``(n_stems, n, C)``."""
        if len(self._outputs) == len(self.instruments) and all(
                idx == [k] for k, (_, idx) in enumerate(self._outputs)):
            return block
        return np.stack([block[idx[0]] if len(idx) == 1 else block[idx].sum(axis=0) for _, idx in self._outputs])

    # ------------------------------------------------------------------ in memory
    def _function(self, length: int):
        """The traced model for segments of ``length`` samples (one graph per length, built once)."""
        import tensorflow as tf

        with self._fns_lock:  # two model calls in flight may meet a new length (a short last window) at once
            if length not in self._fns:
                spec = tf.TensorSpec((None, length, self.n_channels), tf.float32)
                run = self.estimator.separate_windows if self.chunking.mode == "sum" else \
                    self.estimator.separate_segments
                fn = tf.function(lambda x: run(x, training=False), input_signature=[spec], autograph=False)
                with tf.device(self.device):
                    self._fns[length] = fn.get_concrete_function()
            return self._fns[length]

    def _run(self, segments: np.ndarray) -> np.ndarray:
        return self._function(segments.shape[1])(segments).numpy()

    def _chunking_for(self, n_samples: Optional[int]) -> apply.Chunking:
        """The chunking of an input of about ``n_samples`` (``None``: unknown). Crossfading a short input uses
        a shorter segment that holds it whole (no padding waste); the grid cuts its last segment itself."""
        ch = self.chunking
        if ch.mode == "sum" or n_samples is None or n_samples >= ch.segment:
            return ch
        seg = min(ch.segment, self.estimator.fit_segment(n_samples))
        return ch if seg == ch.segment else apply.Chunking(*apply.plan(seg, self._overlap_fraction))

    def separate(self, waveform: np.ndarray, sample_rate: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Separate an array ``(n_samples, n_channels)`` -> ``{stem: (n, n_channels)}`` at the
        model's sample rate (``self.sample_rate``). ``sample_rate`` (of the input) triggers resampling."""
        x = audio.as_channels_last(waveform, "waveform")
        if len(x) == 0:
            raise ParameterError("waveform has no samples")
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise ParameterError(f"waveform has NaN/Inf samples (first at index {i}); clean the input")
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            x = audio.resample(x, int(sample_rate), self.sample_rate)
        x = audio.to_channels(x, self.n_channels, name="waveform")
        ch = self._chunking_for(len(x))
        if ch.mode == "crossfade" and ch.segment != self.segment:
            ch = apply.Chunking(ch.segment, 0)  # a short input in one segment: nothing to blend
        out = self._select(apply.separate_array(x, self._run, ch, batch_size=self.batch_size, delays=self.delays))
        return {name: out[k] for k, name in enumerate(self.stems)}

    # ------------------------------------------------------------------ files
    def separate_to_file(self, audio_descriptor: str, destination: str, codec: str = "wav", bitrate: str = "128k",
                         filename_format: str = DEFAULT_FORMAT, offset: float = 0.0,
                         duration: Optional[float] = None, keep_input_rate: bool = False,
                         sample_format: Optional[str] = None, synchronous: bool = True,
                         allow_truncated: bool = False) -> FileResult:
        """Separate one file; raises :class:`AudioError` if it fails (see :meth:`separate_files`)."""
        result = self.separate_files([audio_descriptor], destination, codec, bitrate, filename_format, offset,
                                     duration, keep_input_rate, sample_format, progress=False,
                                     allow_truncated=allow_truncated)[0]
        if not result.ok:
            raise AudioError(result.error)
        return result

    def separate_files(self, files: Sequence[str], destination: str = "separated", codec: str = "wav",
                       bitrate: str = "128k", filename_format: str = DEFAULT_FORMAT, offset: float = 0.0,
                       duration: Optional[float] = None, keep_input_rate: bool = False,
                       sample_format: Optional[str] = None, progress: bool = True,
                       allow_truncated: bool = False) -> List[FileResult]:
        """Separate many files, going on past bad ones. Returns one :class:`FileResult` per input.

        One thread decodes (and resamples) the next blocks; the main thread cuts them into segments and
        keeps two model calls in flight (one segment's NumPy inverse STFT overlaps the next one's
        convolutions); one thread encodes the finished blocks. Decoding of the next file and encoding of
        the previous one therefore overlap the separation of the current one.

        Output paths are checked for conflicts before any work; each stem is written under a
        temporary name and renamed when complete; inputs are never overwritten. An input decoded short
        of its declared length (to the sample frame for lossless containers) fails unless
        ``allow_truncated``, which separates the decoded part and logs a warning.
        """
        files = [str(f) for f in files]
        plans = output_paths(files, destination, self.stems, codec, filename_format)
        if offset < 0:
            raise ParameterError(f"offset must be >= 0, got {offset}")
        if duration is not None and duration <= 0:
            raise ParameterError(f"duration must be > 0, got {duration}")
        results = [FileResult(f, False) for f in files]
        protect = {str(Path(f).resolve()) for f in files}
        in_q: "queue.Queue" = queue.Queue(maxsize=8)
        out_q: "queue.Queue" = queue.Queue(maxsize=2)  # blocks of ~100 MB: keep few
        stop = threading.Event()
        write_failed: set = set()  # inputs whose stems cannot be written: not worth separating further
        total = 0.0
        for f in files:
            try:
                info = audio.probe(f)
                if info.duration:
                    d = max(0.0, info.duration - offset)
                    total += min(d, duration) if duration else d
            except SpleeterExtError:
                pass
        bar = Progress(total or None, "separating", unit="s", enabled=progress)

        def reader():
            try:
                for idx, f in enumerate(files):
                    if stop.is_set():
                        return
                    try:
                        r = audio.AudioReader(f, sample_rate=self.sample_rate, n_channels=self.n_channels,
                                                 offset=offset, duration=duration, allow_truncated=allow_truncated)
                        in_q.put(("start", idx, r.info))
                        for block in r.blocks(int(BLOCK_SECONDS * self.sample_rate)):
                            in_q.put(("block", idx, block))
                            if stop.is_set():
                                return
                        in_q.put(("end", idx, None))
                    except SpleeterExtError as exc:
                        in_q.put(("error", idx, str(exc)))
                    except Exception as exc:  # an unexpected decoder failure must not stop the batch
                        in_q.put(("error", idx, f"{f}: cannot decode: {exc}"))
            finally:
                in_q.put(_END)

        def writer():
            stems: Dict[int, StemSet] = {}

            def fail(idx: int, message: str) -> None:
                if results[idx].error is None:  # the first cause is the one to report
                    results[idx].error = message
                results[idx].ok = False
                write_failed.add(idx)

            try:
                for kind, idx, payload in _until_end(out_q):
                    if kind == "abort":
                        if idx in stems:
                            stems.pop(idx).abort()
                        fail(idx, payload)
                        continue
                    if idx in write_failed:
                        continue
                    try:
                        if kind == "open":
                            rate = payload if keep_input_rate and payload else self.sample_rate
                            stems[idx] = StemSet(files[idx], plans[idx], self.sample_rate, rate, self.n_channels,
                                                 codec, bitrate, sample_format, protect)
                        elif kind == "data":
                            stems[idx].write(payload)
                        elif kind == "close":
                            stems.pop(idx).close()
                            results[idx].ok = True
                            results[idx].outputs = {i: str(p) for i, p in plans[idx].items()}
                    except SpleeterExtError as exc:
                        stems.pop(idx, None)  # aborted by the StemSet itself
                        fail(idx, str(exc))
            finally:
                for s in stems.values():  # interrupted: never leave partial stems
                    s.abort()

        pipe = _ModelPipeline(self, out_q, bar)
        t_reader = threading.Thread(target=reader, name="spleeter-ext-decode", daemon=True)
        t_writer = threading.Thread(target=writer, name="spleeter-ext-encode", daemon=True)
        t_reader.start()
        t_writer.start()
        state: Dict[int, dict] = {}
        try:
            for kind, idx, payload in _until_end(in_q):
                if kind == "start":
                    known = None
                    if payload.duration is not None:  # declared length, plus a margin for estimates
                        secs = max(0.0, payload.duration - offset)
                        secs = min(secs, duration) if duration else secs
                        known = int((secs + 1.0) * self.sample_rate)
                    state[idx] = {"stream": apply.Stream(self._chunking_for(known), self.n_channels, self.delays),
                                  "jobs": [], "t0": time.monotonic()}
                    pipe.message(("open", idx, payload.sample_rate))
                elif kind == "block":
                    if idx in write_failed:
                        state.pop(idx, None)
                        continue
                    st = state[idx]
                    ready, st["jobs"] = apply.batches(st["jobs"] + st["stream"].feed(payload), self.batch_size)
                    for jobs in ready:
                        pipe.run(idx, st["stream"], jobs)
                elif kind == "end":
                    st = state.pop(idx, None)
                    if st is None:  # its stems could not be written
                        continue
                    ready, _ = apply.batches(st["jobs"] + st["stream"].finish(), self.batch_size, final=True)
                    if st["stream"].n_samples == 0:
                        reason = (f"no audio after the offset of {offset:g} s (the file is shorter); use a smaller -s"
                                  if offset > 0 else "no audio samples decoded; the file is empty")
                        pipe.message(("abort", idx, f"{files[idx]}: {reason}"))
                        continue
                    for jobs in ready:
                        pipe.run(idx, st["stream"], jobs)
                    pipe.message(("close", idx, None), lambda i=idx, t0=st["t0"]: setattr(
                        results[i], "seconds", time.monotonic() - t0))
                elif kind == "error":
                    state.pop(idx, None)
                    pipe.message(("abort", idx, payload))
            pipe.drain()
        except BaseException:
            stop.set()
            raise
        finally:
            stop.set()
            pipe.shutdown()
            # Drain the reader so it can exit, then let the writer finish (or abort) what it holds.
            while t_reader.is_alive():
                try:
                    in_q.get(timeout=0.1)
                except queue.Empty:
                    pass
            out_q.put(_END)
            t_writer.join()
            bar.close()
        for r in results:
            if r.ok:
                logger.info("%s: wrote %d stems in %.1f s", r.path, len(r.outputs), r.seconds)
        return results


def _until_end(q: "queue.Queue") -> Iterator[tuple]:
    """The items of ``q`` up to the end marker."""
    while True:
        item = q.get()
        if item is _END:
            return
        yield item


def resolve_device(choice: str) -> Tuple[str, str]:
    """``(TensorFlow device, description)`` for ``"auto"`` (the first GPU if TensorFlow sees one, else the
    CPU), ``"cpu"`` or ``"gpu"`` (an error when no GPU is visible)."""
    import tensorflow as tf

    if choice not in DEVICES:
        raise ParameterError(f"device must be one of {', '.join(DEVICES)}, got {choice!r}")
    gpus = [] if choice == "cpu" else tf.config.list_physical_devices("GPU")
    if choice == "gpu" and not gpus:
        why = ("no GPU is visible: check the driver and CUDA_VISIBLE_DEVICES" if tf.test.is_built_with_cuda()
               else "this TensorFlow build has no GPU support")
        raise ParameterError(f"device 'gpu': TensorFlow sees no GPU ({why}); use --device cpu or auto")
    if not gpus:
        return "/CPU:0", "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return "/GPU:0", f"GPU:0 {name}".strip()


class _ModelPipeline:
    """Model calls in flight, in order: up to ``depth`` batches of segments run at once (TensorFlow
    releases the GIL), so one segment's single-threaded NumPy work (inverse STFT, overlap-add)
    overlaps the next one's convolutions. Results and messages to the encoder leave in submission order.
    """

    def __init__(self, separator: "Separator", out_q: "queue.Queue", bar, depth: int = 2):
        from concurrent.futures import ThreadPoolExecutor

        self.sep, self.out_q, self.bar, self.depth = separator, out_q, bar, depth
        self.pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="spleeter-ext-model")
        self.fifo: "collections.deque" = collections.deque()
        self.in_flight = 0

    def message(self, item, then=None) -> None:
        self.fifo.append(("message", item, then))
        self._flush()

    def run(self, idx: int, stream: "apply.Stream", jobs) -> None:
        future = self.pool.submit(self.sep._run, np.stack([job.segment for job in jobs]))
        self.fifo.append(("run", (idx, stream, jobs), future))
        self.in_flight += 1
        self._flush()

    def _flush(self, force: bool = False) -> None:
        while self.fifo:
            kind, payload, extra = self.fifo[0]
            if kind == "message":
                self.fifo.popleft()
                self.out_q.put(payload)
                if extra is not None:
                    extra()
                continue
            if not force and self.in_flight < self.depth and not extra.done():
                return
            self.fifo.popleft()
            self.in_flight -= 1
            idx, stream, jobs = payload
            out = extra.result()
            for job, separated in zip(jobs, out):
                block = stream.put(job, separated)
                if block is not None and block.shape[1]:
                    self.out_q.put(("data", idx, self.sep._select(block)))
                    self.bar.update(block.shape[1] / self.sep.sample_rate)

    def drain(self) -> None:
        self._flush(force=True)

    def shutdown(self) -> None:
        for kind, _, extra in self.fifo:
            if kind == "run":
                extra.cancel()
        self.pool.shutdown(wait=True)
