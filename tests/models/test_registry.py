"""The same contract for every registered model, through its estimator (keras-hub style shared test)."""
import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.errors import ConfigError
from spleeter_ext.models import registry
from spleeter_ext.models.estimators import build_estimator

TINY_UNET = {"conv_n_filters": [4, 4, 8, 8, 8, 8]}
TINY = {
    "spleeter_unet_2d": TINY_UNET,
    "spleeter_softmax_unet_2d": TINY_UNET,
    "spleeter_unet_1d": {"conv_n_filters": [4, 8, 8], "kernel_size": 5, "strides": 4},
    "wave_unet_1d": {"depth": 4, "base_filters": 4},
    "wave_unet_2d": {"depth": 3, "base_filters": 4},
    "demucs_1d": {"channels": 4, "depth": 3},
    "demucs_2d": {"channels": 4, "depth": 2},
    "blstm": {"lstm_units": 8, "lstm_layers": 1},
    "passthrough_1d": {},
    "passthrough_2d": {},
    "stack": {"stage1": {"type": "spleeter_unet_2d", "params": TINY_UNET}, "refiner": TINY_UNET},
}
NAMES = [spec.name for spec in registry.list_models()]


def tiny_config(name, **extra):
    cfg = {"instrument_list": ["vocals", "drums", "bass"], "frame_length": 512, "frame_step": 128, "T": 64, "F": 64,
           "segment_seconds": 0.25, "mask_extension": "average", "model": {"type": name, "params": TINY[name]}}
    cfg.update(extra)
    return load_config(cfg)


def test_every_registered_model_has_a_tiny_config():
    assert sorted(TINY) == sorted(NAMES)


@pytest.fixture(scope="module", params=NAMES)
def estimator(request):
    tf.keras.utils.set_random_seed(0)
    est = build_estimator(tiny_config(request.param))
    est.build()
    return est


def _audio(n, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2)).astype(np.float32)


@pytest.mark.parametrize("n_samples", [1, 999, 4097, 12345])
def test_output_shapes_at_odd_lengths(estimator, n_samples):
    out = estimator.separate(_audio(n_samples))
    assert list(out) == ["vocals", "drums", "bass"]
    for stem in out.values():
        assert stem.shape == (n_samples, 2) and stem.dtype == np.float32 and np.isfinite(stem).all()


def test_config_round_trip(estimator):
    body = estimator.body
    config = body.get_config()
    if estimator.domain == "stack":  # a container of bodies, rebuilt through its estimator
        assert build_estimator(estimator.config).body.get_config() == config
        return
    clone = type(body).from_config(config)
    assert clone.get_config() == config
    if estimator.domain == "2d":
        x = tf.random.uniform((1, 64, 64, 2))
    else:
        x = tf.random.uniform((1, body.valid_length(3000), 2), -0.5, 0.5)
    clone(x)
    clone.set_weights(body.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), body(x).numpy(), atol=1e-6)


def test_save_load_gives_identical_outputs(estimator, tmp_path):
    x = _audio(5000, seed=1)
    before = estimator.separate(x)
    path = tf.train.Checkpoint(model=estimator.body).save(str(tmp_path / "ckpt"))
    fresh = build_estimator(estimator.config)
    fresh.build()
    status = tf.train.Checkpoint(model=fresh.body).restore(path)
    status.assert_existing_objects_matched()
    after = fresh.separate(x)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_every_trainable_weight_gets_a_gradient(estimator):
    n = estimator.training_segment_samples()
    rng = np.random.default_rng(2)
    sources = tf.constant(rng.uniform(-0.3, 0.3, (2, n, 2, 3)).astype(np.float32))
    mixture = tf.reduce_sum(sources, -1)
    with tf.GradientTape() as tape:
        loss, per = estimator.compute_losses(mixture, sources, training=True)
    variables = estimator.body.trainable_variables
    grads = tape.gradient(loss, variables)
    assert np.isfinite(float(loss)) and set(per) == {"vocals", "drums", "bass"}
    missing = [v.name for v, g in zip(variables, grads) if g is None or not np.any(g.numpy())]
    assert missing == []


@pytest.mark.parametrize("name", [n for n in NAMES if registry.get(n).domain != "1d"])
def test_ratio_masks_sum_to_one(name):
    """Spectrogram estimators promise masks that sum to one over sources (waveform ones have none)."""
    estimator = build_estimator(tiny_config(name))
    estimator.build()
    patches = tf.random.uniform((2, 64, 64, 2))
    masks = estimator.ratio_masks(estimator.estimate_magnitudes(patches))
    assert masks.shape[-3] == 512 // 2 + 1  # extended above F ('average')
    np.testing.assert_allclose(tf.reduce_sum(masks, -1).numpy(), 1.0, atol=1e-5)


def test_unknown_param_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.params\.conv_n_filterz"):
        build_estimator(load_config({"instrument_list": ["a"], "model": {"type": "unet.unet",
                                                                         "params": {"conv_n_filterz": [4]}}}))


def test_unknown_model_lists_available():
    with pytest.raises(ConfigError, match=r"Unknown model 'resnet'\. Available: .*spleeter_unet_2d"):
        registry.get("resnet")


@pytest.mark.parametrize("alias,name", [("unet.unet", "spleeter_unet_2d"),
                                        ("unet.softmax_unet", "spleeter_softmax_unet_2d"), ("blstm.blstm", "blstm")])
def test_spleeter_names_keep_working(alias, name):
    assert registry.get(alias).name == name


def test_spleeter_unet_has_spleeters_parameter_count():
    cfg = load_config({"instrument_list": ["vocals"], "model": {"type": "unet.unet"}})
    est = build_estimator(cfg)
    est.build()
    n = sum(int(np.prod(v.shape)) for v in est.body.variables)  # incl. BatchNorm moving statistics
    assert abs(n - 9.83e6) / 9.83e6 < 0.002, n
