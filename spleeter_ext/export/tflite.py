"""TFLite conversion of an exported separation graph: built-in ops first, Flex ops as the fallback."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from ..errors import ExportError
from ..log import logger
from .graph import INPUT_NAME, SIGNATURE_KEY, SeparationGraph, SeparatorModule

__all__ = ["TFLiteResult", "convert_tflite", "run_tflite", "flex_ops", "TFLITE_NAME", "TFLITE_TOLERANCE"]

TFLITE_NAME = "model.tflite"
#: Largest max |TFLite - SavedModel| on the export's check input for the TFLite model to be kept.
TFLITE_TOLERANCE = 1e-3


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
