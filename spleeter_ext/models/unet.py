"""Spleeter's U-Net (Jansson et al. 2017; Hennequin et al. 2020) as one data-driven stack for both ranks,
and its bodies: masks on spectrogram patches (2D) and waveforms (1D)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import tensorflow as tf

from ..errors import ConfigError
from .base import Body, Body1D, Body2D, ceil_to_multiple
from .blocks import CONV, CONV_TRANSPOSE, activation_layer, apply_output_activation, check_output_activation, norm_layer
from .params import check_list_of_int, per_level
from .registry import register

SPLEETER_FILTERS = [16, 32, 64, 128, 256, 512]


def _spleeter_activation(name: Optional[str], default: str) -> str:
    """Spleeter maps unknown activation names to its default; we reject them instead (ConfigError)."""
    return default if name is None else name


class UNetStack(tf.keras.layers.Layer):
    """One U-Net (encoder, decoder, skips) in 1D or 2D; no output head.

    Spleeter's ``apply_unet`` as a loop over per-level settings: encoder level ``i`` is
    ``Conv(filters[i], kernel[i], stride[i], 'same')`` -> normalisation -> activation, its **raw
    convolution output** (before normalisation) being the skip; the decoder starts from the raw deepest
    convolution; decoder level ``j`` is ``ConvTranspose`` -> activation -> normalisation -> dropout ->
    concatenation of the skip of level ``L-2-j``. Layers are created in Spleeter's order, so a stock
    checkpoint maps onto them by position (:mod:`.spleeter_ckpt`).

    Input ``(batch, n_frames, n_bins, channels_in)`` (2D) or ``(batch, n_samples, channels_in)`` (1D);
    output ``(batch, ..., last_filters)`` at the input resolution when every axis length is a
    multiple of ``prod(strides)``.
    """

    def __init__(self, rank: int, filters: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int],
                 dropout: Sequence[float], conv_activation: str, deconv_activation: str,
                 normalization: Optional[str], last_filters: int, seed: Optional[int] = 50, **kwargs):
        super().__init__(**kwargs)
        Conv, ConvT = CONV[rank], CONV_TRANSPOSE[rank]
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


class _SpleeterUNets(Body):
    """One :class:`UNetStack` of the body's rank per source (Spleeter's layout), configuration and
    validation; the 1D and 2D bodies add their output heads."""

    def __init__(self, n_sources: int, n_channels: int, conv_n_filters, kernel_size, strides, dropout,
                 conv_activation: Optional[str], deconv_activation: Optional[str], normalization: Optional[str],
                 output_activation: str, name: Optional[str], last_filters: Optional[int] = None, **extra):
        super().__init__(n_sources, n_channels, name=name)
        conv_activation = _spleeter_activation(conv_activation, "LeakyReLU")
        deconv_activation = _spleeter_activation(deconv_activation, "ReLU")
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
        self._remember(conv_n_filters=filters, kernel_size=kernel_size, strides=strides, dropout=drops,
                       conv_activation=conv_activation, deconv_activation=deconv_activation,
                       normalization=normalization, output_activation=output_activation, **extra)
        self.strides_ = stride_list
        self.multiple = math.prod(stride_list)
        self.unets = [UNetStack(self.rank, filters, kernels, stride_list, drops, conv_activation, deconv_activation,
                                normalization, last_filters=last_filters or filters[0], name=f"unet_{s}")
                      for s in range(n_sources)]


@register("spleeter_unet_2d", "2d", aliases=("unet.unet",),
          description="Spleeter U-Net on magnitude spectrograms, one U-Net per source, sigmoid masks")
@register("spleeter_softmax_unet_2d", "2d", aliases=("unet.softmax_unet",), output_activation="softmax",
          description="Spleeter U-Net with masks normalised by a softmax across sources")
class SpleeterUNet2D(_SpleeterUNets, Body2D):
    """Spleeter's U-Net on spectrogram patches.

    Input ``(batch, n_frames, n_bins, n_channels)``; output masks ``(batch, n_frames, n_bins,
    n_channels, n_sources)``. ``n_frames`` and ``n_bins`` must be multiples of ``prod(strides)``
    (64 for Spleeter's six stride-2 levels). Each U-Net ends in one filter and the head
    ``Conv2D(n_channels, final_kernel, dilation final_dilation)`` gives its source's mask logits.
    """

    def __init__(self, n_sources: int, n_channels: int = 2, conv_n_filters: Sequence[int] = SPLEETER_FILTERS,
                 kernel_size=5, strides=2, dropout=None, conv_activation: Optional[str] = None,
                 deconv_activation: Optional[str] = None, normalization: Optional[str] = "batch",
                 output_activation: str = "sigmoid", final_kernel: int = 4, final_dilation: int = 2,
                 name: Optional[str] = None):
        super().__init__(n_sources, n_channels, conv_n_filters, kernel_size, strides, dropout, conv_activation,
                         deconv_activation, normalization, output_activation, name, last_filters=1,
                         final_kernel=final_kernel, final_dilation=final_dilation)
        self.output_activation = check_output_activation(output_activation, self.domain, self.n_sources)
        init = tf.keras.initializers.HeUniform(seed=50)
        self.heads = [tf.keras.layers.Conv2D(n_channels, (final_kernel, final_kernel),
                                             dilation_rate=(final_dilation, final_dilation),
                                             padding="same", kernel_initializer=init, name=f"head_{s}")
                      for s in range(n_sources)]

    def input_multiple(self):
        return (self.multiple, self.multiple)

    def mask_logits(self, x, training=None):
        """Per-source logits ``(batch, n_frames, n_bins, n_channels, n_sources)``."""
        self.check_input(x)
        return tf.stack([head(unet(x, training=training)) for unet, head in zip(self.unets, self.heads)], axis=-1)

    def call(self, x, training=None):
        return apply_output_activation(self.mask_logits(x, training=training), self.output_activation)


@register("spleeter_unet_1d", "1d",
          description="Spleeter's U-Net recipe on waveforms (Conv1D, stride 4), one U-Net per source")
class SpleeterUNet1D(_SpleeterUNets, Body1D):
    """Spleeter's U-Net recipe on waveforms.

    Input ``(batch, n_samples, n_channels)``; output ``(batch, n_samples, n_channels, n_sources)``
    when ``n_samples`` is a multiple of ``prod(strides)`` (see :meth:`valid_length`). Each U-Net
    ends in ``conv_n_filters[0]`` filters and the head ``Conv1D(n_channels, 1)`` + ``output_activation``
    (any activation name, linear by default) gives its source's waveform.
    """

    def __init__(self, n_sources: int, n_channels: int = 2, conv_n_filters: Sequence[int] = SPLEETER_FILTERS,
                 kernel_size=15, strides=4, dropout=None, conv_activation: Optional[str] = None,
                 deconv_activation: Optional[str] = None, normalization: Optional[str] = "batch",
                 output_activation: str = "linear", name: Optional[str] = None):
        super().__init__(n_sources, n_channels, conv_n_filters, kernel_size, strides, dropout, conv_activation,
                         deconv_activation, normalization, output_activation, name)
        self.heads = [tf.keras.Sequential([tf.keras.layers.Conv1D(n_channels, 1, name=f"head_{s}"),
                                           activation_layer(output_activation)])
                      for s in range(n_sources)]

    def valid_length(self, n_samples: int) -> int:
        return ceil_to_multiple(n_samples, self.multiple)

    def call(self, x, training=None):
        self.check_input(x)
        return tf.stack([head(unet(x, training=training)) for unet, head in zip(self.unets, self.heads)], axis=-1)
