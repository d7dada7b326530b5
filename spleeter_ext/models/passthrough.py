"""Parameter-free reference bodies that pass the mixture to one source: exact-reconstruction tests of
chunking, and the "mixture as estimate" floor of evaluation tables."""
from __future__ import annotations

import tensorflow as tf

from .base import Body1D, Body2D
from .registry import register


@register("passthrough_2d", "2d", description="mask 1 for source `target`, 0 for the others (no weights)")
class Passthrough2D(Body2D):
    """Masks ``(batch, n_frames, n_bins, n_channels, n_sources)``: ones for ``target``, zeros elsewhere."""

    def __init__(self, n_sources: int, n_channels: int = 2, target: int = 0, name=None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(target=target)
        self.target = int(target)

    def call(self, x, training=None):
        one_hot = tf.one_hot(self.target, self.n_sources, dtype=x.dtype)
        return tf.ones_like(x)[..., None] * one_hot


@register("passthrough_1d", "1d", description="the input waveform for source `target`, silence elsewhere")
class Passthrough1D(Body1D):
    """Waveforms ``(batch, n_samples, n_channels, n_sources)``: the input for ``target``."""

    def __init__(self, n_sources: int, n_channels: int = 2, target: int = 0, name=None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(target=target)
        self.target = int(target)

    def call(self, x, training=None):
        return x[..., None] * tf.one_hot(self.target, self.n_sources, dtype=x.dtype)
