"""Checks of ``model.params`` values shared by the bodies: each returns the value in canonical form or
raises a ConfigError naming ``model.params.<key>``."""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple

from ..errors import ConfigError


def positive_int(value: Any, key: str) -> int:
    """``value`` as an int > 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.params.{key} must be a positive integer, got {value!r}")
    return int(value)


def check_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"model.params.{key} must be true or false, got {value!r}")
    return value


def check_choice(value: Any, allowed: Sequence[str], key: str) -> str:
    """``value`` lower-cased when it is one of ``allowed``."""
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ConfigError(f"model.params.{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value.lower()


def per_level(value: Any, depth: int, key: str) -> list:
    """Broadcast a scalar setting to ``depth`` levels or check a per-level list's length."""
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ConfigError(f"model.params.{key} has {len(value)} entries for {depth} levels")
        return list(value)
    return [value] * depth


def per_level_ints(value: Any, depth: int, key: str) -> List[int]:
    """Broadcast an int to ``depth`` levels, or check a per-level list (length and positivity)."""
    return [positive_int(v, key) for v in per_level(value, depth, key)]


def per_level_kernels(value: Any, depth: int, key: str, rank: int) -> List[Tuple[int, ...]]:
    """Kernel shapes per level, each a ``rank``-tuple (``(time, freq)`` pairs for rank 2).

    ``value`` is an int (the same cubic kernel on every level) or a per-level list of ``depth`` entries,
    each an int or a list of ``rank`` ints. A flat list is always per-level (never one shape for all
    levels), so ``[5, 3]`` with depth 2 means 5x5 then 3x3.
    """
    shapes = []
    for entry in per_level(value, depth, key):
        if isinstance(entry, (list, tuple)):
            if len(entry) != rank:
                shape = "an int" if rank == 1 else f"an int or a list of {rank} ints ([time, freq])"
                raise ConfigError(f"model.params.{key}: a per-level kernel is {shape}, got {entry!r}")
            shapes.append(tuple(positive_int(k, key) for k in entry))
        else:
            shapes.append((positive_int(entry, key),) * rank)
    return shapes


def check_list_of_int(values: Sequence, key: str) -> list:
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, int) and v > 0 for v in values):
        raise ConfigError(f"model.params.{key} must be a non-empty list of positive integers, got {values!r}")
    return list(values)
