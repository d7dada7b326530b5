"""Wave-U-Net (Stoller, Ewert & Dixon, ISMIR 2018) on waveforms, and its sibling on spectrogram patches.

``wave_unet_1d``
    The paper's architecture. ``depth`` downsampling blocks: ``Conv1D(filters[i], down_kernel)`` +
    LeakyReLU, the block's output kept as a skip, then decimation by 2 (every other sample dropped,
    no anti-alias filter, as in the paper). A bottleneck convolution. ``depth`` upsampling blocks
    (deepest first): weight-free linear interpolation x2, concatenation of the level's skip,
    ``Conv1D(filters[i], up_kernel)`` + LeakyReLU. Finally the input mixture is concatenated and a
    1x1 convolution gives ``n_sources * n_channels`` waveforms (tanh or linear). The paper's model
    (M4/M5: 12 levels, 24 extra filters per level, kernels 15 down / 5 up) is the default.

    Padding. The original code uses ``'valid'`` convolutions ("context" mode): every output sample
    is computed from real input only, so the network predicts the centre of a longer input
    (e.g. 147443 input samples for 16389 outputs) and songs are processed as overlapping tiles of
    that context. Here convolutions use ``'same'`` padding instead, so that the body satisfies this
    toolkit's waveform contract (output length == input length, ``valid_length(n)`` = ``n`` rounded up
    to a multiple of ``2**depth``) and the waveform estimator's pad/crop and overlap-add chunking work
    unchanged for every 1D body. The price is zero-padding at the borders of each input chunk, which
    the estimator's overlapping chunks hide; the receptive field and cost per sample are unchanged.

``wave_unet_2d``
    The same family on magnitude spectrogram patches (see :class:`WaveUNet2D` for the adaptation).

The module also holds small weight-free layers and helpers shared with the Demucs and BLSTM bodies
(decimation, linear upsampling, output-activation checks, mask activations).
"""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import tensorflow as tf

from ..errors import ConfigError, ParameterError
from .base import Body1D, Body2D, activation_layer, per_level
from .registry import register

WAVE_OUTPUT_ACTIVATIONS = ("tanh", "linear")
MASK_ACTIVATIONS = ("sigmoid", "softmax", "relu")


# ---------------------------------------------------------------------------------------------
# helpers shared by the bodies of wave_unet.py, demucs.py and blstm.py
# ---------------------------------------------------------------------------------------------
def positive_int(value: Any, key: str) -> int:
    """``value`` as an int > 0, or a ConfigError naming ``model.params.<key>``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.params.{key} must be a positive integer, got {value!r}")
    return int(value)


def per_level_ints(value: Any, depth: int, key: str) -> List[int]:
    """Broadcast an int to ``depth`` levels, or check a per-level list (length and positivity)."""
    values = per_level(value, depth, key)
    for v in values:
        positive_int(v, key)
    return [int(v) for v in values]


def per_level_kernels_2d(value: Any, depth: int, key: str) -> List[Tuple[int, int]]:
    """2D kernel sizes per level as ``(time, freq)`` pairs.

    ``value`` is an int (a square kernel on every level) or a per-level list of ``depth`` entries,
    each an int or a ``[time, freq]`` pair. A flat list is always per-level (never one pair for all
    levels), so ``[5, 3]`` with depth 2 means 5x5 then 3x3.
    """
    entries = per_level(value, depth, key)
    pairs = []
    for entry in entries:
        if isinstance(entry, (list, tuple)):
            if len(entry) != 2:
                raise ConfigError(f"model.params.{key}: a per-level kernel is an int or a [time, freq] pair, "
                                  f"got {entry!r}")
            pairs.append((positive_int(entry[0], key), positive_int(entry[1], key)))
        else:
            k = positive_int(entry, key)
            pairs.append((k, k))
    return pairs


def check_choice(value: Any, allowed: Sequence[str], key: str) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ConfigError(f"model.params.{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value.lower()


def check_mask_activation(value: Any, n_sources: int) -> str:
    """Validate a 2D body's ``output_activation`` ('sigmoid' | 'softmax' | 'relu')."""
    kind = check_choice(value, MASK_ACTIVATIONS, "output_activation")
    if kind == "softmax" and n_sources < 2:
        raise ConfigError("model.params.output_activation 'softmax' normalises masks across sources and "
                          "needs n_sources >= 2; use 'sigmoid' for a single source")
    return kind


