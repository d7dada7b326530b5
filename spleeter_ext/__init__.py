"""spleeter-ext: music source separation on top of Deezer's Spleeter.

TensorFlow is imported lazily: ``import spleeter_ext`` is cheap, and the heavy
modules load on first use of :class:`Separator` or the model zoo.
"""
from ._version import __version__
from .errors import SpleeterExtError, ConfigError, AudioError

__all__ = ["__version__", "Separator", "SpleeterExtError", "ConfigError", "AudioError"]


def __getattr__(name):
    if name == "Separator":
        from .separate.separator import Separator

        return Separator
    raise AttributeError(f"module 'spleeter_ext' has no attribute {name!r}")
