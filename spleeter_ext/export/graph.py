"""In-graph separation of a whole waveform: the Separator's padding and chunking as TensorFlow ops."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from ..errors import SpleeterExtError
from ..log import logger
from ..models.estimators import Estimator, WaveformEstimator
from ..separate import apply

__all__ = ["SeparationGraph", "SeparatorModule", "SHORT_INPUTS", "INPUT_NAME", "SIGNATURE_KEY"]

SIGNATURE_KEY = "serving_default"
INPUT_NAME = "waveform"
SHORT_INPUTS = {
    "fitted": "zero-padded to the model's next efficient length, computed in the graph (as the Separator)",
    "bucketed": "zero-padded to the next of short_input_lengths, one static branch each (as the Separator)",
    "padded": "zero-padded to one full segment (the model needs a static length; the Separator pads less)",
}


class SeparationGraph:
    """Whole-waveform separation with in-graph chunking around an :class:`Estimator`.

    Args:
        estimator: a built estimator with its weights loaded.
        segment: segment length in samples (as ``Separator.segment``).
        overlap: samples shared by neighbouring segments (as ``Separator.overlap``).

    :meth:`separate` maps ``(n_samples, n_channels)`` to ``(n_sources, n_samples, n_channels)``; the
    length may be static (the graph is then specialised to it) or dynamic.

    An input shorter than a segment is padded as the Separator pads it, to ``fit_segment(n)``, in
    one of three ways (``short_mode``):

    * ``"fitted"``: the length is computed in the graph (``estimator.length_rule()``) and the model runs
      at that dynamic length (every built-in estimator but a stacked model with a waveform first stage);
    * ``"bucketed"``: the model needs a static length and there are at most :attr:`MAX_BUCKETS`
      fitted lengths below a segment: one static branch per length (nested ``tf.cond``);
    * ``"padded"``: otherwise, the input is padded to one full segment (results may then differ
      slightly from the Separator's on short inputs).

    A longer input is zero-padded to whole segments and cut into frames (:func:`tf.signal.frame`) that
    start every ``segment - overlap`` samples; each is separated on its own at a static length (a
    ``tf.map_fn`` of one segment at a time, so the working memory does not grow with the input), weighted
    by the trapezoid crossfade of :func:`spleeter_ext.separate.apply.segment_weights`, overlap-added,
    divided by the summed weights and cropped to ``n_samples``.
    """

    MAX_BUCKETS = 8

    def __init__(self, estimator: Estimator, segment: int, overlap: int):
        self.estimator = estimator
        self.segment, self.overlap = int(segment), int(overlap)
        self.stride = self.segment - self.overlap
        self.n_sources, self.n_channels = estimator.n_sources, estimator.n_channels
        # Crossfade weights (4, segment), row = 2 * fade_in + fade_out.
        self.weight_table = np.stack([apply.segment_weights(self.segment, self.overlap, bool(v & 2), bool(v & 1))
                                      for v in range(4)]).astype(np.float32)
        self.length_rule = estimator.length_rule()
        self.short_lengths: Optional[List[int]] = None
        if self._traces_any_length():
            self.short_mode = "fitted"
        else:
            lengths = self.length_rule.lengths(below=self.segment) + [self.segment]
            self.short_mode = "bucketed" if len(lengths) <= self.MAX_BUCKETS else "padded"
            self.short_lengths = lengths if self.short_mode == "bucketed" else None
        if self.short_mode == "padded":
            logger.warning("%s: the model needs a static length and has many efficient lengths below a segment; "
                           "the export zero-pads inputs shorter than a segment to one full segment, so their stems "
                           "can differ slightly from the Separator's", estimator.config.get("_source", "<config>"))

    # --- model calls ------------------------------------------------------------------------------
    def _run_fitted(self, segments: tf.Tensor) -> tf.Tensor:
        """``(n_seg, L, C)`` with ``L`` a fitted length, possibly dynamic -> ``(n_seg, S, L, C)``."""
        if isinstance(self.estimator, WaveformEstimator):
            # L is a valid length of the body: the estimator's centred padding would be zero.
            return tf.transpose(self.estimator.body(segments, training=False), [0, 3, 1, 2])
        return self.estimator.separate_segments(segments, training=False)

    def _traces_any_length(self) -> bool:
        """Whether the model graph builds for a length only known when it runs."""
        spec = tf.TensorSpec([1, None, self.n_channels], tf.float32)
        try:
            tf.function(self._run_fitted, autograph=False).get_concrete_function(spec)
        except (SpleeterExtError, ValueError, TypeError) as exc:
            logger.debug("dynamic-length trace failed: %s", exc)
            return False
        return True

    # --- paths --------------------------------------------------------------------------------------
    def _padded_to(self, waveform: tf.Tensor, n, length: int) -> tf.Tensor:
        """``(n, C)`` zero-padded to a static ``length`` and separated: ``(S, n, C)``."""
        padded = tf.ensure_shape(tf.pad(waveform, [[0, length - n], [0, 0]]), [length, self.n_channels])
        return self.estimator.separate_segments(padded[None], training=False)[0, :, :n]

    def _short(self, waveform: tf.Tensor, n) -> tf.Tensor:
        """An input shorter than a segment, in one call: ``(n, C)`` -> ``(S, n, C)``."""
        if self.short_mode == "padded":
            return self._padded_to(waveform, n, self.segment)
        if self.short_mode == "bucketed":
            lengths = self.short_lengths
            if isinstance(n, int):
                return self._padded_to(waveform, n, next(v for v in lengths if v >= n))

            def bucket(i: int) -> tf.Tensor:  # nested conds (TFLite has IF, not CASE)
                if i == len(lengths) - 1:
                    return self._padded_to(waveform, n, lengths[i])
                return tf.cond(n <= lengths[i], lambda: self._padded_to(waveform, n, lengths[i]),
                               lambda: bucket(i + 1))

            return bucket(0)
        length = self.length_rule.fit(n)
        length = min(length, self.segment) if isinstance(length, int) else tf.minimum(length, self.segment)
        padded = tf.pad(waveform, [[0, length - n], [0, 0]])
        return self._run_fitted(padded[None])[0, :, :n]

    def _long(self, waveform: tf.Tensor, n) -> tf.Tensor:
        """An input of at least one segment, chunked: ``(n, C)`` -> ``(S, n, C)``."""
        seg, stride = self.segment, self.stride
        n_segments = 1 + -((seg - n) // stride)  # 1 + ceil((n - seg) / stride)
        total = (n_segments - 1) * stride + seg
        padded = tf.pad(waveform, [[0, total - n], [0, 0]])
        frames = tf.signal.frame(padded, seg, stride, axis=0)  # (n_segments, seg, C)
        spec = tf.TensorSpec([self.n_sources, seg, self.n_channels], tf.float32)
        separated = tf.map_fn(lambda f: self.estimator.separate_segments(f[None], training=False)[0], frames,
                              fn_output_signature=spec, parallel_iterations=1)  # (n_segments, S, seg, C)
        index = tf.range(n_segments)
        kind = 2 * tf.cast(index > 0, tf.int32) + tf.cast(index < n_segments - 1, tf.int32)
        weights = tf.gather(tf.constant(self.weight_table), kind)  # (n_segments, seg)
        weighted = separated * weights[:, None, :, None]
        summed = tf.signal.overlap_and_add(tf.transpose(weighted, [1, 3, 0, 2]), stride)  # (S, C, total)
        norm = tf.signal.overlap_and_add(weights, stride)  # (total,)
        return tf.transpose(summed[:, :, :n] / norm[:n], [0, 2, 1])

    def separate(self, waveform: tf.Tensor) -> tf.Tensor:
        """``(n_samples, n_channels)`` float32 -> ``(n_sources, n_samples, n_channels)``."""
        n = waveform.shape[0]
        if n is not None:
            return self._short(waveform, n) if n < self.segment else self._long(waveform, n)
        n = tf.shape(waveform)[0]
        out = tf.cond(n < self.segment, lambda: self._short(waveform, n), lambda: self._long(waveform, n))
        return tf.ensure_shape(out, [self.n_sources, None, self.n_channels])

    def separate_dict(self, waveform: tf.Tensor) -> Dict[str, tf.Tensor]:
        """``(n_samples, n_channels)`` -> ``{instrument: (n_samples, n_channels)}``."""
        out = self.separate(waveform)
        return {name: tf.identity(out[k], name=name) for k, name in enumerate(self.estimator.instruments)}

    def function(self, n_samples: Optional[int] = None):
        """A traced ``tf.function`` of :meth:`separate_dict` for a fixed or any (None) input length."""
        spec = tf.TensorSpec([n_samples, self.n_channels], tf.float32, name=INPUT_NAME)
        return tf.function(self.separate_dict, input_signature=[spec], autograph=False)


class SeparatorModule(tf.Module):
    """What the SavedModel holds: the model's variables and the ``separate`` function.

    ``separate(waveform (n_samples, n_channels)) -> {instrument: (n_samples, n_channels)}``.
    """

    def __init__(self, graph: SeparationGraph):
        super().__init__(name="spleeter_ext_separator")
        self.model_variables = list(graph.estimator.body.variables)
        self.separate = graph.function()