def apply_mask_activation(logits: tf.Tensor, kind: str) -> tf.Tensor:
    """Turn ``(batch, n_frames, n_bins, n_channels, n_sources)`` logits into non-negative masks.

    'sigmoid': each mask in [0, 1]; 'softmax': across the last (sources) axis, so masks sum to one
    at every time-frequency-channel point; 'relu': unbounded non-negative masks.
    """
    if kind == "sigmoid":
        return tf.sigmoid(logits)
    if kind == "softmax":
        return tf.nn.softmax(logits, axis=-1)
    if kind == "relu":
        return tf.nn.relu(logits)
    raise ConfigError(f"unknown mask activation {kind!r}")


def dim(x: tf.Tensor, axis: int):
    """Static size of ``axis`` when known, else the dynamic one (keeps static shapes through reshapes)."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


def check_multiple(size, multiple: int, what: str, hint: str) -> None:
    """Raise ParameterError when a statically known ``size`` is not a multiple of ``multiple``."""
    if size is not None and size % multiple:
        raise ParameterError(f"{what} is {size}, not a multiple of {multiple}; {hint}")


class Decimate(tf.keras.layers.Layer):
    """Keep samples 0, 2, 4, ... along ``axes`` (no anti-alias filter, no weights), as in Wave-U-Net.

    Input ``(batch, *spatial, features)``; each axis in ``axes`` is halved (the axis must be even).
    """

    def __init__(self, axes: Sequence[int] = (1,), **kwargs):
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)

    def call(self, inputs):
        index = [slice(None)] * inputs.shape.rank
        for axis in self.axes:
            index[axis] = slice(None, None, 2)
        return inputs[tuple(index)]

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes)}


def _upsample_linear_axis(x: tf.Tensor, axis: int) -> tf.Tensor:
    """Double ``axis`` of ``x``: output ``2i`` is input ``i``, output ``2i+1`` the mean of inputs i, i+1."""
    rank = x.shape.rank
    after = [slice(None)] * rank
    after[axis] = slice(1, None)
    last = [slice(None)] * rank
    last[axis] = slice(-1, None)
    following = tf.concat([x[tuple(after)], x[tuple(last)]], axis=axis)  # x[i+1], last sample repeated
    mid = 0.5 * (x + following)
    y = tf.stack([x, mid], axis=axis + 1)  # (..., n, 2, ...)
    shape = [dim(x, a) for a in range(rank)]
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
# the Wave-U-Net family
# ---------------------------------------------------------------------------------------------
class _WaveUNetLevels:
    """Per-level settings shared by the 1D and 2D Wave-U-Nets, validated (ConfigError names the key)."""

    def __init__(self, depth, base_filters, filters, activation, bottleneck_filters):
        self.depth = positive_int(depth, "depth")
        base = positive_int(base_filters, "base_filters")
        default = [base * (i + 1) for i in range(self.depth)]
        self.filters = per_level_ints(default if filters is None else filters, self.depth, "filters")
        self.activations = per_level(activation, self.depth, "activation")
        for name in self.activations:
            activation_layer(name)  # raises ConfigError for unknown names
        self.bottleneck_filters = positive_int(base * (self.depth + 1) if bottleneck_filters is None
                                               else bottleneck_filters, "bottleneck_filters")


@register("wave_unet_1d", "1d",
          description="Wave-U-Net (Stoller et al. 2018): 12-level 1D U-Net on waveforms, decimation + "
                      "linear upsampling, 'same' padding")
class WaveUNet1D(Body1D):
    """Wave-U-Net on waveforms.

    Input ``(batch, n_samples, n_channels)``; output ``(batch, n_samples, n_channels, n_sources)``
    waveforms. ``n_samples`` must be a multiple of ``2**depth`` (``valid_length`` rounds up).

    Args:
        depth: number of downsampling (and upsampling) levels; 12 in the paper.
        base_filters: filters of level ``i`` are ``base_filters * (i + 1)`` (24, 48, ... 288), the
            bottleneck has ``base_filters * (depth + 1)``.
        filters: optional per-level list overriding the above (length ``depth``).
        down_kernel: kernel of the downsampling convolutions (and the bottleneck): int or per-level list.
        up_kernel: kernel of the upsampling ("merge") convolutions: int or per-level list.
        bottleneck_filters: optional override of the bottleneck width.
        activation: hidden activation name, or a per-level list (the bottleneck uses the last one).
        output_activation: 'tanh' (paper) or 'linear'.
    """

    def __init__(self, n_sources: int, n_channels: int, depth: int = 12, base_filters: int = 24,
                 filters: Sequence[int] | None = None, down_kernel: int | Sequence[int] = 15,
                 up_kernel: int | Sequence[int] = 5, bottleneck_filters: int | None = None,
                 activation: str | Sequence[str] = "LeakyReLU", output_activation: str = "tanh",
                 name: str | None = None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(depth=depth, base_filters=base_filters, filters=filters, down_kernel=down_kernel,
                       up_kernel=up_kernel, bottleneck_filters=bottleneck_filters, activation=activation,
                       output_activation=output_activation)
        levels = _WaveUNetLevels(depth, base_filters, filters, activation, bottleneck_filters)
        self.depth = levels.depth
        down_kernels = per_level_ints(down_kernel, self.depth, "down_kernel")
        up_kernels = per_level_ints(up_kernel, self.depth, "up_kernel")
        self.output_activation = check_choice(output_activation, WAVE_OUTPUT_ACTIVATIONS, "output_activation")

        conv = tf.keras.layers.Conv1D
        self.down_convs, self.down_acts = [], []
        for i in range(self.depth):
            self.down_convs.append(conv(levels.filters[i], down_kernels[i], padding="same", name=f"down{i}_conv"))
            self.down_acts.append(activation_layer(levels.activations[i]))
        self.bottleneck_conv = conv(levels.bottleneck_filters, down_kernels[-1], padding="same", name="bottleneck_conv")
        self.bottleneck_act = activation_layer(levels.activations[-1])
        self.up_convs, self.up_acts = [], []  # deepest level first
        for i in reversed(range(self.depth)):
            self.up_convs.append(conv(levels.filters[i], up_kernels[i], padding="same", name=f"up{i}_conv"))
            self.up_acts.append(activation_layer(levels.activations[i]))
        self.decimate = Decimate(axes=(1,))
        self.upsample = LinearUpsample(axes=(1,))
        self.output_conv = conv(self.n_sources * self.n_channels, 1, name="output_conv")

    def valid_length(self, n_samples: int) -> int:
        """``n_samples`` rounded up to a multiple of ``2**depth`` (each level halves the length)."""
        m = 2 ** self.depth
        return int(-(-int(n_samples) // m) * m)

    def call(self, inputs, training=None):
        """``(batch, n_samples, n_channels)`` -> ``(batch, n_samples, n_channels, n_sources)``."""
        check_multiple(inputs.shape[1], 2 ** self.depth, "wave_unet_1d input length",
                       "pad it to valid_length(n)")
        x = inputs
        skips = []
        for conv, act in zip(self.down_convs, self.down_acts):
            x = act(conv(x))           # (batch, n / 2**i, filters[i])
            skips.append(x)
            x = self.decimate(x)       # (batch, n / 2**(i+1), filters[i])
        x = self.bottleneck_act(self.bottleneck_conv(x))
        for conv, act, skip in zip(self.up_convs, self.up_acts, reversed(skips)):
            x = self.upsample(x)
            x = act(conv(tf.concat([x, skip], axis=-1)))
        x = self.output_conv(tf.concat([inputs, x], axis=-1))  # (batch, n, n_sources * n_channels)
        if self.output_activation == "tanh":
            x = tf.tanh(x)
        # output channel s * n_channels + c is channel c of source s
        x = tf.reshape(x, [dim(x, 0), dim(x, 1), self.n_sources, self.n_channels])
        return tf.transpose(x, [0, 1, 3, 2])


@register("wave_unet_2d", "2d",
          description="Wave-U-Net family on spectrogram patches: Conv2D, decimation x2 on time and "
                      "frequency, bilinear upsampling, sigmoid masks")
class WaveUNet2D(Body2D):
    """Wave-U-Net adapted to magnitude spectrogram patches.

    Input ``(batch, n_frames, n_bins, n_channels)``; output ``(batch, n_frames, n_bins, n_channels,
    n_sources)`` masks. ``n_frames`` and ``n_bins`` must be multiples of ``2**depth``.

    Adaptation. Each level is ``Conv2D(filters[i], down_kernel, 'same')`` + LeakyReLU, the skip, then
    decimation by 2 on both the time and the frequency axis (every other frame and bin dropped); the
    bottleneck is one more convolution; each upsampling level is weight-free bilinear interpolation x2
    (linear on time, then on frequency), concatenation of the skip and ``Conv2D(filters[i],
    up_kernel)`` + LeakyReLU; the input magnitude is concatenated and a 1x1 convolution gives
    ``n_channels * n_sources`` mask logits.

    Kernels: 5x5 down, 3x3 up (default). The 1D model's 15-tap kernels span 0.3 ms of audio; one
    spectrogram frame already summarises a 4096-sample window, and a 15x15 kernel would cost 225 taps
    per channel pair. 5x5 covers 5 frames (116 ms at hop 1024 / 44.1 kHz) x 5 bins (54 Hz) at the
    first level and doubles its reach with every level, like the 1D model; the up/down ratio 3:5
    follows the paper's 5:15 "merge" kernels being smaller than the downsampling ones.

    Depth: each level halves both axes, so a 512-frame x 1024-bin patch allows at most 9 levels on
    time (2**9 = 512 -> 1 frame) and 10 on frequency. The default, 6 levels, leaves an 8 x 16
    bottleneck and needs multiples of 64 on both axes, like Spleeter's U-Net (6 stride-2 levels).
    Filters grow linearly as in the paper: ``base_filters * (i + 1)``, bottleneck
    ``base_filters * (depth + 1)``.
    """

    def __init__(self, n_sources: int, n_channels: int, depth: int = 6, base_filters: int = 24,
                 filters: Sequence[int] | None = None, down_kernel: Any = 5, up_kernel: Any = 3,
                 bottleneck_filters: int | None = None, activation: str | Sequence[str] = "LeakyReLU",
                 output_activation: str = "sigmoid", name: str | None = None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(depth=depth, base_filters=base_filters, filters=filters, down_kernel=down_kernel,
                       up_kernel=up_kernel, bottleneck_filters=bottleneck_filters, activation=activation,
                       output_activation=output_activation)
        levels = _WaveUNetLevels(depth, base_filters, filters, activation, bottleneck_filters)
        self.depth = levels.depth
        down_kernels = per_level_kernels_2d(down_kernel, self.depth, "down_kernel")
        up_kernels = per_level_kernels_2d(up_kernel, self.depth, "up_kernel")
        self.output_activation = check_mask_activation(output_activation, self.n_sources)

        conv = tf.keras.layers.Conv2D
        self.down_convs, self.down_acts = [], []
        for i in range(self.depth):
            self.down_convs.append(conv(levels.filters[i], down_kernels[i], padding="same", name=f"down{i}_conv"))
            self.down_acts.append(activation_layer(levels.activations[i]))
        self.bottleneck_conv = conv(levels.bottleneck_filters, down_kernels[-1], padding="same", name="bottleneck_conv")
        self.bottleneck_act = activation_layer(levels.activations[-1])
        self.up_convs, self.up_acts = [], []  # deepest level first
        for i in reversed(range(self.depth)):
            self.up_convs.append(conv(levels.filters[i], up_kernels[i], padding="same", name=f"up{i}_conv"))
            self.up_acts.append(activation_layer(levels.activations[i]))
        self.decimate = Decimate(axes=(1, 2))
        self.upsample = LinearUpsample(axes=(1, 2))
        self.output_conv = conv(self.n_channels * self.n_sources, 1, name="output_conv")

    def input_multiple(self) -> Tuple[int, int]:
        m = 2 ** self.depth
        return (m, m)

    def call(self, inputs, training=None):
        """``(batch, n_frames, n_bins, n_channels)`` -> ``(batch, n_frames, n_bins, n_channels, n_sources)``."""
        m = 2 ** self.depth
        check_multiple(inputs.shape[1], m, "wave_unet_2d n_frames", "pad it to input_multiple()")
        check_multiple(inputs.shape[2], m, "wave_unet_2d n_bins", "pad it to input_multiple()")
        x = inputs
        skips = []
        for conv, act in zip(self.down_convs, self.down_acts):
            x = act(conv(x))          # (batch, T / 2**i, F / 2**i, filters[i])
            skips.append(x)
            x = self.decimate(x)
        x = self.bottleneck_act(self.bottleneck_conv(x))
        for conv, act, skip in zip(self.up_convs, self.up_acts, reversed(skips)):
            x = self.upsample(x)
            x = act(conv(tf.concat([x, skip], axis=-1)))
        x = self.output_conv(tf.concat([inputs, x], axis=-1))  # (batch, T, F, n_sources * n_channels)
        x = tf.reshape(x, [dim(x, 0), dim(x, 1), dim(x, 2), self.n_sources, self.n_channels])
        x = tf.transpose(x, [0, 1, 2, 4, 3])
        return apply_mask_activation(x, self.output_activation)
