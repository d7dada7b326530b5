"""Building blocks shared by the bodies: layers by name and rank, weight-free resampling, Demucs' gates and
initialisation, BiLSTM stacks, and the one path from output logits to masks or waveforms."""
from __future__ import annotations

import math
from typing import Any, Sequence

import tensorflow as tf

from ..errors import ConfigError
from .params import check_choice

_L = tf.keras.layers
#: Convolutions by rank (spatial axes of the input: 1 for waveforms, 2 for spectrogram patches).
CONV = {1: _L.Conv1D, 2: _L.Conv2D}
CONV_TRANSPOSE = {1: _L.Conv1DTranspose, 2: _L.Conv2DTranspose}
#: ``output_activation`` values by domain: waveforms (1D) or non-negative masks (2D).
OUTPUT_ACTIVATIONS = {"1d": ("tanh", "linear"), "2d": ("sigmoid", "softmax", "relu")}


# ---------------------------------------------------------------------------------------------
# layers by name
# ---------------------------------------------------------------------------------------------
def activation_layer(name: str, alpha: float = 0.2) -> tf.keras.layers.Layer:
    """Activation by name: ReLU, ELU, LeakyReLU (alpha 0.2, Spleeter's default), tanh, sigmoid, GELU, linear."""
    key = (name or "linear").lower()
    if key == "relu":
        return _L.ReLU()
    if key == "elu":
        return ELU() if _float32_under_bfloat16() else _L.ELU()
    if key in ("leakyrelu", "leaky_relu"):
        return _L.LeakyReLU(alpha)
    if key in ("tanh", "sigmoid", "linear", "gelu", "softplus"):
        return _L.Activation(key)
    raise ConfigError(f"unknown activation '{name}'; use ReLU, ELU, LeakyReLU, tanh, sigmoid, gelu, softplus or linear")


def norm_layer(kind: str | None, axis: int = -1) -> tf.keras.layers.Layer | None:
    """Normalisation by name: 'batch' (Spleeter's default), 'layer' or None."""
    if kind in (None, "none", False):
        return None
    if kind == "batch":
        return BatchNormalization(axis=axis) if _float32_under_bfloat16() else _L.BatchNormalization(axis=axis)
    if kind == "layer":
        return _L.LayerNormalization(axis=axis)
    raise ConfigError(f"unknown normalisation '{kind}'; use 'batch', 'layer' or none")


class _InFloat32:
    """Mixin for Keras layers that compute in float32 under a bfloat16 policy, where oneDNN/Eigen's bfloat16
    kernels of the layer are several times slower than float32's on CPU (docs/benchmarks.md, the profiles):
    the input is cast up and the output back to the policy's compute dtype. Subclasses keep the Keras class
    name, so layer and variable names (checkpoints) are the same as under float32."""

    def __init__(self, *args, **kwargs):
        self._outer_dtype = tf.keras.mixed_precision.global_policy().compute_dtype
        super().__init__(*args, dtype="float32", **kwargs)

    def _back(self, outputs: tf.Tensor) -> tf.Tensor:
        return tf.cast(outputs, self._outer_dtype)


class BatchNormalization(_InFloat32, _L.BatchNormalization):
    """Batch normalisation, in float32 under a bfloat16 policy."""

    def call(self, inputs, training=None):
        return self._back(super().call(inputs, training=training))


class ELU(_InFloat32, _L.ELU):
    """ELU, in float32 under a bfloat16 policy."""

    def call(self, inputs):  # Keras passes `training` to layers whose call takes it (or **kwargs)
        return self._back(super().call(inputs))


def _float32_under_bfloat16() -> str | None:
    """``"float32"`` when the global policy computes in bfloat16, else None: the dtype of layers whose bfloat16
    kernels are missing (graph-mode LSTM) or slower on CPU (batch normalisation)."""
    return "float32" if tf.keras.mixed_precision.global_policy().compute_dtype == "bfloat16" else None


def bilstm(units: int, name: str, **lstm_kwargs) -> tf.keras.layers.Layer:
    """A bidirectional LSTM over axis 1 returning every step: ``(batch, time, d)`` -> ``(batch, time, 2 units)``.

    Under a bfloat16 policy the LSTM computes in float32 (Keras casts its input and the next layer casts back):
    TensorFlow's graph-mode LSTM (the cuDNN-selectable kernel) accepts float16/32/64 only."""
    dtype = _float32_under_bfloat16()
    return _L.Bidirectional(_L.LSTM(units, return_sequences=True, dtype=dtype, **lstm_kwargs), name=name,
                            dtype=dtype)


