"""Keras mixed-precision policies for training and separation: names, a scoped global policy, loss scaling.

Variables stay float32 under every policy (so checkpoints load across policies); only the bodies' layers
compute in the lower precision, and estimators cast the bodies' outputs back to float32.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import tensorflow as tf

from ..config import PRECISIONS
from ..errors import ParameterError

#: Separation precisions and the Keras policy each one builds the body under.
SEPARATION_PRECISIONS = {"float32": "float32", "bf16": "mixed_bfloat16"}


def check_precision(name: str, choices=PRECISIONS, option: str = "precision") -> str:
    """``name`` if it is one of ``choices``, else a :class:`ParameterError` naming ``option``."""
    if name not in tuple(choices):
        raise ParameterError(f"{option} must be one of {', '.join(choices)}, got {name!r}")
    return name


@contextmanager
def policy_scope(name: str) -> Iterator[tf.keras.mixed_precision.Policy]:
    """Set Keras' global dtype policy to ``name`` inside the block (layers built there keep it) and restore
    the previous one on leaving, even on error."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield tf.keras.mixed_precision.global_policy()
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, precision: str):
    """``optimizer`` wrapped in a dynamic :class:`~tf.keras.mixed_precision.LossScaleOptimizer` for float16
    (whose small exponent range underflows small gradients); unchanged otherwise."""
    if precision == "mixed_float16":
        return tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer


def inner_optimizer(optimizer):
    """The optimizer whose state checkpoints hold: the wrapped one of a loss-scale optimizer (so checkpoints
    have the same structure under every policy; the loss scale restarts on resume and adapts in a few steps)."""
    if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def to_float32(x: tf.Tensor) -> tf.Tensor:
    """``x`` as float32 (a body's output computed in a lower precision)."""
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)
