"""The Demucs bodies (both ranks from one builder): lengths, per-level settings, variants, paper sizes."""
import math

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.errors import ConfigError
from spleeter_ext.models import info, registry
from spleeter_ext.models.demucs import Demucs
from tests.models._helpers import N_SAMPLES, check_variant, example, make


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def demucs_params(channels, depth, kernel_area, context_area, lstm_positions=1, n_channels=2, n_sources=4):
    """Weights of a Demucs counted by hand (GLU rewrites, 2 BiLSTM layers of C_last units)."""
    chans = [channels * 2 ** i for i in range(depth)]
    total, c_in = 0, n_channels
    for i, c in enumerate(chans):
        out = c_in if i else n_sources * n_channels
        total += kernel_area * c_in * c + c + c * 2 * c + 2 * c            # encoder conv + 1x1 rewrite
        total += context_area * c * 2 * c + 2 * c + kernel_area * c * out + out  # decoder rewrite + transposed
        c_in = c
    u = chans[-1]
    d = lstm_positions * u  # features of the folded bottleneck
    lstm = 2 * 4 * u * (d + u + 1) + 2 * 4 * u * (2 * u + u + 1)
    return total + lstm + 2 * u * d + d


@pytest.mark.parametrize("name,expected", [
    ("demucs_1d", demucs_params(64, 4, 8, 3)),                        # 16.57 M
    ("demucs_2d", demucs_params(32, 4, 3 * 8, 3 * 3, 1024 // 4 ** 4)),  # 8.54 M, 4 bins folded into the LSTM
])
def test_paper_sized_defaults_have_the_exact_parameter_count(name, expected):
    body = registry.get(name).build({}, n_sources=4, n_channels=2)
    assert info.count_params(body, n_bins=1024) == body.count_params() == expected


def test_valid_length_follows_demucs():
    body = registry.get("demucs_1d").build({}, n_sources=4, n_channels=2)
    # down: 44100 -> 11024 -> 2755 -> 688 -> 171; up: 171 -> 688 -> 2756 -> 11028 -> 44116
    assert body.valid_length(44100) == 44116
    small = make("demucs_1d")
    n = small.valid_length(N_SAMPLES)
    assert small(example(small)).shape[1] == n
    assert small(tf.zeros((1, N_SAMPLES, 2))).shape[1] < N_SAMPLES  # any length; shorter output


def test_one_builder_for_both_ranks():
    one, two = make("demucs_1d"), make("demucs_2d", time_stride=[2, 1], time_kernel=[4, 1])
    assert isinstance(one, Demucs) and isinstance(two, Demucs)
    assert (one.padding, two.padding) == ("valid", "same")
    assert one.kernels == [(8,), (8,)] and two.kernels == [(4, 8), (1, 8)]
    assert two.input_multiple() == (2, 16)
    two(example(two))
    assert two.lstm_linear.units == (64 // 16) * 8  # frequency folded into the LSTM features
    one(example(one))
    assert one.lstm_linear.units == 8


def test_per_level_lists_shape_the_architecture():
    body = make("demucs_1d", kernel_size=[8, 4], stride=[4, 2], filters=[3, 6])
    assert body(example(body)).shape[1] == body.valid_length(N_SAMPLES)
    assert [e.chain[0].filters for e in body.encoder] == [3, 6]


@pytest.mark.parametrize("name,key,value", [
    ("demucs_1d", "filters", [4, 8, 16]),
    ("demucs_1d", "stride", [4]),
    ("demucs_1d", "kernel_size", 2),
    ("demucs_1d", "glu", "yes"),
    ("demucs_1d", "growth", 0),
    ("demucs_1d", "lstm_layers", -1),
    ("demucs_1d", "normalize", 1),
    ("demucs_2d", "time_kernel", [3, 3, 3]),
    ("demucs_2d", "time_kernel", 0),
    ("demucs_2d", "rescale", -1),
    ("demucs_2d", "output_activation", "linear"),
])
def test_bad_values_name_the_key(name, key, value):
    with pytest.raises(ConfigError, match=f"model.params.{key}"):
        make(name, **{key: value})


def test_rank_specific_keys_belong_to_their_rank():
    with pytest.raises(ConfigError, match="model.params.time_kernel"):
        make("demucs_1d", time_kernel=3)
    with pytest.raises(ConfigError, match="model.params.normalize"):
        make("demucs_2d", normalize=True)
    assert "normalize" in make("demucs_1d").get_config() and "time_kernel" not in make("demucs_1d").get_config()
    assert "time_kernel" in make("demucs_2d").get_config() and "normalize" not in make("demucs_2d").get_config()


@pytest.mark.parametrize("name,params", [
    ("demucs_1d", dict(rewrite=False, lstm_layers=0, normalize=True, output_activation="tanh")),
    ("demucs_1d", dict(glu=False, growth=1.5, context=1, lstm_layers=1, rescale=0)),
    ("demucs_2d", dict(time_stride=[2, 1], time_kernel=[4, 1], glu=False, lstm_layers=0)),
    ("demucs_2d", dict(kernel_size=[4, 2], stride=[2, 2], rewrite=False, lstm_layers=1)),
])
def test_variants(name, params):
    body = make(name, **params)
    check_variant(body)


def test_normalize_makes_the_output_follow_the_input_scale():
    body = make("demucs_1d", normalize=True, output_activation="linear")
    x = example(body, batch=1)
    y1, y2 = body(x).numpy(), body(10.0 * x + 3.0).numpy()
    np.testing.assert_allclose(y2, 10.0 * y1 + 3.0, rtol=1e-3, atol=1e-3)


def test_global_context():
    assert info.receptive_field(make("demucs_1d", lstm_layers=0, normalize=True)) == "global"
    field = info.receptive_field(make("demucs_1d", lstm_layers=0))
    # 2 levels K8 S4 down and up + 'same' context-3 convolutions: a few dozen samples
    assert isinstance(field, int) and 8 < field < 200


def test_rescale_pulls_weight_std_towards_reference():
    body = make("demucs_1d", channels=16, rescale=0.1)
    body(example(body))
    plain = make("demucs_1d", channels=16, rescale=0)
    plain(example(plain))
    first = lambda b: float(tf.math.reduce_std(b.encoder[0].chain[0].kernel))  # noqa: E731
    # Demucs: std -> sqrt(std * reference), i.e. closer to the reference on a log scale
    assert abs(math.log(first(body) / 0.1)) < abs(math.log(first(plain) / 0.1))
    np.testing.assert_allclose(first(body), math.sqrt(first(plain) * 0.1), rtol=0.2)
