"""Mixed-precision policies: every body computes in the policy's dtype with float32 variables, losses and
gradients; the global policy is restored; loss scaling wraps float16 only."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.errors import ParameterError
from spleeter_ext.models.estimators import build_estimator
from spleeter_ext.models.precision import check_precision, inner_optimizer, policy_scope, wrap_optimizer
from tests.conftest import tiny_training_config
from tests.test_train import FAMILIES

MODELS = dict(FAMILIES, blstm={"lstm_units": 4, "lstm_layers": 1})


@pytest.mark.parametrize("model", list(MODELS))
def test_body_computes_in_bfloat16_with_float32_variables(model, tmp_path):
    """Every family trains under mixed_bfloat16 in a traced step (LSTMs compute in float32 there)."""
    cfg = load_config(tiny_training_config(tmp_path / "c.json", model, MODELS[model]))
    with policy_scope("mixed_bfloat16"):
        est = build_estimator(cfg)
        est.build()
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    assert est.body.compute_dtype == "bfloat16"
    assert {v.dtype for v in est.body.variables} == {tf.float32}
    n = est.training_segment_samples()
    rng = np.random.default_rng(0)
    src = tf.constant(rng.uniform(-0.2, 0.2, (1, n, 2, 4)).astype(np.float32))

    @tf.function  # graph mode, as in training: some kernels (the LSTM's) constrain dtypes only there
    def step(src):
        with tf.GradientTape() as tape:
            loss, per = est.compute_losses(tf.reduce_sum(src, -1), src)
        return loss, per, tape.gradient(loss, est.trainable_variables)

    loss, per, grads = step(src)
    assert loss.dtype == tf.float32 and all(v.dtype == tf.float32 for v in per.values())
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(g is None or g.dtype == tf.float32 for g in grads)
    assert sum(g is not None for g in grads) > 0
    out = est.separate_segments(tf.reduce_sum(src, -1)[:, : est.fit_segment(n // 2)])
    assert out.dtype == tf.float32


def test_policy_scope_restores_on_error():
    with pytest.raises(RuntimeError):
        with policy_scope("mixed_bfloat16"):
            assert tf.keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert tf.keras.mixed_precision.global_policy().name == "float32"


def test_loss_scaling_for_float16_only():
    adam = tf.keras.optimizers.Adam(1e-3)
    assert wrap_optimizer(adam, "mixed_bfloat16") is adam
    scaled = wrap_optimizer(tf.keras.optimizers.Adam(1e-3), "mixed_float16")
    assert isinstance(scaled, tf.keras.mixed_precision.LossScaleOptimizer)
    assert isinstance(inner_optimizer(scaled), tf.keras.optimizers.Adam)
    assert inner_optimizer(adam) is adam
    with pytest.raises(ParameterError, match="precision must be one of float32, mixed_bfloat16, mixed_float16"):
        check_precision("bfloat16")


def test_xla_body_calls_agree_with_eager(tmp_path):
    cfg = load_config(tiny_training_config(Path(tmp_path) / "c.json", "spleeter_unet_2d",
                                           FAMILIES["spleeter_unet_2d"]))
    est = build_estimator(cfg)
    est.build()
    x = tf.constant(np.random.default_rng(1).uniform(-0.3, 0.3, (1, est.fit_segment(20000), 2)).astype(np.float32))
    ref = est.separate_segments(x).numpy()
    est.use_xla(True)
    fast = tf.function(est.separate_segments)(x).numpy()
    est.use_xla(False)
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(fast, ref, atol=1e-5 * np.abs(ref).max())


def test_slow_bfloat16_layers_compute_in_float32_with_the_same_names(tmp_path):
    """bfloat16 batch normalisation and ELU are several times slower on this CPU (docs/benchmarks.md): they run in
    float32 under the policy, between bfloat16 layers, and the variables keep float32's names (checkpoints load
    across policies). Spleeter's pretrained configs use ELU in both paths."""
    params = dict(MODELS["spleeter_unet_2d"], conv_activation="ELU", deconv_activation="ELU")
    cfg = load_config(tiny_training_config(tmp_path / "c.json", "spleeter_unet_2d", params))
    names = {}
    for precision in ("float32", "mixed_bfloat16"):
        tf.keras.backend.clear_session()
        with policy_scope(precision):
            est = build_estimator(cfg)
            est.build()
        names[precision] = sorted(v.name for v in est.body.variables)
        slow = [layer for layer in est.body.submodules
                if isinstance(layer, (tf.keras.layers.BatchNormalization, tf.keras.layers.ELU))]
        assert {type(layer).__name__ for layer in slow} == {"BatchNormalization", "ELU"}
        assert all(layer.compute_dtype == "float32" for layer in slow)
    assert names["float32"] == names["mixed_bfloat16"]
    assert est.body.compute_dtype == "bfloat16"
    x = tf.zeros((1, 64, cfg["F"], 2))
    assert est.body(x).dtype == tf.bfloat16
