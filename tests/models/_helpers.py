"""Tiny parameters of every registered model and small inputs that meet each body's shape contract."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.models import registry
from spleeter_ext.models.base import ceil_to_multiple

TINY_UNET = {"conv_n_filters": [4, 4, 8, 8, 8, 8]}
TINY = {
    "spleeter_unet_2d": TINY_UNET,
    "spleeter_softmax_unet_2d": TINY_UNET,
    "spleeter_unet_1d": {"conv_n_filters": [4, 8, 8], "kernel_size": 5, "strides": 4},
    "wave_unet_1d": {"depth": 3, "base_filters": 4, "down_kernel": 5, "up_kernel": 3},
    "wave_unet_2d": {"depth": 2, "base_filters": 4},
    "demucs_1d": {"depth": 2, "channels": 4, "lstm_units": 4},
    "demucs_2d": {"depth": 2, "channels": 4, "lstm_units": 4},
    "blstm": {"lstm_units": 4, "lstm_layers": 2},
    "passthrough_1d": {},
    "passthrough_2d": {},
    "stack": {"stage1": {"type": "spleeter_unet_2d", "params": TINY_UNET}, "refiner": TINY_UNET},
}
NAMES = [spec.name for spec in registry.list_models()]
INSTRUMENTS = ["vocals", "drums", "bass", "other"]
N_SAMPLES, N_FRAMES, N_BINS = 1001, 9, 50  # deliberately not multiples of anything


def tiny_config(name: str, n_sources: int = 3, **extra) -> dict:
    """A loaded config of model ``name`` with tiny parameters, a 512-point STFT and 64 x 64 patches."""
    cfg = {"instrument_list": INSTRUMENTS[:n_sources], "frame_length": 512, "frame_step": 128, "T": 64, "F": 64,
           "segment_seconds": 0.25, "mask_extension": "average", "model": {"type": name, "params": TINY[name]}}
    cfg.update(extra)
    return load_config(cfg)


def make(name: str, n_sources: int = 2, n_channels: int = 2, **overrides):
    """Body ``name`` built from the registry with tiny parameters (``overrides`` on top)."""
    return registry.get(name).build({**TINY[name], **overrides}, n_sources=n_sources, n_channels=n_channels)


def example(body, n_channels: int = 2, batch: int = 2, seed: int = 0) -> tf.Tensor:
    """A random input padded the way the estimators pad: to ``valid_length`` (1D) or ``input_multiple`` (2D)."""
    if body.domain == "1d":
        return tf.random.stateless_normal((batch, body.valid_length(N_SAMPLES), n_channels), seed=[seed, 1])
    fm, bm = body.input_multiple()
    shape = (batch, ceil_to_multiple(N_FRAMES, fm), ceil_to_multiple(N_BINS, bm), n_channels)
    return tf.random.stateless_uniform(shape, seed=[seed, 2])


def check_variant(body, n_sources: int = 2) -> None:
    """``body`` meets its shape contract on :func:`example`, and a copy from its config with its weights
    computes the same outputs."""
    x = example(body)
    y = body(x)
    assert tuple(y.shape) == tuple(x.shape) + (n_sources,)
    clone = type(body).from_config(body.get_config())
    clone(x)
    clone.set_weights(body.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), y.numpy(), rtol=1e-5, atol=1e-6)
