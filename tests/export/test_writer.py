"""The export folder: what it holds, defaults as the Separator's, replacing a previous export, and errors."""
import json
from pathlib import Path

import numpy as np
import pytest

from spleeter_ext.errors import ConfigError, ModelNotFoundError, ParameterError, SpleeterExtError
from tests.export.conftest import SAVEDMODEL_TOL, max_diff, noise, run_savedmodel


def test_export_folder(exported):
    from spleeter_ext.config import load_config

    paths, sig = exported["stock_unet_2d"]
    folder = Path(paths["savedmodel"])
    names = {p.name for p in folder.iterdir()}
    assert names >= {"saved_model.pb", "variables", "config.json", "signature.json", "README.txt"}
    assert "model.tflite" not in names
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    cfg = load_config(paths["config"])
    assert cfg["instrument_list"] == ["vocals", "drums", "bass"] and cfg["model"]["type"] == "unet.unet"
    assert sig["sample_rate"] == 44100 and sig["n_channels"] == 2
    assert sig["instruments"] == ["vocals", "drums", "bass"]
    assert sig["savedmodel"]["inputs"]["waveform"]["shape"] == [None, 2]
    assert set(sig["savedmodel"]["outputs"]) == {"vocals", "drums", "bass"}
    assert "tflite" not in sig
    readme = Path(paths["readme"]).read_text()
    assert "44100 Hz" in readme and "serving_default" in readme and "TFLite" not in readme
    wave_paths, wave_sig = exported["unet_1d"]
    assert Path(wave_paths["tflite"]) == Path(wave_paths["savedmodel"]) / "model.tflite"
    assert wave_sig["tflite"]["inputs"]["waveform"]["shape"] == [wave_sig["savedmodel"]["segment_samples"], 2]
    assert "exactly one segment" in Path(wave_paths["readme"]).read_text()


def test_defaults_match_separator(wave_model, tmp_path):
    """No segment/overlap given: the export chunks as ``Separator(model)`` does (40 s segments)."""
    from spleeter_ext import Separator
    from spleeter_ext.export import export

    paths = export(str(wave_model), tmp_path / "default")
    sig = json.loads(Path(paths["signature"]).read_text())
    sep = Separator(str(wave_model))
    assert (sig["savedmodel"]["segment_samples"], sig["savedmodel"]["overlap_samples"]) == (sep.segment, sep.overlap)
    assert sig["savedmodel"]["short_inputs"].startswith("zero-padded to the model's next efficient length")
    x = noise(30000, seed=2)
    assert max_diff(run_savedmodel(paths["savedmodel"], x), sep.separate(x)) <= SAVEDMODEL_TOL


def test_export_replaces_a_previous_export(tmp_path):
    from spleeter_ext.export import export

    cfg = tmp_path / "pt.json"
    cfg.write_text(json.dumps({"instrument_list": ["a", "b"], "model": {"type": "passthrough_1d"}}))
    first = export(str(cfg), tmp_path / "out", segment_seconds=0.5)
    second = export(str(cfg), tmp_path / "out", segment_seconds=0.25)
    assert first == second
    assert json.loads(Path(second["signature"]).read_text())["savedmodel"]["segment_samples"] == 11025
    x = noise(30000, seed=4)
    out = run_savedmodel(second["savedmodel"], x)
    np.testing.assert_allclose(out["a"], x, atol=1e-6)
    assert np.abs(out["b"]).max() == 0


def test_unknown_model(tmp_path):
    from spleeter_ext.export import export

    with pytest.raises(ConfigError, match="not a config file, model directory or preset"):
        export("no_such_model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_dir_errors(wave_model, tmp_path):
    from spleeter_ext.export import export

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ParameterError, match="not a directory"):
        export(str(wave_model), a_file)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not empty"):
        export(str(wave_model), busy)
    assert (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(ParameterError, match="unknown export format 'onnx'"):
        export(str(wave_model), tmp_path / "out", formats=("savedmodel", "onnx"))
    with pytest.raises(ParameterError, match="overlap"):
        export(str(wave_model), tmp_path / "out", overlap=1.5)


def test_model_errors(tmp_path):
    from spleeter_ext.export import ExportError, export

    untrained = tmp_path / "untrained.json"
    untrained.write_text(json.dumps({"instrument_list": ["a", "b"], "model_dir": str(tmp_path / "none"),
                                     "model": {"type": "spleeter_unet_1d", "params": {"conv_n_filters": [4]}}}))
    with pytest.raises(ModelNotFoundError, match="no checkpoint"):
        export(str(untrained), tmp_path / "out")
    mwf = tmp_path / "mwf.json"
    mwf.write_text(json.dumps({"instrument_list": ["a", "b"], "MWF": True, "frame_length": 512, "frame_step": 128,
                               "T": 64, "F": 257, "model": {"type": "passthrough_2d"}}))
    with pytest.raises(ExportError, match="MWF"):
        export(str(mwf), tmp_path / "out")
    assert issubclass(ExportError, SpleeterExtError)
