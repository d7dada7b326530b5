"""Checks of model.params values: canonical forms, and errors that name the key."""
import pytest

from spleeter_ext.errors import ConfigError
from spleeter_ext.models import params


def test_per_level_broadcasts_and_checks_length():
    assert params.per_level(3, 2, "k") == [3, 3]
    assert params.per_level((1, 2), 2, "k") == [1, 2]
    with pytest.raises(ConfigError, match=r"model\.params\.k has 3 entries for 2 levels"):
        params.per_level([1, 2, 3], 2, "k")


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_positive_int_refuses(value):
    with pytest.raises(ConfigError, match=r"model\.params\.depth must be a positive integer"):
        params.positive_int(value, "depth")


def test_per_level_ints():
    assert params.per_level_ints(4, 3, "filters") == [4, 4, 4]
    with pytest.raises(ConfigError, match=r"model\.params\.filters"):
        params.per_level_ints([4, 0], 2, "filters")


def test_per_level_kernels_by_rank():
    assert params.per_level_kernels(5, 2, "k", rank=1) == [(5,), (5,)]
    assert params.per_level_kernels(5, 2, "k", rank=2) == [(5, 5), (5, 5)]
    assert params.per_level_kernels([[3, 5], 1], 2, "k", rank=2) == [(3, 5), (1, 1)]
    assert params.per_level_kernels([5, 3], 2, "k", rank=2) == [(5, 5), (3, 3)]  # a flat list is per level
    with pytest.raises(ConfigError, match=r"model\.params\.k: a per-level kernel is an int or a list of 2"):
        params.per_level_kernels([[3, 3, 3], 3], 2, "k", rank=2)
    with pytest.raises(ConfigError, match=r"model\.params\.k: a per-level kernel is an int,"):
        params.per_level_kernels([[3, 3], 3], 2, "k", rank=1)


def test_choices_and_flags():
    assert params.check_choice("Tanh", ("tanh", "linear"), "output_activation") == "tanh"
    with pytest.raises(ConfigError, match=r"model\.params\.output_activation must be one of tanh, linear"):
        params.check_choice("relu", ("tanh", "linear"), "output_activation")
    assert params.check_bool(False, "glu") is False
    with pytest.raises(ConfigError, match=r"model\.params\.glu must be true or false"):
        params.check_bool(0, "glu")
    assert params.check_list_of_int((4, 8), "conv_n_filters") == [4, 8]
    with pytest.raises(ConfigError, match=r"model\.params\.conv_n_filters"):
        params.check_list_of_int([4, 0], "conv_n_filters")
