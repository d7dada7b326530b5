"""Argument checks and one-line error reasons shared by the audio modules."""
from __future__ import annotations

import math
import os
from typing import Union

import numpy as np

from ..errors import ParameterError

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _fspath(path: PathLike, name: str = "path") -> str:
    """``str`` path from a ``str``, ``bytes`` (as Spleeter's TF pipeline passes) or path-like."""
    if isinstance(path, np.ndarray) and path.ndim == 0:
        path = path.item()
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise ParameterError(f"{name}: got {type(path).__name__}; pass a file path (str or pathlib.Path)"
                             ) from None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _reason(error: BaseException) -> str:
    """Short one-line reason from a PyAV/OS error (its strerror, without the file name)."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return _one_line(text)


def _check_rate(value: object, name: str = "sample_rate") -> int:
    """A positive integral sample rate in Hz (ints, integral floats and numpy scalars accepted)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name}: got {value!r}; pass a positive sample rate in Hz such as 44100")
    number = float(value)
    if not math.isfinite(number) or number <= 0 or not number.is_integer():
        raise ParameterError(f"{name}: got {value!r}; pass a positive integer sample rate in Hz such as 44100")
    return int(number)


def _check_seconds(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name}: got {value!r}; pass a number of seconds >= 0")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ParameterError(f"{name}: got {value!r}; pass a number of seconds >= 0")
    return number


def _check_count(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name}: got {value!r}; pass an integer >= {minimum}")
    return int(value)
