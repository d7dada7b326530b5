"""``export()``: write a model's SavedModel (and TFLite model), config, signature and README to a folder."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from ..config import DEFAULT_OVERLAP, dump_config, load_config
from ..errors import ExportError, ParameterError
from ..log import logger
from ..models.estimators import Estimator, build_estimator
from ..separate import apply
from ..separate.weights import load_weights
from .graph import SIGNATURE_KEY, SeparationGraph, SeparatorModule
from .readme import describe, readme_text
from .tflite import TFLITE_NAME, convert_tflite

__all__ = ["export", "FORMATS"]

FORMATS = ("savedmodel", "tflite")


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



def export(params, output_dir, formats: Sequence[str] = ("savedmodel",), segment_seconds: Optional[float] = None,
           overlap: Optional[float] = None) -> Dict[str, str]:
    """Export a model for serving: a SavedModel, and a TFLite model if asked.

    The SavedModel's ``serving_default`` signature takes ``waveform``: float32 ``(n_samples, n_channels)``
    at the model's sample rate, of any length, and returns ``{instrument: (n_samples, n_channels)}``,
    the stems the :class:`~spleeter_ext.separate.separator.Separator` gives with the same segment and
    overlap (:class:`~.graph.SeparationGraph`). The folder also holds ``config.json`` (the resolved
    config), ``signature.json`` (inputs, outputs, chunking, TFLite op set) and ``README.txt``.

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
        desc = describe(config, graph, tflite)
        (staging / "config.json").write_text(json.dumps(dump_config(config), indent=2) + "\n")
        (staging / "signature.json").write_text(json.dumps(desc, indent=2) + "\n")
        (staging / "README.txt").write_text(readme_text(desc))
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
