"""Training benchmark: step time of every preset in each precision (float32, mixed_bfloat16, with and without
XLA) against this CPU's convolution rate, validation SDR at equal steps per precision, and the input pipeline.

``python -m tools.bench.train [--out docs/benchmarks.md] [--part speed|quality|all] [--steps N]
[--only small|paper|all] [--variants float32,mixed_bfloat16,float32+xla,mixed_bfloat16+xla]
[--quality-steps N] [--seeds N] [--quick]``
(``--quick``: one small config, a couple of steps, a check that the code runs, not a measurement).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from .common import markdown_table, write_section

#: variant name -> (Keras precision policy, XLA)
VARIANTS = {"float32": ("float32", False), "mixed_bfloat16": ("mixed_bfloat16", False),
            "float32+xla": ("float32", True), "mixed_bfloat16+xla": ("mixed_bfloat16", True)}
#: the compute dtype of each precision, for the convolution rate it is compared with
COMPUTE_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def training_step(config_name: str, precision: str = "float32", jit_compile: bool = False, batch_size=None):
    """A traced training step of ``config_name`` under ``precision`` (and XLA) on a fixed random batch:
    ``(step, batch, estimator, config, batch size)``; ``step(batch)`` runs one Adam step."""
    import tensorflow as tf

    from spleeter_ext.config import load_config
    from spleeter_ext.models.estimators import build_estimator
    from spleeter_ext.models.precision import policy_scope, wrap_optimizer
    from spleeter_ext.train import make_keras_model

    with policy_scope(precision):
        cfg = load_config(config_name)
        b = int(batch_size or cfg["batch_size"])
        est = build_estimator(cfg)
        est.build()
        model = make_keras_model(est)
        model.compile(optimizer=wrap_optimizer(tf.keras.optimizers.Adam(1e-4), precision), jit_compile=jit_compile)
        n = est.training_segment_samples()
        rng = np.random.default_rng(0)
        src = rng.uniform(-0.2, 0.2, (b, n, cfg["n_channels"], len(cfg["instrument_list"]))).astype(np.float32)
        step = tf.function(model.train_step, jit_compile=jit_compile)
        data = (tf.constant(src.sum(-1)), tf.constant(src))
    return step, data, est, cfg, b


def time_steps(config_name: str, steps: int, warmup: int = 2, precision: str = "float32", jit_compile: bool = False,
               batch_size=None) -> Dict[str, float]:
    """Median seconds per training step of ``config_name`` on random inputs under ``precision`` (and XLA), with
    the batch size, segment seconds, parameters and useful FLOPs of a step (forward + backward, from MACs)."""
    from spleeter_ext import curves

    step, data, est, cfg, b = training_step(config_name, precision, jit_compile, batch_size)
    for _ in range(warmup):
        float(step(data)["loss"])
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        float(step(data)["loss"])
        times.append(time.perf_counter() - t)
    macs = curves.training_macs_per_example(est)
    params = int(sum(np.prod(v.shape) for v in est.body.trainable_variables))
    n = est.training_segment_samples()
    del step, data, est
    release()
    return {"seconds": float(np.median(times)), "batch": b, "segment": n / cfg["sample_rate"], "params": params,
            "flops": curves.step_flops(macs, b)}


def release() -> None:
    """Free the last model's graphs and variables: without it one process timing every preset in every
    precision grew past 11 GiB of RSS (and slowed down) before the paper-sized ones."""
    import gc

    import tensorflow as tf

    tf.keras.backend.clear_session()
    gc.collect()


def family(name: str) -> str:
    """A preset's family: ``stack`` for every stacked model, else the name without its rank and size."""
    return "stack" if name.startswith("stack_") else name.replace("_small", "").rsplit("_", 1)[0]


def quality_configs(names: Sequence[str]) -> List[str]:
    """One ``_small`` config per family (the first in name order)."""
    chosen: Dict[str, str] = {}
    for name in sorted(names):
        if name.endswith("_small"):
            chosen.setdefault(family(name), name)
    return list(chosen.values())


