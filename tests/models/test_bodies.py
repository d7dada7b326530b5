"""Shape, config, weight and gradient contracts of the Wave-U-Net, Demucs and BLSTM bodies, and the
model-info helpers (parameters, MACs, receptive field). Small shapes throughout."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.errors import ConfigError, ParameterError
from spleeter_ext.models import info, registry
from spleeter_ext.models.base import Body1D, Body2D, ceil_to_multiple

# Small versions of every body registered by wave_unet.py, demucs.py and blstm.py.
SMALL = {
    "wave_unet_1d": dict(depth=3, base_filters=4, down_kernel=5, up_kernel=3),
    "demucs_1d": dict(depth=2, channels=4, lstm_units=4),
    "wave_unet_2d": dict(depth=2, base_filters=4),
    "demucs_2d": dict(depth=2, channels=4, lstm_units=4),
    "blstm": dict(lstm_units=4, lstm_layers=2),
}
NAMES = sorted(SMALL)
NAMES_2D = [n for n in NAMES if registry.get(n).domain == "2d"]
MY_MODULES = ("spleeter_ext.models.wave_unet", "spleeter_ext.models.demucs", "spleeter_ext.models.blstm")
N_SAMPLES, N_FRAMES, N_BINS = 1001, 9, 50  # deliberately not multiples of anything


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def make(name, n_sources=2, n_channels=2, **overrides):
    return registry.get(name).build({**SMALL[name], **overrides}, n_sources=n_sources, n_channels=n_channels)


def example(body, n_channels=2, batch=2):
    """A random input padded the way the estimators pad: valid_length (1D) / input_multiple (2D)."""
    if body.domain == "1d":
        return tf.random.normal((batch, body.valid_length(N_SAMPLES), n_channels))
    fm, bm = body.input_multiple()
    return tf.random.uniform((batch, ceil_to_multiple(N_FRAMES, fm), ceil_to_multiple(N_BINS, bm), n_channels))


def test_every_body_of_these_modules_is_covered():
    mine = {spec.name for spec in registry.list_models() if spec.builder.__module__ in MY_MODULES}
    assert mine == set(NAMES)
    assert registry.get("blstm.blstm").name == "blstm"


@pytest.mark.parametrize("n_sources,n_channels", [(2, 2), (3, 1)])
@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_length(name, n_sources, n_channels):
    body = make(name, n_sources, n_channels)
    x = example(body, n_channels)
    if body.domain == "1d":
        n = body.valid_length(N_SAMPLES)
        assert n >= N_SAMPLES and body.valid_length(n) == n
        # smallest accepted length >= N_SAMPLES: every length in between maps to it
        assert all(body.valid_length(m) == n for m in range(N_SAMPLES, n + 1))
    else:
        fm, bm = body.input_multiple()
        assert x.shape[1] % fm == 0 and x.shape[2] % bm == 0
    y = body(x)
    assert tuple(y.shape) == tuple(x.shape) + (n_sources,)
    assert np.isfinite(y.numpy()).all()


def test_invalid_lengths():
    with pytest.raises(ParameterError, match="valid_length"):
        make("wave_unet_1d")(tf.zeros((1, 1001, 2)))
    for name in ("wave_unet_2d", "demucs_2d"):
        with pytest.raises(ParameterError, match="input_multiple"):
            make(name)(tf.zeros((1, 8, 50, 2)))
    # Demucs accepts any length like the original: skips are centre-cropped, the output is shorter.
    body = make("demucs_1d")
    assert body(tf.zeros((1, 1001, 2))).shape[1] < 1001


@pytest.mark.parametrize("name", NAMES_2D)
@pytest.mark.parametrize("activation", ["sigmoid", "softmax", "relu"])
def test_masks(name, activation):
    body = make(name, n_sources=3, output_activation=activation)
    masks = body(example(body) * 10.0).numpy()
    assert masks.min() >= 0.0
    if activation != "relu":
        assert masks.max() <= 1.0
    if activation == "softmax":
        np.testing.assert_allclose(masks.sum(axis=-1), 1.0, atol=1e-5)


def test_softmax_needs_two_sources():
    with pytest.raises(ConfigError, match="output_activation"):
        make("blstm", n_sources=1, output_activation="softmax")


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    body = make(name)
    x = example(body)
    y = body(x)
    config = json.loads(json.dumps(body.get_config()))  # configs are JSON data
    clone = type(body).from_config(config)
    again = registry.get(name).build({k: v for k, v in config.items() if k not in ("n_sources", "n_channels")},
                                     n_sources=2, n_channels=2)
    assert clone.get_config() == body.get_config() == again.get_config()
    clone(x)
    clone.set_weights(body.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), y.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_weights(name, tmp_path):
    body = make(name)
    x = example(body)
    y = body(x)
    path = str(tmp_path / "weights.h5")
    body.save_weights(path)
    other = type(body).from_config(body.get_config())
    other(x)
    other.load_weights(path)
    np.testing.assert_allclose(other(x).numpy(), y.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_every_weight_gets_a_gradient(name):
    body = make(name)
    x = example(body)
    with tf.GradientTape() as tape:
        y = body(x, training=True)
        loss = tf.reduce_mean(tf.square(y - 0.3))
    grads = tape.gradient(loss, body.trainable_weights)
    assert len(grads) == len(body.trainable_weights) > 0
    for w, g in zip(body.trainable_weights, grads):
        assert g is not None, w.name
        assert float(tf.norm(g)) > 0.0, w.name


@pytest.mark.parametrize("name,key,value", [
    ("wave_unet_1d", "filters", [4, 8]),
    ("wave_unet_1d", "down_kernel", [5, 5, 5, 5]),
    ("wave_unet_2d", "up_kernel", [3]),
    ("wave_unet_2d", "activation", ["ReLU"]),
    ("demucs_1d", "filters", [4, 8, 16]),
    ("demucs_1d", "stride", [4]),
    ("demucs_2d", "time_kernel", [3, 3, 3]),
    ("blstm", "lstm_units", [4, 4, 4]),
])
def test_bad_per_level_list_names_the_key(name, key, value):
    with pytest.raises(ConfigError, match=f"model.params.{key}"):
        make(name, **{key: value})


@pytest.mark.parametrize("name,key,value", [
    ("wave_unet_1d", "depth", 0), ("wave_unet_1d", "output_activation", "sigmoid"),
    ("wave_unet_2d", "down_kernel", [[3, 3, 3], 3]), ("demucs_1d", "kernel_size", 2),
    ("demucs_1d", "glu", "yes"), ("demucs_2d", "rescale", -1), ("blstm", "separate_networks", 1),
])
def test_bad_values_name_the_key(name, key, value):
    with pytest.raises(ConfigError, match=f"model.params.{key}"):
        make(name, **{key: value})


def test_unknown_key_is_a_config_error():
    with pytest.raises(ConfigError, match="model.params.nope"):
        make("demucs_1d", nope=1)


def test_per_level_lists_shape_the_architecture():
    body = make("wave_unet_1d", filters=[3, 5, 7], down_kernel=[3, 5, 7], up_kernel=[1, 3, 5])
    body(example(body))
    assert [c.filters for c in body.down_convs] == [3, 5, 7]
    assert [c.kernel_size[0] for c in body.down_convs] == [3, 5, 7]
    assert [c.kernel_size[0] for c in body.up_convs] == [5, 3, 1]  # deepest first
    body = make("wave_unet_2d", down_kernel=[[3, 5], 1])
    assert [c.kernel_size for c in body.down_convs] == [(3, 5), (1, 1)]
    body = make("demucs_1d", kernel_size=[8, 4], stride=[4, 2], filters=[3, 6])
    assert body(example(body)).shape[1] == body.valid_length(N_SAMPLES)


@pytest.mark.parametrize("name,params", [
    ("wave_unet_1d", dict(depth=1, output_activation="linear", activation=["ELU"], bottleneck_filters=3)),
    ("wave_unet_2d", dict(depth=3, filters=[2, 3, 4], down_kernel=[[3, 5], [1, 3], 3], up_kernel=1)),
    ("demucs_1d", dict(rewrite=False, lstm_layers=0, normalize=True, output_activation="tanh")),
    ("demucs_1d", dict(glu=False, growth=1.5, context=1, lstm_layers=1, rescale=0)),
    ("demucs_2d", dict(time_stride=[2, 1], time_kernel=[4, 1], glu=False, lstm_layers=0)),
    ("demucs_2d", dict(kernel_size=[4, 2], stride=[2, 2], rewrite=False, lstm_layers=1)),
    ("blstm", dict(lstm_units=[3, 5], separate_networks=False, output_activation="relu")),
])
def test_variants(name, params):
    body = make(name, **params)
    x = example(body)
    y = body(x)
    assert tuple(y.shape) == tuple(x.shape) + (2,)
    clone = type(body).from_config(body.get_config())
    clone(x)
    clone.set_weights(body.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), y.numpy(), rtol=1e-5, atol=1e-6)


def test_demucs_global_context():
    assert info.receptive_field(make("demucs_1d", lstm_layers=0, normalize=True)) == "global"
    field = info.receptive_field(make("demucs_1d", lstm_layers=0))
    # 2 levels K8 S4 down and up + 'same' context-3 convolutions: a few dozen samples
    assert isinstance(field, int) and 8 < field < 200


def test_blstm_shared_network_and_spleeter_alias():
    body = registry.get("blstm.blstm").build(dict(lstm_units=4, lstm_layers=1, separate_networks=False),
                                             n_sources=3, n_channels=2)
    y = body(tf.random.uniform((1, 5, 7, 2)))
    assert y.shape == (1, 5, 7, 2, 3)
    assert len(body.networks) == 1 and body.heads[0].units == 7 * 2 * 3


def test_demucs_rescale_pulls_weight_std_towards_reference():
    body = make("demucs_1d", channels=16, rescale=0.1)
    body(example(body))
    plain = make("demucs_1d", channels=16, rescale=0)
    plain(example(plain))
    first = lambda b: float(tf.math.reduce_std(b.encoder[0].chain[0].kernel))  # noqa: E731
    # Demucs: std -> sqrt(std * reference), i.e. closer to the reference on a log scale
    assert abs(math.log(first(body) / 0.1)) < abs(math.log(first(plain) / 0.1))
    np.testing.assert_allclose(first(body), math.sqrt(first(plain) * 0.1), rtol=0.2)


def _wave_unet_1d_params(depth=12, base=24, k_down=15, k_up=5, n_channels=2, n_sources=4):
    filters = [base * (i + 1) for i in range(depth)]
    total, c_in = 0, n_channels
    for f in filters:
        total += k_down * c_in * f + f
        c_in = f
    bottleneck = base * (depth + 1)
    total += k_down * c_in * bottleneck + bottleneck
    c_in = bottleneck
    for f in reversed(filters):
        total += k_up * (c_in + f) * f + f
        c_in = f
    return total + (c_in + n_channels) * n_sources * n_channels + n_sources * n_channels


def _demucs_1d_params(channels=64, depth=4, k=8, context=3, n_channels=2, n_sources=4):
    chans = [channels * 2 ** i for i in range(depth)]
    total, c_in = 0, n_channels
    for i, c in enumerate(chans):
        out = c_in if i else n_sources * n_channels
        total += k * c_in * c + c + c * 2 * c + 2 * c          # encoder conv + 1x1 rewrite
        total += context * c * 2 * c + 2 * c + k * c * out + out  # decoder rewrite + transposed conv
        c_in = c
    c = chans[-1]
    lstm = 2 * (4 * c * (c + c + 1)) + 2 * (4 * c * (2 * c + c + 1))  # 2 bidirectional layers
    return total + lstm + 2 * c * c + c


def _blstm_params(n_bins=1024, n_channels=2, n_sources=4, units=250):
    d = n_bins * n_channels
    per_source = 2 * 4 * units * (d + units + 1) + 2 * 2 * 4 * units * (2 * units + units + 1) + 2 * units * d + d
    return n_sources * per_source


def test_paper_sized_defaults_build():
    """The defaults are the papers' sizes (4 stereo sources); built once on a minimal input."""
    expected = {"wave_unet_1d": _wave_unet_1d_params(), "demucs_1d": _demucs_1d_params(),
                "blstm": _blstm_params()}
    for name in NAMES:
        body = registry.get(name).build({}, n_sources=4, n_channels=2)
        n = info.count_params(body, n_bins=1024)
        assert n == body.count_params() > 100_000, name
        if name in expected:
            assert n == expected[name], name
    body = registry.get("wave_unet_1d").build({}, n_sources=4, n_channels=2)
    assert body.depth == 12 and body.valid_length(1) == 4096
    # down: 44100 -> 11024 -> 2755 -> 688 -> 171; up: 171 -> 688 -> 2756 -> 11028 -> 44116
    assert registry.get("demucs_1d").build({}, n_sources=4, n_channels=2).valid_length(44100) == 44116


