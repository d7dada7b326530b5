"""The stacked U-Net (the second phase of Henning, Choudhry & Ma 2021): a first-stage separator
followed by a second U-Net per stem that refines the first stage's estimate.

Stage two works in the spectrogram domain, as in the paper, whatever the first stage is:

* a 2D first stage gives magnitude estimates ``est1 = mask1 * |X|`` directly;
* a 1D first stage gives waveforms, whose magnitude spectrograms (the same STFT as the mixture's)
  are the estimates.

For stem ``s`` the refiner U-Net sees ``est1[s]`` (and, with ``refine_input='estimate+mixture'``,
the mixture magnitude stacked on the channel axis) and outputs a sigmoid mask ``mask2[s]`` relative
to the **mixture** (``est2 = mask2 * |X|``), so it can restore what stage one removed as well as
remove what it left. The final separation then applies Spleeter's ratio masks to ``est2``.

Training modes (config key ``stage_loss_weight`` and ``model.params.freeze_stage1``):

* end to end: loss = ``stage_loss_weight`` x L1(stage one) + L1(stage two);
* stage two alone on a frozen first stage loaded from a checkpoint: ``stage1`` names a trained
  model directory of this project or ``spleeter:4stems`` (stock weights), ``freeze_stage1: true``.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf

from .. import dsp
from ..errors import ConfigError
from .base import Body2D
from .estimators import Estimator, STFTMaskEstimator, WaveformEstimator, spectrogram_losses
from .registry import register
from .unet import SPLEETER_FILTERS, SpleeterUNet2D

REFINE_INPUTS = ("estimate", "estimate+mixture")


def _stage1_config(parent: dict, stage1) -> dict:
    """The first stage's full config: an inline ``{'type', 'params'}`` shares the parent's audio and
    STFT settings; a descriptor string loads that model's own config."""
    from ..config import load_config

    if isinstance(stage1, str):
        cfg = load_config(stage1)
        if list(cfg["instrument_list"]) != list(parent["instrument_list"]):
            raise ConfigError(f"{parent.get('_source')}: stage1 '{stage1}' separates {cfg['instrument_list']}, "
                              f"the stacked model {parent['instrument_list']}; they must match")
        if cfg["sample_rate"] != parent["sample_rate"] or cfg["n_channels"] != parent["n_channels"]:
            raise ConfigError(f"{parent.get('_source')}: stage1 '{stage1}' has another sample_rate/n_channels")
        return cfg
    if not isinstance(stage1, dict) or "type" not in stage1:
        raise ConfigError(f"{parent.get('_source')}: 'model.params.stage1' must be a model "
                          "{'type': ..., 'params': {...}} or a config/model directory/preset name")
    if stage1["type"] == "stack_unet":
        raise ConfigError(f"{parent.get('_source')}: 'model.params.stage1' cannot itself be a stacked model")
    cfg = {k: v for k, v in parent.items()}
    cfg["model"] = {"type": stage1["type"], "params": dict(stage1.get("params") or {})}
    cfg["MWF"] = False
    return cfg


@register("stack_unet", "stack", description="first-stage separator + a refining U-Net per stem (2D)")
class StackedUNet(Body2D):
    """Stage one plus one refining :class:`SpleeterUNet2D` per stem.

    As a 2D body (when stage one is 2D): input ``(batch, n_frames, n_bins, n_channels)`` magnitude
    -> final masks ``(batch, n_frames, n_bins, n_channels, n_sources)``; :meth:`stages` also returns
    stage one's masks. With a 1D stage one, use the estimator (:meth:`make_estimator`).
    """

    def __init__(self, n_sources: int, n_channels: int = 2, stage1=None, refiner: Optional[dict] = None,
                 refine_input: str = "estimate+mixture", freeze_stage1: bool = False, name=None):
        super().__init__(n_sources, n_channels, name=name)
        if stage1 is None:
            stage1 = {"type": "spleeter_unet_2d", "params": {}}
        if refine_input not in REFINE_INPUTS:
            raise ConfigError(f"model.params.refine_input must be one of {REFINE_INPUTS}, got {refine_input!r}")
        refiner = dict(refiner or {})
        refiner.setdefault("conv_n_filters", SPLEETER_FILTERS)
        for key in ("n_sources", "n_channels", "output_activation"):
            if key in refiner:
                raise ConfigError(f"model.params.refiner.{key} is fixed by the stacked model; remove it")
        self._remember(stage1=stage1, refiner=refiner, refine_input=refine_input, freeze_stage1=freeze_stage1)
        self.stage1_spec = stage1
        self.refine_input = refine_input
        self.freeze_stage1 = bool(freeze_stage1)
        self.stage1_estimator: Optional[Estimator] = None
        self.stage1_body = None
        self.refiners = [SpleeterUNet2D(1, n_channels, name=f"refiner_{s}", **refiner) for s in range(n_sources)]
        self._inline_parent: Optional[dict] = None

    # The first stage needs the whole config (STFT, instruments), so it is attached by make_estimator.
    def attach_stage1(self, parent_config: dict) -> Estimator:
        from .estimators import build_estimator

        if self.stage1_estimator is None:
            cfg = _stage1_config(parent_config, self.stage1_spec)
            self.stage1_estimator = build_estimator(cfg)
            self.stage1_body = self.stage1_estimator.body
            if self.freeze_stage1:
                self.stage1_body.trainable = False
        return self.stage1_estimator

    def load_stage1_weights(self) -> Optional[str]:
        """Load stage one's own checkpoint when ``stage1`` names a trained model or a Spleeter preset
        (used when training starts; afterwards the stacked checkpoint holds both stages)."""
        from ..separate.weights import load_weights

        if isinstance(self.stage1_spec, str) and self.stage1_estimator is not None:
            return load_weights(self.stage1_estimator, self.stage1_estimator.config)
        return None

    def input_multiple(self):
        m = self.refiners[0].input_multiple()
        if self.stage1_body is not None and hasattr(self.stage1_body, "input_multiple"):
            m1 = self.stage1_body.input_multiple()
            m = (max(m[0], m1[0]), max(m[1], m1[1]))
        return m

    def refine(self, est1: tf.Tensor, mix: tf.Tensor, training=None) -> tf.Tensor:
        """Stage-two masks ``(B, T, F, C, S)`` from stage-one magnitudes ``(B, T, F, C, S)`` and the
        mixture magnitude ``(B, T, F, C)``."""
        masks = []
        for s, unet in enumerate(self.refiners):
            x = est1[..., s]
            if self.refine_input == "estimate+mixture":
                x = tf.concat([x, mix], axis=-1)
            masks.append(unet(x, training=training)[..., 0])
        return tf.stack(masks, axis=-1)

    def stages(self, x, training=None):
        """``(mask1, mask2)`` for a 2D first stage; input ``(B, T, F, C)``."""
        if self.stage1_body is None or self.stage1_body.domain != "2d":
            raise ConfigError("StackedUNet.stages needs a 2D first stage attached (use make_estimator)")
        t1 = training and not self.freeze_stage1
        m1 = self.stage1_body(x, training=t1)
        m2 = self.refine(m1 * x[..., None], x, training=training)
        return m1, m2

    def call(self, x, training=None):
        return self.stages(x, training=training)[1]

    def make_estimator(self, config: dict) -> "StackedEstimator":
        self.attach_stage1(config)
        return StackedEstimator(self, config)