def quality(config_name: str, data: Path, precisions: Sequence[str], seeds: Sequence[int], steps: int,
            batch_size=None) -> Dict[str, List[float]]:
    """Validation SDR (dB, museval's median aggregation) after ``steps`` training steps of ``config_name`` per
    precision and seed, trained by :func:`spleeter_ext.train.train` on ``data``."""
    from spleeter_ext import curves
    from spleeter_ext.train import train

    out: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            for seed in seeds:
                model_dir = Path(tmp) / f"{precision}-{seed}"
                train(config_name, str(data), steps=steps, batch_size=batch_size, model_dir=str(model_dir),
                      seed=seed, verbose=0, precision=precision)
                rows = curves.read_curves(model_dir / "curves.csv")
                out.setdefault(precision, []).append(rows[-1]["SDR"] if rows else float("nan"))
    return out


def conv_rates(dtypes: Sequence[str], quick: bool = False) -> Dict[str, float]:
    """This CPU's convolution rate (GFLOP/s on Spleeter's U-Net layers, :mod:`.flops`) per compute dtype."""
    from . import flops

    kw = {"batch": 1, "runs": 1, "warmup": 1} if quick else {"batch": 3, "runs": 5}
    return {d: flops.conv_throughput(dtype=d, **kw)["unet"] for d in dtypes}


def pipeline_rate(segment_seconds: float, batch_size: int):
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