# ------------------------------------------------------------------------------------------------
# info: hand computations on one-layer models
# ------------------------------------------------------------------------------------------------
class _OneConv1D(Body1D):
    def __init__(self, n_sources=1, n_channels=2):
        super().__init__(n_sources, n_channels)
        self.conv = tf.keras.layers.Conv1D(4 * n_sources, 3, padding="same")

    def call(self, x, training=None):  # (batch, n, 2) -> (batch, n, 4 ... ) as (batch, n, 2, 2)
        y = self.conv(x)
        return tf.reshape(y, [tf.shape(y)[0], tf.shape(y)[1], 2, 2 * self.n_sources])


class _StridedPair1D(Body1D):
    """Conv1D(k=8, stride 4, 3 filters) then Conv1DTranspose(k=8, stride 4, 2 filters)."""

    def __init__(self, n_sources=1, n_channels=2):
        super().__init__(n_sources, n_channels)
        self.down = tf.keras.layers.Conv1D(3, 8, strides=4, padding="same")
        self.up = tf.keras.layers.Conv1DTranspose(2, 8, strides=4, padding="same")

    def valid_length(self, n):
        return ceil_to_multiple(n, 4)

    def call(self, x, training=None):
        return self.up(self.down(x))[..., None]


class _BiLSTM2D(Body2D):
    """BiLSTM(3 units) over frames of 8 bins x 2 channels, Dense back to 16 features."""

    def __init__(self, n_sources=1, n_channels=2):
        super().__init__(n_sources, n_channels)
        self.lstm = tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(3, return_sequences=True))
        self.dense = tf.keras.layers.Dense(16)

    def call(self, x, training=None):
        h = tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], 16])
        return tf.reshape(self.dense(self.lstm(h)), tf.shape(x))[..., None]