# ---------------------------------------------------------------------------------------------
# outputs: logits -> masks (2D) or waveforms (1D), in one place
# ---------------------------------------------------------------------------------------------
def check_output_activation(value: Any, domain: str, n_sources: int) -> str:
    """Validate ``model.params.output_activation`` for a ``domain`` ('1d' or '2d') body."""
    kind = check_choice(value, OUTPUT_ACTIVATIONS[domain], "output_activation")
    if kind == "softmax" and n_sources < 2:
        raise ConfigError("model.params.output_activation 'softmax' normalises masks across sources and "
                          "needs n_sources >= 2; use 'sigmoid' for a single source")
    return kind


def apply_output_activation(logits: tf.Tensor, kind: str) -> tf.Tensor:
    """``(..., n_channels, n_sources)`` logits -> outputs.

    Masks: 'sigmoid' (each in [0, 1]), 'softmax' (across the last, sources, axis: they sum to one at every
    point), 'relu' (unbounded, non-negative). Waveforms: 'tanh' or 'linear'.
    """
    if kind == "sigmoid":
        return tf.sigmoid(logits)
    if kind == "softmax":
        return tf.nn.softmax(logits, axis=-1)
    if kind == "relu":
        return tf.nn.relu(logits)
    if kind == "tanh":
        return tf.tanh(logits)
    if kind == "linear":
        return logits
    raise ConfigError(f"unknown output activation {kind!r}")


def split_sources(x: tf.Tensor, n_sources: int, n_channels: int) -> tf.Tensor:
    """``(batch, *spatial, n_sources * n_channels)`` -> ``(batch, *spatial, n_channels, n_sources)``;
    feature ``s * n_channels + c`` is channel ``c`` of source ``s`` (Demucs' layout)."""
    rank = x.shape.rank
    x = tf.reshape(x, [dim(x, a) for a in range(rank - 1)] + [n_sources, n_channels])
    return tf.transpose(x, list(range(rank - 1)) + [rank, rank - 1])


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------
def dim(x: tf.Tensor, axis: int):
    """Static size of ``axis`` when known, else the dynamic one (keeps static shapes through reshapes)."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


def center_crop(x: tf.Tensor, length, axis: int = 1) -> tf.Tensor:
    """Centre-crop axis 1 of ``x`` (``(batch, time, ...)``) to ``length`` (Demucs' ``center_trim``)."""
    size = x.shape[axis]
    if isinstance(length, int) and size is not None:  # static: keep static shapes
        if size == length:
            return x
        start = (size - length) // 2
    else:
        start = (tf.shape(x)[axis] - length) // 2
    return x[:, start:start + length]


def fold_features(x: tf.Tensor) -> tf.Tensor:
    """``(batch, time, *rest)`` -> ``(batch, time, prod(rest))`` (``rest`` statically known): every time
    step becomes one feature vector for a recurrent layer."""
    return tf.reshape(x, [dim(x, 0), dim(x, 1), math.prod(x.shape[2:])])


class Decimate(tf.keras.layers.Layer):
    """Keep samples 0, 2, 4, ... along ``axes`` (no anti-alias filter, no weights), as in Wave-U-Net.

    Input ``(batch, *spatial, features)``; each axis in ``axes`` is halved (the axis must be even).
    """

    def __init__(self, axes: Sequence[int] = (1,), **kwargs):
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)

    def call(self, inputs):
        # each axis split into (n / 2, 2) and the first of every pair kept with a unit-stride slice: the
        # same samples as ``x[:, ::2]``, with a gradient (a pad) that costs about half a strided slice's
        x = inputs
        for axis in self.axes:
            shape = [dim(x, a) for a in range(x.shape.rank)]
            pairs = tf.reshape(x, shape[:axis] + [shape[axis] // 2, 2] + shape[axis + 1:])
            begin = [0] * (len(shape) + 1)
            size = [-1] * (len(shape) + 1)
            size[axis + 1] = 1
            x = tf.reshape(tf.slice(pairs, begin, size), shape[:axis] + [shape[axis] // 2] + shape[axis + 1:])
        return x

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes)}


def _upsample_linear_axis(x: tf.Tensor, axis: int) -> tf.Tensor:
    """Double ``axis`` of ``x``: output ``2i`` is input ``i``, output ``2i+1`` the mean of inputs i, i+1."""
    rank = x.shape.rank
    shape = [dim(x, a) for a in range(rank)]
    begin, size = [0] * rank, [-1] * rank
    begin[axis] = 1
    after = tf.slice(x, begin, size)  # x[i+1] (unit-stride slices: cheaper gradients than strided ones)
    begin[axis], size[axis] = shape[axis] - 1, 1
    following = tf.concat([after, tf.slice(x, begin, size)], axis=axis)  # the last sample repeated
    mid = 0.5 * (x + following)
    y = tf.stack([x, mid], axis=axis + 1)  # (..., n, 2, ...)
    shape[axis] = shape[axis] * 2
    return tf.reshape(y, shape)


class LinearUpsample(tf.keras.layers.Layer):
    """Weight-free linear interpolation x2 along ``axes`` (bilinear for two axes).

    Input ``(batch, *spatial, features)``. Output position ``2i`` is input ``i`` and ``2i+1`` the
    mean of inputs ``i`` and ``i+1`` (the last input is repeated past the end), so upsampling puts
    samples back exactly where :class:`Decimate` took them.
    """

    def __init__(self, axes: Sequence[int] = (1,), **kwargs):
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)

    def call(self, inputs):
        x = inputs
        for axis in self.axes:
            x = _upsample_linear_axis(x, axis)
        return x

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes)}


