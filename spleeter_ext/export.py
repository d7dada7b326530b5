"""Export a model as a TensorFlow SavedModel (and TFLite) that separates a whole waveform in one call.

The SavedModel's ``serving_default`` signature takes ``waveform``: float32 ``(n_samples, n_channels)``
at the model's sample rate, of any length, and returns ``{instrument: (n_samples, n_channels)}``.
Everything the Python :class:`~spleeter_ext.separate.separator.Separator` does around the model
happens inside the graph, with the same segment and overlap, so both give the same stems:

* an input shorter than a segment is zero-padded to the model's next efficient length
  (``estimator.fit_segment(n)``, computed in the graph) and separated in one call (see
  :class:`SeparationGraph` for models that need a static length there);
* a longer input is zero-padded to whole segments and cut into ``(n_segments, segment,
  n_channels)`` frames (:func:`tf.signal.frame`) that start every ``stride = segment - overlap``
  samples; each frame is separated on its own (a ``tf.map_fn`` of one segment at a time, so the
  model's working memory does not grow with the input) at a static length, which waveform models
  need; the separated frames ``(n_segments, n_sources, segment, n_channels)`` are weighted by the
  trapezoid crossfade of :func:`spleeter_ext.separate.apply.segment_weights`, summed with
  :func:`tf.signal.overlap_and_add`, divided by the summed weights and cropped to ``n_samples``.

The TFLite model is converted from the same graph: with a dynamic input length when the converter
and the interpreter accept it, otherwise for inputs of exactly one segment; built-in ops are tried
first, then the ``SELECT_TF_OPS`` (Flex) fallback. A converted model is kept only if it runs and
matches the SavedModel on a check input; ``signature.json`` records the op set and the length.

Written to the output folder: the SavedModel (``saved_model.pb``, ``variables/``), ``model.tflite``,
``config.json`` (the resolved config), ``signature.json`` (inputs, outputs, sample rate, chunking,
TFLite op set) and ``README.txt``.

>>> from spleeter_ext.export import export
>>> export("spleeter:4stems", "exported/4stems", formats=("savedmodel", "tflite"))
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ._version import __version__
from .config import DEFAULT_OVERLAP, dump_config, load_config
from .errors import ParameterError, SpleeterExtError
from .log import logger
from .models.estimators import Estimator, WaveformEstimator, build_estimator
from .separate import apply
from .separate.weights import load_weights

FORMATS = ("savedmodel", "tflite")
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "waveform"
TFLITE_NAME = "model.tflite"
#: Largest max |TFLite - SavedModel| on the export's check input for the TFLite model to be kept.
TFLITE_TOLERANCE = 1e-3


SHORT_INPUTS = {
    "fitted": "zero-padded to the model's next efficient length, computed in the graph (as the Separator)",
    "bucketed": "zero-padded to the next of short_input_lengths, one static branch each (as the Separator)",
    "padded": "zero-padded to one full segment (the model needs a static length; the Separator pads less)",
}


class ExportError(SpleeterExtError):
    """A model cannot be exported in the requested format (the message names the reason or the ops)."""


# ---------------------------------------------------------------------------------------------------
# Lengths of inputs shorter than a segment
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LengthRule:
    """``estimator.fit_segment`` as an arithmetic progression: the smallest length ``>= n`` of the
    form ``offset + k * period`` and at least ``minimum``.

    Spectrogram models fit ``k * T * hop - n_fft``, waveform U-Nets multiples of their total stride,
    Demucs an arithmetic progression of its own, and all of these have this form; it lets the graph
    compute the Separator's length for any ``n`` without a table.
    """

    minimum: int
    period: int
    offset: int

    def __call__(self, n):
        """The fitted length of ``n`` (a Python int or an int32 tensor)."""
        fitted = self.offset + self.period * -((self.offset - n) // self.period)
        if isinstance(n, int):
            return max(self.minimum, fitted)
        return tf.maximum(self.minimum, fitted)


def infer_length_rule(fit: Callable[[int], int], segment: int) -> Optional[LengthRule]:
    """The :class:`LengthRule` that reproduces ``fit`` on ``[1, segment]``, or None if none does.

    The period comes from two consecutive fitted lengths near ``segment / 2``; the rule is then
    checked at every length up to two periods past ``fit(1)`` (at most 20000), around fitted lengths
    up to ``segment`` (at most 4096 of them, evenly spread) and at 256 random lengths.
    """
    try:
        first = int(fit(1))
        mid = int(fit(max(1, segment // 2)))
        period = int(fit(mid + 1)) - mid
    except (SpleeterExtError, ValueError, TypeError):
        return None
    if period <= 0:
        return None
    rule = LengthRule(first, period, mid % period)
    probes = set(range(1, min(segment, first + 2 * period, 20000) + 1))
    anchors = np.unique(np.linspace(first, segment, num=min(4096, segment // period + 1)).astype(np.int64))
    for anchor in anchors:
        v = rule(int(anchor))
        probes.update((v - 1, v, v + 1))
    probes.update(np.random.default_rng(0).integers(1, segment + 1, size=256).tolist())
    try:
        return rule if all(int(fit(n)) == rule(n) for n in sorted(probes) if 1 <= n <= segment) else None
    except (SpleeterExtError, ValueError, TypeError):
        return None


def fitted_lengths(fit: Callable[[int], int], segment: int, limit: int) -> Optional[List[int]]:
    """The lengths inputs shorter than ``segment`` are padded to, ascending and ending with
    ``segment`` (``min(fit(n), segment)`` for ``n < segment``), or None if there are more than ``limit``."""
    lengths: List[int] = []
    v = int(fit(1))
    while v < segment:
        if len(lengths) >= limit - 1:
            return None
        lengths.append(v)
        v = int(fit(v + 1))
    return lengths + [segment]


# ---------------------------------------------------------------------------------------------------
# The separation graph
# ---------------------------------------------------------------------------------------------------
class SeparationGraph:
    """Whole-waveform separation with in-graph chunking around an :class:`Estimator`.

    Args:
        estimator: a built estimator with its weights loaded.
        segment: segment length in samples (as ``Separator.segment``).
        overlap: samples shared by neighbouring segments (as ``Separator.overlap``).

    :meth:`separate` maps ``(n_samples, n_channels)`` to ``(n_sources, n_samples, n_channels)``; the
    length may be static (the graph is then specialised to it) or dynamic.

    An input shorter than a segment is padded as the Separator pads it, to ``fit_segment(n)``, in
    one of three ways (``short_mode``):

    * ``"fitted"``: the length is computed in the graph (:class:`LengthRule`) and the model runs at
      that dynamic length (every built-in estimator but a stacked model with a waveform first stage);
    * ``"bucketed"``: the model needs a static length and there are at most :attr:`MAX_BUCKETS`
      fitted lengths below a segment: one static branch per length (nested ``tf.cond``);
    * ``"padded"``: otherwise, the input is padded to one full segment (results may then differ
      slightly from the Separator's on short inputs).
    """

    MAX_BUCKETS = 8

    def __init__(self, estimator: Estimator, segment: int, overlap: int):
        self.estimator = estimator
        self.segment, self.overlap = int(segment), int(overlap)
        self.stride = self.segment - self.overlap
        self.n_sources, self.n_channels = estimator.n_sources, estimator.n_channels
        # Crossfade weights (4, segment), row = 2 * fade_in + fade_out.
        self.weight_table = np.stack([apply.segment_weights(self.segment, self.overlap, bool(v & 2), bool(v & 1))
                                      for v in range(4)]).astype(np.float32)
        self.length_rule = infer_length_rule(estimator.fit_segment, self.segment)
        self.short_lengths: Optional[List[int]] = None
        if self.length_rule is not None and self._traces_any_length():
            self.short_mode = "fitted"
        else:
            self.short_lengths = fitted_lengths(estimator.fit_segment, self.segment, self.MAX_BUCKETS)
            self.short_mode = "bucketed" if self.short_lengths else "padded"
        if self.short_mode == "padded":
            logger.warning("%s: the model needs a static length and has many efficient lengths below a segment; "
                           "the export zero-pads inputs shorter than a segment to one full segment, so their stems "
                           "can differ slightly from the Separator's", estimator.config.get("_source", "<config>"))

    # --- model calls ------------------------------------------------------------------------------
    def _run_fitted(self, segments: tf.Tensor) -> tf.Tensor:
        """``(n_seg, L, C)`` with ``L`` a fitted length, possibly dynamic -> ``(n_seg, S, L, C)``."""
        if isinstance(self.estimator, WaveformEstimator):
            # L is a valid length of the body: the estimator's centred padding would be zero.
            return tf.transpose(self.estimator.body(segments, training=False), [0, 3, 1, 2])
        return self.estimator.separate_segments(segments, training=False)

    def _traces_any_length(self) -> bool:
        """Whether the model graph builds for a length only known when it runs."""
        spec = tf.TensorSpec([1, None, self.n_channels], tf.float32)
        try:
            tf.function(self._run_fitted, autograph=False).get_concrete_function(spec)
        except (SpleeterExtError, ValueError, TypeError) as exc:
            logger.debug("dynamic-length trace failed: %s", exc)
            return False
        return True

    # --- paths --------------------------------------------------------------------------------------
    def _padded_to(self, waveform: tf.Tensor, n, length: int) -> tf.Tensor:
        """``(n, C)`` zero-padded to a static ``length`` and separated: ``(S, n, C)``."""
        padded = tf.ensure_shape(tf.pad(waveform, [[0, length - n], [0, 0]]), [length, self.n_channels])
        return self.estimator.separate_segments(padded[None], training=False)[0, :, :n]

    def _short(self, waveform: tf.Tensor, n) -> tf.Tensor:
        """An input shorter than a segment, in one call: ``(n, C)`` -> ``(S, n, C)``."""
        if self.short_mode == "padded":
            return self._padded_to(waveform, n, self.segment)
        if self.short_mode == "bucketed":
            lengths = self.short_lengths
            if isinstance(n, int):
                return self._padded_to(waveform, n, next(v for v in lengths if v >= n))

            def bucket(i: int) -> tf.Tensor:  # nested conds (TFLite has IF, not CASE)
                if i == len(lengths) - 1:
                    return self._padded_to(waveform, n, lengths[i])
                return tf.cond(n <= lengths[i], lambda: self._padded_to(waveform, n, lengths[i]),
                               lambda: bucket(i + 1))

            return bucket(0)
        length = self.length_rule(n)
        length = min(length, self.segment) if isinstance(length, int) else tf.minimum(length, self.segment)
        padded = tf.pad(waveform, [[0, length - n], [0, 0]])
        return self._run_fitted(padded[None])[0, :, :n]

    def _long(self, waveform: tf.Tensor, n) -> tf.Tensor:
        """An input of at least one segment, chunked: ``(n, C)`` -> ``(S, n, C)``."""
        seg, stride = self.segment, self.stride
        n_segments = 1 + -((seg - n) // stride)  # 1 + ceil((n - seg) / stride)
        total = (n_segments - 1) * stride + seg
        padded = tf.pad(waveform, [[0, total - n], [0, 0]])
        frames = tf.signal.frame(padded, seg, stride, axis=0)  # (n_segments, seg, C)
        spec = tf.TensorSpec([self.n_sources, seg, self.n_channels], tf.float32)
        separated = tf.map_fn(lambda f: self.estimator.separate_segments(f[None], training=False)[0], frames,
                              fn_output_signature=spec, parallel_iterations=1)  # (n_segments, S, seg, C)
        index = tf.range(n_segments)
        kind = 2 * tf.cast(index > 0, tf.int32) + tf.cast(index < n_segments - 1, tf.int32)
        weights = tf.gather(tf.constant(self.weight_table), kind)  # (n_segments, seg)
        weighted = separated * weights[:, None, :, None]
        summed = tf.signal.overlap_and_add(tf.transpose(weighted, [1, 3, 0, 2]), stride)  # (S, C, total)
        norm = tf.signal.overlap_and_add(weights, stride)  # (total,)
        return tf.transpose(summed[:, :, :n] / norm[:n], [0, 2, 1])

    def separate(self, waveform: tf.Tensor) -> tf.Tensor:
        """``(n_samples, n_channels)`` float32 -> ``(n_sources, n_samples, n_channels)``."""
        n = waveform.shape[0]
        if n is not None:
            return self._short(waveform, n) if n < self.segment else self._long(waveform, n)
        n = tf.shape(waveform)[0]
        out = tf.cond(n < self.segment, lambda: self._short(waveform, n), lambda: self._long(waveform, n))
        return tf.ensure_shape(out, [self.n_sources, None, self.n_channels])

    def separate_dict(self, waveform: tf.Tensor) -> Dict[str, tf.Tensor]:
        """``(n_samples, n_channels)`` -> ``{instrument: (n_samples, n_channels)}``."""
        out = self.separate(waveform)
        return {name: tf.identity(out[k], name=name) for k, name in enumerate(self.estimator.instruments)}

    def function(self, n_samples: Optional[int] = None):
        """A traced ``tf.function`` of :meth:`separate_dict` for a fixed or any (None) input length."""
        spec = tf.TensorSpec([n_samples, self.n_channels], tf.float32, name=INPUT_NAME)
        return tf.function(self.separate_dict, input_signature=[spec], autograph=False)


class SeparatorModule(tf.Module):
    """What the SavedModel holds: the model's variables and the ``separate`` function.

    ``separate(waveform (n_samples, n_channels)) -> {instrument: (n_samples, n_channels)}``.
    """

    def __init__(self, graph: SeparationGraph):
        super().__init__(name="spleeter_ext_separator")
        self.model_variables = list(graph.estimator.body.variables)
        self.separate = graph.function()


# ---------------------------------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------------------------------
@dataclass
class TFLiteResult:
    """A converted model and how: ``op_set``, the ``select_tf_ops`` it uses (Flex ops, by TensorFlow
    name), its ``input_length`` (None: any) and its ``max_abs_diff`` to the SavedModel on the check input."""

    content: bytes
    op_set: str
    select_tf_ops: List[str]
    input_length: Optional[int]
    max_abs_diff: float


def _error_ops(message: str) -> List[str]:
    """TensorFlow op names a converter error reports as unsupported (``'tf.IRFFT' op`` -> ``IRFFT``)."""
    return sorted(set(re.findall(r"'tf\.([A-Za-z0-9_]+)' op", message)))


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def flex_ops(content: bytes) -> List[str]:
    """The Select TF (Flex) ops of a TFLite flatbuffer, by TensorFlow name (``FlexIRFFT`` -> ``IRFFT``)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    codes = (model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength()))
    return sorted({c.decode()[4:] for c in codes if c and c.startswith(b"Flex")})


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what the converter and the TFLite runtime print from C++ (MLIR diagnostics of attempts
    that fail, delegate banners): their errors reach us as exceptions. Kept when debug logging."""
    try:
        saved = None if logger.isEnabledFor(logging.DEBUG) else os.dup(2)
    except OSError:  # no stderr to silence
        saved = None
    if saved is None:
        yield
        return
    sys.stderr.flush()
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_tflite(content: bytes, waveform: np.ndarray) -> Dict[str, np.ndarray]:
    """Run a converted model on ``(n_samples, n_channels)``; ``{instrument: (n_samples, n_channels)}``."""
    interpreter = tf.lite.Interpreter(model_content=content)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    return runner(**{INPUT_NAME: np.asarray(waveform, np.float32)})


def convert_tflite(graph: SeparationGraph, module: SeparatorModule, saved_model_dir: Path,
                   reference: Callable[[np.ndarray], Dict[str, np.ndarray]]) -> TFLiteResult:
    """Convert to TFLite, in this order of preference: built-in ops only (dynamic input length, then
    one segment), then with ``SELECT_TF_OPS`` (dynamic, then one segment).

    Each converted candidate is run on a check input (noise of one segment; for a dynamic length,
    half a segment and one and a half segments, so both paths of the graph run) and kept only if it
    matches ``reference`` (the SavedModel's function) within :data:`TFLITE_TOLERANCE`.

    Raises:
        ExportError: no candidate converts and runs; the message names the TensorFlow ops at fault.
    """
    rng = np.random.default_rng(0)

    def dynamic_converter():
        return tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE_KEY])

    fixed: list = []  # the one-segment concrete function, traced on first use

    def fixed_converter():
        if not fixed:
            fixed.append(graph.function(graph.segment).get_concrete_function())
        return tf.lite.TFLiteConverter.from_concrete_functions(fixed, module)

    errors: Dict[bool, List[str]] = {False: [], True: []}  # converter errors, without / with Flex
    failures: List[str] = []  # converted candidates that do not run or do not match
    for select in (False, True):
        op_set = "TFLITE_BUILTINS+SELECT_TF_OPS" if select else "TFLITE_BUILTINS"
        for length, factory in ((None, dynamic_converter), (graph.segment, fixed_converter)):
            what = f"{'dynamic' if length is None else f'{length}-sample'} input, {op_set}"
            try:
                with _quiet_native_stderr():
                    converter = factory()
                    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
                        [tf.lite.OpsSet.SELECT_TF_OPS] if select else [])
                    content = converter.convert()
            except Exception as exc:  # ConverterError, and others from the MLIR passes
                logger.debug("TFLite conversion (%s) failed: %s", what, exc)
                errors[select].append(f"{what}: {exc}")
                continue
            lengths = [graph.segment] if length is not None else [max(1, graph.segment // 2),
                                                                   graph.segment + graph.stride // 2]
            try:
                diff = 0.0
                for n in lengths:
                    x = rng.uniform(-0.5, 0.5, (n, graph.n_channels)).astype(np.float32)
                    with _quiet_native_stderr():
                        got = run_tflite(content, x)
                    want = reference(x)
                    diff = max(diff, max(float(np.max(np.abs(got[k] - want[k]))) for k in want))
            except Exception as exc:  # the interpreter fails on ops or shapes it cannot run
                logger.debug("TFLite model (%s) does not run: %s", what, exc)
                failures.append(f"{what}: converts but does not run ({_first_line(exc)})")
                continue
            if not diff <= TFLITE_TOLERANCE:
                logger.debug("TFLite model (%s) differs from the SavedModel by %.3g", what, diff)
                failures.append(f"{what}: differs from the SavedModel by {diff:.3g}")
                continue
            logger.info("TFLite: %s (max difference to the SavedModel %.2g)", what, diff)
            return TFLiteResult(content, op_set, flex_ops(content), length, diff)
    source = graph.estimator.config.get("_source", "<config>")
    if failures:  # something converted: say why it was not kept
        raise ExportError(f"{source}: cannot convert to TFLite: " + "; ".join(failures))
    ops = sorted(set().union(*map(_error_ops, errors[True])))
    if ops:
        raise ExportError(f"{source}: cannot convert to TFLite: no TFLite kernel (built-in or SELECT_TF_OPS) "
                          f"for TensorFlow op(s) {', '.join(ops)}")
    raise ExportError(f"{source}: cannot convert to TFLite: " + "; ".join(_first_line(e) for e in errors[True]))


# ---------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------
def _plan(estimator: Estimator, config: dict, segment_seconds: Optional[float],
          overlap: Optional[float]) -> Tuple[int, int]:
    """``(segment, overlap)`` in samples, with the Separator's defaults and checks."""
    inference = config.get("inference") or {}
    seconds = segment_seconds if segment_seconds is not None else inference.get("segment_seconds")
    if seconds is not None and seconds <= 0:
        raise ParameterError(f"segment must be positive seconds, got {seconds}")
    fraction = overlap if overlap is not None else inference.get("overlap", DEFAULT_OVERLAP)
    return apply.plan(estimator.segment_samples(seconds), fraction)


def _check_output_dir(output_dir: Path) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise ParameterError(f"{output_dir}: output path exists and is not a directory; choose another -o")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "signature.json").is_file():
        raise ParameterError(f"{output_dir}: directory is not empty and holds no previous export; "
                             "choose an empty or new directory")


