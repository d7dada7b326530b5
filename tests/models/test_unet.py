"""Spleeter's U-Net: one UNetStack(rank) for both ranks, Spleeter's exact size, its mask activations."""
import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from spleeter_ext.errors import ConfigError
from spleeter_ext.models import info, registry
from spleeter_ext.models.estimators import build_estimator
from spleeter_ext.models.unet import SPLEETER_FILTERS, UNetStack
from tests.models._helpers import example, make


def spleeter_unet_params(kernel_area, n_channels=2, head=None, last_filters=1, filters=SPLEETER_FILTERS):
    """Weights of one U-Net per source counted by hand, BatchNorm moving statistics included (4 per filter)."""
    total, c_in = 0, n_channels
    for f in filters:
        total += kernel_area * c_in * f + f + 4 * f
        c_in = f
    depth = len(filters)
    for j in range(depth):
        level = depth - 1 - j
        out = filters[level - 1] if level > 0 else last_filters
        c_in = filters[-1] if j == 0 else 2 * filters[level]  # the raw deepest conv, then skip + previous level
        total += kernel_area * c_in * out + out + 4 * out
    return total + (head if head is not None else 4 * 4 * last_filters * n_channels + n_channels)


def test_spleeter_unet_has_spleeters_exact_parameter_count():
    cfg = load_config({"instrument_list": ["vocals"], "model": {"type": "unet.unet"}})
    est = build_estimator(cfg)
    est.build()
    n = sum(int(np.prod(v.shape)) for v in est.body.variables)  # incl. BatchNorm moving statistics
    assert n == spleeter_unet_params(5 * 5) == 9_826_759  # the 9.83 M of a stock Spleeter stem


def test_spleeter_unet_1d_exact_parameter_count():
    body = registry.get("spleeter_unet_1d").build({}, n_sources=4, n_channels=2)
    per_source = spleeter_unet_params(15, last_filters=16, head=16 * 2 + 2)
    assert info.count_params(body) == body.count_params() == 4 * per_source  # 23.63 M


def test_one_stack_for_both_ranks():
    one, two = make("spleeter_unet_1d"), make("spleeter_unet_2d")
    assert all(isinstance(u, UNetStack) for u in one.unets + two.unets)
    assert one.valid_length(1) == 4 ** 3 and two.input_multiple() == (2 ** 6, 2 ** 6)
    one(example(one))
    two(example(two))
    assert one.unets[0].enc_conv[0].kernel.shape == (5, 2, 4)
    assert two.unets[0].enc_conv[0].kernel.shape == (5, 5, 2, 4)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "relu"])
def test_masks_go_through_the_shared_activation(activation):
    tf.keras.utils.set_random_seed(0)
    body = make("spleeter_unet_2d", n_sources=3, output_activation=activation)
    x = example(body, batch=1) * 10.0
    logits = body.mask_logits(x).numpy()
    masks = body(x).numpy()
    expected = {"sigmoid": tf.sigmoid, "softmax": lambda z: tf.nn.softmax(z, axis=-1), "relu": tf.nn.relu}
    np.testing.assert_allclose(masks, expected[activation](logits).numpy(), rtol=1e-6, atol=1e-7)


def test_softmax_unet_is_the_softmax_alias():
    body = registry.get("unet.softmax_unet").build({"conv_n_filters": [4, 8]}, n_sources=2, n_channels=2)
    assert body.output_activation == "softmax"
    with pytest.raises(ConfigError, match="output_activation"):
        registry.get("unet.softmax_unet").build({"conv_n_filters": [4, 8]}, n_sources=1, n_channels=2)


@pytest.mark.parametrize("key,value", [("conv_n_filters", []), ("dropout", [0.5, 1.0]), ("strides", [2]),
                                       ("output_activation", "tanh")])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"model.params.{key}"):
        registry.get("spleeter_unet_2d").build({"conv_n_filters": [4, 8], key: value}, n_sources=2, n_channels=2)


def test_info_on_the_spleeter_bodies():
    for name in ("spleeter_unet_2d", "spleeter_unet_1d"):
        body = registry.get(name).build(dict(conv_n_filters=[4, 8], dropout=[0.0, 0.0]), n_sources=2, n_channels=2)
        assert info.count_params(body, n_bins=64) == body.count_params()
        assert info.macs_per_second(body, n_bins=64, seconds=1.0) > 0
        assert isinstance(info.receptive_field(body), int)
