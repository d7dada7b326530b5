"""Shared building blocks: resampling, gates, layout of sources, the one output-activation path."""
import math

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.errors import ConfigError
from spleeter_ext.models import blocks, registry
from tests.models._helpers import NAMES, example, make


def test_upsampling_puts_decimated_samples_back_and_interpolates_between():
    x = tf.random.stateless_normal((2, 16, 12, 3), seed=[0, 0])
    for axes in [(1,), (1, 2)]:
        down = blocks.Decimate(axes)(x)
        assert down.shape == (2, 8, 12 if axes == (1,) else 6, 3)
        up = blocks.LinearUpsample(axes)(down)
        assert up.shape == x.shape
        kept = tuple(slice(None, None, 2) if a in axes else slice(None) for a in range(4))
        np.testing.assert_array_equal(up.numpy()[kept], down.numpy())
    line = blocks.LinearUpsample((1,))(tf.constant([[[0.0], [2.0], [6.0]]])).numpy()[0, :, 0]
    np.testing.assert_array_equal(line, [0.0, 1.0, 2.0, 4.0, 6.0, 6.0])  # the last sample is repeated



@pytest.mark.parametrize("axes", [(1,), (1, 2)])
def test_decimation_and_upsampling_gradients_with_unknown_lengths(axes):
    """Decimate keeps x[:, ::2] (every decimated axis) and both layers' gradients are the exact scatter of
    the upstream gradient, with lengths known only when the graph runs."""
    x = tf.random.stateless_normal((2, 8, 12, 3), seed=[0, 1])
    w = tf.random.stateless_normal((2, 8, 12, 3), seed=[0, 2])
    kept = tuple(slice(None, None, 2) if a in axes else slice(None) for a in range(4))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3])])
    def grads(v):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(v)
            down = blocks.Decimate(axes)(v)
            up = blocks.LinearUpsample(axes)(down)
            loss_down = tf.reduce_sum(down * w[kept])
            loss_up = tf.reduce_sum(up * w)
        return down, tape.gradient(loss_down, v), tape.gradient(loss_up, v)

    down, g_down, g_up = (t.numpy() for t in grads(x))
    np.testing.assert_array_equal(down, x.numpy()[kept])
    expected = np.zeros(x.shape, np.float32)
    expected[kept] = w.numpy()[kept]
    np.testing.assert_array_equal(g_down, expected)
    # through decimation, the gradient reaching the kept samples is upsampling's own
    with tf.GradientTape() as tape:
        d = tf.constant(x.numpy()[kept])
        tape.watch(d)
        loss = tf.reduce_sum(blocks.LinearUpsample(axes)(d) * w)
    np.testing.assert_allclose(g_up[kept], tape.gradient(loss, d).numpy(), rtol=1e-6, atol=1e-6)
    assert not g_up[tuple(slice(1, None, 2) if a == 1 else slice(None) for a in range(4))].any()


@pytest.mark.parametrize("graph", [False, True])
def test_glu_gates_the_first_half_with_the_second(graph):
    x = tf.random.stateless_normal((2, 5, 8), seed=[1, 0])
    glu = blocks.GLU()
    y = tf.function(glu)(x) if graph else glu(x)  # TF 2.12's oneDNN rewrite broke the graph form of tf.split
    a, b = x[..., :4], x[..., 4:]
    np.testing.assert_allclose(y.numpy(), (a * tf.sigmoid(b)).numpy(), rtol=1e-6)


def test_split_sources_layout():
    # feature s * n_channels + c is channel c of source s
    x = tf.reshape(tf.range(2 * 3 * 6, dtype=tf.float32), (2, 3, 6))
    y = blocks.split_sources(x, n_sources=3, n_channels=2).numpy()
    assert y.shape == (2, 3, 2, 3)
    for s in range(3):
        for c in range(2):
            np.testing.assert_array_equal(y[..., c, s], x.numpy()[..., s * 2 + c])
    assert blocks.split_sources(tf.zeros((1, 4, 5, 6)), 2, 3).shape == (1, 4, 5, 3, 2)


