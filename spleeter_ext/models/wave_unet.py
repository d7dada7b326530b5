"""Wave-U-Net (Stoller, Ewert & Dixon, ISMIR 2018): one builder for both ranks, registered on waveforms
(``wave_unet_1d``) and on magnitude spectrogram patches (``wave_unet_2d``)."""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import tensorflow as tf

from .base import Body, Body1D, Body2D, ceil_to_multiple
from .blocks import (
    CONV,
    Decimate,
    LinearUpsample,
    activation_layer,
    apply_output_activation,
    check_output_activation,
    split_sources,
)
from .params import per_level, per_level_ints, per_level_kernels, positive_int
from .registry import register


class WaveUNet(Body):
    """The Wave-U-Net of the body's rank (1: waveforms, 2: spectrogram patches).

    Input ``(batch, *spatial, n_channels)``, every spatial length a multiple of ``2**depth``; output
    ``(batch, *spatial, n_channels, n_sources)``. ``depth`` downsampling levels: ``Conv(filters[i],
    down_kernel[i], 'same')`` + activation, the level's output kept as a skip, then decimation by 2
    on every spatial axis; a bottleneck convolution (``bottleneck_filters``, the deepest down kernel);
    ``depth`` upsampling levels, deepest first: weight-free linear interpolation x2, concatenation of
    the skip, ``Conv(filters[i], up_kernel[i], 'same')`` + activation. The input is concatenated and
    a 1x1 convolution gives ``n_sources * n_channels`` logits, turned into waveforms (1D) or masks
    (2D) by ``output_activation``. Filters grow linearly: ``base_filters * (i + 1)``, bottleneck
    ``base_filters * (depth + 1)``; ``filters`` and ``bottleneck_filters`` override them.
    Kernels are ints or per-level lists (each entry an int or, in 2D, a ``[time, freq]`` pair).
    """

    def __init__(self, n_sources: int, n_channels: int, depth: int, base_filters: int,
                 filters: Sequence[int] | None, down_kernel: Any, up_kernel: Any, bottleneck_filters: int | None,
                 activation: str | Sequence[str], output_activation: str, name: str | None = None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(depth=depth, base_filters=base_filters, filters=filters, down_kernel=down_kernel,
                       up_kernel=up_kernel, bottleneck_filters=bottleneck_filters, activation=activation,
                       output_activation=output_activation)
        self.depth = positive_int(depth, "depth")
        base = positive_int(base_filters, "base_filters")
        filters = per_level_ints([base * (i + 1) for i in range(self.depth)] if filters is None else filters,
                                 self.depth, "filters")
        activations = per_level(activation, self.depth, "activation")
        for name_ in activations:
            activation_layer(name_)  # raises ConfigError for unknown names
        bottleneck = positive_int(base * (self.depth + 1) if bottleneck_filters is None else bottleneck_filters,
                                  "bottleneck_filters")
        down_kernels = per_level_kernels(down_kernel, self.depth, "down_kernel", self.rank)
        up_kernels = per_level_kernels(up_kernel, self.depth, "up_kernel", self.rank)
        self.output_activation = check_output_activation(output_activation, self.domain, self.n_sources)
        self.multiple = 2 ** self.depth

        conv = CONV[self.rank]
        self.down_convs, self.down_acts = [], []
        for i in range(self.depth):
            self.down_convs.append(conv(filters[i], down_kernels[i], padding="same", name=f"down{i}_conv"))
            self.down_acts.append(activation_layer(activations[i]))
        self.bottleneck_conv = conv(bottleneck, down_kernels[-1], padding="same", name="bottleneck_conv")
        self.bottleneck_act = activation_layer(activations[-1])
        self.up_convs, self.up_acts = [], []  # deepest level first
        for i in reversed(range(self.depth)):
            self.up_convs.append(conv(filters[i], up_kernels[i], padding="same", name=f"up{i}_conv"))
            self.up_acts.append(activation_layer(activations[i]))
        spatial_axes = tuple(range(1, self.rank + 1))
        self.decimate = Decimate(axes=spatial_axes)
        self.upsample = LinearUpsample(axes=spatial_axes)
        self.output_conv = conv(self.n_sources * self.n_channels, 1, name="output_conv")

    def call(self, inputs, training=None):
        """``(batch, *spatial, n_channels)`` -> ``(batch, *spatial, n_channels, n_sources)``."""
        self.check_input(inputs)
        x = inputs
        skips = []
        for conv, act in zip(self.down_convs, self.down_acts):
            x = act(conv(x))           # (batch, *spatial / 2**i, filters[i])
            skips.append(x)
            x = self.decimate(x)       # (batch, *spatial / 2**(i+1), filters[i])
        x = self.bottleneck_act(self.bottleneck_conv(x))
        for conv, act, skip in zip(self.up_convs, self.up_acts, reversed(skips)):
            x = self.upsample(x)
            x = act(conv(tf.concat([x, skip], axis=-1)))
        x = self.output_conv(tf.concat([inputs, x], axis=-1))  # (batch, *spatial, n_sources * n_channels)
        return apply_output_activation(split_sources(x, self.n_sources, self.n_channels), self.output_activation)


@register("wave_unet_1d", "1d",
          description="Wave-U-Net (Stoller et al. 2018): 12-level 1D U-Net on waveforms, decimation + "
                      "linear upsampling, 'same' padding")
class WaveUNet1D(WaveUNet, Body1D):
    """Wave-U-Net on waveforms, the paper's model (M4/M5) by default: 12 levels, 24 more filters per level,
    kernels 15 down and 5 up, tanh output. Convolutions are 'same' instead of the paper's 'valid', so the
    output has the input's length; ``valid_length`` rounds up to a multiple of ``2**depth``."""

    def __init__(self, n_sources: int, n_channels: int, depth: int = 12, base_filters: int = 24,
                 filters: Sequence[int] | None = None, down_kernel: int | Sequence[int] = 15,
                 up_kernel: int | Sequence[int] = 5, bottleneck_filters: int | None = None,
                 activation: str | Sequence[str] = "LeakyReLU", output_activation: str = "tanh",
                 name: str | None = None):
        super().__init__(n_sources, n_channels, depth, base_filters, filters, down_kernel, up_kernel,
                         bottleneck_filters, activation, output_activation, name)

    def valid_length(self, n_samples: int) -> int:
        """``n_samples`` rounded up to a multiple of ``2**depth`` (each level halves the length)."""
        return ceil_to_multiple(n_samples, self.multiple)


@register("wave_unet_2d", "2d",
          description="Wave-U-Net family on spectrogram patches: Conv2D, decimation x2 on time and "
                      "frequency, bilinear upsampling, sigmoid masks")
class WaveUNet2D(WaveUNet, Body2D):
    """Wave-U-Net on magnitude spectrogram patches: decimation and (bilinear) upsampling on both the time
    and the frequency axis, kernels 5x5 down and 3x3 up, 6 levels (``input_multiple`` = (64, 64), like
    Spleeter's U-Net), sigmoid masks by default."""

    def __init__(self, n_sources: int, n_channels: int, depth: int = 6, base_filters: int = 24,
                 filters: Sequence[int] | None = None, down_kernel: Any = 5, up_kernel: Any = 3,
                 bottleneck_filters: int | None = None, activation: str | Sequence[str] = "LeakyReLU",
                 output_activation: str = "sigmoid", name: str | None = None):
        super().__init__(n_sources, n_channels, depth, base_filters, filters, down_kernel, up_kernel,
                         bottleneck_filters, activation, output_activation, name)

    def input_multiple(self) -> Tuple[int, int]:
        return (self.multiple, self.multiple)
