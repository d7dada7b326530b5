"""Spleeter's BLSTM body (``blstm.blstm``; Uhlich et al., ICASSP 2017, "UHL1") on spectrogram patches."""
from __future__ import annotations

from typing import Sequence, Tuple

import tensorflow as tf

from ..errors import ConfigError
from .base import Body2D
from .blocks import apply_output_activation, bilstm, check_output_activation, dim, fold_features
from .params import check_bool, per_level_ints, positive_int
from .registry import register


@register("blstm", "2d", aliases=("blstm.blstm",),
          description="Spleeter's BLSTM: 3 x BiLSTM(250) over frames, features = bins x channels, "
                      "Dense to bins x channels per source, masks")
class BLSTM(Body2D):
    """Stacked bidirectional LSTMs over time with frequency x channels as features.

    As Spleeter's ``blstm``: every frame of the patch is flattened to ``n_bins * n_channels`` features,
    the BiLSTMs run over the frames and a time-distributed Dense gives ``n_bins * n_channels`` mask
    logits per source. Keras LSTMs replace ``CuDNNLSTM`` so the body runs on CPUs (Keras picks the cuDNN
    kernel on a GPU by itself); they have one bias per gate where CuDNNLSTM has two, so Spleeter's BLSTM
    checkpoints do not load as-is. Kernels are He-uniform (unseeded) as in Spleeter. ``n_bins`` is read
    from the input shape when the body is built, so a built body accepts one ``n_bins`` only.

    Input ``(batch, n_frames, n_bins, n_channels)``; output ``(batch, n_frames, n_bins, n_channels,
    n_sources)`` masks. No constraint on ``n_frames`` or ``n_bins`` (``input_multiple() == (1, 1)``).

    Args:
        lstm_units: units per direction (250, Spleeter's ``lstm_units``); int or per-layer list.
        lstm_layers: number of bidirectional LSTM layers (3).
        separate_networks: one LSTM stack per source (Spleeter) or one shared stack.
        output_activation: 'sigmoid' | 'softmax' | 'relu'.
    """

    def __init__(self, n_sources: int, n_channels: int, lstm_units: int | Sequence[int] = 250,
                 lstm_layers: int = 3, separate_networks: bool = True, output_activation: str = "sigmoid",
                 name: str | None = None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(lstm_units=lstm_units, lstm_layers=lstm_layers, separate_networks=separate_networks,
                       output_activation=output_activation)
        self.lstm_layers = positive_int(lstm_layers, "lstm_layers")
        units = per_level_ints(lstm_units, self.lstm_layers, "lstm_units")
        self.separate_networks = check_bool(separate_networks, "separate_networks")
        self.output_activation = check_output_activation(output_activation, self.domain, self.n_sources)
        n_networks = self.n_sources if separate_networks else 1
        self.networks = []
        for net in range(n_networks):
            self.networks.append([bilstm(u, f"net{net}_blstm{j}", kernel_initializer="he_uniform")
                                  for j, u in enumerate(units)])
        self.heads = []  # Dense layers, created in build() once n_bins is known

    def input_multiple(self) -> Tuple[int, int]:
        return (1, 1)

    def build(self, input_shape):
        n_bins, n_channels = input_shape[2], input_shape[3]
        if n_bins is None:
            raise ConfigError("blstm needs a known n_bins (axis 2 of the input) to size its output layer")
        if n_channels is not None and n_channels != self.n_channels:
            raise ConfigError(f"blstm was configured for {self.n_channels} channels but got {n_channels}")
        features = n_bins * self.n_channels
        if self.separate_networks:
            self.heads = [tf.keras.layers.Dense(features, kernel_initializer="he_uniform", name=f"net{s}_dense")
                          for s in range(self.n_sources)]
        else:
            self.heads = [tf.keras.layers.Dense(features * self.n_sources, kernel_initializer="he_uniform",
                                                name="net0_dense")]
        self.built = True

    def call(self, inputs, training=None):
        """``(batch, n_frames, n_bins, n_channels)`` -> ``(batch, n_frames, n_bins, n_channels, n_sources)``."""
        batch, frames, bins = dim(inputs, 0), dim(inputs, 1), inputs.shape[2]
        x = fold_features(inputs)                 # (batch, T, F * C)
        outputs = []
        for layers, head in zip(self.networks, self.heads):
            h = x
            for layer in layers:
                h = layer(h, training=training)   # (batch, T, 2 * units)
            outputs.append(head(h))               # (batch, T, F * C) or (batch, T, F * C * S)
        if self.separate_networks:
            logits = tf.stack(outputs, axis=-1)   # (batch, T, F * C, S)
        else:
            logits = outputs[0]
        logits = tf.reshape(logits, [batch, frames, bins, self.n_channels, self.n_sources])
        return apply_output_activation(logits, self.output_activation)
