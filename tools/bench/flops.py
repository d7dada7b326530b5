"""This CPU's TensorFlow convolution throughput on the layers of Spleeter's U-Net, and the FLOPs one second of
audio costs the 4-stem Spleeter architecture: ``python -m tools.bench.flops [--batch 3] [--runs 5]``.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from tools.stock import SPLEETER_4STEMS_FILTERS

SAMPLE_RATE = 44100
FRAME_STEP = 1024
T, F = 512, 1024


@dataclass
class ConvLayer:
    """One convolution of the U-Net: ``kind`` is ``conv`` or ``transpose``."""

    name: str
    kind: str
    input_shape: Tuple[int, int, int, int]
    kernel_shape: Tuple[int, int, int, int]  # (kh, kw, in, out) for conv; (kh, kw, out, in) for transpose
    stride: int
    dilation: int = 1

    @property
    def output_shape(self) -> Tuple[int, int, int, int]:
        b, h, w, _ = self.input_shape
        if self.kind == "transpose":
            return (b, h * self.stride, w * self.stride, self.kernel_shape[2])
        return (b, -(-h // self.stride), -(-w // self.stride), self.kernel_shape[3])

    @property
    def macs(self) -> int:
        # Conv: every output position x kernel size; transpose: every input position scatters the kernel.
        positions = self.input_shape if self.kind == "transpose" else self.output_shape
        return int(np.prod(positions[:3])) * int(np.prod(self.kernel_shape))


def unet_layers(batch: int = 3, filters: Sequence[int] = SPLEETER_4STEMS_FILTERS, kernel: int = 5,
                n_channels: int = 2, frames: int = T, bins: int = F) -> List[ConvLayer]:
    """The convolutions of one Spleeter U-Net (``unet.unet``) and its output head on a batch of patches."""
    layers: List[ConvLayer] = []
    h, w, c = frames, bins, n_channels
    for i, f in enumerate(filters):
        layers.append(ConvLayer(f"enc{i}", "conv", (batch, h, w, c), (kernel, kernel, c, f), 2))
        h, w, c = -(-h // 2), -(-w // 2), f
    depth = len(filters)
    for j in range(depth):
        level = depth - 1 - j
        out = filters[level - 1] if level > 0 else 1
        layers.append(ConvLayer(f"dec{j}", "transpose", (batch, h, w, c), (kernel, kernel, out, c), 2))
        h, w = h * 2, w * 2
        c = 2 * out if level > 0 else out  # concatenated with the skip of the same resolution
    layers.append(ConvLayer("head", "conv", (batch, h, w, c), (4, 4, c, n_channels), 1, dilation=2))
    return layers


def time_layer(layer: ConvLayer, runs: int = 5, warmup: int = 2, dtype: str = "float32") -> float:
    """Median seconds of one call of ``layer`` (random input and kernel of ``dtype``, traced once)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.cast(rng.standard_normal(layer.input_shape, dtype=np.float32), dtype)
    k = tf.cast(rng.standard_normal(layer.kernel_shape, dtype=np.float32) * 0.01, dtype)
    s = layer.stride
    if layer.kind == "transpose":
        out_shape = tf.constant(layer.output_shape)

        @tf.function
        def run(x, k):
            return tf.nn.conv2d_transpose(x, k, out_shape, strides=s, padding="SAME")
    else:
        d = layer.dilation

        @tf.function
        def run(x, k):
            return tf.nn.conv2d(x, k, strides=s, padding="SAME", dilations=d)

    for _ in range(warmup):
        run(x, k).numpy()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(x, k).numpy()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def conv_throughput(batch: int = 3, runs: int = 5, warmup: int = 2, dtype: str = "float32") -> Dict[str, object]:
    """Per-layer and aggregate GFLOP/s on the U-Net's shapes, computing in ``dtype`` (float32 or bfloat16).

    Returns ``{'layers': [(name, kind, gflop, seconds)], 'conv', 'transpose', 'unet'}`` (the last three
    in GFLOP/s: total FLOPs / total median time of the encoder+head convolutions, the transposed
    convolutions, and all of them).
    """
    rows = []
    for layer in unet_layers(batch):
        sec = time_layer(layer, runs, warmup, dtype)
        rows.append((layer.name, layer.kind, 2 * layer.macs / 1e9, sec))

    def rate(kinds):
        sel = [r for r in rows if r[1] in kinds]
        return sum(r[2] for r in sel) / sum(r[3] for r in sel)

    return {"layers": rows, "conv": rate({"conv"}), "transpose": rate({"transpose"}),
            "unet": rate({"conv", "transpose"}), "batch": batch}


def flops_per_audio_second(n_sources: int = 4) -> float:
    """FLOPs (2 x MACs from :mod:`spleeter_ext.models.info`) of the ``n_sources`` Spleeter U-Nets per
    second of stereo 44.1 kHz audio."""
    from spleeter_ext.models import info
    from spleeter_ext.models.unet import SpleeterUNet2D

    body = SpleeterUNet2D(n_sources, 2, conv_n_filters=SPLEETER_4STEMS_FILTERS)
    return 2.0 * info.macs_per_second(body, "2d", sample_rate=SAMPLE_RATE, frame_step=FRAME_STEP, n_bins=F)


def analytic_flops_per_audio_second(n_sources: int = 4) -> float:
    """The same count from :func:`unet_layers` (a cross-check of the two methods)."""
    per_patch = sum(2 * layer.macs for layer in unet_layers(1))
    return n_sources * per_patch * (SAMPLE_RATE / FRAME_STEP) / T


def main(argv=None) -> Dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=3, help="patches per call (the default segment holds 3)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = conv_throughput(args.batch, args.runs)
    fps = flops_per_audio_second()
    result["flops_per_audio_second"] = fps
    result["analytic_flops_per_audio_second"] = analytic_flops_per_audio_second()
    for name, kind, gflop, sec in result["layers"]:
        print(f"  {name:6s} {kind:9s} {gflop:7.2f} GFLOP {sec * 1e3:8.1f} ms {gflop / sec:7.1f} GFLOP/s")
    analytic = result["analytic_flops_per_audio_second"]
    print(f"Conv2D {result['conv']:.1f} GFLOP/s | Conv2DTranspose {result['transpose']:.1f} GFLOP/s | "
          f"U-Net mix {result['unet']:.1f} GFLOP/s (batch {args.batch}) | 4-stem cost {fps / 1e9:.2f} GFLOP "
          f"per audio second (info.macs_per_second x 2; analytic {analytic / 1e9:.2f})", flush=True)
    return result


if __name__ == "__main__":
    main()
