"""Logging and progress: tqdm bars on a terminal, plain log lines otherwise."""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

logger = logging.getLogger("spleeter_ext")
T = TypeVar("T")


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted (a test runner may swap it in and out)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the current stderr is always used
        pass


def configure_logging(verbose: bool = False) -> None:
    """Route the toolkit's logs to stderr; quiet TensorFlow's C++ and Python chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    level = logging.DEBUG if verbose else logging.INFO
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def is_terminal() -> bool:
    return sys.stderr.isatty()


class Progress:
    """Progress over a known total: a tqdm bar on a terminal, else an INFO line at most every ``interval`` s."""

    def __init__(self, total: Optional[float], desc: str, unit: str = "s", interval: float = 10.0,
                 enabled: bool = True):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = 0.0
        self._bar = None
        self._last = time.monotonic()
        self._enabled = enabled
        if enabled and is_terminal():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}]"
                             if unit == "s" else None)

    def update(self, n: float) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled and time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            total = f"/{self.total:.1f}" if self.total else ""
            logger.info("%s: %.1f%s %s", self.desc, self.n, total, self.unit)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(iterable: Iterable[T], total: Optional[int] = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """Iterate with progress (tqdm on a terminal, log lines otherwise)."""
    with Progress(total, desc, unit=unit) as bar:
        for item in iterable:
            yield item
            bar.update(1)
