"""SavedModel / TFLite export: the exported graph gives the in-process Separator's stems.

Two model families: the 3-stem Spleeter U-Net of a checkpoint written by stock ``spleeter train``
(spectrogram masking, STFT inside the graph) and a tiny waveform U-Net (``spleeter_unet_1d``) with
random weights saved as a checkpoint. Segments are short (about 1 s) so that a few seconds of audio
span several of them.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from spleeter_ext.errors import ConfigError, ModelNotFoundError, ParameterError, SpleeterExtError

SEGMENT = 1.0  # seconds
OVERLAP = 0.25
SAVEDMODEL_TOL = 1e-4
TFLITE_TOL = 1e-3


def _noise(n, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2)).astype(np.float32)


def _max_diff(a, b):
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


_LOADED = {}


def _run_savedmodel(path, x):
    """``{stem: (n, 2)}`` from the export's ``serving_default`` signature (each export loaded once)."""
    import tensorflow as tf

    if str(path) not in _LOADED:
        _LOADED[str(path)] = tf.saved_model.load(str(path))
    fn = _LOADED[str(path)].signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(waveform=tf.constant(x)).items()}


def _write_random_model(root: Path, config: dict) -> Path:
    """A model directory (config.json + checkpoint) with random weights and batch-norm statistics."""
    import tensorflow as tf

    from spleeter_ext.config import load_config
    from spleeter_ext.models.estimators import build_estimator

    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    est = build_estimator(load_config(str(root)))
    est.build()
    rng = np.random.default_rng(3)
    for v in est.body.variables:
        if "moving_variance" in v.name:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
        elif "moving_mean" in v.name:
            v.assign(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=est.body), str(root), max_to_keep=1).save()
    return root


@pytest.fixture(scope="module")
def wave_model(tmp_path_factory):
    """A 2-stem waveform U-Net (three stride-4 levels) with random weights, as a model directory."""
    return _write_random_model(tmp_path_factory.mktemp("wave") / "model", {
        "instrument_list": ["vocals", "accompaniment"],
        "model": {"type": "spleeter_unet_1d", "params": {"conv_n_filters": [4, 8, 8], "kernel_size": 15,
                                                          "strides": 4}}})


@pytest.fixture(scope="module")
def models(stock_model, wave_model):
    """``{family: descriptor}``."""
    return {"stock_unet_2d": str(stock_model["config"]), "unet_1d": str(wave_model)}


@pytest.fixture(scope="module")
def separators(models):
    from spleeter_ext import Separator

    # The exported graph chunks with a crossfade; the Separator's default for spectrogram models is the patch grid.
    return {name: Separator(d, segment=SEGMENT, overlap=OVERLAP, chunking="crossfade") for name, d in models.items()}


def _export(descriptor, folder, formats, **kwargs):
    from spleeter_ext.export import export

    kwargs = {"segment_seconds": SEGMENT, "overlap": OVERLAP, **kwargs}
    paths = export(descriptor, folder, formats=formats, **kwargs)
    return paths, json.loads(Path(paths["signature"]).read_text())


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    """``{family: (paths, signature.json)}``: the SavedModel of both families, and the waveform
    model's TFLite (the spectrogram model's TFLite conversion is slower: see ``stock_tflite``)."""
    root = tmp_path_factory.mktemp("exports")
    return {"stock_unet_2d": _export(models["stock_unet_2d"], root / "stock_unet_2d", ("savedmodel",)),
            "unet_1d": _export(models["unet_1d"], root / "unet_1d", ("savedmodel", "tflite"))}


@pytest.fixture(scope="module")
def stock_tflite(models, tmp_path_factory):
    """The stock U-Net exported with TFLite: ``(paths, signature.json)``."""
    return _export(models["stock_unet_2d"], tmp_path_factory.mktemp("tflite") / "stock", ("savedmodel", "tflite"))


def _tflite_export(request, exported, family):
    """``(paths, signature.json)`` of a family's export with TFLite."""
    return request.getfixturevalue("stock_tflite") if family == "stock_unet_2d" else exported[family]


def _lengths(segment):
    return {"short": int(0.4 * segment) + 3, "one_segment": segment, "several_segments": int(3.3 * segment) + 17}


@pytest.mark.parametrize("family", ["stock_unet_2d", "unet_1d"])
@pytest.mark.parametrize("length", ["short", "one_segment", "several_segments"])
def test_savedmodel_matches_separator(exported, separators, family, length):
    sep = separators[family]
    paths, sig = exported[family]
    assert (sig["savedmodel"]["segment_samples"], sig["savedmodel"]["overlap_samples"]) == (sep.segment, sep.overlap)
    x = _noise(_lengths(sep.segment)[length])
    got = _run_savedmodel(paths["savedmodel"], x)
    want = sep.separate(x)
    for k in want:
        assert got[k].shape == x.shape and got[k].dtype == np.float32
    assert _max_diff(got, want) <= SAVEDMODEL_TOL


TFLITE_FAMILIES = [pytest.param("stock_unet_2d", marks=pytest.mark.slow), "unet_1d"]


