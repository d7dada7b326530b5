"""Demucs (Défossez, Usunier, Bottou & Bach 2019, "Music Source Separation in the Waveform Domain", v2).

``demucs_1d``
    Encoder level ``i``: ``Conv1D(C_i, kernel 8, stride 4, 'valid')`` + ReLU, then ("rewrite")
    ``Conv1D(2 C_i, 1)`` + GLU. ``C_0 = channels`` (64) and ``C_{i+1} = int(growth * C_i)``.
    Bottleneck: ``lstm_layers`` (2) bidirectional LSTM layers over time with ``C_last`` units per
    direction, then a Dense back to ``C_last`` features. Decoder level ``i`` (deepest first): the
    encoder output of that level is added (centre-cropped when longer), ``Conv1D(2 C_i, context)``
    + GLU, ``Conv1DTranspose(C_{i-1}, kernel 8, stride 4, 'valid')`` + ReLU, the last level emitting
    ``n_sources * n_channels`` waveforms without ReLU.

    Lengths follow Demucs' ``valid_length``: going down, ``L <- ceil((L - K) / S) + 1``, going up
    ``L <- (L - 1) S + K``, so for a valid input no strided convolution drops samples and the
    transposed convolutions rebuild exactly the encoder lengths. One deviation: Demucs v2's decoder
    ``context`` convolution is unpadded, so every decoder level loses ``context - 1`` samples, the
    output is shorter than the input and has to be centre-trimmed; here that convolution uses
    ``'same'`` padding (as later Demucs versions do), so output length == input length for every
    valid length, as the toolkit's waveform contract requires. Non-valid lengths still work: skips
    are centre-cropped and the output is shorter than the input.

    Initialisation: convolutions start from PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    (kernel and bias), and with ``rescale`` (0.1 in Demucs) every convolution's weights are divided
    by ``sqrt(std / rescale)``, ``std`` being the standard deviation of its initial kernel, which pulls
    the weight scale towards ``rescale`` ("rescale" trick of Demucs v2). Biases are divided by the same
    factor computed from the kernel distribution's expected std. ``rescale=0`` keeps PyTorch's
    default. LSTM and Dense layers keep Keras' defaults.

    ``normalize=True`` standardises the input by the mean and std of its mono mix (per example, over
    time) and undoes it on the outputs, as in later Demucs v2 releases. Demucs v2's ``resample``
    (internal x2 upsampling of the input) and ``upsample`` (Wave-U-Net-style decoder) options are
    not provided.

``demucs_2d``
    The same encoder/decoder on magnitude spectrogram patches with a BiLSTM over time and mask
    outputs; see :class:`Demucs2D` for the adaptation.
"""
from __future__ import annotations

import math
from typing import Any, List, Sequence, Tuple

import tensorflow as tf

from ..errors import ConfigError
from .base import Body1D, Body2D
from .registry import register
from .wave_unet import (WAVE_OUTPUT_ACTIVATIONS, apply_mask_activation, check_choice, check_mask_activation,
                        check_multiple, dim, per_level_ints, positive_int)


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


def _init(rescale, fan_in: int):
    """Kernel and bias initialisers of a Demucs convolution (PyTorch default + optional rescale)."""
    return {"kernel_initializer": TorchUniform(None, rescale),
            "bias_initializer": TorchUniform(fan_in, rescale, is_bias=True)}


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


def _demucs_channels(channels: Any, growth: Any, depth: int, filters) -> List[int]:
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


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"model.params.{key} must be true or false, got {value!r}")
    return value


def _rescale(value: Any) -> float:
    if value is None or value is False:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"model.params.rescale must be a number >= 0 (0 disables it), got {value!r}")
    return float(value)


def _lstm_stack(layers: int, units: int, prefix: str) -> List[tf.keras.layers.Layer]:
    return [tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(units, return_sequences=True),
                                          name=f"{prefix}{j}") for j in range(layers)]


