"""The exact length rule each estimator states (``Estimator.length_rule``, which the export computes in the
graph and the Separator pads short inputs to) against what the models accept."""
import numpy as np
import pytest

from spleeter_ext.config import load_config
from spleeter_ext.models import registry
from spleeter_ext.models.estimators import LengthRule, STFTMaskEstimator, WaveformEstimator, build_estimator

#: every registered waveform body, as small as it builds
TINY_1D = {
    "wave_unet_1d": {"depth": 3, "base_filters": 2},
    "spleeter_unet_1d": {"conv_n_filters": [2, 2], "strides": [2, 4], "kernel_size": 5},
    "demucs_1d": {"channels": 2, "depth": 2, "lstm_layers": 1},
    "passthrough_1d": {},
}


def _estimator(model, params, **extra):
    return build_estimator(load_config({"instrument_list": ["a", "b"], "model": {"type": model, "params": params},
                                        **extra}))


def test_every_waveform_body_is_covered():
    assert set(TINY_1D) == {spec.name for spec in registry.list_models() if spec.domain == "1d"}


@pytest.mark.parametrize("model", sorted(TINY_1D))
def test_waveform_rule_is_what_the_body_accepts(model):
    """The rule's lengths are exactly the body's valid lengths, the body keeps them whole, and the length
    after each one (when the period is above 1) is refused or shortened."""
    import tensorflow as tf

    est = _estimator(model, TINY_1D[model])
    assert isinstance(est, WaveformEstimator)
    rule = est.length_rule()
    ns = range(1, rule.minimum + 4 * rule.period + 2)
    assert [rule.fit(n) for n in ns] == [int(est.body.valid_length(n)) for n in ns]
    assert [est.fit_segment(n) for n in ns] == [rule.fit(n) for n in ns]
    valid = rule.lengths(below=rule.minimum + 3 * rule.period)
    assert valid == [n for n in ns if est.body.valid_length(n) == n][: len(valid)] and len(valid) == 3
    for length in valid:
        assert est.body(tf.zeros((1, length, 2))).shape[1] == length, (model, length)
        if rule.period > 1:
            try:
                out = est.body(tf.zeros((1, length + 1, 2))).shape[1]
            except Exception:  # a body that checks its input length
                continue
            assert out != length + 1, (model, length + 1)


def test_demucs_rule_follows_its_strides():
    rule = _estimator("demucs_1d", {"channels": 2, "depth": 3, "kernel_size": 8, "stride": [4, 2, 4],
                                    "lstm_layers": 0}).length_rule()
    # down: 1 sample at the bottom; up: (1 - 1) * 4 + 8 = 8, (8 - 1) * 2 + 8 = 22, (22 - 1) * 4 + 8 = 92
    assert rule == LengthRule(period=4 * 2 * 4, offset=92 % 32, minimum=92)


@pytest.mark.parametrize("n_fft, hop, T", [(1024, 256, 64), (4096, 1024, 512), (512, 512, 2)])
def test_spectrogram_rule_fills_whole_patches(n_fft, hop, T):
    """``k * T * hop - n_fft`` samples (``n_fft`` zeros prepended) make whole T-frame patches; one sample
    more starts a patch of padding frames."""
    import tensorflow as tf

    from spleeter_ext import dsp

    est = _estimator("passthrough_2d", {}, frame_length=n_fft, frame_step=hop, T=T, F=n_fft // 2 + 1)
    assert isinstance(est, STFTMaskEstimator)
    rule = est.length_rule()
    assert rule.period == T * hop
    rng = np.random.default_rng(0)
    for n in [1, 2, T * hop] + rng.integers(1, 3 * T * hop, 20).tolist():
        fitted = rule.fit(n)
        assert fitted >= n and fitted - n < rule.period and fitted == est.fit_segment(n)
    for length in rule.lengths(below=3 * rule.period + 1)[:3]:
        frames = dsp.stft(tf.zeros((length + n_fft, 1)), n_fft, hop).shape[0]
        assert frames % T == 0 and frames // T == (length + n_fft) // rule.period
        assert dsp.stft(tf.zeros((length + 1 + n_fft, 1)), n_fft, hop).shape[0] % T == 1


def test_rule_in_a_graph_equals_the_python_rule():
    import tensorflow as tf

    rule = LengthRule(period=96, offset=84, minimum=180)
    ns = np.arange(1, 1000, dtype=np.int32)
    assert tf.map_fn(rule.fit, tf.constant(ns)).numpy().tolist() == [rule.fit(int(n)) for n in ns]
    assert rule.fit(1) == 180 and rule.fit(181) == 276 and rule.lengths(below=400) == [180, 276, 372]