def _describe(config: dict, graph: SeparationGraph, tflite: Optional[TFLiteResult]) -> dict:
    """The content of ``signature.json``."""
    sr, c = int(config["sample_rate"]), graph.n_channels
    instruments = list(graph.estimator.instruments)

    def io(length):
        return {"dtype": "float32", "shape": [length, c], "axes": ["n_samples", "n_channels"]}

    desc = {
        "format_version": 1,
        "spleeter_ext_version": __version__,
        "model": config.get("_source"),
        "model_type": config["model"]["type"],
        "sample_rate": sr,
        "n_channels": c,
        "instruments": instruments,
        "savedmodel": {
            "path": ".",
            "signature": SIGNATURE_KEY,
            "inputs": {INPUT_NAME: io(None)},
            "outputs": {name: io(None) for name in instruments},
            "segment_samples": graph.segment,
            "overlap_samples": graph.overlap,
            "segment_seconds": graph.segment / sr,
            "short_inputs": SHORT_INPUTS[graph.short_mode],
        },
    }
    if graph.short_lengths is not None:
        desc["savedmodel"]["short_input_lengths"] = graph.short_lengths
    if tflite is not None:
        desc["tflite"] = {
            "path": TFLITE_NAME,
            "signature": SIGNATURE_KEY,
            "op_set": tflite.op_set,
            "select_tf_ops": tflite.select_tf_ops,
            "input_length": "dynamic" if tflite.input_length is None else tflite.input_length,
            "inputs": {INPUT_NAME: io(tflite.input_length)},
            "outputs": {name: io(tflite.input_length) for name in instruments},
            "max_abs_diff_to_savedmodel": tflite.max_abs_diff,
        }
    return desc


