"""Demucs v2 (Défossez, Usunier, Bottou & Bach 2019): one builder for both ranks, registered on waveforms
(``demucs_1d``) and on magnitude spectrogram patches (``demucs_2d``)."""
from __future__ import annotations

import math
from typing import Any, List, Sequence, Tuple

import tensorflow as tf

from ..errors import ConfigError
from .base import Body, Body1D, Body2D
from .blocks import (
    CONV,
    CONV_TRANSPOSE,
    GLU,
    Chain,
    apply_output_activation,
    bilstm,
    center_crop,
    check_output_activation,
    dim,
    fold_features,
    split_sources,
    torch_init,
)
from .params import check_bool, per_level_ints, positive_int
from .registry import register


def _channels(channels: Any, growth: Any, depth: int, filters) -> List[int]:
    if filters is not None:
        return per_level_ints(filters, depth, "filters")
    c = positive_int(channels, "channels")
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) or growth <= 0:
        raise ConfigError(f"model.params.growth must be a positive number, got {growth!r}")
    out = []
    for _ in range(depth):
        out.append(c)
        c = max(1, int(growth * c))
    return out


def _rescale(value: Any) -> float:
    if value is None or value is False:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"model.params.rescale must be a number >= 0 (0 disables it), got {value!r}")
    return float(value)


