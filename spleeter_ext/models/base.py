"""The body contracts: what a model body takes, returns and stores as its configuration."""
from __future__ import annotations

from typing import Any, Dict, Tuple

import tensorflow as tf

from ..errors import ConfigError, ParameterError


def ceil_to_multiple(n: int, m: int) -> int:
    """Smallest multiple of ``m`` that is ``>= n``."""
    return -(-int(n) // int(m)) * int(m)


def check_multiple(size, multiple: int, what: str, hint: str) -> None:
    """Raise ParameterError when a statically known ``size`` is not a multiple of ``multiple``."""
    if size is not None and size % multiple:
        raise ParameterError(f"{what} is {size}, not a multiple of {multiple}; {hint}")


def _plain(value):
    if isinstance(value, dict):  # also Keras' tracking wrappers, which json cannot write
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Body(tf.keras.Model):
    """A tensor -> tensor model, ignorant of STFTs, sample rates and instrument names (the estimators of
    :mod:`.estimators` own those).

    Its constructor arguments are its configuration: ``get_config()`` returns them and
    ``from_config(get_config())`` builds an identical architecture. ``rank`` is the number of
    spatial axes of the input (between the batch and the channel axis).
    """

    domain: str = ""
    rank: int = 0

    def __init__(self, n_sources: int, n_channels: int, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        if n_sources < 1:
            raise ConfigError(f"n_sources must be >= 1, got {n_sources}")
        if n_channels < 1:
            raise ConfigError(f"n_channels must be >= 1, got {n_channels}")
        self.n_sources = int(n_sources)
        self.n_channels = int(n_channels)
        self._config: Dict[str, Any] = {"n_sources": self.n_sources, "n_channels": self.n_channels}

    def _remember(self, **kwargs) -> None:
        """Record constructor arguments (call once in the subclass constructor)."""
        for key, value in kwargs.items():
            if isinstance(value, tuple):
                value = list(value)
            self._config[key] = value

    def get_config(self) -> Dict[str, Any]:
        """The constructor arguments as plain JSON data (Keras wraps attribute dicts and lists)."""
        return _plain(self._config)

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects=None):
        return cls(**config)


class Body2D(Body):
    """Spectrogram domain: magnitude patches ``(batch, n_frames, n_bins, n_channels)`` -> non-negative
    masks ``(batch, n_frames, n_bins, n_channels, n_sources)``, one per source (the estimator
    multiplies them with the input magnitude). ``n_frames`` and ``n_bins`` must be multiples of
    ``input_multiple()``."""

    domain = "2d"
    rank = 2

    def input_multiple(self) -> Tuple[int, int]:
        """``(frames, bins)``: n_frames and n_bins of the input must be multiples of these."""
        return (1, 1)

    def check_input(self, inputs) -> None:
        """ParameterError when a static axis of ``inputs`` is not a multiple of ``input_multiple()``."""
        for axis, (what, multiple) in enumerate(zip(("n_frames", "n_bins"), self.input_multiple()), start=1):
            check_multiple(inputs.shape[axis], multiple, f"{type(self).__name__} {what}", "pad it to input_multiple()")


class Body1D(Body):
    """Waveform domain: ``(batch, n_samples, n_channels)`` -> one waveform per source ``(batch, n_samples,
    n_channels, n_sources)``, as long as the input **when** ``n_samples == valid_length(n_samples)``
    (the waveform estimator pads inputs to ``valid_length(n)`` and crops the outputs back to ``n``)."""

    domain = "1d"
    rank = 1

    def valid_length(self, n_samples: int) -> int:
        """Smallest input length ``>= n_samples`` for which output length equals input length."""
        return int(n_samples)

    def check_input(self, inputs) -> None:
        """ParameterError when the static length of ``inputs`` is not a valid length."""
        n = inputs.shape[1]
        if n is not None and self.valid_length(n) != n:
            raise ParameterError(f"{type(self).__name__} input length is {n}, not a valid length; pad it to "
                                 f"valid_length(n) (here {self.valid_length(n)})")