def _spread(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std():.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def speed(names: Sequence[str], variants: Sequence[str], steps: int, quick: bool, batch=None) -> str:
    """Step time of every config in each variant, against the convolution rate, and the input pipeline."""
    precisions = list(dict.fromkeys(VARIANTS[v][0] for v in variants))
    rates = conv_rates([COMPUTE_DTYPE[p] for p in precisions], quick=quick)
    rows, fastest, speedups = [], None, {v: [] for v in variants[1:]}
    for name in names:
        n_steps = steps if name.endswith("_small") else max(2, steps // 2)
        ref = None
        for variant in variants:
            precision, xla = VARIANTS[variant]
            r = time_steps(name, n_steps, warmup=1 if quick else 2, precision=precision, jit_compile=xla,
                           batch_size=batch)
            rate = r["batch"] / r["seconds"]
            gflops = r["flops"] / r["seconds"] / 1e9
            conv = rates[COMPUTE_DTYPE[precision]]
            ref = ref or r["seconds"]
            if variant != variants[0] and name.endswith("_small"):
                speedups[variant].append(ref / r["seconds"])
            rows.append([name, variant, f"{r['params'] / 1e6:.2f} M", r["batch"], f"{r['segment']:.2f} s",
                         f"{r['seconds']:.3f}", f"{rate:.2f}", f"{ref / r['seconds']:.2f}x", f"{gflops:.1f}",
                         f"{100 * gflops / conv:.0f} %"])
            print(" | ".join(map(str, rows[-1])), flush=True)
            if variant == variants[0] and (fastest is None or rate > fastest[1]):
                fastest = (name, rate, r["segment"], r["batch"])
    body = markdown_table(["config", "precision", "params", "batch", "segment", "s / step", "examples / s",
                           f"vs {variants[0]}", "useful GFLOP/s", "of conv rate"], rows)
    body += (f"\n\nMedian of {steps} steps (`_small`) or {max(2, steps // 2)} (paper-sized) after 2 of warm-up. "
             "Useful GFLOP/s: 6 x the networks' forward MACs per example x batch / step time (forward + "
             "backward, `spleeter_ext.curves.step_flops`). Convolution rate of this CPU on Spleeter's U-Net layers "
             "(`tools/bench/flops.py`, forward): " + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in rates.items())
             + ".")
    for variant, values in speedups.items():
        if values:
            body += (f"\nGeometric mean speed-up of {variant} over {variants[0]} on the {len(values)} `_small` "
                     f"configs: {float(np.exp(np.mean(np.log(values)))):.2f}x.")
    if not quick:
        full, offset = pipeline_rate(fastest[2], fastest[3])
        body += (f"\n\nInput pipeline on the numpy synthetic set (6 x 30 s tracks), {fastest[2]:.2f} s segments, "
                 f"full augmentation: {full:.1f} examples/s with the decoded-track cache, {offset:.1f} examples/s "
                 f"reading by offset, against {fastest[1]:.2f} examples/s consumed by the fastest model "
                 f"({fastest[0]}, {variants[0]}): {full / fastest[1]:.1f}x / {offset / fastest[1]:.1f}x.")
    return body


def quality_table(names: Sequence[str], precisions: Sequence[str], n_seeds: int, steps: int, quick: bool,
                  batch=None) -> str:
    """Validation SDR after ``steps`` steps in each precision, seeds 0..n_seeds-1, for each config of ``names``."""
    from spleeter_ext.data.make_dataset import make_dataset

    seeds = list(range(n_seeds))
    qrows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "synth", 4 if quick else 8, 0, 6.0 if quick else 20.0, seed=0)
        for name in names:
            sdr = quality(name, data, precisions, seeds, steps, batch_size=batch)
            qrows.append([name, steps] + [_spread(sdr[p]) for p in precisions])
            print(" | ".join(map(str, qrows[-1])), flush=True)
    body = (f"Validation SDR (dB, mean ± std over seeds {seeds}) after the same number of training steps in each "
            "precision (`spleeter_ext.train.train`, the config's batch size), on a numpy synthetic set of 8 songs "
            "of 20 s (`make_dataset(..., 8, 0, 20.0, seed=0)`):\n\n")
    return body + markdown_table(["config", "steps"] + list(precisions), qrows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/benchmarks.md")
    ap.add_argument("--part", choices=("speed", "quality", "all"), default="all",
                    help="step times (section 'train', or 'train-small'/'train-paper' with --only), the SDR at "
                         "equal steps per precision (section 'train-quality'), or both")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--only", choices=("small", "paper", "all"), default="all")
    ap.add_argument("--configs", help="comma-separated configs to time instead of --only's set")
    ap.add_argument("--section", help="section of --out for the step times (default: 'train', or 'train-small' / "
                                      "'train-paper' with --only)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, of {', '.join(VARIANTS)}; the first is the reference of the speed-ups")
    ap.add_argument("--quality-steps", type=int, default=400, help="training steps before the validation SDR")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per precision of the SDR comparison")
    ap.add_argument("--quality-configs", help="comma-separated configs of the SDR comparison (default: the first "
                                              "`_small` config of each family in name order)")
    ap.add_argument("--quick", action="store_true",
                    help="check that the code runs: one small config, 2 steps, batch 1, no pipeline measurement")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from spleeter_ext.config import list_presets

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        ap.error(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    names = [n for n in list_presets() if n != "demo"]
    if args.only == "small":
        names = [n for n in names if n.endswith("_small")]
    elif args.only == "paper":
        names = [n for n in names if not n.endswith("_small")]
    if args.configs:
        names = [n.strip() for n in args.configs.split(",") if n.strip()]
        unknown = [n for n in names if n not in list_presets()]
        if unknown or not names:
            ap.error(f"--configs: unknown {unknown}; see model_configs/")
    batch = None
    if args.quick:
        names, args.steps, batch = ["spleeter_2d_small"], 2, 1
        args.quality_steps, args.seeds = 2, 1
    precisions = list(dict.fromkeys(VARIANTS[v][0] for v in variants))
    options = f" --variants {','.join(variants)}" if variants != list(VARIANTS) else ""
    if args.part in ("speed", "all"):
        body = speed(names, variants, args.steps, args.quick, batch)
        print(body)
        if not args.quick:
            key = args.section or ("train" if args.only == "all" else f"train-{args.only}")
            cmd = "python -m tools.bench.train --part speed" + (f" --only {args.only}" if args.only != "all" else "")
            cmd += f" --configs {','.join(names)}" if args.configs else ""
            cmd += f" --section {args.section}" if args.section else ""
            title = "Training step time per precision (random inputs, Adam)" + (
                f": {args.only} configs" if args.only != "all" and not args.configs else "")
            write_section(args.out, key, title, body, cmd + options)
    if args.part in ("quality", "all"):
        chosen = names if args.quick else quality_configs(names)
        if args.quality_configs:
            chosen = [n.strip() for n in args.quality_configs.split(",") if n.strip()]
            unknown = [n for n in chosen if n not in list_presets()]
            if unknown or not chosen:
                ap.error(f"--quality-configs: unknown {unknown}; see `spleeter-ext models` or model_configs/")
        body = quality_table(chosen, precisions, args.seeds, args.quality_steps, args.quick, batch)
        print(body)
        if not args.quick:
            cmd = (f"python -m tools.bench.train --part quality --seeds {args.seeds} "
                   f"--quality-steps {args.quality_steps}"
                   + (f" --quality-configs {','.join(chosen)}" if args.quality_configs else ""))
            write_section(args.out, "train-quality", "Training quality per precision: validation SDR at equal steps",
                          body, cmd + options)


if __name__ == "__main__":
    main()
