"""Shared material for the evaluation tests: short music-like stems (museval costs ~1 s per second of audio)."""
import pytest

from spleeter_ext.evaluation.signals import degraded_estimates, music_like_sources


@pytest.fixture(scope="session")
def stems():
    """4 stereo sources, 4.5 s: museval keeps 4 frames and drops the trailing half second."""
    references = music_like_sources(n_sources=4, seconds=4.5, seed=0)
    return references, degraded_estimates(references, seed=1)


@pytest.fixture(scope="session")
def small_stems():
    """2 stereo sources, 2.5 s, for the cheaper museval comparisons."""
    references = music_like_sources(n_sources=2, seconds=2.5, seed=3)
    return references, degraded_estimates(references, seed=4)


@pytest.fixture(scope="session")
def museval_module():
    """museval, a required dependency: a broken install makes these tests error, never skip."""
    import museval

    return museval