def test_fold_features_and_center_crop():
    x = tf.random.stateless_normal((2, 7, 4, 3), seed=[2, 0])
    assert blocks.fold_features(x).shape == (2, 7, 12)
    np.testing.assert_array_equal(blocks.fold_features(x).numpy()[:, 3, 5], x.numpy()[:, 3, 1, 2])
    crop = blocks.center_crop(x, 3)
    np.testing.assert_array_equal(crop.numpy(), x.numpy()[:, 2:5])
    assert blocks.center_crop(x, 7) is x


def test_torch_uniform_bounds_and_rescale():
    w = blocks.TorchUniform()((8, 4, 16)).numpy()
    bound = 1 / math.sqrt(8 * 4)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    b = blocks.TorchUniform(fan_in=32, reference=0.1, is_bias=True)((16,)).numpy()
    factor = math.sqrt((bound / math.sqrt(3)) / 0.1)
    assert np.abs(b).max() <= bound / factor + 1e-7


@pytest.mark.parametrize("name,kind", [("relu", "ReLU"), ("LeakyReLU", "LeakyReLU"), ("elu", "ELU"),
                                       ("tanh", "Activation"), (None, "Activation")])
def test_activation_layer_by_name(name, kind):
    assert type(blocks.activation_layer(name)).__name__ == kind


def test_unknown_layer_names():
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        blocks.activation_layer("swish")
    with pytest.raises(ConfigError, match="unknown normalisation 'group'"):
        blocks.norm_layer("group")
    assert blocks.norm_layer(None) is None
    assert isinstance(blocks.norm_layer("layer"), tf.keras.layers.LayerNormalization)


def test_output_activations_by_domain():
    assert blocks.check_output_activation("Sigmoid", "2d", 2) == "sigmoid"
    assert blocks.check_output_activation("TANH", "1d", 1) == "tanh"
    with pytest.raises(ConfigError, match="model.params.output_activation"):
        blocks.check_output_activation("tanh", "2d", 2)
    with pytest.raises(ConfigError, match="n_sources >= 2"):
        blocks.check_output_activation("softmax", "2d", 1)
    z = tf.constant([[-3.0, 0.5, 2.0]])
    np.testing.assert_array_equal(blocks.apply_output_activation(z, "linear").numpy(), z.numpy())
    np.testing.assert_allclose(blocks.apply_output_activation(z, "tanh").numpy(), np.tanh(z.numpy()), rtol=1e-6)


MASK_BODIES = [n for n in NAMES if registry.get(n).domain == "2d" and not n.startswith("passthrough")]


@pytest.mark.parametrize("name", MASK_BODIES)
@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "relu"])
def test_every_mask_body_takes_every_mask_activation(name, activation):
    tf.keras.utils.set_random_seed(0)
    body = make(name, n_sources=3, output_activation=activation)
    masks = body(example(body, batch=1) * 10.0).numpy()
    assert masks.min() >= 0.0
    if activation != "relu":
        assert masks.max() <= 1.0
    if activation == "softmax":
        np.testing.assert_allclose(masks.sum(axis=-1), 1.0, atol=1e-5)
    else:
        assert masks.std() > 0



@pytest.mark.parametrize("preset", ["wave_unet_2d", "wave_unet_2d_small", "demucs_2d", "demucs_2d_small"])
def test_wave_unet_and_demucs_presets_share_out_the_mixture(preset):
    # independent sigmoid masks collapsed to zero under the L1 mask loss (docs/models.md); softmax masks
    # across the sources cannot all vanish
    tf.keras.utils.set_random_seed(0)
    cfg = load_config(preset)
    body = make(cfg["model"]["type"], n_sources=4, **cfg["model"]["params"])
    assert body.output_activation == "softmax"
