"""Spleeter's BLSTM body (``blstm.blstm``; Uhlich et al., ICASSP 2017, "UHL1").

Spleeter (``spleeter/model/functions/blstm.py``) builds, for every instrument, its own network:
the patch ``(batch, n_frames, n_bins, n_channels)`` is flattened per frame to
``n_bins * n_channels`` features, three ``Bidirectional(CuDNNLSTM(250))`` layers run over the
frames, and a time-distributed ``Dense(n_bins * n_channels, relu)`` is reshaped back to the patch.

Here:

* the standard ``tf.keras.layers.LSTM`` replaces ``CuDNNLSTM`` so the body runs on CPU (Keras picks
  the cuDNN kernel by itself on a GPU; note that Keras LSTMs have one bias per gate where CuDNNLSTM
  has two, so Spleeter checkpoints do not load as-is);
* the Dense output is a mask logit per time-frequency-channel point and ``output_activation``
  ('sigmoid' by default, 'softmax' across sources, 'relu') turns it into a mask, following the
  2D body contract;
* ``separate_networks=True`` (Spleeter's layout) gives every source its own LSTM stack and Dense;
  ``False`` shares one LSTM stack and uses one Dense with ``n_bins * n_channels * n_sources`` outputs;
* kernels use He-uniform initialisation like Spleeter (unseeded).

``n_bins`` is read from the input shape when the body is built, so a built body accepts one
``n_bins`` only (any ``n_frames``).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import tensorflow as tf

from ..errors import ConfigError
from .base import Body2D
from .registry import register
from .wave_unet import apply_mask_activation, check_mask_activation, dim, per_level_ints, positive_int


@register("blstm", "2d", aliases=("blstm.blstm",),
          description="Spleeter's BLSTM: 3 x BiLSTM(250) over frames, features = bins x channels, "
                      "Dense to bins x channels per source, masks")
class BLSTM(Body2D):
    """Stacked bidirectional LSTMs over time with frequency x channels as features.

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
        if not isinstance(separate_networks, bool):
            raise ConfigError(f"model.params.separate_networks must be true or false, got {separate_networks!r}")
        self.separate_networks = separate_networks
        self.output_activation = check_mask_activation(output_activation, self.n_sources)
        n_networks = self.n_sources if separate_networks else 1
        self.networks = []
        for net in range(n_networks):
            self.networks.append([
                tf.keras.layers.Bidirectional(
                    tf.keras.layers.LSTM(u, return_sequences=True, kernel_initializer="he_uniform"),
                    name=f"net{net}_blstm{j}")
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
        x = tf.reshape(inputs, [batch, frames, bins * self.n_channels])  # (batch, T, F * C)
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
        return apply_mask_activation(logits, self.output_activation)
