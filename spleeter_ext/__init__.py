"""spleeter-ext: music source separation on top of Deezer's Spleeter.

TensorFlow is imported lazily: ``import spleeter_ext`` is cheap, and the heavy
modules load on first use of :class:`Separator` or the model zoo.
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any TensorFlow import: keep C++ logs quiet

from ._version import __version__  # noqa: E402
from .errors import AudioError, ConfigError, SpleeterExtError  # noqa: E402

__all__ = ["__version__", "Separator", "SpleeterExtError", "ConfigError", "AudioError"]


def __getattr__(name):
    if name == "Separator":
        from .separate.separator import Separator

        return Separator
    raise AttributeError(f"module 'spleeter_ext' has no attribute {name!r}")
