"""What an export folder says about itself: ``signature.json`` and the ``README.txt`` written from it."""
from __future__ import annotations

from typing import Optional

from .._version import __version__
from .graph import INPUT_NAME, SHORT_INPUTS, SIGNATURE_KEY, SeparationGraph
from .tflite import TFLITE_NAME, TFLiteResult

__all__ = ["describe", "readme_text"]


def describe(config: dict, graph: SeparationGraph, tflite: Optional[TFLiteResult]) -> dict:
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


def readme_text(desc: dict) -> str:
    """The README of an export folder, from its ``signature.json`` content."""
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
