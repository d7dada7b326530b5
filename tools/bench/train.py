"""Training benchmark: step time of every preset, and the input pipeline's throughput against the fastest model's.

``python -m tools.bench.train [--out docs/benchmarks.md] [--steps N] [--only small|paper|all]``
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import markdown_table, write_section


def time_steps(config_name: str, steps: int, warmup: int = 2):
    """Seconds per training step (median) and the batch size of ``config_name`` on random inputs."""
    import tensorflow as tf

    from spleeter_ext.config import load_config
    from spleeter_ext.models.estimators import build_estimator
    from spleeter_ext.train import make_keras_model

    cfg = load_config(config_name)
    est = build_estimator(cfg)
    est.build()
    model = make_keras_model(est)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-4))
    n = est.training_segment_samples()
    b = cfg["batch_size"]
    rng = np.random.default_rng(0)
    src = rng.uniform(-0.2, 0.2, (b, n, cfg["n_channels"], len(cfg["instrument_list"]))).astype(np.float32)
    mix = src.sum(-1)
    step = tf.function(model.train_step)
    data = (tf.constant(mix), tf.constant(src))
    for _ in range(warmup):
        step(data)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        out = step(data)
        float(out["loss"])
        times.append(time.perf_counter() - t)
    params = int(sum(np.prod(v.shape) for v in est.body.trainable_variables))
    return float(np.median(times)), b, n / cfg["sample_rate"], params


def pipeline_rate(segment_seconds: float, batch_size: int) -> float:
    from spleeter_ext.data.make_dataset import make_dataset
    from spleeter_ext.data.pipeline import pipeline_throughput
    from spleeter_ext.data.tracks import discover

    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp) / "synth", 6, 0, 30.0, seed=0, engine="numpy")
        tracks = discover(root, ["vocals", "drums", "bass", "other"], "train")
        seg = int(segment_seconds * 44100)
        full = pipeline_throughput(tracks, ["vocals", "drums", "bass", "other"], 44100, 2, seg, batch_size=batch_size,
                                   augmentation={}, n_batches=10)
        offset = pipeline_throughput(tracks, ["vocals", "drums", "bass", "other"], 44100, 2, seg,
                                     batch_size=batch_size, augmentation={}, n_batches=10, cache_bytes=0)
    return full, offset


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/benchmarks.md")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--only", choices=("small", "paper", "all"), default="all")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from spleeter_ext.config import list_presets

    names = [n for n in list_presets() if n != "demo"]
    if args.only == "small":
        names = [n for n in names if n.endswith("_small")]
    elif args.only == "paper":
        names = [n for n in names if not n.endswith("_small")]
    rows, fastest = [], None
    for name in names:
        steps = args.steps if name.endswith("_small") else max(2, args.steps // 2)
        sec, b, seg, params = time_steps(name, steps)
        rate = b / sec
        rows.append([name, f"{params / 1e6:.2f} M", b, f"{seg:.2f} s", f"{sec:.3f}", f"{rate:.2f}"])
        print(f"{name}: {sec:.3f} s/step, {rate:.2f} examples/s", flush=True)
        if fastest is None or rate > fastest[1]:
            fastest = (name, rate, seg, b)
    body = markdown_table(["config", "params", "batch", "segment", "s / step", "examples / s"], rows)
    full, offset = pipeline_rate(fastest[2], fastest[3])
    body += (f"\n\nInput pipeline on the numpy synthetic set (6 x 30 s tracks), {fastest[2]:.2f} s segments, full "
             f"augmentation: {full:.1f} examples/s with the decoded-track cache, {offset:.1f} examples/s reading by "
             f"offset, against {fastest[1]:.2f} examples/s consumed by the fastest model ({fastest[0]}): "
             f"{full / fastest[1]:.1f}x / {offset / fastest[1]:.1f}x.")
    cmd = "python -m tools.bench.train" + (f" --only {args.only}" if args.only != "all" else "")
    write_section(args.out, "train", "Training step time (random inputs, Adam)", body, cmd)
    print(body)


if __name__ == "__main__":
    main()
