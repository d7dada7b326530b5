"""Estimators: they own the STFT, masking, padding and the per-instrument dict; bodies do not.

* :class:`STFTMaskEstimator` wraps a 2D body and reproduces Spleeter's separation semantics exactly
  (STFT ``frame_length``/``frame_step`` with a periodic Hann window and ``frame_length`` zeros
  prepended, the first ``F`` bins in ``T``-frame patches, masks ``(est**e + eps/n) / (sum est**e + eps)``
  with ``separation_exponent`` e, ``mask_extension`` zeros|average above ``F``, the x2/3 inverse-STFT
  compensation, optional norbert multichannel Wiener filter).
* :class:`WaveformEstimator` wraps a 1D body: it pads inputs to ``body.valid_length(n)`` (centred)
  and crops the outputs back.
* :class:`StackedEstimator`: any estimator as the first stage, one refining network per stem
  (:mod:`.stack` holds the networks), in the refiners' domain.

Every estimator maps a batch of waveform segments ``(n_segments, n_samples, n_channels)`` to
``(n_segments, n_sources, n_samples, n_channels)`` (:meth:`separate_segments`), and exposes what
training needs: :meth:`training_segment_samples` and :meth:`compute_losses` on
``mixture (batch, n_samples, n_channels)`` / ``sources (batch, n_samples, n_channels, n_sources)``.
Chunked inference over long files lives outside (:mod:`spleeter_ext.separate.apply`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from .. import dsp
from ..config import load_config
from ..errors import ConfigError, ParameterError
from . import registry
from .precision import to_float32

EPSILON = 1e-10
#: Default segment of chunked separation: long enough that overlaps cost little, short enough that
#: memory stays bounded (rounded to whole T-frame patches for spectrogram models).
DEFAULT_SEGMENT_SECONDS = 40.0


@dataclass(frozen=True)
class LengthRule:
    """The input lengths a model processes without waste: ``offset + k * period`` (any integer ``k``)
    that are at least ``minimum``. :meth:`fit` works on Python ints and on int32 tensors (in a graph)."""

    period: int
    offset: int = 0
    minimum: int = 1

    def fit(self, n):
        """The smallest valid length ``>= n``."""
        if isinstance(n, (int, np.integer)):
            return max(self.minimum, int(n) + (self.offset - int(n)) % self.period)
        return tf.maximum(self.minimum, n + tf.math.floormod(self.offset - n, self.period))

    def lengths(self, below: int) -> List[int]:
        """The valid lengths shorter than ``below``, ascending."""
        return list(range(self.fit(1), int(below), self.period))


class Estimator(ABC):
    """Common interface; see the module docstring for shapes."""

    domain = ""

    def __init__(self, body: tf.keras.Model, config: dict):
        self.body = body
        self.config = config
        self.instruments: List[str] = list(config["instrument_list"])
        self.n_sources = len(self.instruments)
        self.sample_rate = int(config["sample_rate"])
        self.n_channels = int(config["n_channels"])
        self.mwf = bool(config.get("MWF", False))

    # --- separation -------------------------------------------------------------------------
    @abstractmethod
    def segment_samples(self, seconds: Optional[float] = None) -> int:
        """A segment length (samples) close to ``seconds`` that the model processes without waste."""

    @abstractmethod
    def separate_segments(self, segments: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``(n_segments, n_samples, n_channels)`` -> ``(n_segments, n_sources, n_samples, n_channels)``."""

    def length_rule(self) -> LengthRule:
        """The segment lengths this model processes without waste (default: every length)."""
        return LengthRule(1)

    def fit_segment(self, n_samples: int) -> int:
        """The shortest efficient segment that holds ``n_samples`` whole: ``length_rule().fit(n_samples)``."""
        return int(self.length_rule().fit(int(n_samples)))

    def use_fft(self, name: str) -> None:
        """Choose the separation path's STFT: ``"tensorflow"`` (graph, exportable) or ``"scipy"`` (fast);
        a no-op for estimators without one."""
        if name not in ("tensorflow", "scipy"):
            raise ParameterError(f"fft must be 'tensorflow' or 'scipy', got {name!r}")
        if hasattr(self, "fft"):
            self.fft = name

    def use_xla(self, on: bool = True) -> None:
        """Run the body's inference calls XLA-compiled (``tf.function(jit_compile=True)``, one compiled
        program per input shape); the STFT around it stays as it is. Training compiles its whole step instead
        (Keras ``compile(jit_compile=...)``)."""
        self._xla = {} if on else None

    def call_body(self, *inputs, training=False, method: Optional[str] = None) -> tf.Tensor:
        """The body's output (or that of its ``method``, e.g. ``"refine"``) as float32, whatever precision
        the body computes in; XLA-compiled at inference after :meth:`use_xla`."""
        fn = getattr(self.body, method) if method else self.body
        compiled = getattr(self, "_xla", None)
        if compiled is not None and not training:
            key = method or "__call__"
            if key not in compiled:
                compiled[key] = tf.function(lambda *x: fn(*x, training=False), jit_compile=True, autograph=False)
            return to_float32(compiled[key](*inputs))
        return to_float32(fn(*inputs, training=training))

    def separate(self, waveform: np.ndarray) -> Dict[str, np.ndarray]:
        """Separate one in-memory segment ``(n_samples, n_channels)`` -> ``{instrument: (n_samples, n_channels)}``."""
        out = self.separate_segments(tf.convert_to_tensor(waveform[None], tf.float32)).numpy()[0]
        return {name: out[k] for k, name in enumerate(self.instruments)}

    # --- training ---------------------------------------------------------------------------
    @abstractmethod
    def training_segment_samples(self) -> int:
        """Samples per training example."""

    @abstractmethod
    def compute_losses(self, mixture: tf.Tensor, sources: tf.Tensor, training: bool = True
                       ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
        """Total loss and per-instrument losses for a batch."""

    def build(self) -> None:
        """Create the body's variables with a dummy forward pass."""
        n = self.training_segment_samples()
        self.compute_losses(tf.zeros((1, n, self.n_channels)), tf.zeros((1, n, self.n_channels, self.n_sources)),
                            training=False)

    @property
    def trainable_variables(self):
        return self.body.trainable_variables


class STFTMaskEstimator(Estimator):
    """Spleeter-exact spectrogram masking around a :class:`~.base.Body2D`.

    ``fft`` chooses the separation path's STFT implementation: ``"tensorflow"`` (default; pure graph,
    exportable) or ``"scipy"`` (:func:`spleeter_ext.dsp.stft_fast`, several times faster on CPU, used by
    the :class:`~spleeter_ext.separate.Separator`). Training always uses TensorFlow's.
    """

    domain = "2d"
    fft = "tensorflow"

    def __init__(self, body: tf.keras.Model, config: dict):
        super().__init__(body, config)
        self.n_fft = int(config["frame_length"])
        self.hop_length = int(config["frame_step"])
        self.T = int(config["T"])
        self.F = int(config["F"])
        self.exponent = float(config["separation_exponent"])
        self.mask_extension = config["mask_extension"]
        self.loss_type = config.get("loss_type", "L1_mask")
        mt, mf = body.input_multiple()
        if self.T % mt or self.F % mf:
            raise ConfigError(f"{config.get('_source', '<config>')}: 'T' ({self.T}) and 'F' ({self.F}) must be "
                              f"multiples of {mt} and {mf} for model '{config['model']['type']}'")

    # --- features ---------------------------------------------------------------------------
    def magnitude_patches(self, spec: tf.Tensor) -> tf.Tensor:
        """``(n_frames, n_bins, n_channels)`` complex -> ``(n_patches, T, F, n_channels)`` magnitudes."""
        return tf.abs(dsp.pad_and_partition(spec, self.T))[:, :, : self.F, :]

    def estimate_magnitudes(self, patches: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Body masks times the input: ``(batch, T, F, C)`` -> ``(batch, T, F, C, n_sources)``."""
        masks = self.call_body(patches, training=training)
        return masks * patches[..., None]

    def ratio_masks(self, estimates: tf.Tensor, extend: bool = True) -> tf.Tensor:
        """Spleeter's masks from magnitude estimates ``(..., F, C, S)``, extended to ``n_fft//2+1`` bins
        (``extend=False``: the first ``F`` bins only)."""
        e = self.exponent
        powered = estimates ** e if e != 1 else estimates
        total = tf.reduce_sum(powered, axis=-1, keepdims=True) + EPSILON
        masks = (powered + EPSILON / self.n_sources) / total
        n_extra = self.n_fft // 2 + 1 - self.F
        if n_extra and extend:
            if self.mask_extension == "average":
                row = tf.reduce_mean(masks, axis=-3, keepdims=True)
            else:
                row = tf.zeros_like(masks[..., :1, :, :])
            reps = [1] * (masks.shape.rank - 3) + [n_extra, 1, 1]
            masks = tf.concat([masks, tf.tile(row, reps)], axis=-3)
        return masks

    def _stft(self, waveform: tf.Tensor, pad_end: bool = True) -> tf.Tensor:
        if self.fft == "scipy":
            return dsp.stft_fast(waveform, self.n_fft, self.hop_length, pad_end=pad_end)
        return dsp.stft(waveform, self.n_fft, self.hop_length, pad_end=pad_end)

    def _istft(self, spec: tf.Tensor) -> tf.Tensor:
        if self.fft == "scipy":
            return dsp.istft_fast(spec, self.n_fft, self.hop_length)
        return dsp.istft(spec, self.n_fft, self.hop_length)

    def _separate_one(self, waveform: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``(n_samples, C)`` -> ``(n_sources, n_samples, C)`` exactly as Spleeter's predict graph."""
        n = tf.shape(waveform)[0]
        padded = tf.concat([tf.zeros((self.n_fft, self.n_channels)), waveform], axis=0)
        return self._sources(self._stft(padded), training)[:, self.n_fft: self.n_fft + n, :]

    def _sources(self, spec: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Every source of one STFT ``(n_frames, bins, C)``, masked patch by patch and inverted:
        ``(S, (n_frames - 1) * hop + n_fft, C)``."""
        est = self.estimate_magnitudes(self.magnitude_patches(spec), training=training)  # (P, T, F, C, S)
        if self.mwf:
            return self._istft(tf.transpose(self._wiener(est, spec), [3, 0, 1, 2]))  # (S, n_frames, bins, C)
        return self._masked_sources(spec, est)

    @property
    def patch_local(self) -> bool:
        """True when a T-frame patch's masks depend on that patch alone (the body sees patches as batch
        items), so :meth:`separate_windows` on the whole input's frame grid gives whole-input stems.
        A subclass that overrides :meth:`_separate_one` is not assumed to be; it may say so itself."""
        return type(self)._separate_one is STFTMaskEstimator._separate_one

    def separate_windows(self, windows: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Windows of the input's STFT frame grid: ``(n, W, C)`` -> ``(n, S, W, C)``, where
        ``W = (k * T - 1) * hop + n_fft`` holds ``k`` whole patches of frames, taken without padding and
        inverted without cropping; windows ``k * T * hop`` apart share ``n_fft - hop`` samples, whose sum
        is the whole input's inverse STFT (see :mod:`spleeter_ext.separate.apply`)."""
        return tf.map_fn(lambda w: self._sources(self._stft(w, pad_end=False), training), windows,
                         fn_output_signature=tf.TensorSpec([self.n_sources, None, self.n_channels], tf.float32))

    def _masked_sources(self, spec: tf.Tensor, est: tf.Tensor) -> tf.Tensor:
        """Ratio masks of ``est (P, T, F, C, S)`` applied to ``spec (n_frames, bins, C)``, inverted:
        ``(S, n_samples, C)``."""
        fast = self.fft == "scipy"
        masks = self.ratio_masks(est, extend=not fast)  # (P, T, bins or F, C, S)
        masks = tf.reshape(masks, tf.concat([[-1], tf.shape(masks)[2:]], axis=0))[: tf.shape(spec)[0]]
        if fast:  # the bins above F are masked inside (mask_extension), not materialised here
            return dsp.masked_istft_fast(spec, masks, self.n_fft, self.hop_length, extension=self.mask_extension)
        stfts = tf.transpose(tf.cast(masks, tf.complex64) * spec[..., None], [3, 0, 1, 2])
        return dsp.istft(stfts, self.n_fft, self.hop_length)

    def _wiener(self, est: tf.Tensor, spec: tf.Tensor) -> tf.Tensor:
        """norbert's multichannel Wiener filter on the full STFT (numpy, as in Spleeter)."""
        import norbert

        n_frames = tf.shape(spec)[0]
        bins = self.n_fft // 2 + 1
        v = tf.pad(est, [[0, 0], [0, 0], [0, bins - self.F], [0, 0], [0, 0]])  # (P, T, bins, C, S)
        v = tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], axis=0))[:n_frames]

        def wiener(v_np, x_np):
            return norbert.wiener(v_np, x_np).astype(np.complex64)

        out = tf.numpy_function(wiener, [v, spec], tf.complex64)
        out.set_shape(spec.shape.concatenate([self.n_sources]))
        return out

    def separate_segments(self, segments: tf.Tensor, training: bool = False) -> tf.Tensor:
        return tf.map_fn(lambda w: self._separate_one(w, training), segments,
                         fn_output_signature=tf.TensorSpec([self.n_sources, None, self.n_channels], tf.float32))

    def segment_samples(self, seconds: Optional[float] = None) -> int:
        """Samples filling whole T-frame patches: ``k*T*hop - n_fft`` (so no frame is wasted)."""
        patch = self.T * self.hop_length
        seconds = seconds or DEFAULT_SEGMENT_SECONDS
        k = max(1, int(round(seconds * self.sample_rate / patch)))
        return k * patch - self.n_fft

    def build(self) -> None:
        """Create the body's variables with one forward pass on a patch of the fewest valid frames
        (variables never depend on T; some bodies' do on F, e.g. the BLSTM's dense layers)."""
        mt, _ = self.body.input_multiple()
        self.body(tf.zeros((1, mt, self.F, self.n_channels)), training=False)

    def length_rule(self) -> LengthRule:
        """Whole T-frame patches: ``k * T * hop - n_fft`` samples (``n_fft`` zeros are prepended)."""
        patch = self.T * self.hop_length
        return LengthRule(patch, -self.n_fft % patch)

    # --- training ---------------------------------------------------------------------------
    def training_segment_samples(self) -> int:
        """Samples giving exactly T frames without padding."""
        return (self.T - 1) * self.hop_length + self.n_fft

    def training_features(self, mixture: tf.Tensor, sources: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Magnitudes of a batch: mixture ``(B, T, F, C)``, sources ``(B, T, F, C, S)``."""
        mix = tf.abs(dsp.stft(mixture, self.n_fft, self.hop_length, pad_end=False))[:, : self.T, : self.F]
        src = tf.transpose(sources, [0, 3, 1, 2])  # (B, S, n, C)
        tgt = tf.abs(dsp.stft(src, self.n_fft, self.hop_length, pad_end=False))[:, :, : self.T, : self.F]
        return mix, tf.transpose(tgt, [0, 2, 3, 4, 1])

    def compute_losses(self, mixture, sources, training=True):
        mix, target = self.training_features(mixture, sources)
        est = self.estimate_magnitudes(mix, training=training)
        return spectrogram_losses(est, target, self.instruments, self.loss_type)


def spectrogram_losses(est, target, instruments, loss_type="L1_mask"):
    """Spleeter's L1 on masked magnitudes, summed over instruments; ``(..., S)`` tensors."""
    losses = {}
    for k, name in enumerate(instruments):
        diff = tf.abs(est[..., k] - target[..., k])
        if loss_type == "weighted_L1_mask":
            weight = tf.reduce_mean(target[..., k], axis=[1, 2, 3], keepdims=True)
            diff = weight * diff
        losses[name] = tf.reduce_mean(diff)
    return tf.add_n(list(losses.values())), losses


class WaveformEstimator(Estimator):
    """Pads to the body's valid length, crops back; L1 loss on waveforms."""

    domain = "1d"

    def __init__(self, body: tf.keras.Model, config: dict):
        super().__init__(body, config)
        seconds = config.get("segment_seconds") or 6.0
        self._train_samples = int(body.valid_length(int(round(seconds * self.sample_rate))))

    def separate_segments(self, segments, training=False):
        n = segments.shape[1] if segments.shape[1] is not None else tf.shape(segments)[1]
        if isinstance(n, int):
            valid = int(self.body.valid_length(n))
            left = (valid - n) // 2
            x = tf.pad(segments, [[0, 0], [left, valid - n - left], [0, 0]])
            out = self.call_body(x, training=training)[:, left: left + n]  # (B, n, C, S)
        else:
            raise ConfigError("waveform estimator needs a static segment length")
        return tf.transpose(out, [0, 3, 1, 2])

    def build(self) -> None:
        """Create the body's variables with one forward pass on the shortest valid input."""
        self.body(tf.zeros((1, int(self.body.valid_length(1)), self.n_channels)), training=False)

    def length_rule(self) -> LengthRule:
        """The body's valid lengths (``valid_length(n) == n``). Strided levels map a length down and the
        way back up affinely, so these are ``valid_length(1) + k * period`` (``k >= 0``), ``period`` the
        product of the strides; two calls of ``valid_length`` read it, a third checks the progression."""
        first = int(self.body.valid_length(1))
        period = int(self.body.valid_length(first + 1)) - first
        if period < 1 or int(self.body.valid_length(first + period + 1)) != first + 2 * period:
            raise ConfigError(f"{self.config.get('_source', '<config>')}: the valid lengths of model "
                              f"'{self.config['model']['type']}' are not an arithmetic progression")
        return LengthRule(period, first % period, first)

    def segment_samples(self, seconds=None):
        seconds = seconds or DEFAULT_SEGMENT_SECONDS
        return int(self.body.valid_length(int(round(seconds * self.sample_rate))))

    def training_segment_samples(self):
        return self._train_samples

    def compute_losses(self, mixture, sources, training=True):
        est = self.call_body(mixture, training=training)  # (B, n, C, S)
        losses = {name: tf.reduce_mean(tf.abs(est[..., k] - sources[..., k]))
                  for k, name in enumerate(self.instruments)}
        return tf.add_n(list(losses.values())), losses


class StackedEstimator:
    """The paper's phase two: a first-stage estimator and one refiner per stem (:class:`.stack.StackedBodies`).

    Built by :func:`build_estimator` as :class:`StackedMaskEstimator` (2D refiners: Spleeter's masking of the
    refined magnitudes) or :class:`StackedWaveformEstimator` (1D refiners). The first stage may be of either
    domain: a 2D refiner sees the magnitude of the first stage's waveforms when their STFTs differ.
    Loss: ``stage_loss_weight`` x the first stage's loss + the refined estimate's loss (stage two alone
    when ``freeze_stage1``).
    """

    domain = "stack"

    def _init_stack(self, stage1: Estimator, config: dict) -> None:
        self.stage1 = stage1
        self.stage_loss_weight = 0.0 if self.body.freeze_stage1 else float(config.get("stage_loss_weight", 1.0))
        self.stage1_source = config["model"]["params"].get("stage1") if isinstance(
            config["model"]["params"].get("stage1"), str) else None

    def _stage1_training(self, training):
        return bool(training) and not self.body.freeze_stage1

    def use_fft(self, name: str) -> None:
        Estimator.use_fft(self, name)
        self.stage1.use_fft(name)

    def use_xla(self, on: bool = True) -> None:
        Estimator.use_xla(self, on)
        self.stage1.use_xla(on)

    def build(self) -> None:
        self.stage1.build()
        n = self.training_segment_samples()
        self.compute_losses(tf.zeros((1, n, self.n_channels)), tf.zeros((1, n, self.n_channels, self.n_sources)),
                            training=False)

    def parts(self):
        """``[(body, input shape of one training example), ...]`` of every network (for FLOP counts)."""
        n = self.training_segment_samples()
        c_in = self.n_channels * (2 if self.body.refine_input == "estimate+mixture" else 1)
        if self.body.refiner_domain == "2d":
            ref_shape = (1, self.T, self.F, c_in)
        else:
            ref_shape = (1, int(self.body.valid_length(n)), c_in)
        s1 = self.stage1
        s1_shape = (1, s1.T, s1.F, s1.n_channels) if s1.domain == "2d" else (
            1, int(s1.body.valid_length(n)), s1.n_channels)
        return [(s1.body, s1_shape)] + [(r, ref_shape) for r in self.body.refiners]

    @property
    def trainable_variables(self):
        return self.body.trainable_variables


class StackedMaskEstimator(StackedEstimator, STFTMaskEstimator):
    """Stacked model with 2D refiners: Spleeter's masking applied to the refined magnitudes."""

    def __init__(self, body, stage1: Estimator, config: dict):
        STFTMaskEstimator.__init__(self, body, config)
        self._init_stack(stage1, config)

    def _same_stft(self) -> bool:
        s = self.stage1
        return s.domain == "2d" and (s.n_fft, s.hop_length, s.T, s.F) == (self.n_fft, self.hop_length, self.T, self.F)

    def _stage1_magnitudes(self, mixture, mix, training):
        """First-stage magnitude estimates ``(B, T, F, C, S)`` of a training batch."""
        if self._same_stft():
            return self.stage1.estimate_magnitudes(mix, training=self._stage1_training(training))
        wav1 = self.stage1.separate_segments(mixture, training=self._stage1_training(training))  # (B, S, n, C)
        spec1 = tf.abs(dsp.stft(wav1, self.n_fft, self.hop_length, pad_end=False))[:, :, : self.T, : self.F]
        return tf.transpose(spec1, [0, 2, 3, 4, 1])

    def estimate_magnitudes(self, patches, training=False):
        est1 = self.stage1.estimate_magnitudes(patches, training=self._stage1_training(training))
        return self.call_body(est1, patches, training=training, method="refine") * patches[..., None]

    def _separate_one(self, waveform, training=False):
        if self._same_stft():
            return STFTMaskEstimator._separate_one(self, waveform, training)
        # another first stage: its waveforms, through this model's STFT, are the refiners' input
        n = tf.shape(waveform)[0]
        src = self.stage1.separate_segments(waveform[None], training=False)[0]  # (S, n, C)
        mix_spec = self._stft(tf.concat([tf.zeros((self.n_fft, self.n_channels)), waveform], 0))
        src_spec = self._stft(tf.concat([tf.zeros((self.n_sources, self.n_fft, self.n_channels)), src], 1))
        mix_p = self.magnitude_patches(mix_spec)
        est1 = tf.stack([self.magnitude_patches(src_spec[s]) for s in range(self.n_sources)], axis=-1)
        est2 = self.call_body(est1, mix_p, training=training, method="refine") * mix_p[..., None]
        return self._masked_sources(mix_spec, est2)[:, self.n_fft: self.n_fft + n, :]

    def compute_losses(self, mixture, sources, training=True):
        mix, target = self.training_features(mixture, sources)
        est1 = self._stage1_magnitudes(mixture, mix, training)
        if self.body.freeze_stage1:
            est1 = tf.stop_gradient(est1)
        est2 = self.call_body(est1, mix, training=training, method="refine") * mix[..., None]
        loss2, per2 = spectrogram_losses(est2, target, self.instruments, self.loss_type)
        if self.stage_loss_weight > 0:
            loss1, _ = spectrogram_losses(est1, target, self.instruments, self.loss_type)
            return loss2 + self.stage_loss_weight * loss1, per2
        return loss2, per2

    def build(self):
        StackedEstimator.build(self)


class StackedWaveformEstimator(StackedEstimator, WaveformEstimator):
    """Stacked model with 1D refiners: each stem's first-stage waveform (+ the mixture) is refined."""

    def __init__(self, body, stage1: Estimator, config: dict):
        WaveformEstimator.__init__(self, body, config)
        self._init_stack(stage1, config)

    def _refine_waveforms(self, est1, mixture, training):
        """``est1 (B, S, n, C)``, ``mixture (B, n, C)`` -> refined ``(B, S, n, C)``; n static."""
        n = int(mixture.shape[1])
        valid = int(self.body.valid_length(n))
        left = (valid - n) // 2
        pad = [[0, 0], [left, valid - n - left], [0, 0]]
        stems = tf.transpose(est1, [0, 2, 3, 1])  # (B, n, C, S)
        stems = tf.pad(stems, pad + [[0, 0]])
        out = self.call_body(stems, tf.pad(mixture, pad), training=training, method="refine")[:, left: left + n]
        return tf.transpose(out, [0, 3, 1, 2])

    def separate_segments(self, segments, training=False):
        if segments.shape[1] is None:
            raise ConfigError("waveform estimator needs a static segment length")
        est1 = self.stage1.separate_segments(segments, training=self._stage1_training(training))
        return self._refine_waveforms(est1, segments, training)

    def compute_losses(self, mixture, sources, training=True):
        est1 = self.stage1.separate_segments(mixture, training=self._stage1_training(training))  # (B, S, n, C)
        if self.body.freeze_stage1:
            est1 = tf.stop_gradient(est1)
        est2 = self._refine_waveforms(est1, mixture, training)
        target = tf.transpose(sources, [0, 3, 1, 2])
        per = {name: tf.reduce_mean(tf.abs(est2[:, k] - target[:, k])) for k, name in enumerate(self.instruments)}
        loss = tf.add_n(list(per.values()))
        if self.stage_loss_weight > 0:
            loss = loss + self.stage_loss_weight * tf.reduce_mean(tf.abs(est1 - target)) * self.n_sources
        return loss, per

    def build(self):
        StackedEstimator.build(self)


def stage1_config(parent: dict) -> dict:
    """The first stage's full config: an inline ``{'type', 'params'}`` shares the parent's audio, STFT and
    training settings; a descriptor (config file, model directory, preset, ``spleeter:4stems``) loads that
    model's own config, which must separate the same instruments at the same rate."""
    source = parent.get("_source", "<config>")
    stage1 = (parent["model"].get("params") or {}).get("stage1")
    if stage1 is None:
        stage1 = {"type": "spleeter_unet_2d", "params": {}}
    if isinstance(stage1, str):
        cfg = load_config(stage1)
        if list(cfg["instrument_list"]) != list(parent["instrument_list"]):
            raise ConfigError(f"{source}: stage1 '{stage1}' separates {cfg['instrument_list']}, the stacked model "
                              f"{parent['instrument_list']}; they must match")
        if cfg["sample_rate"] != parent["sample_rate"] or cfg["n_channels"] != parent["n_channels"]:
            raise ConfigError(f"{source}: stage1 '{stage1}' has another sample_rate/n_channels than the stacked model")
        return cfg
    if not isinstance(stage1, dict) or "type" not in stage1:
        raise ConfigError(f"{source}: 'model.params.stage1' must be a model {{'type': ..., 'params': {{...}}}} or a "
                          "config file, model directory or preset name")
    unknown = sorted(set(stage1) - {"type", "params"})
    if unknown:
        raise ConfigError(f"{source}: unknown key 'model.params.stage1.{unknown[0]}'; known: type, params")
    if registry.get(stage1["type"]).domain == "stack":
        raise ConfigError(f"{source}: 'model.params.stage1' cannot itself be a stacked model")
    cfg = dict(parent)
    cfg["model"] = {"type": stage1["type"], "params": dict(stage1.get("params") or {})}
    cfg["MWF"] = False
    cfg["_source"] = f"{source} (model.params.stage1)"
    return cfg


def build_body(config: dict, **context):
    """Build the body named by ``config['model']['type']`` with its ``params``."""
    spec = registry.get(config["model"]["type"])
    return spec, spec.build(config["model"].get("params") or {}, source=config.get("_source", "<config>"),
                            n_sources=len(config["instrument_list"]), n_channels=config["n_channels"], **context)


def build_estimator(config) -> Estimator:
    """The estimator for a config (a loaded dict or any descriptor :func:`load_config` accepts)."""
    if not isinstance(config, dict) or "_source" not in config:
        config = load_config(config)
    if registry.get(config["model"]["type"]).domain == "stack":
        stage1 = build_estimator(stage1_config(config))
        _, body = build_body(config, stage1_model=stage1.config["model"],
                             config_source=config.get("_source", "<config>"))
        body.attach(stage1.body)
        cls = StackedMaskEstimator if body.refiner_domain == "2d" else StackedWaveformEstimator
        return cls(body, stage1, config)
    spec, body = build_body(config)
    if spec.domain == "2d":
        return STFTMaskEstimator(body, config)
    return WaveformEstimator(body, config)
