"""One error family for every boundary of the toolkit (in the spirit of librosa's ``ParameterError``).

Each message is one line naming the file or key, what was wrong and how to fix it; the CLI prints it as ``error:``.
"""


class SpleeterExtError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class ParameterError(SpleeterExtError, ValueError):
    """A function argument is out of its domain (wrong shape, range or type)."""


class ConfigError(ParameterError):
    """A JSON model configuration is invalid (unknown key, wrong type, missing file)."""


class AudioError(SpleeterExtError):
    """An audio file cannot be read or written (missing, empty, corrupt, truncated, NaN samples)."""


class ModelNotFoundError(SpleeterExtError):
    """Model weights cannot be found or downloaded."""


class DatasetError(SpleeterExtError):
    """A dataset (MUSDB18, folder tree or CSV) is missing or malformed."""


class ExportError(SpleeterExtError):
    """A model cannot be exported in the requested format (the message names the reason or the ops)."""
