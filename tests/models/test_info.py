"""Parameters, MACs and receptive fields: hand computations on one-layer bodies, then every body."""
import pytest
import tensorflow as tf

from spleeter_ext.models import info, registry
from spleeter_ext.models.base import Body1D, Body2D, ceil_to_multiple
from tests.models._helpers import NAMES, make


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


MEASURED = [n for n in NAMES if registry.get(n).domain != "stack" and not n.startswith("passthrough")]


@pytest.mark.parametrize("name", MEASURED)
def test_info_on_every_body(name):
    body = make(name)
    n = info.count_params(body, n_bins=64)
    assert n == body.count_params()
    assert info.macs_per_second(body, n_bins=64, seconds=1.0) > n  # at least one MAC per weight per second
    field = info.receptive_field(body)
    if name.startswith(("demucs", "blstm")):  # BiLSTMs over time
        assert field == "global"
    else:
        assert isinstance(field, int) and field > 1


def test_macs_scale_with_the_frame_rate_and_a_built_body_is_remeasured():
    body = make("blstm")
    body(tf.zeros((1, 3, 16, 2)))  # built for 16 bins; info measures a fresh copy for 64
    a = info.macs_per_second(body, n_bins=64, seconds=1.0)
    b = info.macs_per_second(body, n_bins=64, frame_step=512, seconds=1.0)
    assert b == pytest.approx(2 * a, rel=0.01)
