"""Where the time goes: TensorFlow's profiler on training steps or on a separation, self time per op type.

``python -m tools.bench.profile train --config spleeter_2d_small [--variants float32,mixed_bfloat16] [--steps 5]``
``python -m tools.bench.profile separate [--params PATH|demo] [--seconds 120] [--variants float32,bf16]``
(``--out docs/benchmarks.md`` writes section ``profile-train`` or ``profile-separate``). The trace is converted by
TensorFlow's own profiler tools (``tensorflow_stats``, as TensorBoard's profile plugin shows it).
"""
from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from .common import markdown_table, write_section

#: op types shown by name; the rest are summed into "other"
TOP = 12


def op_stats(run: Callable[[], None], logdir: str) -> Tuple[Dict[str, float], float]:
    """Profile ``run()``: ``({op type: self seconds on the host}, wall seconds)``, from TensorFlow's trace
    converted by its ``tensorflow_stats`` tool (the table TensorBoard's profile plugin shows; the plugin's
    protobuf module reads it)."""
    import tensorflow as tf
    from tensorboard_plugin_profile.protobuf import tf_stats_pb2
    from tensorflow.python.profiler.internal import _pywrap_profiler

    tf.profiler.experimental.start(logdir)
    t = time.perf_counter()
    try:
        run()
    finally:
        wall = time.perf_counter() - t
        tf.profiler.experimental.stop()
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        raise RuntimeError(f"the profiler wrote no trace under {logdir}")
    raw, ok = _pywrap_profiler.xspace_to_tools_data([paths[-1]], "tensorflow_stats", {})
    if not ok:
        raise RuntimeError(f"TensorFlow could not convert the trace {paths[-1]}")
    return by_type(tf_stats_pb2.TfStatsDatabase.FromString(raw).without_idle.tf_stats_record), wall


def by_type(records) -> Dict[str, float]:
    """Self seconds per op type of the host's ``TfStatsRecord``s (times in microseconds)."""
    out: Dict[str, float] = {}
    for r in records:
        if r.host_or_device.lower() == "host":
            out[r.op_type] = out.get(r.op_type, 0.0) + r.total_self_time_in_us / 1e6
    return out


def report(profiles: Dict[str, Tuple[Dict[str, float], float]], per: float, unit: str) -> str:
    """A table of self time per op type (``per``: divide by the number of steps), one column per variant."""
    names = list(profiles)
    total = {n: sum(profiles[n][0].values()) for n in names}
    share = {n: {k: v / max(total[n], 1e-12) for k, v in profiles[n][0].items()} for n in names}
    ranked = sorted(set().union(*(p[0] for p in profiles.values())),  # by the first variant's share, then others'
                    key=lambda k: (-share[names[0]].get(k, 0.0), -max(share[n].get(k, 0.0) for n in names), k))
    shown, rest = ranked[:TOP], ranked[TOP:]
    rows = []
    for op in shown:
        rows.append([f"`{op}`"] + [f"{1e3 * profiles[n][0].get(op, 0.0) / per:.1f} ms "
                                    f"({100 * share[n].get(op, 0.0):.0f} %)" for n in names])
    rows.append(["other"] + [f"{1e3 * sum(profiles[n][0].get(op, 0.0) for op in rest) / per:.1f} ms" for n in names])
    rows.append(["**all ops (self time)**"] + [f"{1e3 * total[n] / per:.1f} ms" for n in names])
    rows.append(["wall time"] + [f"{1e3 * profiles[n][1] / per:.1f} ms" for n in names])
    return markdown_table([f"op type (per {unit})"] + names, rows)


def profile_train(config: str, variants: Sequence[str], steps: int) -> str:
    from .train import VARIANTS, training_step

    profiles = {}
    for variant in variants:
        precision, xla = VARIANTS[variant]
        step, data, _, _, _ = training_step(config, precision, xla)
        for _ in range(2):
            float(step(data)["loss"])  # trace and warm up outside the profile

        def run(step=step, data=data):
            for _ in range(steps):
                float(step(data)["loss"])

        with tempfile.TemporaryDirectory() as tmp:
            profiles[variant] = op_stats(run, tmp)
        print(f"{variant}: {profiles[variant][1] / steps:.3f} s / step", flush=True)
    body = report(profiles, steps, "training step")
    body += (f"\n\n`{config}` at its batch size on random inputs, Adam, {steps} profiled steps after 2 of warm-up; "
             "self time of each op type summed over both cores' threads (so the sum may exceed the wall time), "
             "`_Mkl*`/`_Fused*` are oneDNN's kernels.")
    return body


def profile_separate(params: str, seconds: float, variants: Sequence[str]) -> str:
    from spleeter_ext import Separator
    from spleeter_ext.data.synth import render_track

    from .separate import SAMPLE_RATE, VARIANTS

    stems = render_track(seconds, sample_rate=SAMPLE_RATE, seed=10_000)
    profiles = {}
    for variant in variants:
        sep = Separator(params, **VARIANTS[variant][1])
        mix = sum(stems[n] for n in sep.instruments).astype(np.float32)
        sep.separate(mix[: SAMPLE_RATE * 40])  # trace the graphs outside the profile
        with tempfile.TemporaryDirectory() as tmp:
            profiles[variant] = op_stats(lambda sep=sep, mix=mix: sep.separate(mix), tmp)
        print(f"{variant}: {profiles[variant][1]:.2f} s for {seconds:g} s", flush=True)
    body = report(profiles, 1.0, f"{seconds:g} s of audio")
    body += (f"\n\n`Separator({params!r}).separate` on {seconds:g} s of a synthetic song in memory (no decoding or "
             "encoding), after a warm-up call. `PyFuncStateless` is the SciPy STFT and masked inverse STFT "
             "(`spleeter_ext.dsp.stft_fast`, `masked_istft_fast`) called from the graph; the overlap-add outside "
             "the graph shows as the gap between the ops' time and the wall time.")
    return body


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train", help="profile training steps")
    t.add_argument("--config", default="spleeter_2d_small")
    t.add_argument("--variants", default="float32,mixed_bfloat16")
    t.add_argument("--steps", type=int, default=5)
    s = sub.add_parser("separate", help="profile a separation in memory")
    s.add_argument("--params", default="demo")
    s.add_argument("--seconds", type=float, default=120.0)
    s.add_argument("--variants", default="float32,bf16")
    for p in (t, s):
        p.add_argument("--out", help="markdown file to update (section profile-train / profile-separate)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    variants: List[str] = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.what == "train":
        from .train import VARIANTS
    else:
        from .separate import VARIANTS
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        ap.error(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    if args.what == "train":
        body = profile_train(args.config, variants, args.steps)
        cmd = f"python -m tools.bench.profile train --config {args.config} --variants {','.join(variants)}"
    else:
        body = profile_separate(args.params, args.seconds, variants)
        cmd = f"python -m tools.bench.profile separate --params {args.params} --seconds {args.seconds:g} " \
              f"--variants {','.join(variants)}"
    print(body)
    if args.out:
        title = "Where a training step's time goes" if args.what == "train" else "Where separation's time goes"
        write_section(args.out, f"profile-{args.what}", title, body, cmd)


if __name__ == "__main__":
    main()
