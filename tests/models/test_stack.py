"""The stacked U-Net: stage two alone on a frozen first stage loaded from a stock Spleeter checkpoint."""
import json

import numpy as np
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.models.estimators import build_estimator
from spleeter_ext.models.spleeter_ckpt import spleeter_variable_map


def test_frozen_stage_one_from_stock_checkpoint(stock_model, tmp_path):
    stock_cfg = json.loads(stock_model["config"].read_text())
    cfg = {k: stock_cfg[k] for k in ("instrument_list", "frame_length", "frame_step", "T", "F", "n_channels",
                                     "mask_extension")}
    cfg.update({"batch_size": 2, "learning_rate": 1e-2,
                "model": {"type": "stack_unet", "params": {"stage1": str(stock_model["config"]),
                                                           "freeze_stage1": True,
                                                           "refiner": {"conv_n_filters": [4, 4, 8, 8, 8, 8]}}}})
    est = build_estimator(load_config(cfg))
    est.build()
    assert est.body.load_stage1_weights()
    reader = tf.train.load_checkpoint(str(stock_model["model_dir"]))
    pairs = spleeter_variable_map(est.body.stage1_body)
    for var, name in pairs:
        np.testing.assert_array_equal(var.numpy(), reader.get_tensor(name))
    assert est.stage_loss_weight == 0.0
    trainable = est.body.trainable_variables
    assert trainable and all("refiner" in v.name for v in trainable)
    n = est.training_segment_samples()
    rng = np.random.default_rng(0)
    sources = tf.constant(rng.uniform(-0.3, 0.3, (2, n, 2, 3)).astype(np.float32))
    mixture = tf.reduce_sum(sources, -1)
    opt = tf.keras.optimizers.Adam(1e-2)
    before = [v.numpy().copy() for v in trainable]
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss, _ = est.compute_losses(mixture, sources, training=True)
        opt.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
    assert any(np.any(b != v.numpy()) for b, v in zip(before, trainable))  # stage two learns
    for var, name in pairs:  # stage one stays the stock model
        np.testing.assert_array_equal(var.numpy(), reader.get_tensor(name))
    out = est.separate(mixture.numpy()[0])
    assert set(out) == set(stock_model["instruments"]) and all(np.isfinite(v).all() for v in out.values())
