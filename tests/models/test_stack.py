"""Stacked models: any single model refined stem by stem by a second network (of its architecture by
default); stage two alone on a frozen first stage loaded from a stock Spleeter checkpoint."""
import json

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.errors import ConfigError
from spleeter_ext.models.estimators import StackedMaskEstimator, StackedWaveformEstimator, build_estimator
from spleeter_ext.models.spleeter_ckpt import spleeter_variable_map
from spleeter_ext.separate.weights import load_weights
from tests.models._helpers import TINY

FAMILIES = ["spleeter_unet_1d", "spleeter_unet_2d", "wave_unet_1d", "wave_unet_2d", "demucs_1d", "demucs_2d"]


def stack_config(stage1, refiner=None, **params):
    cfg = {"instrument_list": ["vocals", "drums", "bass"], "frame_length": 512, "frame_step": 128, "T": 64, "F": 64,
           "segment_seconds": 0.25, "mask_extension": "average", "learning_rate": 1e-2,
           "model": {"type": "stack", "params": {"stage1": stage1, "refiner": refiner, **params}}}
    return load_config(cfg)


def _batch(est, seed=0):
    n = est.training_segment_samples()
    sources = np.random.default_rng(seed).uniform(-0.3, 0.3, (2, n, 2, 3)).astype(np.float32)
    return tf.reduce_sum(sources, -1), tf.constant(sources)


def _train(est, steps=2):
    mixture, sources = _batch(est)
    trainable = est.trainable_variables
    opt = tf.keras.optimizers.Adam(1e-2)
    before = [v.numpy().copy() for v in trainable]
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss, per = est.compute_losses(mixture, sources, training=True)
        opt.apply_gradients(zip(tape.gradient(loss, trainable), trainable))
        losses.append(float(loss))
    return before, losses, mixture


@pytest.mark.parametrize("family", FAMILIES)
def test_stack_of_each_family_uses_its_architecture_trains_and_separates(family):
    tf.keras.utils.set_random_seed(0)
    est = build_estimator(stack_config({"type": family, "params": TINY[family]}))
    est.build()
    domain = family[-2:]
    assert isinstance(est, StackedMaskEstimator if domain == "2d" else StackedWaveformEstimator)
    assert est.body.refiner_domain == domain and est.stage1.domain == domain
    assert [type(r) for r in est.body.refiners] == [type(est.stage1.body)] * 3
    assert all(r.get_config() == {**est.stage1.body.get_config(), "n_sources": 1} for r in est.body.refiners)
    # one checkpoint holds both stages
    names = {v.name for v in est.body.variables}
    assert {v.name for v in est.stage1.body.variables} <= names and len(names) > len(est.stage1.body.variables)
    before, losses, mixture = _train(est)
    assert all(np.isfinite(losses))
    changed = [np.any(b != v.numpy()) for b, v in zip(before, est.trainable_variables)]
    assert any(changed)
    out = est.separate(mixture.numpy()[0][:3001])
    assert list(out) == ["vocals", "drums", "bass"]
    assert all(v.shape == (3001, 2) and np.isfinite(v).all() for v in out.values())


def test_stage_two_changes_the_first_stage_output():
    """The refined stems differ from stage one's: the refiners are applied, not bypassed."""
    tf.keras.utils.set_random_seed(1)
    est = build_estimator(stack_config({"type": "wave_unet_1d", "params": TINY["wave_unet_1d"]}))
    est.build()
    x = tf.random.uniform((1, 4000, 2), -0.5, 0.5)
    stage1 = est.stage1.separate_segments(x).numpy()
    final = est.separate_segments(x).numpy()
    assert final.shape == stage1.shape and np.abs(final - stage1).max() > 1e-4


