"""Models and exports shared by the export tests.

Two model families: the 3-stem Spleeter U-Net of a checkpoint written by stock ``spleeter train``
(spectrogram masking, STFT inside the graph) and a tiny waveform U-Net (``spleeter_unet_1d``) with
random weights saved as a checkpoint. Segments are short (1 s) so that a few seconds of audio span
several of them.
"""
import json
from pathlib import Path

import numpy as np
import pytest

SEGMENT = 1.0  # seconds
OVERLAP = 0.25
SAVEDMODEL_TOL = 1e-4
TFLITE_TOL = 1e-3


def noise(n, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2)).astype(np.float32)


def max_diff(a, b):
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


def lengths(segment):
    return {"short": int(0.4 * segment) + 3, "one_segment": segment, "several_segments": int(3.3 * segment) + 17}


_LOADED = {}


def run_savedmodel(path, x):
    """``{stem: (n, 2)}`` from the export's ``serving_default`` signature (each export loaded once)."""
    import tensorflow as tf

    if str(path) not in _LOADED:
        _LOADED[str(path)] = tf.saved_model.load(str(path))
    fn = _LOADED[str(path)].signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(waveform=tf.constant(x)).items()}


def export_to(descriptor, folder, formats, **kwargs):
    """``(paths, signature.json)`` of an export with the tests' segment and overlap."""
    from spleeter_ext.export import export

    kwargs = {"segment_seconds": SEGMENT, "overlap": OVERLAP, **kwargs}
    paths = export(descriptor, folder, formats=formats, **kwargs)
    return paths, json.loads(Path(paths["signature"]).read_text())


def write_random_model(root: Path, config: dict) -> Path:
    """A model directory (config.json + checkpoint) with random weights and batch-norm statistics."""
    import tensorflow as tf

    from spleeter_ext.config import load_config
    from spleeter_ext.models.estimators import build_estimator

    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    est = build_estimator(load_config(str(root)))
    est.build()
    rng = np.random.default_rng(3)
    for v in est.body.variables:
        if "moving_variance" in v.name:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
        elif "moving_mean" in v.name:
            v.assign(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=est.body), str(root), max_to_keep=1).save()
    return root


@pytest.fixture(scope="session")
def wave_model(tmp_path_factory):
    """A 2-stem waveform U-Net (three stride-4 levels) with random weights, as a model directory."""
    return write_random_model(tmp_path_factory.mktemp("wave") / "model", {
        "instrument_list": ["vocals", "accompaniment"],
        "model": {"type": "spleeter_unet_1d", "params": {"conv_n_filters": [4, 8, 8], "kernel_size": 15,
                                                          "strides": 4}}})


@pytest.fixture(scope="session")
def models(stock_model, wave_model):
    """``{family: descriptor}``."""
    return {"stock_unet_2d": str(stock_model["config"]), "unet_1d": str(wave_model)}


@pytest.fixture(scope="session")
def separators(models):
    from spleeter_ext import Separator

    return {name: Separator(d, segment=SEGMENT, overlap=OVERLAP) for name, d in models.items()}


@pytest.fixture(scope="session")
def exported(models, tmp_path_factory):
    """``{family: (paths, signature.json)}``: the SavedModel of both families, and the waveform
    model's TFLite (the spectrogram model's TFLite conversion is slower: see ``stock_tflite``)."""
    root = tmp_path_factory.mktemp("exports")
    return {"stock_unet_2d": export_to(models["stock_unet_2d"], root / "stock_unet_2d", ("savedmodel",)),
            "unet_1d": export_to(models["unet_1d"], root / "unet_1d", ("savedmodel", "tflite"))}


@pytest.fixture(scope="session")
def stock_tflite(models, tmp_path_factory):
    """The stock U-Net exported with TFLite: ``(paths, signature.json)``."""
    return export_to(models["stock_unet_2d"], tmp_path_factory.mktemp("tflite") / "stock", ("savedmodel", "tflite"))
