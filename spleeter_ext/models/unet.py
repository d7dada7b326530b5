"""Spleeter's U-Net (Jansson et al. 2017; Hennequin et al. 2020) as data-driven bodies.

The recipe of ``spleeter.model.functions.unet.apply_unet``, written as a loop over per-level
settings instead of six unrolled levels:

* encoder level ``i``: ``Conv(filters[i], kernel[i], stride[i], 'same')`` -> BatchNorm -> activation
  (LeakyReLU(0.2) by default); the **raw convolution output** (before normalisation) is the skip;
* the decoder starts from the raw output of the deepest convolution (Spleeter discards the last
  encoder activation);
* decoder level ``j``: ``ConvTranspose(filters[L-2-j] or 1 at the last level)`` -> activation
  (ReLU by default) -> BatchNorm -> Dropout(dropout[j]) -> concatenate the skip of level ``L-2-j``;
* the 2D body ends with ``Conv2D(n_channels, (4, 4), dilation 2)`` + sigmoid: one mask per
  source; the softmax variant (Spleeter's ``unet.softmax_unet``) normalises the logits across
  sources instead.

One independent U-Net per source, as in Spleeter. Because the layers are created in Spleeter's
order, a stock Spleeter checkpoint maps onto them by position (see :mod:`.spleeter_ckpt`).

The 1D form applies the same recipe to waveforms with ``Conv1D``: an adaptation (the paper being
reproduced has a "1D U-Net"): kernel 15 and stride 4 by default, so six levels see
``4**6 = 4096`` samples per bottleneck step, and a linear ``Conv1D(n_channels, 1)`` output per source
gives waveforms directly.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import tensorflow as tf

from ..errors import ConfigError
from .base import Body1D, Body2D, activation_layer, check_list_of_int, norm_layer, per_level
from .registry import register

SPLEETER_FILTERS = [16, 32, 64, 128, 256, 512]


def _spleeter_activation(name: Optional[str], default: str) -> str:
    """Spleeter maps unknown activation names to its default; we reject them instead (ConfigError)."""
    return default if name is None else name


class UNetStack(tf.keras.layers.Layer):
    """One U-Net (encoder, decoder, skips) in 1D or 2D; no output head.

    Input ``(batch, n_frames, n_bins, channels_in)`` (2D) or ``(batch, n_samples, channels_in)`` (1D);
    output ``(batch, ..., last_filters)`` at the input resolution when every axis length is a
    multiple of ``prod(strides)``.
    """

    def __init__(self, rank: int, filters: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int],
                 dropout: Sequence[float], conv_activation: str, deconv_activation: str,
                 normalization: Optional[str], last_filters: int, seed: Optional[int] = 50, **kwargs):
        super().__init__(**kwargs)
        Conv = tf.keras.layers.Conv2D if rank == 2 else tf.keras.layers.Conv1D
        ConvT = tf.keras.layers.Conv2DTranspose if rank == 2 else tf.keras.layers.Conv1DTranspose
        init = tf.keras.initializers.HeUniform(seed=seed)
        depth = len(filters)
        self.depth = depth
        # Creation order = Spleeter's order: (conv, bn) per encoder level, (convT, bn) per decoder level.
        self.enc_conv: List[tf.keras.layers.Layer] = []
        self.enc_norm: List[Optional[tf.keras.layers.Layer]] = []
        self.enc_act: List[tf.keras.layers.Layer] = []
        for i in range(depth):
            k = (kernel_size[i],) * rank
            s = (strides[i],) * rank
            self.enc_conv.append(Conv(filters[i], k, strides=s, padding="same", kernel_initializer=init))
            self.enc_norm.append(norm_layer(normalization))
            self.enc_act.append(activation_layer(conv_activation))
        if self.enc_norm[-1] is not None:
            # Spleeter decodes from the raw deepest convolution, so the deepest normalisation gets no
            # gradient; it is kept (frozen) only so that stock checkpoints map one to one.
            self.enc_norm[-1].trainable = False
        self.dec_conv, self.dec_norm, self.dec_act, self.dec_drop = [], [], [], []
        for j in range(depth):
            level = depth - 1 - j  # the encoder level this decoder level undoes
            n_out = filters[level - 1] if level > 0 else last_filters
            k = (kernel_size[level],) * rank
            s = (strides[level],) * rank
            self.dec_conv.append(ConvT(n_out, k, strides=s, padding="same", kernel_initializer=init))
            self.dec_act.append(activation_layer(deconv_activation))
            self.dec_norm.append(norm_layer(normalization))
            self.dec_drop.append(tf.keras.layers.Dropout(dropout[j]) if dropout[j] > 0 else None)

    def call(self, x, training=None):
        skips = []
        h = x
        raw = x
        last = self.depth - 1
        for i, (conv, norm, act) in enumerate(zip(self.enc_conv, self.enc_norm, self.enc_act)):
            raw = conv(h)
            skips.append(raw)
            if i < last:
                h = act(norm(raw, training=training) if norm is not None else raw)
            elif norm is not None and not norm.built:  # unused, but its variables exist for checkpoints
                norm.build(raw.shape)
        h = raw  # Spleeter decodes from the raw deepest convolution.
        for j in range(self.depth):
            h = self.dec_act[j](self.dec_conv[j](h))
            if self.dec_norm[j] is not None:
                h = self.dec_norm[j](h, training=training)
            if self.dec_drop[j] is not None:
                h = self.dec_drop[j](h, training=training)
            level = self.depth - 1 - j
            if level > 0:
                h = tf.concat([skips[level - 1], h], axis=-1)
        return h


def _levels(conv_n_filters, kernel_size, strides, dropout):
    filters = check_list_of_int(conv_n_filters, "conv_n_filters")
    depth = len(filters)
    kernels = per_level(kernel_size, depth, "kernel_size")
    stride_list = per_level(strides, depth, "strides")
    if dropout is None:  # Spleeter: 50 % on the first three decoder levels
        dropout = [0.5 if j < 3 else 0.0 for j in range(depth)]
    drops = per_level(dropout, depth, "dropout")
    for d in drops:
        if not 0 <= d < 1:
            raise ConfigError(f"model.params.dropout values must be in [0, 1), got {d}")
    return filters, kernels, stride_list, drops


@register("spleeter_unet_2d", "2d", aliases=("unet.unet",),
          description="Spleeter U-Net on magnitude spectrograms, one U-Net per source, sigmoid masks")
@register("spleeter_softmax_unet_2d", "2d", aliases=("unet.softmax_unet",), output_activation="softmax",
          description="Spleeter U-Net with masks normalised by a softmax across sources")
class SpleeterUNet2D(Body2D):
    """Spleeter's U-Net on spectrogram patches.

    Input ``(batch, n_frames, n_bins, n_channels)``; output masks ``(batch, n_frames, n_bins,
    n_channels, n_sources)``. ``n_frames`` and ``n_bins`` must be multiples of ``prod(strides)``
    (64 for Spleeter's six stride-2 levels).
    """

    def __init__(self, n_sources: int, n_channels: int = 2, conv_n_filters: Sequence[int] = SPLEETER_FILTERS,
                 kernel_size=5, strides=2, dropout=None, conv_activation: Optional[str] = None,
                 deconv_activation: Optional[str] = None, normalization: Optional[str] = "batch",
                 output_activation: str = "sigmoid", final_kernel: int = 4, final_dilation: int = 2,
                 name: Optional[str] = None):
        super().__init__(n_sources, n_channels, name=name)
        conv_activation = _spleeter_activation(conv_activation, "LeakyReLU")
        deconv_activation = _spleeter_activation(deconv_activation, "ReLU")
        filters, kernels, stride_list, drops = _levels(conv_n_filters, kernel_size, strides, dropout)
        if output_activation not in ("sigmoid", "softmax"):
            raise ConfigError(f"model.params.output_activation must be 'sigmoid' or 'softmax', got {output_activation!r}")
        self._remember(conv_n_filters=filters, kernel_size=kernel_size, strides=strides, dropout=drops,
                       conv_activation=conv_activation, deconv_activation=deconv_activation,
                       normalization=normalization, output_activation=output_activation,
                       final_kernel=final_kernel, final_dilation=final_dilation)
        self.strides_ = stride_list
        self.output_activation = output_activation
        init = tf.keras.initializers.HeUniform(seed=50)
        self.unets, self.heads = [], []
        for s in range(n_sources):
            self.unets.append(UNetStack(2, filters, kernels, stride_list, drops, conv_activation, deconv_activation,
                                        normalization, last_filters=1, name=f"unet_{s}"))
            self.heads.append(tf.keras.layers.Conv2D(n_channels, (final_kernel, final_kernel),
                                                     dilation_rate=(final_dilation, final_dilation),
                                                     padding="same", kernel_initializer=init, name=f"head_{s}"))

    def input_multiple(self):
        m = 1
        for s in self.strides_:
            m *= s
        return (m, m)

    def mask_logits(self, x, training=None):
        """Per-source logits ``(batch, n_frames, n_bins, n_channels, n_sources)``."""
        return tf.stack([head(unet(x, training=training)) for unet, head in zip(self.unets, self.heads)], axis=-1)

    def call(self, x, training=None):
        logits = self.mask_logits(x, training=training)
        if self.output_activation == "softmax":
            return tf.nn.softmax(logits, axis=-1)
        return tf.sigmoid(logits)


@register("spleeter_unet_1d", "1d",
          description="Spleeter's U-Net recipe on waveforms (Conv1D, stride 4), one U-Net per source")
class SpleeterUNet1D(Body1D):
    """Spleeter's U-Net recipe on waveforms.

    Input ``(batch, n_samples, n_channels)``; output ``(batch, n_samples, n_channels, n_sources)``
    when ``n_samples`` is a multiple of ``prod(strides)`` (see :meth:`valid_length`).
    """

    def __init__(self, n_sources: int, n_channels: int = 2, conv_n_filters: Sequence[int] = SPLEETER_FILTERS,
                 kernel_size=15, strides=4, dropout=None, conv_activation: Optional[str] = None,
                 deconv_activation: Optional[str] = None, normalization: Optional[str] = "batch",
                 output_activation: str = "linear", name: Optional[str] = None):
        super().__init__(n_sources, n_channels, name=name)
        conv_activation = _spleeter_activation(conv_activation, "LeakyReLU")
        deconv_activation = _spleeter_activation(deconv_activation, "ReLU")
        filters, kernels, stride_list, drops = _levels(conv_n_filters, kernel_size, strides, dropout)
        self._remember(conv_n_filters=filters, kernel_size=kernel_size, strides=strides, dropout=drops,
                       conv_activation=conv_activation, deconv_activation=deconv_activation,
                       normalization=normalization, output_activation=output_activation)
        self.strides_ = stride_list
        self.unets, self.heads = [], []
        for s in range(n_sources):
            self.unets.append(UNetStack(1, filters, kernels, stride_list, drops, conv_activation, deconv_activation,
                                        normalization, last_filters=filters[0], name=f"unet_{s}"))
            self.heads.append(tf.keras.Sequential([
                tf.keras.layers.Conv1D(n_channels, 1, name=f"head_{s}"), activation_layer(output_activation)]))

    def valid_length(self, n_samples: int) -> int:
        m = 1
        for s in self.strides_:
            m *= s
        return int(-(-int(n_samples) // m) * m)

    def call(self, x, training=None):
        return tf.stack([head(unet(x, training=training)) for unet, head in zip(self.unets, self.heads)], axis=-1)
