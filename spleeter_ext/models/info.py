"""Size, cost and temporal context of any body (1D, 2D, or a stacked model used as a 2D body): parameters,
multiply-accumulates per second of audio, receptive field; how they are counted is in docs/models.md."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from ..errors import ConfigError, ParameterError
from .base import ceil_to_multiple

_L = tf.keras.layers
_TRANSPOSED = (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)
_SEPARABLE = (_L.SeparableConv1D, _L.SeparableConv2D)
_DEPTHWISE = (_L.DepthwiseConv1D, _L.DepthwiseConv2D)
_CONV = (_L.Conv1D, _L.Conv2D, _L.Conv3D)
_COUNTED = _TRANSPOSED + _SEPARABLE + _DEPTHWISE + _CONV + (_L.Dense, _L.RNN)
_GLOBAL = (_L.RNN, _L.Bidirectional, _L.MultiHeadAttention, _L.Attention, _L.AdditiveAttention,
           _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D)

Shape = Tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------
def _domain(body, domain: Optional[str]) -> str:
    domain = domain or getattr(body, "domain", None)
    if domain not in ("1d", "2d", "stack"):
        raise ParameterError(f"domain must be '1d', '2d' or 'stack' (a stacked model is measured as a 2D body), "
                             f"got {domain!r}")
    return "1d" if domain == "1d" else "2d"


def _channels(body, n_channels: Optional[int]) -> int:
    return int(n_channels if n_channels is not None else getattr(body, "n_channels", 2))


def _multiple_2d(body) -> Tuple[int, int]:
    getter = getattr(body, "input_multiple", None)
    return tuple(int(m) for m in getter()) if getter is not None else (1, 1)


def example_shape(body, domain: Optional[str] = None, seconds: float = 1.0, sample_rate: int = 44100,
                  frame_step: int = 1024, n_bins: int = 1024, n_channels: Optional[int] = None) -> Shape:
    """Batch-1 input shape the body accepts for ``seconds`` of audio.

    1D: ``(1, valid_length(seconds * sample_rate), n_channels)``; 2D: ``(1, n_frames, n_bins,
    n_channels)`` with ``n_frames = ceil(seconds * sample_rate / frame_step)``, both axes rounded up
    to ``input_multiple()``.
    """
    channels = _channels(body, n_channels)
    if _domain(body, domain) == "1d":
        n = max(1, int(math.ceil(seconds * sample_rate)))
        return (1, int(body.valid_length(n)), channels)
    fm, bm = _multiple_2d(body)
    frames = max(1, int(math.ceil(seconds * sample_rate / frame_step)))
    return (1, ceil_to_multiple(frames, fm), ceil_to_multiple(int(n_bins), bm), channels)


def _fresh_copy(body):
    return type(body).from_config(body.get_config())


def _with_fallback(body, work):
    """``work(body)``; when a built body rejects the shapes (its layers were sized for other
    dimensions), ``work`` on a fresh copy of the body from its config."""
    try:
        return work(body)
    except (ValueError, ConfigError, tf.errors.InvalidArgumentError) as exc:
        if not body.built:
            raise
        try:
            copy = _fresh_copy(body)
        except Exception:
            raise exc from None
        return work(copy)


def _minimal_shape(body, shape: Shape) -> Shape:
    """The smallest input like ``shape`` (same bins and channels) that ``body`` accepts."""
    if len(shape) == 3:
        return (1, int(body.valid_length(1)), shape[2])
    return (1, _multiple_2d(body)[0]) + tuple(shape[2:])


def _build(body, shape: Shape) -> None:
    """Build ``body`` by an eager call on zeros of ``shape``."""
    body(tf.zeros(shape), training=False)


def _trace(body, shape: Shape):
    """Trace ``body`` on a symbolic input of ``shape`` (builds it; computes nothing); returns the
    graph of the (last) trace."""
    graphs = []

    def forward(x):
        graphs.append(x.graph)
        return body(x, training=False)

    tf.function(forward, autograph=False).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    return graphs[-1]


# ---------------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------------
def count_params(body, domain: Optional[str] = None, n_bins: int = 1024, n_channels: Optional[int] = None,
                 trainable_only: bool = False) -> int:
    """Number of weights of ``body``; an unbuilt body is first built on a minimal input
    (``n_bins`` bins for 2D bodies, whose size may depend on it, e.g. ``blstm``)."""
    if not body.built:
        _build(body, example_shape(body, domain, seconds=1e-9, n_bins=n_bins, n_channels=n_channels))
    weights = body.trainable_weights if trainable_only else body.weights
    return int(sum(int(np.prod(w.shape)) for w in weights))


# ---------------------------------------------------------------------------------------------
# multiply-accumulates
# ---------------------------------------------------------------------------------------------
def _prod(values) -> int:
    return int(np.prod([int(v) for v in values])) if len(values) else 1


def _positions(layer, shape) -> int:
    """batch x spatial positions of a conv input/output shape."""
    shape = list(shape)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return _prod(shape[:1] + shape[2:])
    return _prod(shape[:-1])


def layer_macs(layer, input_shape, output_shape) -> int:
    """MACs of one call of a counted layer: convolutions count output positions x kernel size (transposed
    ones input positions), Dense input vectors x kernel size, recurrent layers every time step x
    (kernel + recurrent kernel) sizes; other layers 0 (docs/models.md lists what is not counted)."""
    if isinstance(layer, _TRANSPOSED):
        return _positions(layer, input_shape) * _prod(layer.kernel.shape)
    if isinstance(layer, _SEPARABLE):
        return _positions(layer, output_shape) * (_prod(layer.depthwise_kernel.shape)
                                                  + _prod(layer.pointwise_kernel.shape))
    if isinstance(layer, _DEPTHWISE):
        return _positions(layer, output_shape) * _prod(layer.depthwise_kernel.shape)
    if isinstance(layer, _CONV):
        return _positions(layer, output_shape) * _prod(layer.kernel.shape)
    if isinstance(layer, _L.Dense):
        return _prod(list(input_shape)[:-1]) * _prod(layer.kernel.shape)
    if isinstance(layer, _L.RNN):
        cell = layer.cell
        if not (hasattr(cell, "kernel") and hasattr(cell, "recurrent_kernel")):
            raise ParameterError(f"cannot count MACs of recurrent layer '{layer.name}' ({type(cell).__name__})")
        steps = _prod(list(input_shape)[:2])  # batch x time (time_major swaps them; same product)
        return steps * (_prod(cell.kernel.shape) + _prod(cell.recurrent_kernel.shape))
    return 0


def _first_tensor(structure):
    for t in tf.nest.flatten(structure):
        if hasattr(t, "shape"):
            return t
    return None


def _shape(t) -> Optional[Shape]:
    return None if t is None else tuple(t.shape)


class _Recorder:
    """Temporarily wraps ``call`` of every counted layer of ``model`` to record call shapes."""

    def __init__(self, model):
        self.model = model
        self.records: List[Tuple[Any, Shape, Shape, Any]] = []  # (layer, in, out, graph)
        self._inside_rnn = 0
        self._patched = []

    def _wrap(self, layer):
        original = layer.call
        recorder = self

        @tf.autograph.experimental.do_not_convert
        def call(inputs, *args, **kwargs):
            if recorder._inside_rnn:
                return original(inputs, *args, **kwargs)
            is_rnn = isinstance(layer, _L.RNN)
            if is_rnn and layer.built and not layer.return_state and hasattr(inputs, "shape"):
                # only shapes matter here: skip tracing the recurrence (slow for Keras LSTMs)
                outputs = tf.zeros(layer.compute_output_shape(inputs.shape), dtype=inputs.dtype)
            else:
                recorder._inside_rnn += is_rnn
                try:
                    outputs = original(inputs, *args, **kwargs)
                finally:
                    recorder._inside_rnn -= is_rnn
            first = _first_tensor(inputs)
            recorder.records.append((layer, _shape(first), _shape(_first_tensor(outputs)),
                                     getattr(first, "graph", None)))
            return outputs

        return call

    def __enter__(self):
        modules = [self.model] + list(self.model.submodules)
        seen = set()
        for layer in modules:
            if isinstance(layer, _COUNTED) and id(layer) not in seen:
                seen.add(id(layer))
                self._patched.append((layer, layer.__dict__.get("call")))
                object.__setattr__(layer, "call", self._wrap(layer))
        return self

    def __exit__(self, *exc):
        for layer, previous in self._patched:
            if previous is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", previous)
        self._patched = []
        return False


def forward_macs(body, input_shape: Sequence[int], by_layer: bool = False) -> Union[int, List[Tuple[str, int]]]:
    """MACs of one forward pass of ``body`` on an input of ``input_shape`` (fully specified).

    The body is traced once on a ``TensorSpec`` (nothing is computed) while every counted layer records
    the shapes it was called with; calls outside the traced graph (Keras shape inference) do not count.

    ``by_layer=True`` returns ``[(layer_name, macs), ...]`` in call order instead of the total.
    """
    shape = tuple(int(d) for d in input_shape)

    def work(model):
        if not model.built:  # build on a small input first (a trace creating variables runs twice)
            _build(model, _minimal_shape(model, shape))
        with _Recorder(model) as rec:
            graph = _trace(model, shape)
        rows = []
        # Calls in other graphs are Keras shape inference (e.g. a Sequential rebuilding its graph
        # network on placeholders for a new input shape), not computation.
        for layer, ins, outs, g in rec.records:
            if g is not graph:
                continue
            if ins is None or outs is None or None in ins or None in outs:
                raise ParameterError(f"forward_macs: layer '{layer.name}' was called with a dynamic shape "
                                     f"{ins} -> {outs}; MACs need static shapes")
            rows.append((layer.name, layer_macs(layer, ins, outs)))
        return rows

    rows = _with_fallback(body, work)
    return rows if by_layer else int(sum(m for _, m in rows))


def macs_per_second(body, domain: Optional[str] = None, sample_rate: int = 44100, frame_step: int = 1024,
                    n_bins: int = 1024, n_channels: Optional[int] = None, seconds: float = 10.0) -> float:
    """Multiply-accumulates per second of audio (:func:`layer_macs` of every counted layer call).

    1D bodies: per ``sample_rate`` samples. 2D bodies: per ``sample_rate / frame_step`` frames of
    ``n_bins`` bins (rounded up to ``input_multiple()``). ``n_channels`` defaults to the body's.
    """
    shape = example_shape(body, domain, seconds, sample_rate, frame_step, n_bins, n_channels)
    macs = forward_macs(body, shape)
    if _domain(body, domain) == "1d":
        return macs * sample_rate / shape[1]
    return macs * (sample_rate / frame_step) / shape[1]


# ---------------------------------------------------------------------------------------------
# receptive field
# ---------------------------------------------------------------------------------------------
def has_global_context(body) -> bool:
    """True when a layer of ``body`` (recurrent, attention, global pooling) sees the whole input, or
    the body declares it with a true ``global_context`` attribute (e.g. input normalisation by
    statistics over the whole input)."""
    if getattr(body, "global_context", False) is True:
        return True
    return isinstance(body, _GLOBAL) or any(isinstance(m, _GLOBAL) for m in body.submodules)


def _extent(body, x: tf.Tensor) -> Tuple[int, int]:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = body(x, training=False)
        centre = int(y.shape[1]) // 2
        # A random projection of the centre outputs: a plain sum would vanish for masks that sum to
        # one across sources (softmax), whose sum does not depend on the input.
        weights = tf.random.stateless_normal(tf.shape(y[:, centre]), seed=[7, 11], dtype=y.dtype)
        target = tf.reduce_sum(y[:, centre] * weights)
    grad = tape.gradient(target, x)
    if grad is None:
        raise ParameterError("receptive_field: the output does not depend on the input")
    axes = [a for a in range(grad.shape.rank) if a != 1]
    nonzero = np.flatnonzero(tf.reduce_any(tf.not_equal(grad, 0.0), axis=axes).numpy())
    if nonzero.size == 0:
        raise ParameterError("receptive_field: zero gradient at the centre output (dead units?); "
                             "try another seed")
    return int(nonzero[0]), int(nonzero[-1])


def receptive_field(body, domain: Optional[str] = None, n_bins: Optional[int] = None,
                    n_channels: Optional[int] = None, start: Optional[int] = None,
                    max_length: Optional[int] = None, seed: int = 0) -> Union[int, str]:
    """Receptive field of the centre output: samples (1D) or frames (2D), or ``'global'``.

    Measured: the extent (first to last time step) where the gradient of a random projection of the
    centre outputs with respect to a random input is nonzero; the input doubles while the extent
    reaches an edge. Bodies with recurrent, attention or global-pooling layers, or a true
    ``global_context`` attribute, are ``'global'`` without measuring.

    Args:
        n_bins: bins of the 2D input (default: the smallest multiple accepted, at least 16); the
            time extent is taken over all bins.
        start: first input length tried (1D: 2048 samples, 2D: 32 frames), doubled while the
            gradient reaches an edge.
        max_length: longest input tried (1D: 2**20 samples, 2D: 4096 frames); beyond it the
            body is reported as ``'global'``.
    """
    if has_global_context(body):
        return "global"
    channels = _channels(body, n_channels)
    one_d = _domain(body, domain) == "1d"
    if one_d:
        length = int(body.valid_length(start or 2048))
        cap = int(max_length or 2 ** 20)
        grow = lambda n: int(body.valid_length(2 * n))  # noqa: E731
        shape_of = lambda n: (2, n, channels)  # noqa: E731
    else:
        fm, bm = _multiple_2d(body)
        bins = ceil_to_multiple(n_bins or 16, bm)
        length = ceil_to_multiple(start or 32, fm)
        cap = int(max_length or 4096)
        grow = lambda n: ceil_to_multiple(2 * n, fm)  # noqa: E731
        shape_of = lambda n: (2, n, bins, channels)  # noqa: E731
    def work(model):
        n = length
        while True:
            x = tf.random.stateless_normal(shape_of(n), seed=[seed, n])
            first, last = _extent(model, x)
            if first > 0 and last < n - 1:
                return last - first + 1
            if n >= cap:
                return "global"
            n = grow(n)

    return _with_fallback(body, work)


def describe(body, domain: Optional[str] = None, sample_rate: int = 44100, frame_step: int = 1024,
             n_bins: int = 1024) -> Dict[str, Any]:
    """``{'params', 'macs_per_second', 'receptive_field', 'receptive_field_seconds'}`` of ``body``."""
    one_d = _domain(body, domain) == "1d"
    params = count_params(body, domain, n_bins=n_bins)
    macs = macs_per_second(body, domain, sample_rate, frame_step, n_bins)
    field = receptive_field(body, domain)
    seconds = None
    if isinstance(field, int):
        seconds = field / sample_rate if one_d else field * frame_step / sample_rate
    return {"params": params, "macs_per_second": macs, "receptive_field": field,
            "receptive_field_seconds": seconds}