class Demucs(Body):
    """Demucs of the body's rank (1: waveforms, 2: spectrogram patches).

    Input ``(batch, *spatial, n_channels)``; output ``(batch, *spatial, n_channels, n_sources)``.
    Encoder level ``i``: ``Conv(C_i, kernel_i, stride_i, padding)`` + ReLU, then ("rewrite") a 1x1
    ``Conv(2 C_i)`` + GLU. Bottleneck: the encoder output ``(batch, T', *rest, C_last)`` is folded to
    ``(batch, T', prod(rest) * C_last)`` (in 2D: frequency folded into the features), ``lstm_layers``
    BiLSTMs run over the ``T'`` steps and a Dense maps back to ``prod(rest) * C_last`` features.
    Decoder level ``i`` (deepest first): the skip is added (centre-cropped when longer), ``Conv(2 C_i,
    context, 'same')`` + GLU, ``ConvTranspose(C_{i-1}, kernel_i, stride_i, padding)`` + ReLU, the last
    level emitting ``n_sources * n_channels`` logits turned into waveforms or masks by
    ``output_activation``. Convolutions start from PyTorch's default initialisation divided by Demucs'
    ``rescale`` factor (:func:`.blocks.torch_init`).

    What differs between the ranks is data: ``padding`` (a class attribute: 'valid' in 1D for Demucs'
    length rule, 'same' in 2D), the per-level kernel and stride shapes (``kernel_size``/``stride`` on the
    last spatial axis, ``time_kernel``/``time_stride`` before it in 2D), and ``normalize`` (1D only).
    """

    padding = "same"

    def __init__(self, n_sources: int, n_channels: int, channels: int, growth: float, depth: int,
                 filters: Sequence[int] | None, kernel_size: Any, stride: Any, context: int, rewrite: bool,
                 glu: bool, lstm_layers: int, lstm_units: int | None, rescale: float, output_activation: str,
                 name: str | None = None, time_kernel: Any = None, time_stride: Any = None,
                 normalize: bool | None = None):
        super().__init__(n_sources, n_channels, name=name)
        # time_kernel/time_stride are parameters of the 2D body only, normalize of the 1D body only
        only = {"time_kernel": time_kernel, "time_stride": time_stride, "normalize": normalize}
        self._remember(channels=channels, growth=growth, depth=depth, filters=filters, kernel_size=kernel_size,
                       stride=stride, **{k: v for k, v in only.items() if v is not None}, context=context,
                       rewrite=rewrite, glu=glu, lstm_layers=lstm_layers, lstm_units=lstm_units, rescale=rescale,
                       output_activation=output_activation)
        self.depth = positive_int(depth, "depth")
        self.channels = _channels(channels, growth, self.depth, filters)
        # per-level kernel and stride shapes, one entry per spatial axis (time first)
        axes = [("kernel_size", kernel_size, "stride", stride)]
        if self.rank == 2:
            axes.insert(0, ("time_kernel", time_kernel, "time_stride", time_stride))
        kernels, strides = [], []
        for kernel_key, kernel_value, stride_key, stride_value in axes:
            ks = per_level_ints(kernel_value, self.depth, kernel_key)
            ss = per_level_ints(stride_value, self.depth, stride_key)
            for k, s in zip(ks, ss):
                if k < s:
                    raise ConfigError(f"model.params.{kernel_key} ({k}) must be >= model.params.{stride_key} "
                                      f"({s}) so that transposed convolutions leave no gaps")
            kernels.append(ks)
            strides.append(ss)
        self.kernels = list(zip(*kernels))  # per level: (time, [freq])
        self.strides = list(zip(*strides))
        self.multiples = tuple(math.prod(s) for s in strides)  # per spatial axis
        context = positive_int(context, "context")
        rewrite, glu = check_bool(rewrite, "rewrite"), check_bool(glu, "glu")
        if isinstance(lstm_layers, bool) or not isinstance(lstm_layers, int) or lstm_layers < 0:
            raise ConfigError(f"model.params.lstm_layers must be an integer >= 0, got {lstm_layers!r}")
        self.lstm_layers = lstm_layers
        lstm_units = self.channels[-1] if lstm_units is None else positive_int(lstm_units, "lstm_units")
        rescale = _rescale(rescale)
        self.normalize = normalize is not None and check_bool(normalize, "normalize")
        self.output_activation = check_output_activation(output_activation, self.domain, self.n_sources)
        # every output depends on the whole input (LSTM, or input statistics); read by models.info
        self.global_context = bool(lstm_layers) or self.normalize

        L = tf.keras.layers
        Conv, ConvT = CONV[self.rank], CONV_TRANSPOSE[self.rank]
        scale = 2 if glu else 1

        def gate():
            return GLU() if glu else L.ReLU()

        in_channels = [self.n_channels] + self.channels[:-1]
        self.encoder, decoder = [], []
        for i, (c, kernel, strides_i) in enumerate(zip(self.channels, self.kernels, self.strides)):
            area = math.prod(kernel)
            strided = dict(strides=strides_i, padding=self.padding)
            enc = [Conv(c, kernel, **strided, **torch_init(rescale, area * in_channels[i])), L.ReLU()]
            if rewrite:
                enc += [Conv(scale * c, 1, **torch_init(rescale, c)), gate()]
            self.encoder.append(Chain(enc, name=f"encoder{i}"))
            out = in_channels[i] if i > 0 else self.n_sources * self.n_channels
            dec = []
            if rewrite:
                dec += [Conv(scale * c, context, padding="same", **torch_init(rescale, context ** self.rank * c)),
                        gate()]
            dec.append(ConvT(out, kernel, **strided, **torch_init(rescale, area * out)))
            if i > 0:
                dec.append(L.ReLU())
            decoder.append(Chain(dec, name=f"decoder{i}"))
        self.decoder = decoder[::-1]  # deepest level first
        self.lstm = [bilstm(lstm_units, f"blstm{j}") for j in range(lstm_layers)]
        self.lstm_linear = None  # Dense, created in build() once the folded feature size is known

    def build(self, input_shape):
        if self.lstm_layers:
            rest = tf.TensorShape(input_shape).as_list()[2:-1]  # spatial axes after time: (n_bins,) in 2D
            if None in rest:
                raise ConfigError(f"{type(self).__name__} needs a known n_bins (axis 2 of the input) to size its "
                                  "LSTM bottleneck")
            positions = math.prod(size // m for size, m in zip(rest, self.multiples[1:]))
            self.lstm_linear = tf.keras.layers.Dense(positions * self.channels[-1], name="blstm_linear")
        self.built = True

    def call(self, inputs, training=None):
        """``(batch, *spatial, n_channels)`` -> ``(batch, *spatial', n_channels, n_sources)``."""
        self.check_input(inputs)
        x = inputs
        if self.normalize:
            spatial = list(range(1, self.rank + 1))
            mono = tf.reduce_mean(x, axis=-1, keepdims=True)             # (batch, *spatial, 1)
            mean = tf.reduce_mean(mono, axis=spatial, keepdims=True)     # (batch, 1..., 1)
            std = tf.math.reduce_std(mono, axis=spatial, keepdims=True)  # (batch, 1..., 1)
            x = (x - mean) / (1e-5 + std)
        skips = []
        for encode in self.encoder:
            x = encode(x, training=training)   # (batch, *spatial_i, C_i)
            skips.append(x)
        if self.lstm_linear is not None:
            shape = [dim(x, a) for a in range(x.shape.rank)]
            x = fold_features(x)                # (batch, T', prod(rest) * C_last)
            for layer in self.lstm:
                x = layer(x, training=training)  # (batch, T', 2 * units)
            x = tf.reshape(self.lstm_linear(x), shape)
        for decode in self.decoder:
            x = decode(x + center_crop(skips.pop(), dim(x, 1)), training=training)
        x = split_sources(x, self.n_sources, self.n_channels)  # (batch, *spatial', n_channels, n_sources)
        if self.normalize:
            x = x * std[..., None] + mean[..., None]
        return apply_output_activation(x, self.output_activation)


@register("demucs_1d", "1d",
          description="Demucs v2 (Défossez et al. 2019): conv encoder (K8 S4) + GLU, BiLSTM, "
                      "transposed-conv decoder on waveforms")
class Demucs1D(Demucs, Body1D):
    """Demucs v2 on waveforms: 'valid' strided convolutions (kernel 8, stride 4), 64 channels doubling
    over 4 levels, a 2-layer BiLSTM, linear output. Output length == input length when ``n_samples ==
    valid_length(n_samples)``; other lengths work too (skips are centre-cropped, the output is shorter).
    ``normalize`` standardises the input by its mono mix's mean and std and undoes it on the outputs."""

    padding = "valid"

    def __init__(self, n_sources: int, n_channels: int, channels: int = 64, growth: float = 2.0, depth: int = 4,
                 filters: Sequence[int] | None = None, kernel_size: int | Sequence[int] = 8,
                 stride: int | Sequence[int] = 4, context: int = 3, rewrite: bool = True, glu: bool = True,
                 lstm_layers: int = 2, lstm_units: int | None = None, rescale: float = 0.1,
                 normalize: bool = False, output_activation: str = "linear", name: str | None = None):
        super().__init__(n_sources, n_channels, channels, growth, depth, filters, kernel_size, stride, context,
                         rewrite, glu, lstm_layers, lstm_units, rescale, output_activation, name,
                         normalize=normalize)

    def valid_length(self, n_samples: int) -> int:
        """Smallest length >= ``n_samples`` whose strided convolutions drop no sample (Demucs' rule):
        going down ``L <- ceil((L - K) / S) + 1``, going up ``L <- (L - 1) S + K``."""
        length = int(n_samples)
        for (k,), (s,) in zip(self.kernels, self.strides):
            length = max(1, math.ceil((length - k) / s) + 1)
        for (k,), (s,) in zip(reversed(self.kernels), reversed(self.strides)):
            length = (length - 1) * s + k
        return int(length)

    def check_input(self, inputs) -> None:
        """Any length is accepted (like Demucs): a non-valid one gives a shorter output."""


@register("demucs_2d", "2d",
          description="Demucs-style conv/GLU encoder (stride 4 on frequency), BiLSTM over time, "
                      "transposed-conv decoder, masks on spectrogram patches")
class Demucs2D(Demucs, Body2D):
    """Demucs on magnitude spectrogram patches: 'same' convolutions with kernel (3 time x 8 frequency) and
    stride (1, 4), so frequency shrinks 4x per level and time keeps full resolution; 32 channels doubling
    over 4 levels; the BiLSTM runs over time with frequency folded into the features (a built body
    accepts one ``n_bins`` only, any ``n_frames``); sigmoid masks by default."""

    def __init__(self, n_sources: int, n_channels: int, channels: int = 32, growth: float = 2.0, depth: int = 4,
                 filters: Sequence[int] | None = None, kernel_size: int | Sequence[int] = 8,
                 stride: int | Sequence[int] = 4, time_kernel: int | Sequence[int] = 3,
                 time_stride: int | Sequence[int] = 1, context: int = 3, rewrite: bool = True, glu: bool = True,
                 lstm_layers: int = 2, lstm_units: int | None = None, rescale: float = 0.1,
                 output_activation: str = "sigmoid", name: str | None = None):
        super().__init__(n_sources, n_channels, channels, growth, depth, filters, kernel_size, stride, context,
                         rewrite, glu, lstm_layers, lstm_units, rescale, output_activation, name,
                         time_kernel=time_kernel, time_stride=time_stride)

    def input_multiple(self) -> Tuple[int, int]:
        return self.multiples