@pytest.mark.parametrize("stage1,refiner,cls", [
    ({"type": "wave_unet_1d", "params": TINY["wave_unet_1d"]},
     {"type": "spleeter_unet_2d", "params": TINY["spleeter_unet_2d"]}, StackedMaskEstimator),
    ({"type": "spleeter_unet_2d", "params": TINY["spleeter_unet_2d"]},
     {"type": "demucs_1d", "params": TINY["demucs_1d"]}, StackedWaveformEstimator),
])
def test_a_refiner_of_the_other_domain(stage1, refiner, cls):
    est = build_estimator(stack_config(stage1, refiner))
    est.build()
    assert isinstance(est, cls)
    _, losses, mixture = _train(est, steps=1)
    assert np.isfinite(losses[0])
    out = est.separate(mixture.numpy()[0])
    assert all(np.isfinite(v).all() for v in out.values())


def test_stage_and_refiner_keys_are_checked():
    with pytest.raises(ConfigError, match=r"model\.params\.stage1\.param\b"):
        build_estimator(stack_config({"type": "demucs_2d", "param": {}}))
    with pytest.raises(ConfigError, match=r"model\.params\.stage1.*unknown key 'model\.params\.chanels'"):
        build_estimator(stack_config({"type": "demucs_2d", "params": {"chanels": 4}}))
    with pytest.raises(ConfigError, match=r"model\.params\.refiner.*unknown key 'model\.params\.depht'"):
        build_estimator(stack_config({"type": "demucs_2d", "params": TINY["demucs_2d"]}, {"depht": 2}))
    with pytest.raises(ConfigError, match="cannot itself be a stacked model"):
        build_estimator(stack_config({"type": "stack", "params": {}}))


def test_every_stack_preset_pairs_a_preset_with_its_own_architecture():
    for key in ("spleeter_1d", "spleeter_2d", "wave_unet_1d", "wave_unet_2d", "demucs_1d", "demucs_2d"):
        for suffix in ("", "_small"):
            single, stacked = load_config(key + suffix), load_config(f"stack_{key}{suffix}")
            assert stacked["model"]["params"]["stage1"] == single["model"]
            assert stacked["model"]["params"]["refiner"] is None  # the same architecture by default
            same = {k for k in single if k not in ("model", "description", "model_dir", "_source", "_root")}
            assert {k: stacked[k] for k in same} == {k: single[k] for k in same}


def test_frozen_stage_one_from_stock_checkpoint(stock_model, tmp_path):
    stock_cfg = json.loads(stock_model["config"].read_text())
    cfg = {k: stock_cfg[k] for k in ("instrument_list", "frame_length", "frame_step", "T", "F", "n_channels",
                                     "mask_extension")}
    cfg.update({"batch_size": 2, "learning_rate": 1e-2,
                "model": {"type": "stack", "params": {"stage1": str(stock_model["config"]), "freeze_stage1": True,
                                                      "refiner": {"conv_n_filters": [4, 4, 8, 8, 8, 8]}}}})
    est = build_estimator(load_config(cfg))
    est.build()
    assert est.stage1_source == str(stock_model["config"])
    assert load_weights(est.stage1, est.stage1.config)
    reader = tf.train.load_checkpoint(str(stock_model["model_dir"]))
    pairs = spleeter_variable_map(est.body.stage1_body)
    for var, name in pairs:
        np.testing.assert_array_equal(var.numpy(), reader.get_tensor(name))
    assert est.stage_loss_weight == 0.0
    trainable = est.trainable_variables
    assert trainable and not any(v is w for v in trainable for w in est.stage1.body.variables)
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


@pytest.mark.parametrize("family", ["wave_unet_2d", "demucs_2d"])
def test_softmax_first_stage_gets_sigmoid_refiners(family):
    # a softmax shares the mixture out among sources: one stem's refiner masks with a sigmoid instead
    est = build_estimator(stack_config({"type": family, "params": {**TINY[family], "output_activation": "softmax"}}))
    est.build()
    assert est.stage1.body.output_activation == "softmax"
    assert [r.output_activation for r in est.body.refiners] == ["sigmoid"] * 3
    _, losses, mixture = _train(est, steps=1)
    assert np.isfinite(losses[0])
    masks = est.stage1.call_body(tf.random.uniform((1, 64, 64, 2)) * 10.0).numpy()
    np.testing.assert_allclose(masks.sum(axis=-1), 1.0, atol=1e-5)