def _readme(desc: dict) -> str:
    sr, c = desc["sample_rate"], desc["n_channels"]
    sm = desc["savedmodel"]
    lines = [
        f"spleeter-ext {desc['spleeter_ext_version']} export of {desc['model']} ({desc['model_type']})",
        "",
        f"Sample rate {sr} Hz, {c} channels, stems: {', '.join(desc['instruments'])}.",
        "",
        "SavedModel (this directory), signature 'serving_default':",
        f"  input  'waveform': float32 (n_samples, {c}) at {sr} Hz, any length",
        f"  output one float32 (n_samples, {c}) tensor per stem, keyed by stem name",
        f"  long inputs are separated in segments of {sm['segment_samples']} samples "
        f"({sm['segment_seconds']:.2f} s) overlapping by {sm['overlap_samples']} samples, crossfaded",
        f"  inputs shorter than a segment are {sm['short_inputs']}",
        "",
        "  import tensorflow as tf",
        "  model = tf.saved_model.load('<this directory>')",
        "  stems = model.signatures['serving_default'](waveform=tf.constant(x))  # x: (n, 2) float32",
        "",
    ]
    if "tflite" in desc:
        tl = desc["tflite"]
        length = tl["input_length"]
        stride = sm["segment_samples"] - sm["overlap_samples"]
        lines += [f"TFLite ({TFLITE_NAME}), signature 'serving_default', op set {tl['op_set']}"
                  + (f" (Flex ops: {', '.join(tl['select_tf_ops'])})" if tl["select_tf_ops"] else "")]
        if length == "dynamic":
            lines += [f"  input 'waveform': float32 (n_samples, {c}), any length, chunked as the SavedModel",
                      "  (the signature runner resizes the input; with interpreter.invoke() call "
                      "resize_tensor_input and allocate_tensors first)"]
        else:
            lines += [f"  input 'waveform': float32 ({length}, {c}): exactly one segment. For longer audio, "
                      f"take segments every {stride} samples",
                      f"  (zero-pad the last one), weight each by linear ramps over the {sm['overlap_samples']} "
                      "samples it shares with a neighbour, sum and divide by the summed weights"]
        lines += ["  output: one float32 tensor of the input's shape per stem, keyed by stem name",
                  "  Flex ops need a TFLite runtime with the Select TF ops delegate (tf.lite.Interpreter of the "
                  "tensorflow package has it)" if tl["op_set"] != "TFLITE_BUILTINS" else "  built-in ops only",
                  "",
                  "  interpreter = tf.lite.Interpreter(model_path='model.tflite')",
                  "  stems = interpreter.get_signature_runner('serving_default')(waveform=x)",
                  ""]
    lines += ["config.json: the resolved model configuration. signature.json: the above, machine-readable.", ""]
    return "\n".join(lines)


