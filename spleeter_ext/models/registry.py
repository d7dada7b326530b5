"""One registry of model bodies (``register`` / ``get`` / ``list_models``); Spleeter's own ``model.type``
values (``unet.unet``, ``blstm.blstm``...) resolve as aliases, so its JSON configs keep working."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..errors import ConfigError

_REGISTRY: Dict[str, "ModelSpec"] = {}
_ALIASES: Dict[str, str] = {}
# Bodies live in these modules; they register themselves on import.
_MODULES = (
    "spleeter_ext.models.unet",
    "spleeter_ext.models.wave_unet",
    "spleeter_ext.models.demucs",
    "spleeter_ext.models.blstm",
    "spleeter_ext.models.stack",
    "spleeter_ext.models.passthrough",
)


@dataclass
class ModelSpec:
    """A registered model: its name, domain ('1d', '2d' or 'stack'), builder and fixed arguments."""

    name: str
    domain: str
    builder: Callable[..., Any]
    description: str = ""
    defaults: Dict[str, Any] = field(default_factory=dict)
    aliases: tuple = ()

    def build(self, params: Optional[dict] = None, source: str = "<config>", **context) -> Any:
        """Build the body from ``model.params``; ``context`` carries n_sources/n_channels from the config.

        Unknown parameters raise ConfigError naming ``model.params.<key>``.
        """
        params = dict(params or {})
        sig = inspect.signature(self.builder)
        accepts_var = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        known = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not accepts_var:
            for key in params:
                if key not in known or key in context:
                    hint = ", ".join(k for k in known if k not in context and k not in ("name", "trainable", "dtype"))
                    raise ConfigError(f"{source}: unknown key 'model.params.{key}' for model '{self.name}'; "
                                      f"known: {hint}")
        kwargs = {**self.defaults, **params}
        kwargs.update({k: v for k, v in context.items() if k in known or accepts_var})
        try:
            return self.builder(**kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: invalid 'model.params' for model '{self.name}': {exc}") from None


def register(name: str, domain: str, description: str = "", aliases: tuple = (), **defaults):
    """Class/function decorator: register ``builder`` under ``name`` (and Spleeter-style aliases)."""
    if domain not in ("1d", "2d", "stack"):
        raise ValueError(f"domain must be '1d', '2d' or 'stack', got {domain!r}")

    def deco(builder):
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"model '{name}' is already registered")
        summary = description or (builder.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = ModelSpec(name, domain, builder, summary,
                                    dict(defaults), tuple(aliases))
        for alias in aliases:
            _ALIASES[alias] = name
        return builder

    return deco


def _load_all() -> None:
    import importlib

    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def get(name: str) -> ModelSpec:
    """The spec registered under ``name`` or an alias; a helpful ConfigError otherwise."""
    _load_all()
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        available = ", ".join(sorted(_REGISTRY)) + "; Spleeter names: " + ", ".join(sorted(_ALIASES))
        raise ConfigError(f"Unknown model '{name}'. Available: {available}")
    return _REGISTRY[key]


def list_models() -> List[ModelSpec]:
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def aliases() -> Dict[str, str]:
    _load_all()
    return dict(_ALIASES)
