"""Model zoo: bodies (tensor -> tensor), estimators (waveform -> {instrument: waveform}), registry."""
from .registry import ModelSpec, get, list_models, register

__all__ = ["ModelSpec", "get", "list_models", "register"]