# ---------------------------------------------------------------------------------------------
# Demucs' blocks
# ---------------------------------------------------------------------------------------------
class TorchUniform(tf.keras.initializers.Initializer):
    """PyTorch's default convolution initialiser, optionally with Demucs' ``rescale``.

    Samples ``U(-b, b)`` with ``b = 1 / sqrt(fan_in)``. ``fan_in`` defaults to the product of all but
    the last kernel dimension: ``kernel_size * in_channels`` for a Keras Conv kernel
    ``(*kernel, in, out)`` and ``kernel_size * out_channels`` for a ConvTranspose kernel
    ``(*kernel, out, in)``, which is PyTorch's convention for both. Biases must pass ``fan_in``.
    With ``reference > 0`` the sample is divided by ``sqrt(std / reference)``, where ``std`` is the
    sample's standard deviation for kernels and the expected kernel std ``b / sqrt(3)`` for biases.
    """

    def __init__(self, fan_in: int | None = None, reference: float | None = None, is_bias: bool = False):
        self.fan_in = fan_in
        self.reference = reference
        self.is_bias = is_bias

    def __call__(self, shape, dtype=None, **kwargs):
        dtype = tf.as_dtype(dtype or tf.float32)
        fan_in = self.fan_in or int(math.prod(shape[:-1]))
        bound = 1.0 / math.sqrt(fan_in)
        w = tf.random.uniform(shape, -bound, bound, dtype=dtype)
        if self.reference:
            std = bound / math.sqrt(3.0) if self.is_bias else tf.math.reduce_std(w)
            w = w / tf.sqrt(tf.cast(std, dtype) / self.reference)
        return w

    def get_config(self):
        return {"fan_in": self.fan_in, "reference": self.reference, "is_bias": self.is_bias}


def torch_init(rescale: float, fan_in: int) -> dict:
    """Kernel and bias initialisers of a Demucs convolution (PyTorch default + optional rescale)."""
    return {"kernel_initializer": TorchUniform(None, rescale),
            "bias_initializer": TorchUniform(fan_in, rescale, is_bias=True)}


class GLU(tf.keras.layers.Layer):
    """Gated linear unit over the last axis: ``a * sigmoid(b)`` for ``[a, b] = split(x, 2)``."""

    def call(self, inputs):
        # Slices, not tf.split: TF 2.12's oneDNN graph rewrite turns ``a * sigmoid(b)`` of one split into
        # ``b * sigmoid(b)`` (tensorflow#60941, fixed in 2.14), so graph mode computed the wrong function.
        half = tf.shape(inputs)[-1] // 2
        return inputs[..., :half] * tf.sigmoid(inputs[..., half:])


class Chain(tf.keras.layers.Layer):
    """Layers applied in order (like ``Sequential``, without its input-shape inference, so static
    shapes survive inputs of another length than the first one)."""

    def __init__(self, layers: Sequence[tf.keras.layers.Layer], **kwargs):
        super().__init__(**kwargs)
        self.chain = list(layers)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.chain:
            x = layer(x, training=training)  # Keras drops `training` for layers that take none
        return x
