"""The exported SavedModel gives the in-process Separator's stems, for inputs shorter than a segment, of one
segment and of several, including models that need a static length."""
import numpy as np
import pytest

from tests.export.conftest import OVERLAP, SAVEDMODEL_TOL, export_to, lengths, max_diff, noise, run_savedmodel


@pytest.mark.parametrize("family", ["stock_unet_2d", "unet_1d"])
@pytest.mark.parametrize("length", ["short", "one_segment", "several_segments"])
def test_savedmodel_matches_separator(exported, separators, family, length):
    sep = separators[family]
    paths, sig = exported[family]
    assert (sig["savedmodel"]["segment_samples"], sig["savedmodel"]["overlap_samples"]) == (sep.segment, sep.overlap)
    x = noise(lengths(sep.segment)[length])
    got = run_savedmodel(paths["savedmodel"], x)
    want = sep.separate(x)
    for k in want:
        assert got[k].shape == x.shape and got[k].dtype == np.float32
    assert max_diff(got, want) <= SAVEDMODEL_TOL


@pytest.mark.parametrize("mode", ["bucketed", "padded"])
def test_models_of_static_length(wave_model, tmp_path, monkeypatch, mode):
    """A model that cannot run at a length computed in the graph (e.g. a stacked model with a waveform
    first stage) gets one static branch per efficient length below a segment, which is still exact;
    with too many such lengths, short inputs are padded to a segment (long ones stay exact)."""
    from spleeter_ext import Separator
    from spleeter_ext.export import SeparationGraph

    monkeypatch.setattr(SeparationGraph, "_traces_any_length", lambda self: False)
    if mode == "padded":
        monkeypatch.setattr(SeparationGraph, "MAX_BUCKETS", 2)
    seconds = 256 / 44100  # the waveform U-Net's lengths are multiples of 64: 64, 128, 192, 256
    paths, sig = export_to(str(wave_model), tmp_path / mode, ("savedmodel",), segment_seconds=seconds)
    sep = Separator(str(wave_model), segment=seconds, overlap=OVERLAP)
    assert sig["savedmodel"]["segment_samples"] == sep.segment == 256
    assert sig["savedmodel"].get("short_input_lengths") == ([64, 128, 192, 256] if mode == "bucketed" else None)
    assert sig["savedmodel"]["short_inputs"].startswith(
        "zero-padded to the next of" if mode == "bucketed" else "zero-padded to one full segment")
    for n in (1, 100, 150, 256, 1000):
        x = noise(n, seed=n)
        got, want = run_savedmodel(paths["savedmodel"], x), sep.separate(x)
        assert all(got[k].shape == x.shape for k in got)
        if mode == "bucketed" or n >= sep.segment:
            assert max_diff(got, want) <= SAVEDMODEL_TOL