class _Convs2D(Body2D):
    def __init__(self, n_sources=1, n_channels=2):
        super().__init__(n_sources, n_channels)
        self.a = tf.keras.layers.Conv2D(3, (3, 5), padding="same")
        self.b = tf.keras.layers.Conv2D(2, (5, 1), padding="same")

    def call(self, x, training=None):
        return self.b(tf.nn.leaky_relu(self.a(x)))[..., None]


def test_macs_of_one_conv():
    body = _OneConv1D()
    assert info.macs_per_second(body, "1d", sample_rate=100) == pytest.approx(3 * 2 * 4 * 100)
    assert info.forward_macs(body, (1, 10, 2), by_layer=True) == [(body.conv.name, 10 * 3 * 2 * 4)]
    assert info.count_params(body) == 3 * 2 * 4 + 4


def test_macs_of_strided_and_transposed_conv():
    body = _StridedPair1D()
    # conv: 16 output positions x 8 x 2 x 3; transposed: 16 input positions x 8 x 2 x 3
    assert info.forward_macs(body, (1, 64, 2)) == 16 * 8 * 2 * 3 * 2


def test_macs_of_an_lstm_count_every_time_step():
    body = _BiLSTM2D()
    per_frame = 2 * 4 * 3 * (16 + 3) + 6 * 16  # two directions of 4u(d+u), then the Dense
    macs = info.macs_per_second(body, "2d", sample_rate=1000, frame_step=10, n_bins=8)
    assert macs == pytest.approx(per_frame * 100)
    assert info.forward_macs(body, (1, 7, 8, 2)) == 7 * per_frame
    assert info.receptive_field(body) == "global"


