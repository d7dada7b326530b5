"""The body contracts: configuration storage and the shape checks at the boundary."""
import json

import pytest
import tensorflow as tf

from spleeter_ext.errors import ConfigError, ParameterError
from spleeter_ext.models.base import Body, Body1D, Body2D, ceil_to_multiple, check_multiple


class _Strided1D(Body1D):
    def __init__(self, n_sources=1, n_channels=1, multiple=8, shape=(1, 2), name=None):
        super().__init__(n_sources, n_channels, name=name)
        self._remember(multiple=multiple, shape=shape)
        self.multiple = multiple

    def valid_length(self, n):
        return ceil_to_multiple(n, self.multiple)


class _Patches2D(Body2D):
    def input_multiple(self):
        return (4, 16)


def test_config_round_trip_and_tuples_become_lists():
    body = _Strided1D(2, 1, multiple=4)
    assert body.get_config() == {"n_sources": 2, "n_channels": 1, "multiple": 4, "shape": [1, 2]}
    assert json.loads(json.dumps(body.get_config())) == body.get_config()  # JSON data
    assert _Strided1D.from_config(body.get_config()).get_config() == body.get_config()


@pytest.mark.parametrize("n_sources,n_channels", [(0, 2), (2, 0)])
def test_sizes_must_be_positive(n_sources, n_channels):
    with pytest.raises(ConfigError, match="must be >= 1"):
        Body(n_sources, n_channels)


def test_ranks_and_domains():
    assert (Body1D.rank, Body1D.domain, Body2D.rank, Body2D.domain) == (1, "1d", 2, "2d")


def test_1d_check_input_names_valid_length():
    body = _Strided1D()
    body.check_input(tf.zeros((1, 16, 1)))
    body.check_input(tf.TensorSpec((1, None, 1)))  # unknown lengths are checked where they become known
    with pytest.raises(ParameterError, match=r"_Strided1D input length is 17.*valid_length\(n\) \(here 24\)"):
        body.check_input(tf.zeros((1, 17, 1)))


def test_2d_check_input_names_input_multiple():
    body = _Patches2D(1, 1)
    body.check_input(tf.zeros((1, 8, 32, 1)))
    with pytest.raises(ParameterError, match=r"_Patches2D n_frames is 6, not a multiple of 4; pad it to input_mult"):
        body.check_input(tf.zeros((1, 6, 32, 1)))
    with pytest.raises(ParameterError, match=r"n_bins is 40, not a multiple of 16"):
        body.check_input(tf.zeros((1, 8, 40, 1)))


def test_multiples():
    assert [ceil_to_multiple(n, 4) for n in (0, 1, 4, 5)] == [0, 4, 4, 8]
    assert ceil_to_multiple(2 ** 60 + 1, 2 ** 12) == 2 ** 60 + 2 ** 12  # exact for long inputs
    check_multiple(None, 4, "x", "")  # unknown sizes pass
    with pytest.raises(ParameterError, match="x is 5, not a multiple of 4; pad"):
        check_multiple(5, 4, "x", "pad")
