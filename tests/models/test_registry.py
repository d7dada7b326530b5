"""The same contract for every registered model: its body's shapes at valid lengths, then build,
separation, config round trip, checkpoint round trip and gradients through its estimator."""
import json

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.errors import ConfigError, ParameterError
from spleeter_ext.models import registry
from spleeter_ext.models.estimators import build_estimator
from tests.models._helpers import N_BINS, N_FRAMES, N_SAMPLES, NAMES, TINY, example, tiny_config

BODIES = [n for n in NAMES if registry.get(n).domain != "stack"]  # a stacked model is a combination of bodies


def test_every_registered_model_has_tiny_parameters():
    assert sorted(TINY) == sorted(NAMES)


def _body(name, n_sources=3, n_channels=2):
    """The unbuilt body of the tiny config (through the estimator, which attaches a stacked model's stage one)."""
    return build_estimator(tiny_config(name, n_sources, n_channels=n_channels)).body


# ------------------------------------------------------------------------------------------------
# the body: shapes at valid lengths, refusal of other shapes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_sources,n_channels", [(2, 2), (3, 1)])
@pytest.mark.parametrize("name", BODIES)
def test_body_output_shape_at_valid_lengths(name, n_sources, n_channels):
    tf.keras.utils.set_random_seed(0)
    body = _body(name, n_sources, n_channels)
    x = example(body, n_channels)
    if body.domain == "1d":
        n = body.valid_length(N_SAMPLES)
        assert n >= N_SAMPLES and body.valid_length(n) == n
        # the smallest accepted length >= N_SAMPLES: every length in between maps to it
        assert all(body.valid_length(m) == n for m in range(N_SAMPLES, n + 1))
    else:
        fm, bm = body.input_multiple()
        assert x.shape[1] % fm == 0 and x.shape[2] % bm == 0
    y = body(x)
    assert tuple(y.shape) == tuple(x.shape) + (n_sources,)
    assert np.isfinite(y.numpy()).all()


@pytest.mark.parametrize("name", BODIES)
def test_other_shapes_are_refused_naming_the_fix(name):
    """A body either accepts any shape, or refuses one it cannot process with a ParameterError naming
    valid_length / input_multiple; only demucs_1d, like Demucs, returns a shorter output instead."""
    body = _body(name)
    if body.domain == "1d":
        x = tf.zeros((1, N_SAMPLES, 2))
        constrained, hint = body.valid_length(N_SAMPLES) != N_SAMPLES, "valid_length"
    else:
        x = tf.zeros((1, N_FRAMES, N_BINS, 2))
        constrained, hint = body.input_multiple() != (1, 1), "input_multiple"
    if name == "demucs_1d":
        assert constrained and body(x).shape[1] < N_SAMPLES
    elif constrained:
        with pytest.raises(ParameterError, match=hint):
            body(x)
    else:
        assert tuple(body(x).shape) == tuple(x.shape) + (3,)


# ------------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------------
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
    config = json.loads(json.dumps(body.get_config()))  # configs are JSON data
    if estimator.domain == "stack":  # a container of bodies, rebuilt through its estimator
        assert build_estimator(estimator.config).body.get_config() == body.get_config()
        return
    clone = type(body).from_config(config)
    assert clone.get_config() == body.get_config()
    again = registry.get(estimator.config["model"]["type"]).build(
        {k: v for k, v in config.items() if k not in ("n_sources", "n_channels")}, n_sources=3, n_channels=2)
    assert again.get_config() == body.get_config()
    if estimator.domain == "1d":
        x = example(body, batch=1)
    else:  # the estimator built the body for its F bins
        x = tf.random.uniform((1, 64, 64, 2))
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


# ------------------------------------------------------------------------------------------------
# the registry
# ------------------------------------------------------------------------------------------------
def test_unknown_param_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.params\.conv_n_filterz"):
        build_estimator(load_config({"instrument_list": ["a"], "model": {"type": "unet.unet",
                                                                         "params": {"conv_n_filterz": [4]}}}))


def test_context_keys_are_not_params():
    with pytest.raises(ConfigError, match=r"unknown key 'model\.params\.n_sources'"):
        registry.get("wave_unet_1d").build({"n_sources": 2}, n_sources=2, n_channels=2)


def test_unknown_model_lists_available():
    with pytest.raises(ConfigError, match=r"Unknown model 'resnet'\. Available: .*spleeter_unet_2d"):
        registry.get("resnet")


@pytest.mark.parametrize("alias,name", [("unet.unet", "spleeter_unet_2d"),
                                        ("unet.softmax_unet", "spleeter_softmax_unet_2d"), ("blstm.blstm", "blstm")])
def test_spleeter_names_keep_working(alias, name):
    assert registry.get(alias).name == name


def test_a_name_registers_once():
    registry.get("wave_unet_1d")  # registered (modules load on first use)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("wave_unet_1d", "1d")(object)