def export(params, output_dir, formats: Sequence[str] = ("savedmodel",), segment_seconds: Optional[float] = None,
           overlap: Optional[float] = None) -> Dict[str, str]:
    """Export a model for serving: a SavedModel, and a TFLite model if asked.

    Args:
        params: a model descriptor as for :class:`~spleeter_ext.separate.separator.Separator`
            (``spleeter:4stems``, a JSON config, a model directory or a preset name).
        output_dir: directory to write (created; a previous export there is replaced).
        formats: ``("savedmodel",)`` or ``("savedmodel", "tflite")``; the SavedModel is always
            written since the TFLite model is converted from it.
        segment_seconds: segment length of the in-graph chunking (default as the Separator: the
            config's ``inference.segment_seconds``, else the estimator's choice).
        overlap: fraction of a segment shared by neighbours (default ``inference.overlap``, 0.05).

    Returns:
        ``{"savedmodel", "config", "signature", "readme"[, "tflite"]: path}``.

    Raises:
        ParameterError: bad format, segment, overlap or output directory.
        ConfigError / ModelNotFoundError: as for the Separator.
        ExportError: the model cannot be exported (MWF) or converted to TFLite.
    """
    if isinstance(formats, str):
        formats = (formats,)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ParameterError(f"unknown export format {', '.join(map(repr, unknown)) or '(none)'}; "
                             f"use {' and/or '.join(FORMATS)}")
    output_dir = Path(output_dir).expanduser()
    _check_output_dir(output_dir)

    config = load_config(params)
    if config.get("MWF"):
        raise ExportError(f"{config['_source']}: the multichannel Wiener filter (MWF) runs in numpy (norbert) and "
                          "cannot be exported; set \"MWF\": false in the config")
    estimator = build_estimator(config)
    load_weights(estimator, config)
    segment, overlap_samples = _plan(estimator, config, segment_seconds, overlap)
    graph = SeparationGraph(estimator, segment, overlap_samples)
    module = SeparatorModule(graph)
    serving = module.separate.get_concrete_function()

    def reference(x: np.ndarray) -> Dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in serving(tf.constant(x)).items()}

    # Everything is written to a hidden sibling folder first, which replaces output_dir at the end.
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE_KEY: serving})
        tflite = None
        if "tflite" in formats:
            tflite = convert_tflite(graph, module, staging, reference)
            (staging / TFLITE_NAME).write_bytes(tflite.content)
        desc = _describe(config, graph, tflite)
        (staging / "config.json").write_text(json.dumps(dump_config(config), indent=2) + "\n")
        (staging / "signature.json").write_text(json.dumps(desc, indent=2) + "\n")
        (staging / "README.txt").write_text(_readme(desc))
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    paths = {"savedmodel": str(output_dir), "config": str(output_dir / "config.json"),
             "signature": str(output_dir / "signature.json"), "readme": str(output_dir / "README.txt")}
    if tflite is not None:
        paths["tflite"] = str(output_dir / TFLITE_NAME)
    logger.info("Exported %s to %s (%s)", config["_source"], output_dir, ", ".join(sorted(paths)))
    return paths
