"""The Wave-U-Net bodies (both ranks from one builder): per-level settings, variants, paper sizes."""
import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.errors import ConfigError
from spleeter_ext.models import info, registry
from spleeter_ext.models.wave_unet import WaveUNet
from tests.models._helpers import N_SAMPLES, check_variant, example, make


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def wave_unet_params(depth, base, down_area, up_area, n_channels=2, n_sources=4):
    """Weights of a Wave-U-Net counted by hand: ``*_area`` = weights per kernel (15 in 1D, 5 x 5 in 2D)."""
    filters = [base * (i + 1) for i in range(depth)]
    total, c_in = 0, n_channels
    for f in filters:
        total += down_area * c_in * f + f
        c_in = f
    bottleneck = base * (depth + 1)
    total += down_area * c_in * bottleneck + bottleneck
    c_in = bottleneck
    for f in reversed(filters):
        total += up_area * (c_in + f) * f + f
        c_in = f
    return total + (c_in + n_channels) * n_sources * n_channels + n_sources * n_channels


@pytest.mark.parametrize("name,expected", [
    ("wave_unet_1d", wave_unet_params(12, 24, 15, 5)),   # the paper's M4/M5: 10.26 M
    ("wave_unet_2d", wave_unet_params(6, 24, 25, 9)),    # 5x5 down, 3x3 up: 2.67 M
])
def test_paper_sized_defaults_have_the_exact_parameter_count(name, expected):
    body = registry.get(name).build({}, n_sources=4, n_channels=2)
    assert info.count_params(body, n_bins=1024) == body.count_params() == expected


def test_one_builder_for_both_ranks():
    one, two = make("wave_unet_1d"), make("wave_unet_2d")
    assert isinstance(one, WaveUNet) and isinstance(two, WaveUNet)
    assert (one.rank, two.rank) == (1, 2)
    assert one.valid_length(1) == 2 ** 3 and two.input_multiple() == (4, 4)
    assert registry.get("wave_unet_1d").build({}, n_sources=4, n_channels=2).valid_length(1) == 4096


def test_per_level_lists_shape_the_architecture():
    body = make("wave_unet_1d", filters=[3, 5, 7], down_kernel=[3, 5, 7], up_kernel=[1, 3, 5])
    body(example(body))
    assert [c.filters for c in body.down_convs] == [3, 5, 7]
    assert [c.kernel_size[0] for c in body.down_convs] == [3, 5, 7]
    assert [c.kernel_size[0] for c in body.up_convs] == [5, 3, 1]  # deepest first
    body = make("wave_unet_2d", down_kernel=[[3, 5], 1])
    assert [c.kernel_size for c in body.down_convs] == [(3, 5), (1, 1)]


@pytest.mark.parametrize("name,key,value", [
    ("wave_unet_1d", "filters", [4, 8]),
    ("wave_unet_1d", "down_kernel", [5, 5, 5, 5]),
    ("wave_unet_1d", "down_kernel", [[5, 3], 5, 5]),  # a 2D kernel on a 1D body
    ("wave_unet_2d", "up_kernel", [3]),
    ("wave_unet_2d", "activation", ["ReLU"]),
    ("wave_unet_2d", "down_kernel", [[3, 3, 3], 3]),
    ("wave_unet_1d", "depth", 0),
    ("wave_unet_1d", "output_activation", "sigmoid"),  # waveforms: tanh or linear
    ("wave_unet_2d", "output_activation", "tanh"),     # masks: sigmoid, softmax or relu
    ("wave_unet_1d", "activation", "swish"),
])
def test_bad_values_name_the_key(name, key, value):
    with pytest.raises(ConfigError, match=f"model.params.{key}|activation 'swish'"):
        make(name, **{key: value})


@pytest.mark.parametrize("name,params", [
    ("wave_unet_1d", dict(depth=1, output_activation="linear", activation=["ELU"], bottleneck_filters=3)),
    ("wave_unet_2d", dict(depth=3, filters=[2, 3, 4], down_kernel=[[3, 5], [1, 3], 3], up_kernel=1)),
])
def test_variants(name, params):
    body = make(name, **params)
    check_variant(body)


def test_tanh_bounds_the_waveforms():
    body = make("wave_unet_1d")
    y = body(example(body) * 100.0).numpy()
    assert np.abs(y).max() <= 1.0
    assert example(body).shape[1] == body.valid_length(N_SAMPLES) == 1008


def test_receptive_field_grows_with_depth():
    shallow = info.receptive_field(make("wave_unet_1d", depth=1, down_kernel=15, up_kernel=5), start=16)
    deep = info.receptive_field(make("wave_unet_1d", depth=2, down_kernel=15, up_kernel=5), start=16)
    # depth 1: 15-tap conv, then (at half rate) the bottleneck's 15 taps, then the 5-tap merge conv
    assert isinstance(shallow, int) and isinstance(deep, int) and 15 < shallow < deep < 400