class StackedEstimator(STFTMaskEstimator):
    """Spleeter-convention masking around a :class:`StackedUNet` (any first stage)."""

    domain = "stack"

    def __init__(self, body: StackedUNet, config: dict):
        super().__init__(body, config)
        self.stage1 = body.stage1_estimator
        self.stage_loss_weight = float(config.get("stage_loss_weight", 1.0))
        if body.freeze_stage1:
            self.stage_loss_weight = 0.0

    def estimate_magnitudes(self, patches, training=False):
        # Only valid for a 2D first stage (the 1D path goes through _separate_one).
        return self.body(patches, training=training) * patches[..., None]

    def _separate_one(self, waveform, training=False):
        if self.stage1.domain == "2d" and self._same_stft():
            return super()._separate_one(waveform, training)
        # Generic path: stage one's waveforms -> the same STFT -> refiner.
        n = tf.shape(waveform)[0]
        src = self.stage1.separate_segments(waveform[None], training=False)[0]  # (S, n, C)
        pad = tf.zeros((self.n_fft, self.n_channels))
        mix_spec = self._stft(tf.concat([pad, waveform], 0))
        src_spec = self._stft(tf.concat([tf.zeros((self.n_sources, self.n_fft, self.n_channels)), src], 1))
        mix_p = self.magnitude_patches(mix_spec)  # src_spec: (S, frames, bins, C)
        est1 = tf.stack([self.magnitude_patches(src_spec[s]) for s in range(self.n_sources)], axis=-1)
        est2 = self.body.refine(est1, mix_p, training=training) * mix_p[..., None]
        return self._masked_sources(mix_spec, est2)[:, self.n_fft: self.n_fft + n, :]

    def use_fft(self, name: str) -> None:
        super().use_fft(name)
        self.stage1.use_fft(name)

    def _same_stft(self) -> bool:
        s = self.stage1
        return isinstance(s, STFTMaskEstimator) and (s.n_fft, s.hop_length, s.T, s.F) == (
            self.n_fft, self.hop_length, self.T, self.F)

    def compute_losses(self, mixture, sources, training=True):
        mix, target = self.training_features(mixture, sources)
        t1 = training and not self.body.freeze_stage1
        if self.stage1.domain == "2d" and self._same_stft():
            est1 = self.body.stage1_body(mix, training=t1) * mix[..., None]
        else:
            wav1 = self.stage1.separate_segments(mixture, training=t1)  # (B, S, n, C)
            spec1 = tf.abs(dsp.stft(wav1, self.n_fft, self.hop_length, pad_end=False))[:, :, : self.T, : self.F]
            est1 = tf.transpose(spec1, [0, 2, 3, 4, 1])
        if self.body.freeze_stage1:
            est1 = tf.stop_gradient(est1)
        est2 = self.body.refine(est1, mix, training=training) * mix[..., None]
        loss2, per2 = spectrogram_losses(est2, target, self.instruments, self.loss_type)
        if self.stage_loss_weight > 0:
            loss1, _ = spectrogram_losses(est1, target, self.instruments, self.loss_type)
            return loss2 + self.stage_loss_weight * loss1, per2
        return loss2, per2

    def build(self):
        Estimator.build(self)  # a full forward pass: the 1D first stage has no patch-sized shortcut
        self.stage1.build()
