"""Spleeter's BLSTM body: layout (one network per source or shared), sizes, variants."""
import pytest
import tensorflow as tf

from spleeter_ext.errors import ConfigError
from spleeter_ext.models import info, registry
from tests.models._helpers import check_variant, example, make


def blstm_params(n_bins=1024, n_channels=2, n_sources=4, units=250):
    """Weights of Spleeter's BLSTM counted by hand: 3 BiLSTM(units) + Dense per source."""
    d = n_bins * n_channels
    per_source = 2 * 4 * units * (d + units + 1) + 2 * 2 * 4 * units * (2 * units + units + 1) + 2 * units * d + d
    return n_sources * per_source


def test_spleeter_sized_defaults_have_the_exact_parameter_count():
    body = registry.get("blstm").build({}, n_sources=4, n_channels=2)
    assert info.count_params(body, n_bins=1024) == body.count_params() == blstm_params()  # 34.51 M


def test_shared_network_and_spleeter_alias():
    body = registry.get("blstm.blstm").build(dict(lstm_units=4, lstm_layers=1, separate_networks=False),
                                             n_sources=3, n_channels=2)
    y = body(tf.random.uniform((1, 5, 7, 2)))
    assert y.shape == (1, 5, 7, 2, 3)
    assert len(body.networks) == 1 and body.heads[0].units == 7 * 2 * 3


def test_separate_networks_per_source():
    body = make("blstm", n_sources=3)
    body(example(body))
    assert len(body.networks) == 3 and [h.units for h in body.heads] == [50 * 2] * 3


def test_a_built_body_keeps_its_bins_and_channels():
    body = make("blstm")
    body(tf.zeros((1, 3, 16, 2)))
    with pytest.raises(ConfigError, match="channels"):
        make("blstm")(tf.zeros((1, 3, 16, 1)))


@pytest.mark.parametrize("key,value", [("lstm_units", [4, 4, 4]), ("lstm_layers", 0), ("separate_networks", 1),
                                       ("output_activation", "tanh")])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"model.params.{key}"):
        make("blstm", **{key: value})


def test_variant_round_trip():
    body = make("blstm", lstm_units=[3, 5], separate_networks=False, output_activation="relu")
    check_variant(body)
