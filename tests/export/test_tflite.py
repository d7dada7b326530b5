"""TFLite conversion: the op set each family needs, the converted model's stems, and an unconvertible op named."""
import json

import pytest

from tests.export.conftest import TFLITE_TOL, lengths, max_diff, noise

TFLITE_FAMILIES = [pytest.param("stock_unet_2d", marks=pytest.mark.slow), "unet_1d"]


def _tflite_export(request, exported, family):
    """``(paths, signature.json)`` of a family's export with TFLite."""
    return request.getfixturevalue("stock_tflite") if family == "stock_unet_2d" else exported[family]


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
    for length in ["short", "several_segments"] if fixed == "dynamic" else ["one_segment"]:
        x = noise(lengths(sep.segment)[length], seed=1)
        if fixed != "dynamic":
            assert len(x) == fixed
        assert max_diff(runner(waveform=x), sep.separate(x)) <= TFLITE_TOL


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