def test_receptive_field_of_stacked_convs():
    assert info.receptive_field(_OneConv1D()) == 3
    assert info.receptive_field(_Convs2D(), "2d") == 3 + 5 - 1


def test_receptive_field_grows_the_input_until_it_fits():
    body = make("wave_unet_1d", depth=2, down_kernel=15, up_kernel=5)
    field = info.receptive_field(body, start=16)
    assert isinstance(field, int) and 15 < field < 400
    assert info.receptive_field(body, start=16, max_length=32) == "global"


@pytest.mark.parametrize("name", NAMES)
def test_info_on_every_body(name):
    body = make(name)
    n = info.count_params(body, n_bins=64)
    assert n == body.count_params()
    assert info.macs_per_second(body, n_bins=64, seconds=1.0) > n  # at least one MAC per weight per second
    field = info.receptive_field(body)
    if name in ("wave_unet_1d", "wave_unet_2d"):
        assert isinstance(field, int) and field > 1
    else:
        assert field == "global"


def test_macs_scale_with_the_frame_rate_and_a_built_body_is_remeasured():
    body = make("blstm")
    body(tf.zeros((1, 3, 16, 2)))  # built for 16 bins; info measures a fresh copy for 64
    a = info.macs_per_second(body, n_bins=64, seconds=1.0)
    b = info.macs_per_second(body, n_bins=64, frame_step=512, seconds=1.0)
    assert b == pytest.approx(2 * a, rel=0.01)


@pytest.mark.parametrize("name,params", [
    ("spleeter_unet_2d", dict(conv_n_filters=[4, 8], dropout=[0.0, 0.0])),
    ("spleeter_unet_1d", dict(conv_n_filters=[4, 8], dropout=[0.0, 0.0])),
])
def test_info_on_the_spleeter_bodies(name, params):
    spec = registry.get(name)
    body = spec.build(params, n_sources=2, n_channels=2)
    assert info.count_params(body, n_bins=64) == body.count_params()
    assert info.macs_per_second(body, n_bins=64, seconds=1.0) > 0
    assert isinstance(info.receptive_field(body), int)