class _DemucsLevels:
    """Validated settings shared by the 1D and 2D Demucs bodies."""

    def __init__(self, channels, growth, depth, filters, context, rewrite, glu, lstm_layers, lstm_units, rescale):
        self.depth = positive_int(depth, "depth")
        self.channels = _demucs_channels(channels, growth, self.depth, filters)
        self.context = positive_int(context, "context")
        self.rewrite = _bool(rewrite, "rewrite")
        self.glu = _bool(glu, "glu")
        if isinstance(lstm_layers, bool) or not isinstance(lstm_layers, int) or lstm_layers < 0:
            raise ConfigError(f"model.params.lstm_layers must be an integer >= 0, got {lstm_layers!r}")
        self.lstm_layers = lstm_layers
        self.lstm_units = self.channels[-1] if lstm_units is None else positive_int(lstm_units, "lstm_units")
        self.rescale = _rescale(rescale)
        self.scale = 2 if self.glu else 1

    def gate(self) -> tf.keras.layers.Layer:
        return GLU() if self.glu else tf.keras.layers.ReLU()


@register("demucs_1d", "1d",
          description="Demucs v2 (Défossez et al. 2019): conv encoder (K8 S4) + GLU, BiLSTM, "
                      "transposed-conv decoder on waveforms")
class Demucs1D(Body1D):
    """Demucs v2 on waveforms.

    Input ``(batch, n_samples, n_channels)``; output ``(batch, n_samples, n_channels, n_sources)``
    waveforms when ``n_samples == valid_length(n_samples)``.

    Args:
        channels: channels of the first level (64); level ``i`` has ``int(growth * C_{i-1})``.
        growth: channel multiplier per level (2).
        depth: number of levels (4 here; Demucs v2's release used 6).
        filters: optional per-level channel list overriding ``channels``/``growth``.
        kernel_size, stride: encoder convolution kernel (8) and stride (4), int or per-level list;
            ``kernel_size >= stride`` on every level.
        context: kernel of the decoder's "rewrite" convolution (3, 'same' padding).
        rewrite: add the 1x1 encoder / ``context`` decoder convolutions (True).
        glu: gate the rewrite convolutions with GLU (doubling their output channels) instead of ReLU.
        lstm_layers: BiLSTM layers in the bottleneck (2; 0 removes the LSTM).
        lstm_units: LSTM units per direction (default ``C_last``).
        rescale: Demucs' weight rescaling reference (0.1; 0 disables).
        normalize: standardise the input by its mono mix statistics and undo it on the output.
        output_activation: 'linear' (Demucs) or 'tanh'.
    """

    def __init__(self, n_sources: int, n_channels: int, channels: int = 64, growth: float = 2.0, depth: int = 4,
                 filters: Sequence[int] | None = None, kernel_size: int | Sequence[int] = 8,
                 stride: int | Sequence[int] = 4, context: int = 3, rewrite: bool = True, glu: bool = True,
                 lstm_layers: int = 2, lstm_units: int | None = None, rescale: float = 0.1,
                 normalize: bool = False, output_activation: str = "linear", name: str | None = None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(channels=channels, growth=growth, depth=depth, filters=filters, kernel_size=kernel_size,
                       stride=stride, context=context, rewrite=rewrite, glu=glu, lstm_layers=lstm_layers,
                       lstm_units=lstm_units, rescale=rescale, normalize=normalize,
                       output_activation=output_activation)
        lv = _DemucsLevels(channels, growth, depth, filters, context, rewrite, glu, lstm_layers, lstm_units, rescale)
        self.depth = lv.depth
        self.kernels = per_level_ints(kernel_size, self.depth, "kernel_size")
        self.strides = per_level_ints(stride, self.depth, "stride")
        for k, s in zip(self.kernels, self.strides):
            if k < s:
                raise ConfigError(f"model.params.kernel_size ({k}) must be >= model.params.stride ({s}) "
                                  "so that transposed convolutions leave no gaps")
        self.normalize = _bool(normalize, "normalize")
        self.output_activation = check_choice(output_activation, WAVE_OUTPUT_ACTIVATIONS, "output_activation")
        # every output depends on the whole input (LSTM, or input statistics); read by models.info
        self.global_context = bool(lv.lstm_layers) or self.normalize

        L = tf.keras.layers
        in_channels = [self.n_channels] + lv.channels[:-1]
        self.encoder, decoder = [], []
        for i, (c, k, s) in enumerate(zip(lv.channels, self.kernels, self.strides)):
            enc = [L.Conv1D(c, k, strides=s, padding="valid", **_init(lv.rescale, k * in_channels[i])), L.ReLU()]
            if lv.rewrite:
                enc += [L.Conv1D(lv.scale * c, 1, **_init(lv.rescale, c)), lv.gate()]
            self.encoder.append(Chain(enc, name=f"encoder{i}"))
            out = in_channels[i] if i > 0 else self.n_sources * self.n_channels
            dec = []
            if lv.rewrite:
                dec += [L.Conv1D(lv.scale * c, lv.context, padding="same", **_init(lv.rescale, lv.context * c)),
                        lv.gate()]
            dec.append(L.Conv1DTranspose(out, k, strides=s, padding="valid", **_init(lv.rescale, k * out)))
            if i > 0:
                dec.append(L.ReLU())
            decoder.append(Chain(dec, name=f"decoder{i}"))
        self.decoder = decoder[::-1]  # deepest level first
        self.lstm = _lstm_stack(lv.lstm_layers, lv.lstm_units, "blstm")
        self.lstm_linear = L.Dense(lv.channels[-1], name="blstm_linear") if lv.lstm_layers else None

    def valid_length(self, n_samples: int) -> int:
        """Smallest length >= ``n_samples`` whose strided convolutions drop no sample (Demucs' rule)."""
        length = int(n_samples)
        for k, s in zip(self.kernels, self.strides):
            length = max(1, math.ceil((length - k) / s) + 1)
        for k, s in zip(reversed(self.kernels), reversed(self.strides)):
            length = (length - 1) * s + k
        return int(length)

    def call(self, inputs, training=None):
        """``(batch, n_samples, n_channels)`` -> ``(batch, n_samples', n_channels, n_sources)``.

        ``n_samples' == n_samples`` for valid lengths, shorter otherwise.
        """
        x = inputs
        if self.normalize:
            mono = tf.reduce_mean(x, axis=-1, keepdims=True)        # (batch, n_samples, 1)
            mean = tf.reduce_mean(mono, axis=1, keepdims=True)      # (batch, 1, 1)
            std = tf.math.reduce_std(mono, axis=1, keepdims=True)   # (batch, 1, 1)
            x = (x - mean) / (1e-5 + std)
        skips = []
        for encode in self.encoder:
            x = encode(x, training=training)   # (batch, time_i, C_i)
            skips.append(x)
        if self.lstm_linear is not None:
            for layer in self.lstm:
                x = layer(x, training=training)  # (batch, time, 2 * units)
            x = self.lstm_linear(x)              # (batch, time, C_last)
        for decode in self.decoder:
            skip = skips.pop()
            x = x + center_crop(skip, dim(x, 1))
            x = decode(x, training=training)
        # (batch, n_samples', n_sources * n_channels), channel s * n_channels + c as in Demucs
        x = tf.reshape(x, [dim(x, 0), dim(x, 1), self.n_sources, self.n_channels])
        x = tf.transpose(x, [0, 1, 3, 2])
        if self.normalize:
            x = x * std[..., None] + mean[..., None]
        if self.output_activation == "tanh":
            x = tf.tanh(x)
        return x


@register("demucs_2d", "2d",
          description="Demucs-style conv/GLU encoder (stride 4 on frequency), BiLSTM over time, "
                      "transposed-conv decoder, masks on spectrogram patches")
class Demucs2D(Body2D):
    """Demucs adapted to magnitude spectrogram patches.

    Input ``(batch, n_frames, n_bins, n_channels)``; output ``(batch, n_frames, n_bins, n_channels,
    n_sources)`` masks. ``n_frames`` must be a multiple of ``prod(time_stride)`` and ``n_bins`` of
    ``prod(stride)`` (256 by default).

    Adaptation. Encoder level ``i``: ``Conv2D(C_i, (time_kernel, kernel_size), strides=(time_stride,
    stride), 'same')`` + ReLU, then ``Conv2D(2 C_i, 1x1)`` + GLU. By default the (8, stride 4) Demucs
    convolution runs along frequency only - 1024 bins -> 256 -> 64 -> 16 -> 4 after 4 levels - while
    time keeps its resolution (``time_stride=1``) and gets a 3-frame kernel: a spectrogram frame
    already spans 1024 samples, so the 256x time reduction Demucs needs on waveforms is not needed,
    and the LSTM then sees every frame. 'same' padding with ``kernel = 2 * stride`` pads
    ``(kernel - stride) / 2`` on each side, so each level divides the axis exactly by its stride.

    Bottleneck: the encoder output ``(batch, T', F', C_last)`` is reshaped to ``(batch, T',
    F' * C_last)`` - frequency folded into the features - and ``lstm_layers`` bidirectional LSTMs
    (``lstm_units`` per direction, default ``C_last``) run over the ``T'`` time steps (all frames of
    the patch by default); a Dense maps ``2 * units`` back to ``F' * C_last`` features, reshaped to
    ``(batch, T', F', C_last)``. ``F'`` comes from the input shape at build time, so a built body
    accepts one ``n_bins`` only (any ``n_frames``).

    Decoder level (deepest first): skip added, ``Conv2D(2 C_i, context x context, 'same')`` + GLU,
    ``Conv2DTranspose(C_{i-1}, (time_kernel, kernel_size), strides, 'same')`` + ReLU (the exact
    adjoint shape of the encoder convolution); the last level emits ``n_channels * n_sources`` mask
    logits, reshaped to ``(..., n_channels, n_sources)`` and passed through ``output_activation``.
    Channels default to 32 (doubling: 32, 64, 128, 256). Initialisation as in ``demucs_1d``.
    """

    def __init__(self, n_sources: int, n_channels: int, channels: int = 32, growth: float = 2.0, depth: int = 4,
                 filters: Sequence[int] | None = None, kernel_size: int | Sequence[int] = 8,
                 stride: int | Sequence[int] = 4, time_kernel: int | Sequence[int] = 3,
                 time_stride: int | Sequence[int] = 1, context: int = 3, rewrite: bool = True, glu: bool = True,
                 lstm_layers: int = 2, lstm_units: int | None = None, rescale: float = 0.1,
                 output_activation: str = "sigmoid", name: str | None = None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(channels=channels, growth=growth, depth=depth, filters=filters, kernel_size=kernel_size,
                       stride=stride, time_kernel=time_kernel, time_stride=time_stride, context=context,
                       rewrite=rewrite, glu=glu, lstm_layers=lstm_layers, lstm_units=lstm_units, rescale=rescale,
                       output_activation=output_activation)
        lv = _DemucsLevels(channels, growth, depth, filters, context, rewrite, glu, lstm_layers, lstm_units, rescale)
        self.depth = lv.depth
        self.levels = lv
        kernels = per_level_ints(kernel_size, self.depth, "kernel_size")
        strides = per_level_ints(stride, self.depth, "stride")
        time_kernels = per_level_ints(time_kernel, self.depth, "time_kernel")
        time_strides = per_level_ints(time_stride, self.depth, "time_stride")
        for key, ks, ss in (("kernel_size", kernels, strides), ("time_kernel", time_kernels, time_strides)):
            for k, s in zip(ks, ss):
                if k < s:
                    raise ConfigError(f"model.params.{key} ({k}) must be >= its stride ({s})")
        self.output_activation = check_mask_activation(output_activation, self.n_sources)
        self.freq_multiple = math.prod(strides)
        self.time_multiple = math.prod(time_strides)

        L = tf.keras.layers
        in_channels = [self.n_channels] + lv.channels[:-1]
        self.encoder, decoder = [], []
        for i, c in enumerate(lv.channels):
            kernel, strides_i = (time_kernels[i], kernels[i]), (time_strides[i], strides[i])
            area = kernel[0] * kernel[1]
            enc = [L.Conv2D(c, kernel, strides=strides_i, padding="same", **_init(lv.rescale, area * in_channels[i])),
                   L.ReLU()]
            if lv.rewrite:
                enc += [L.Conv2D(lv.scale * c, 1, **_init(lv.rescale, c)), lv.gate()]
            self.encoder.append(Chain(enc, name=f"encoder{i}"))
            out = in_channels[i] if i > 0 else self.n_channels * self.n_sources
            dec = []
            if lv.rewrite:
                dec += [L.Conv2D(lv.scale * c, lv.context, padding="same",
                                 **_init(lv.rescale, lv.context ** 2 * c)), lv.gate()]
            dec.append(L.Conv2DTranspose(out, kernel, strides=strides_i, padding="same",
                                         **_init(lv.rescale, area * out)))
            if i > 0:
                dec.append(L.ReLU())
            decoder.append(Chain(dec, name=f"decoder{i}"))
        self.decoder = decoder[::-1]  # deepest level first
        self.lstm = _lstm_stack(lv.lstm_layers, lv.lstm_units, "blstm")
        self.lstm_linear = None  # Dense(F' * C_last), created in build() once n_bins is known

    def input_multiple(self) -> Tuple[int, int]:
        return (self.time_multiple, self.freq_multiple)

    def build(self, input_shape):
        n_bins = input_shape[2]
        if n_bins is None:
            raise ConfigError("demucs_2d needs a known n_bins (axis 2 of the input) to size its LSTM bottleneck")
        check_multiple(n_bins, self.freq_multiple, "demucs_2d n_bins", "pad it to input_multiple()")
        if self.levels.lstm_layers:
            self.lstm_linear = tf.keras.layers.Dense((n_bins // self.freq_multiple) * self.levels.channels[-1],
                                                     name="blstm_linear")
        self.built = True

    def call(self, inputs, training=None):
        """``(batch, n_frames, n_bins, n_channels)`` -> ``(batch, n_frames, n_bins, n_channels, n_sources)``."""
        check_multiple(inputs.shape[1], self.time_multiple, "demucs_2d n_frames", "pad it to input_multiple()")
        check_multiple(inputs.shape[2], self.freq_multiple, "demucs_2d n_bins", "pad it to input_multiple()")
        x = inputs
        skips = []
        for encode in self.encoder:
            x = encode(x, training=training)   # (batch, T_i, F_i, C_i)
            skips.append(x)
        if self.lstm_linear is not None:
            batch, frames, bins, chans = dim(x, 0), dim(x, 1), x.shape[2], x.shape[3]
            x = tf.reshape(x, [batch, frames, bins * chans])   # (batch, T', F' * C_last)
            for layer in self.lstm:
                x = layer(x, training=training)                 # (batch, T', 2 * units)
            x = self.lstm_linear(x)                             # (batch, T', F' * C_last)
            x = tf.reshape(x, [batch, frames, bins, chans])
        for decode in self.decoder:
            x = decode(x + skips.pop(), training=training)
        # (batch, T, F, n_sources * n_channels) -> (batch, T, F, n_channels, n_sources)
        x = tf.reshape(x, [dim(x, 0), dim(x, 1), dim(x, 2), self.n_sources, self.n_channels])
        x = tf.transpose(x, [0, 1, 2, 4, 3])
        return apply_mask_activation(x, self.output_activation)
