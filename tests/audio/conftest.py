"""Fixtures for the audio I/O tests."""
import logging

import av
import pytest


@pytest.fixture
def audio_log(caplog):
    """``caplog`` attached straight to the ``spleeter_ext`` logger at DEBUG, each record once,
    whether or not the CLI has set ``propagate = False`` on it."""
    logger = logging.getLogger("spleeter_ext")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    caplog.handler.setLevel(logging.DEBUG)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def av_opens(monkeypatch):
    """The paths passed to ``av.open`` while the test runs (how many times files are opened)."""
    calls = []
    original = av.open

    def counting_open(file, *args, **kwargs):
        calls.append(str(file))
        return original(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    return calls
