"""Shape contracts of model bodies.

A *body* maps a tensor to a tensor. It knows nothing of STFTs, sample rates or instrument names:
the estimators (:mod:`spleeter_ext.models.estimators`) own those. Two kinds:

``Body2D`` (spectrogram domain)
    input  ``(batch, n_frames, n_bins, n_channels)``: magnitude spectrogram patches;
    output ``(batch, n_frames, n_bins, n_channels, n_sources)``: non-negative masks, one per source
    (the estimator multiplies them with the input magnitude). ``input_multiple()`` gives the
    ``(frames, bins)`` multiples the body needs (e.g. 64 for six stride-2 levels).

``Body1D`` (waveform domain)
    input  ``(batch, n_samples, n_channels)``: waveform;
    output ``(batch, n_samples, n_channels, n_sources)``: one waveform per source, same length as
    the input **when** ``n_samples == valid_length(n_samples)``. The waveform estimator pads
    inputs to ``valid_length(n)`` and crops the outputs back to ``n``.

Every body's constructor arguments are its configuration: ``get_config()`` returns them and
``from_config(get_config())`` builds an identical architecture (keras-hub style). Depth is data:
per-level settings are lists, and the code loops over them.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence, Tuple

import tensorflow as tf

from ..errors import ConfigError


class Body(tf.keras.Model):
    """Common base: stores constructor arguments for ``get_config``."""

    domain: str = ""

    def __init__(self, n_sources: int, n_channels: int, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        if n_sources < 1:
            raise ConfigError(f"n_sources must be >= 1, got {n_sources}")
        if n_channels < 1:
            raise ConfigError(f"n_channels must be >= 1, got {n_channels}")
        self.n_sources = int(n_sources)
        self.n_channels = int(n_channels)
        self._config: Dict[str, Any] = {"n_sources": self.n_sources, "n_channels": self.n_channels}

    def _remember(self, **kwargs) -> None:
        """Record constructor arguments (call once in the subclass constructor)."""
        for key, value in kwargs.items():
            if isinstance(value, tuple):
                value = list(value)
            self._config[key] = value

    def get_config(self) -> Dict[str, Any]:
        return dict(self._config)

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects=None):
        return cls(**config)


class Body2D(Body):
    domain = "2d"

    def input_multiple(self) -> Tuple[int, int]:
        """``(frames, bins)``: n_frames and n_bins of the input must be multiples of these."""
        return (1, 1)


class Body1D(Body):
    domain = "1d"

    def valid_length(self, n_samples: int) -> int:
        """Smallest input length ``>= n_samples`` for which output length equals input length."""
        return int(n_samples)


def per_level(value: Any, depth: int, key: str) -> list:
    """Broadcast a scalar setting to ``depth`` levels or check a per-level list's length."""
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ConfigError(f"model.params.{key} has {len(value)} entries for {depth} levels")
        return list(value)
    return [value] * depth


def activation_layer(name: str, alpha: float = 0.2) -> tf.keras.layers.Layer:
    """Activation by name: ReLU, ELU, LeakyReLU (alpha 0.2, Spleeter's default), tanh, sigmoid, GELU, linear."""
    key = (name or "linear").lower()
    if key == "relu":
        return tf.keras.layers.ReLU()
    if key == "elu":
        return tf.keras.layers.ELU()
    if key in ("leakyrelu", "leaky_relu"):
        return tf.keras.layers.LeakyReLU(alpha)
    if key in ("tanh", "sigmoid", "linear", "gelu", "softplus"):
        return tf.keras.layers.Activation(key)
    raise ConfigError(f"unknown activation '{name}'; use ReLU, ELU, LeakyReLU, tanh, sigmoid, gelu, softplus or linear")


def norm_layer(kind: str | None, axis: int = -1, groups: int = 1) -> tf.keras.layers.Layer | None:
    """Normalisation by name: 'batch' (Spleeter's default), 'layer', 'group', 'instance' or None."""
    if kind in (None, "none", False):
        return None
    if kind == "batch":
        return tf.keras.layers.BatchNormalization(axis=axis)
    if kind == "layer":
        return tf.keras.layers.LayerNormalization(axis=axis)
    raise ConfigError(f"unknown normalisation '{kind}'; use 'batch', 'layer' or none")


def ceil_to_multiple(n: int, m: int) -> int:
    return int(math.ceil(n / m) * m)


def check_list_of_int(values: Sequence, key: str) -> list:
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, int) and v > 0 for v in values):
        raise ConfigError(f"model.params.{key} must be a non-empty list of positive integers, got {values!r}")
    return list(values)
