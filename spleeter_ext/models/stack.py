"""Stacked models (Henning, Choudhry & Ma 2021, phase two): the networks of a first stage and of one refiner
per stem. :class:`~.estimators.StackedEstimator` combines them; this container only owns the variables."""
from __future__ import annotations

import json
from typing import Optional

import tensorflow as tf

from ..errors import ConfigError
from . import registry

REFINE_INPUTS = ("estimate", "estimate+mixture")
#: spleeter_unet_2d: what a stacked model without ``stage1`` starts from (the former ``stack_unet``)
DEFAULT_STAGE1 = {"type": "spleeter_unet_2d", "params": {}}


def refiner_model(refiner: Optional[dict], stage1_model: dict, source: str) -> dict:
    """``{'type', 'params'}`` of the refiners: by default the first stage's architecture and size (a
    first stage's softmax masks, which share the mixture out among its sources, become sigmoid masks for
    the single-stem refiners); a dict without ``type`` gives parameters of the first stage's architecture."""
    if refiner is None:
        params = dict(stage1_model.get("params") or {})
        if params.get("output_activation") == "softmax":
            params["output_activation"] = "sigmoid"
        return {"type": stage1_model["type"], "params": params}
    if not isinstance(refiner, dict):
        raise ConfigError(f"{source}: 'model.params.refiner' must be a model {{'type': ..., 'params': {{...}}}} or "
                          f"null (the first stage's architecture), got {refiner!r}")
    if "type" in refiner:
        unknown = sorted(set(refiner) - {"type", "params"})
        if unknown:
            raise ConfigError(f"{source}: unknown key 'model.params.refiner.{unknown[0]}'; known: type, params")
        return {"type": refiner["type"], "params": dict(refiner.get("params") or {})}
    return {"type": stage1_model["type"], "params": dict(refiner)}


@registry.register("stack", "stack", aliases=("stack_unet",),
                   description="a first-stage separator + a refining network per stem (by default of the same "
                               "architecture and domain)")
class StackedBodies(tf.keras.Model):
    """The trainable networks of a stacked model: ``stage1_body`` (attached by the estimator, which builds
    it from the first stage's config) and ``refiners``, one single-source body per stem.

    A refiner of domain ``2d`` maps the stem's stage-one magnitude ``(B, T, F, C)`` (with the mixture's
    magnitude on the channel axis for ``refine_input='estimate+mixture'``) to a mask ``(B, T, F, C, 1)``
    relative to the mixture; a ``1d`` refiner maps the stem's waveform ``(B, n, C)`` (+ mixture) to the
    refined waveform ``(B, n, C, 1)``.
    """

    domain = "stack"

    def __init__(self, n_sources: int, n_channels: int = 2, stage1=None, refiner: Optional[dict] = None,
                 refine_input: str = "estimate+mixture", freeze_stage1: bool = False,
                 stage1_model: Optional[dict] = None, config_source: str = "<config>", name=None):
        super().__init__(name=name)
        source = config_source
        if refine_input not in REFINE_INPUTS:
            raise ConfigError(f"{source}: 'model.params.refine_input' must be one of {REFINE_INPUTS}, "
                              f"got {refine_input!r}")
        self.n_sources, self.n_channels = int(n_sources), int(n_channels)
        self.refine_input = refine_input
        self.freeze_stage1 = bool(freeze_stage1)
        self.refiner_spec = refiner_model(refiner, stage1_model or DEFAULT_STAGE1, source)
        spec = registry.get(self.refiner_spec["type"])
        if spec.domain not in ("1d", "2d"):
            raise ConfigError(f"{source}: 'model.params.refiner' must be a single model, not '{spec.name}'")
        self.refiner_domain = spec.domain
        # kept as JSON text: Keras would wrap a dict attribute (and its nested dicts) for tracking
        self._config_json = json.dumps({"n_sources": self.n_sources, "n_channels": self.n_channels, "stage1": stage1,
                                        "refiner": refiner, "refine_input": refine_input,
                                        "freeze_stage1": self.freeze_stage1})
        self.stage1_body = None
        self.refiners = [spec.build(self.refiner_spec["params"], source=f"{source}: model.params.refiner",
                                    n_sources=1, n_channels=self.n_channels) for _ in range(self.n_sources)]

    def attach(self, stage1_body: tf.keras.Model) -> None:
        """Make the first stage's body part of this model (and of its checkpoints)."""
        self.stage1_body = stage1_body
        if self.freeze_stage1:
            stage1_body.trainable = False

    def get_config(self):
        return json.loads(self._config_json)

    def refine(self, est1: tf.Tensor, mix: tf.Tensor, training=None) -> tf.Tensor:
        """Stage two, stem by stem: ``est1`` ``(B, ..., C, S)`` and ``mix`` ``(B, ..., C)`` (magnitudes for 2D
        refiners, waveforms of a valid length for 1D ones) -> ``(B, ..., C, S)``: masks relative to the
        mixture (2D) or waveforms (1D)."""
        out = []
        for s, body in enumerate(self.refiners):
            x = est1[..., s]
            if self.refine_input == "estimate+mixture":
                x = tf.concat([x, mix], axis=-1)
            out.append(body(x, training=training)[..., 0])
        return tf.stack(out, axis=-1)

    def input_multiple(self):
        """``(frames, bins)`` multiples of a 2D refiner and (if 2D) the first stage."""
        m = self.refiners[0].input_multiple()
        if self.stage1_body is not None and hasattr(self.stage1_body, "input_multiple"):
            m1 = self.stage1_body.input_multiple()
            m = (max(m[0], m1[0]), max(m[1], m1[1]))
        return m

    def valid_length(self, n_samples: int) -> int:
        """Valid waveform length of a 1D refiner (the first stage pads its own input)."""
        return int(self.refiners[0].valid_length(n_samples))

    def call(self, x, training=None):
        raise ConfigError("a stacked model is applied through its estimator (build_estimator), not called directly")
