"""Load checkpoints written by stock Spleeter (``spleeter train`` and the published 2/4/5-stem models)
into :class:`~.unet.SpleeterUNet2D`."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import tensorflow as tf

from ..errors import ModelNotFoundError


def _name(base: str, index: int) -> str:
    return base if index == 0 else f"{base}_{index}"


def spleeter_variable_map(body) -> List[Tuple[tf.Variable, str]]:
    """Pairs ``(variable of body, checkpoint name)`` for a built :class:`SpleeterUNet2D`.

    Stock Spleeter builds its U-Nets with TF1-style Keras layers in graph mode, so variables are named
    by creation order: for source ``s`` of a depth-``L`` U-Net (L = 6)

    * encoder convolution ``i``      -> ``conv2d_{(L+1)s + i}``        (``/kernel``, ``/bias``)
    * output convolution             -> ``conv2d_{(L+1)s + L}``
    * decoder transposed conv ``j``  -> ``conv2d_transpose_{L s + j}``
    * encoder batch norm ``i``       -> ``batch_normalization_{2L s + i}``
    * decoder batch norm ``j``       -> ``batch_normalization_{2L s + L + j}``
      (``/gamma``, ``/beta``, ``/moving_mean``, ``/moving_variance``)

    where ``name_0`` is written ``name``.
    """
    pairs: List[Tuple[tf.Variable, str]] = []
    for s, (unet, head) in enumerate(zip(body.unets, body.heads)):
        depth = unet.depth
        for i, conv in enumerate(unet.enc_conv):
            name = _name("conv2d", (depth + 1) * s + i)
            pairs += [(conv.kernel, f"{name}/kernel"), (conv.bias, f"{name}/bias")]
        name = _name("conv2d", (depth + 1) * s + depth)
        pairs += [(head.kernel, f"{name}/kernel"), (head.bias, f"{name}/bias")]
        for j, conv in enumerate(unet.dec_conv):
            name = _name("conv2d_transpose", depth * s + j)
            pairs += [(conv.kernel, f"{name}/kernel"), (conv.bias, f"{name}/bias")]
        norms = [(2 * depth * s + i, n) for i, n in enumerate(unet.enc_norm)]
        norms += [(2 * depth * s + depth + j, n) for j, n in enumerate(unet.dec_norm)]
        for index, norm in norms:
            name = _name("batch_normalization", index)
            pairs += [(norm.gamma, f"{name}/gamma"), (norm.beta, f"{name}/beta"),
                      (norm.moving_mean, f"{name}/moving_mean"), (norm.moving_variance, f"{name}/moving_variance")]
    return pairs


def is_spleeter_checkpoint(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a TF checkpoint with Spleeter's variable names."""
    path = tf.train.latest_checkpoint(str(model_dir))
    if not path:
        return False
    names = {n for n, _ in tf.train.list_variables(path)}
    return "conv2d/kernel" in names


def load_spleeter_checkpoint(body, model_dir: Path) -> str:
    """Assign a stock Spleeter checkpoint to ``body`` (built); return the checkpoint path used."""
    path = tf.train.latest_checkpoint(str(model_dir))
    if not path:
        raise ModelNotFoundError(f"{model_dir}: no TensorFlow checkpoint found (expected a 'checkpoint' file)")
    reader = tf.train.load_checkpoint(path)
    shapes: Dict[str, list] = reader.get_variable_to_shape_map()
    for var, name in spleeter_variable_map(body):
        if name not in shapes:
            raise ModelNotFoundError(f"{path}: variable '{name}' missing; the checkpoint does not match the "
                                     f"config's instrument_list/conv_n_filters")
        if list(shapes[name]) != var.shape.as_list():
            raise ModelNotFoundError(f"{path}: variable '{name}' has shape {shapes[name]}, the model expects "
                                     f"{var.shape.as_list()}; check the config's conv_n_filters and n_channels")
        var.assign(reader.get_tensor(name))
    return path