@pytest.mark.parametrize("family", TFLITE_FAMILIES)
def test_tflite_op_set(request, exported, separators, family):
    """The spectrogram model needs Flex for the complex STFT ops and converts with a dynamic length;
    the waveform U-Net needs built-in ops only, for inputs of one segment."""
    tl = _tflite_export(request, exported, family)[1]["tflite"]
    if family == "stock_unet_2d":
        assert tl["op_set"] == "TFLITE_BUILTINS+SELECT_TF_OPS" and "IRFFT" in tl["select_tf_ops"]
        assert tl["input_length"] == "dynamic" and tl["inputs"]["waveform"]["shape"] == [None, 2]
    else:
        assert tl["op_set"] == "TFLITE_BUILTINS" and tl["select_tf_ops"] == []
        assert tl["input_length"] == separators[family].segment
    assert tl["max_abs_diff_to_savedmodel"] <= TFLITE_TOL


@pytest.mark.parametrize("family", TFLITE_FAMILIES)
def test_tflite_matches_separator(request, exported, separators, family):
    import tensorflow as tf

    sep = separators[family]
    paths, sig = _tflite_export(request, exported, family)
    runner = tf.lite.Interpreter(model_path=paths["tflite"]).get_signature_runner("serving_default")
    fixed = sig["tflite"]["input_length"]
    lengths = ["short", "several_segments"] if fixed == "dynamic" else ["one_segment"]
    for length in lengths:
        x = _noise(_lengths(sep.segment)[length], seed=1)
        if fixed != "dynamic":
            assert len(x) == fixed
        assert _max_diff(runner(waveform=x), sep.separate(x)) <= TFLITE_TOL


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
    x = _noise(30000, seed=2)
    assert _max_diff(_run_savedmodel(paths["savedmodel"], x), sep.separate(x)) <= SAVEDMODEL_TOL


def test_export_replaces_a_previous_export(tmp_path):
    from spleeter_ext.export import export

    cfg = tmp_path / "pt.json"
    cfg.write_text(json.dumps({"instrument_list": ["a", "b"], "model": {"type": "passthrough_1d"}}))
    first = export(str(cfg), tmp_path / "out", segment_seconds=0.5)
    second = export(str(cfg), tmp_path / "out", segment_seconds=0.25)
    assert first == second
    assert json.loads(Path(second["signature"]).read_text())["savedmodel"]["segment_samples"] == 11025
    x = _noise(30000, seed=4)
    out = _run_savedmodel(second["savedmodel"], x)
    np.testing.assert_allclose(out["a"], x, atol=1e-6)
    assert np.abs(out["b"]).max() == 0


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
    paths, sig = _export(str(wave_model), tmp_path / mode, ("savedmodel",), segment_seconds=seconds)
    sep = Separator(str(wave_model), segment=seconds, overlap=OVERLAP)
    assert sig["savedmodel"]["segment_samples"] == sep.segment == 256
    assert sig["savedmodel"].get("short_input_lengths") == ([64, 128, 192, 256] if mode == "bucketed" else None)
    assert sig["savedmodel"]["short_inputs"].startswith(
        "zero-padded to the next of" if mode == "bucketed" else "zero-padded to one full segment")
    for n in (1, 100, 150, 256, 1000):
        x = _noise(n, seed=n)
        got, want = _run_savedmodel(paths["savedmodel"], x), sep.separate(x)
        assert all(got[k].shape == x.shape for k in got)
        if mode == "bucketed" or n >= sep.segment:
            assert _max_diff(got, want) <= SAVEDMODEL_TOL


@pytest.mark.parametrize("preset", ["spleeter_2d_small", "spleeter_1d_small", "wave_unet_1d_small",
                                    "demucs_1d_small", "spleeter:4stems"])
def test_length_rule_reproduces_fit_segment(preset):
    from spleeter_ext.export import infer_length_rule
    from spleeter_ext.models.estimators import build_estimator

    est = build_estimator(preset)
    segment = est.segment_samples(SEGMENT * 3)
    rule = infer_length_rule(est.fit_segment, segment)
    assert rule is not None
    ns = list(range(1, 3 * rule.period + 2)) + list(np.random.default_rng(0).integers(1, segment, 2000))
    assert all(rule(int(n)) == est.fit_segment(int(n)) for n in ns)
    assert rule(segment) == segment


# --- errors -------------------------------------------------------------------------------------------
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


def test_unconvertible_op_is_named(tmp_path, monkeypatch):
    """An op neither TFLite nor Flex has (here a Python function in the model) fails with its name,
    and leaves nothing behind."""
    import tensorflow as tf

    from spleeter_ext.export import ExportError, export
    from spleeter_ext.models.passthrough import Passthrough1D

    def call(self, x, training=None):
        y = tf.ensure_shape(tf.numpy_function(lambda a: a, [x], tf.float32), x.shape)
        return y[..., None] * tf.one_hot(self.target, self.n_sources, dtype=x.dtype)

    monkeypatch.setattr(Passthrough1D, "call", call)
    cfg = tmp_path / "pyfunc.json"
    cfg.write_text(json.dumps({"instrument_list": ["a", "b"], "model": {"type": "passthrough_1d"}}))
    with pytest.raises(ExportError, match=r"cannot convert to TFLite: .*PyFunc") as info:
        export(str(cfg), tmp_path / "out", formats=("savedmodel", "tflite"), segment_seconds=0.2)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyfunc.json"]
