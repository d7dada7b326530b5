"""Separation benchmark: ``spleeter-ext separate`` against stock ``spleeter separate`` on one 4-stem checkpoint.

``python -m tools.bench.separate --out docs/benchmarks.md [--quick] [--workdir DIR]`` (method: docs/benchmarks.md).

``--quick`` runs the 30 s case and the 10-file batch only. ``--ours-args`` adds options to every spleeter-ext
command (e.g. ``--chunking crossfade`` to time the former crossfaded segments, ``--shifts 2``), written to its own
``--section``.

``--variants bf16,float32+xla,bf16+xla`` instead times those ``spleeter-ext separate`` variants against float32
on the 10-minute file (alternated, ``--repeat`` runs each; the 30 s file with ``--quick``) and reports, on the
bundled model and the stock-format 4-stem checkpoint, the max absolute stem difference and the SDR difference on
the synthetic test set (section ``separate-precision``).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .common import markdown_table, peak_rss_of, work_folder, write_section

SAMPLE_RATE = 44100
INSTRUMENTS = ["vocals", "drums", "bass", "other"]
GIB = 2.0 ** 30
MIB = 2.0 ** 20
#: Margin kept free when deciding whether stock can run a long case.
MEMORY_MARGIN = 3 * GIB
#: Stock Spleeter's ``-d`` default: inputs are cut there unless ``-d`` says otherwise.
STOCK_DEFAULT_DURATION = 600.0

# Requirement thresholds (issue text).
MAX_PEAK_RSS = 2.5 * GIB
MAX_RSS_RATIO = 1.2
MIN_SPEEDUP_LONG = 3.0
MIN_SPEEDUP_BATCH = 2.0

#: GNU time reports the CPU seconds of each command (a contention-independent view of its work).
TIME_BIN = "/usr/bin/time"
CPU_MARK = "bench-cpu-seconds"


@dataclass
class Case:
    """One benchmark input: ``files`` separated by one command, ``seconds`` of audio in total.

    A ``probe`` case runs stock only, on the first ``seconds`` of its file (stock's ``-d``): a longer
    point than the short cases for the extrapolation when stock cannot hold a long case in memory.
    """

    name: str
    files: List[Path]
    seconds: float
    long: bool = False
    probe: bool = False


@dataclass
class Result:
    tool: str
    case: str
    seconds: float
    walls: List[float] = field(default_factory=list)
    rss: List[float] = field(default_factory=list)
    cpus: List[float] = field(default_factory=list)
    status: str = "measured"  # or "extrapolated" (stock, not run)
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak(self) -> float:
        return max(self.rss)

    @property
    def cpu(self) -> Optional[float]:
        return statistics.median(self.cpus) if self.cpus else None

    @property
    def realtime(self) -> float:
        return self.seconds / self.wall


# ------------------------------------------------------------------ environment
def memory_available() -> float:
    """Bytes of ``MemAvailable`` (0 when unknown)."""
    try:
        kb = int(re.search(r"MemAvailable:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        return kb * 1024.0
    except (OSError, AttributeError):
        return 0.0


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def ours_cli() -> str:
    exe = Path(sys.executable).with_name("spleeter-ext")
    if not exe.exists():
        raise SystemExit(f"error: {exe} not found; run 'make install'")
    return str(exe)


# ------------------------------------------------------------------ checkpoint
def build_checkpoint(root: Path) -> Path:
    """Config of a 4-stem full-size Spleeter checkpoint trained 2 steps by stock ``spleeter train``."""
    from tools.stock import SPLEETER_4STEMS_FILTERS, train, write_config, write_training_set

    config = root / "config.json"
    if (root / "model" / "checkpoint").is_file() and config.is_file():
        return config
    root.mkdir(parents=True, exist_ok=True)
    # T=512 frames of hop 1024 need >= 12.0 s chunks (plus the STFT frame): 13 s chunks of 14 s tracks.
    write_training_set(root, INSTRUMENTS, n_tracks=2, seconds=14.0, seed=100)
    write_config(config, root / "model", INSTRUMENTS, frame_length=4096, frame_step=1024, T=512, F=1024,
                 conv_n_filters=SPLEETER_4STEMS_FILTERS, steps=2, batch_size=1, chunk_duration=13.0)
    print("training the 4-stem checkpoint with stock 'spleeter train' (2 steps)...", flush=True)
    t = time.perf_counter()
    train(config, root, timeout=3600)
    if not (root / "model" / "checkpoint").is_file():
        raise SystemExit(f"error: stock spleeter train wrote no checkpoint in {root / 'model'}")
    print(f"  checkpoint ready in {time.perf_counter() - t:.0f} s", flush=True)
    return config


# ------------------------------------------------------------------ inputs
def _frames_of(path: Path) -> int:
    import soundfile as sf

    return sf.info(str(path)).frames


def _write_wav(path: Path, mix: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(mix, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def render_song(seconds: float, seed: int) -> np.ndarray:
    """A rendered music-like stereo mixture ``(n, 2)``."""
    from spleeter_ext.data.synth import render_track

    return np.sum(list(render_track(seconds, sample_rate=SAMPLE_RATE, seed=seed).values()), axis=0)


def write_song(path: Path, seconds: float, seed: int) -> Path:
    if not (path.exists() and _frames_of(path) == int(round(seconds * SAMPLE_RATE))):
        _write_wav(path, render_song(seconds, seed))
    return path


def write_long(path: Path, seconds: float, library: Sequence[np.ndarray], seed: int) -> Path:
    """``seconds`` of audio streamed to ``path``: random 10-40 s pieces of the ``library`` songs, each with
    a random gain (0.5-1) and possibly swapped channels, joined by 20 ms crossfades."""
    import soundfile as sf

    total = int(round(seconds * SAMPLE_RATE))
    if path.exists() and _frames_of(path) == total:
        return path
    rng = np.random.default_rng(seed)
    fade = int(0.02 * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None]
    tail = np.zeros((0, 2), np.float32)
    written = 0
    with sf.SoundFile(str(path), "w", SAMPLE_RATE, 2, subtype="PCM_16") as f:
        while written < total:
            song = library[int(rng.integers(len(library)))]
            n = min(int(rng.uniform(10.0, 40.0) * SAMPLE_RATE), len(song) - fade)
            start = int(rng.integers(0, len(song) - n - fade + 1))
            piece = song[start: start + n + fade] * np.float32(rng.uniform(0.5, 1.0))
            if rng.random() < 0.5:
                piece = piece[:, ::-1]
            piece = np.array(piece, np.float32)
            if len(tail):
                piece[:fade] = piece[:fade] * ramp + tail * (1 - ramp)
            body, tail = piece[:-fade], piece[-fade:]
            body = body[: total - written]
            f.write(np.clip(body, -1.0, 1.0))
            written += len(body)
    return path


def make_inputs(root: Path, quick: bool) -> List[Case]:
    root.mkdir(parents=True, exist_ok=True)
    print("rendering inputs...", flush=True)
    t = time.perf_counter()
    cases = [Case("30 s", [write_song(root / "song_30s.wav", 30.0, seed=1000)], 30.0)]
    if not quick:
        cases.append(Case("1 min", [write_song(root / "song_1min.wav", 60.0, seed=1001)], 60.0))
        library = []
        for name, minutes in (("10 min", 10), ("60 min", 60)):
            path = root / f"song_{minutes}min.wav"
            if not (path.exists() and _frames_of(path) == minutes * 60 * SAMPLE_RATE):
                if not library:  # a few rendered minutes to cut the long files from
                    library = [render_song(45.0, seed=2000 + k) for k in range(4)]
                write_long(path, minutes * 60.0, library, seed=minutes)
            cases.append(Case(name, [path], minutes * 60.0, long=True))
    batch = [write_song(root / f"batch_{k:02d}.wav", 30.0, seed=3000 + k) for k in range(10)]
    cases.append(Case("10 x 30 s", batch, 300.0))
    print(f"  inputs ready in {time.perf_counter() - t:.0f} s", flush=True)
    return cases


# ------------------------------------------------------------------ runs
def ours_command(files: Sequence[Path], config: Path, out: Path, extra: Sequence[str] = ()) -> List[str]:
    return [ours_cli(), "separate", "-p", str(config), "-o", str(out), *extra] + [str(f) for f in files]


def stock_command(files: Sequence[Path], config: Path, out: Path, seconds: float) -> List[str]:
    """Stock with its default ffmpeg adapter, separating ``seconds`` of each file (``-d``: stock's default
    would cut at 600 s)."""
    from tools.stock import separate_cmd

    return separate_cmd([str(f) for f in files], config, out, adapter=None) + ["-d", f"{seconds:g}"]


def check_outputs(out: Path, files: Sequence[Path], tool: str, frames: Optional[int] = None) -> None:
    """Every stem of every input exists, has the input's length (or ``frames``) and 2 channels at
    44.1 kHz, is finite, and the stems of each input are not all silent."""
    import soundfile as sf

    for f in files:
        n = frames if frames is not None else _frames_of(f)
        energy = 0.0
        for inst in INSTRUMENTS:
            p = out / f.stem / f"{inst}.wav"
            if not p.is_file():
                raise RuntimeError(f"{tool}: missing output {p}")
            info = sf.info(str(p))
            if info.frames != n or info.channels != 2 or info.samplerate != SAMPLE_RATE:
                raise RuntimeError(f"{tool}: {p} has {info.frames} frames, {info.channels} channels at "
                                   f"{info.samplerate} Hz; the input has {n} frames, 2 channels at {SAMPLE_RATE} Hz")
            start = max(0, n // 2 - SAMPLE_RATE)
            block, _ = sf.read(str(p), frames=min(2 * SAMPLE_RATE, n), start=start, dtype="float32")
            if not np.isfinite(block).all():
                raise RuntimeError(f"{tool}: {p} holds non-finite samples")
            energy += float(np.mean(block.astype(np.float64) ** 2))
        if energy <= 1e-10:
            raise RuntimeError(f"{tool}: the stems of {f.name} are silent")


def with_cpu_time(cmd: List[str]) -> List[str]:
    """``cmd`` run under GNU time (when present) printing its user + system CPU seconds on stderr."""
    if os.access(TIME_BIN, os.X_OK):
        return [TIME_BIN, "-f", f"{CPU_MARK} %U %S"] + cmd
    return cmd


def cpu_seconds(stderr: str) -> Optional[float]:
    found = re.findall(rf"{CPU_MARK} ([0-9.]+) ([0-9.]+)", stderr)
    return float(found[-1][0]) + float(found[-1][1]) if found else None


def run_once(tool: str, case: Case, config: Path, work: Path, ours_args: Sequence[str] = ()
             ) -> Tuple[float, float, Optional[float]]:
    """Wall seconds, peak RSS bytes and CPU seconds of one separation of ``case`` by ``tool`` (outputs
    checked, then removed)."""
    out = work / f"out_{tool}"
    shutil.rmtree(out, ignore_errors=True)
    if tool == "spleeter-ext":
        cmd = ours_command(case.files, config, out, ours_args)
    elif case.probe:
        cmd = stock_command(case.files, config, out, case.seconds)
    else:
        cmd = stock_command(case.files, config, out, max(_frames_of(f) for f in case.files) / SAMPLE_RATE + 1)
    wall, rss, code, err = peak_rss_of(with_cpu_time(cmd), env=_env(), cwd=str(work),
                                       timeout=1800 + 4 * case.seconds)
    cpu = cpu_seconds(err)
    try:
        if code != 0:
            raise RuntimeError(f"{tool} failed on {case.name} (exit {code}):\n{err}")
        check_outputs(out, case.files, tool, int(round(case.seconds * SAMPLE_RATE)) if case.probe else None)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cpu_text = f"{cpu:8.1f} CPU s" if cpu is not None else ""
    print(f"  {case.name:10s} {tool:13s} {wall:8.1f} s  {case.seconds / wall:6.2f}x real time  "
          f"{rss / GIB:6.2f} GiB {cpu_text}  (load {os.getloadavg()[0]:.1f})", flush=True)
    return wall, rss, cpu


def linear_fit(points: Sequence[Tuple[float, float]]) -> Tuple[float, float]:
    """``(intercept, slope)`` of a least-squares line through ``(x, y)`` points (>= 2 distinct x)."""
    xs, ys = zip(*points)
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(intercept), float(slope)


# ------------------------------------------------------------------ report
def build_report(cases: List[Case], results: Dict[Tuple[str, str], Result], convs: List[Dict[str, object]],
                 flops_per_second: float, repeat: int, loads: List[float]) -> str:
    """The markdown body, ending with the requirement verdicts; ``convs`` are the convolution throughput
    measurements (:func:`.flops.conv_throughput`), the best of which is taken as this CPU's."""
    rows = []
    for case in cases:
        ours, stock = results.get(("spleeter-ext", case.name)), results[("spleeter", case.name)]
        for r in (stock,) if case.probe else (ours, stock):
            mark = "~" if r.status == "extrapolated" else ""
            if r is ours:
                extra = f"{'~' if stock.status == 'extrapolated' else ''}{stock.wall / ours.wall:.2f}x"
            else:
                extra = r.note
            cpu = f"{r.cpu:.1f}" if r.cpu is not None else ""
            rows.append([case.name, f"{case.seconds:.0f} s", r.tool, f"{mark}{r.wall:.1f}",
                         f"{mark}{r.realtime:.2f}", f"{mark}{r.peak / GIB:.2f}", cpu, extra])
    table = markdown_table(["case", "audio", "tool", "wall s", "x real time", "peak RSS GiB", "CPU s",
                            "throughput ours/stock"], rows)

    lines = [table, ""]
    lines.append(f"Wall time: median of {repeat} runs for the 30 s, 1 min and batch cases (tools alternated), "
                 "one run for the longer cases; CPU s: user + system CPU seconds of the command (GNU time), "
                 "which contention inflates much less than wall time; peak RSS: the largest of the runs "
                 "(ru_maxrss of the command's process tree, i.e. of its largest single process; stock's ffmpeg "
                 "and save-pool children are not added). "
                 "Every run's stems were checked (present, full length, finite, not silent). `~` marks figures "
                 "extrapolated linearly from stock's measured runs, not measured.")
    lines.append(f"1-min load average {min(loads):.1f}-{max(loads):.1f} between the runs; it counts the benchmark's "
                 f"own commands (up to {os.cpu_count()} on this machine), so only more than that means other jobs.")
    lines.append("")
    conv = max(convs, key=lambda c: float(c["unet"]))
    conv_rate, unet_rate = float(conv["conv"]) * 1e9, float(conv["unet"]) * 1e9
    each = ", ".join(f"{float(c['conv']):.1f}" for c in convs)
    lines.append(f"Convolution throughput of this CPU ({__package__}.flops, float32 NHWC, batch {conv['batch']} "
                 f"patches of 512x1024, median of 5 after warm-up; best of {len(convs)} measurements taken "
                 f"before and after the separation runs, whose Conv2D figures were {each} GFLOP/s): "
                 f"Conv2D {conv['conv']:.1f} GFLOP/s, Conv2DTranspose {conv['transpose']:.1f} GFLOP/s, whole "
                 f"U-Net layer mix {conv['unet']:.1f} GFLOP/s. "
                 f"The 4-stem U-Nets cost {flops_per_second / 1e9:.2f} GFLOP per second of audio "
                 f"(2 x MACs from spleeter_ext.models.info).")
    frac_rows = []
    for case in cases:
        r = results.get(("spleeter-ext", case.name))
        if r is None or r.status != "measured":
            continue
        achieved = r.realtime * flops_per_second
        frac_rows.append([case.name, f"{r.realtime:.2f}", f"{achieved / 1e9:.1f}",
                          f"{100 * achieved / conv_rate:.0f} %", f"{100 * achieved / unet_rate:.0f} %"])
    lines += ["", markdown_table(["spleeter-ext case", "x real time", "useful GFLOP/s", "of Conv2D GFLOP/s",
                                  "of U-Net-mix GFLOP/s"], frac_rows)]

    verdicts = []
    ours = {c.name: results[("spleeter-ext", c.name)] for c in cases if not c.probe}
    stock = {c.name: results[("spleeter", c.name)] for c in cases}
    if "60 min" in ours and "1 min" in ours:
        peak60, peak1 = ours["60 min"].peak, ours["1 min"].peak
        verdicts.append(f"peak RSS at 60 min {peak60 / GIB:.2f} GiB <= 2.5 GiB: "
                        f"{'met' if peak60 <= MAX_PEAK_RSS else 'NOT met'}")
        verdicts.append(f"peak RSS 60 min / 1 min = {peak60 / peak1:.2f} <= {MAX_RSS_RATIO}: "
                        f"{'met' if peak60 / peak1 <= MAX_RSS_RATIO else 'NOT met'}")
    if "10 min" in ours:
        s = stock["10 min"]
        ratio = s.wall / ours["10 min"].wall
        how = "" if s.status == "measured" else " (stock extrapolated, not measured)"
        verdicts.append(f"throughput at 10 min {ratio:.2f}x stock >= {MIN_SPEEDUP_LONG}x{how}: "
                        f"{'met' if ratio >= MIN_SPEEDUP_LONG else 'NOT met'}")
    ratio = stock["10 x 30 s"].wall / ours["10 x 30 s"].wall
    verdicts.append(f"throughput on 10 x 30 s {ratio:.2f}x stock >= {MIN_SPEEDUP_BATCH}x: "
                    f"{'met' if ratio >= MIN_SPEEDUP_BATCH else 'NOT met'}")
    lines += ["", "Requirements:", ""] + [f"- {v}" for v in verdicts]
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def run(work: Path, quick: bool, repeat: int, ours_args: Sequence[str] = ()
        ) -> Tuple[List[Case], Dict[Tuple[str, str], Result], List[float]]:
    config = build_checkpoint(work / "model")
    cases = make_inputs(work / "inputs", quick)
    results: Dict[Tuple[str, str], Result] = {}
    for case in cases:
        for tool in ("spleeter-ext", "spleeter"):
            results[(tool, case.name)] = Result(tool, case.name, case.seconds)
    loads = [os.getloadavg()[0]]

    def measure(tool: str, case: Case) -> None:
        wall, rss, cpu = run_once(tool, case, config, work, ours_args)
        results[(tool, case.name)].walls.append(wall)
        results[(tool, case.name)].rss.append(rss)
        if cpu is not None:
            results[(tool, case.name)].cpus.append(cpu)
        loads.append(os.getloadavg()[0])

    short = [c for c in cases if not c.long]
    for _ in range(repeat):
        for case in short:
            measure("spleeter-ext", case)
            measure("spleeter", case)

    def stock_fits():
        measured = [results[("spleeter", c.name)] for c in cases if len(c.files) == 1]
        measured = [r for r in measured if r.status == "measured" and r.walls]
        fit = {key: linear_fit([(r.seconds, get(r)) for r in measured])
               for key, get in (("rss", lambda r: r.peak), ("wall", lambda r: r.wall), ("cpu", lambda r: r.cpu))
               if all(get(r) is not None for r in measured)}
        return fit, len(measured)

    def predict(fit, key, seconds):
        return fit[key][0] + fit[key][1] * seconds

    for case in [c for c in cases if c.long]:
        measure("spleeter-ext", case)
        fit, n_points = stock_fits()
        need, free = predict(fit, "rss", case.seconds), memory_available()
        if case.name != "60 min" and free > need + MEMORY_MARGIN:
            measure("spleeter", case)
            continue
        if case.name != "60 min":
            # A longer stock point than the short cases: the first minutes of this file (stock's -d).
            for minutes in (5, 2.5):
                if free > predict(fit, "rss", minutes * 60) + MEMORY_MARGIN:
                    probe = Case(f"first {minutes:g} min", case.files, minutes * 60.0, probe=True)
                    cases.insert(cases.index(case), probe)
                    results[("spleeter", probe.name)] = Result("spleeter", probe.name, probe.seconds,
                                                               note=f"stock only: `-d {minutes * 60:g}` on the "
                                                                    f"{case.name} file (extrapolation point)")
                    measure("spleeter", probe)
                    fit, n_points = stock_fits()
                    need = predict(fit, "rss", case.seconds)
                    break
        stock = results[("spleeter", case.name)]
        stock.status = "extrapolated"
        stock.walls = [predict(fit, "wall", case.seconds)]
        stock.rss = [need]
        stock.cpus = [predict(fit, "cpu", case.seconds)] if "cpu" in fit else []
        why = "never run" if case.name == "60 min" else f"not run ({free / GIB:.1f} GiB available)"
        stock.note = (f"{why}: needs ~{need / GIB:.0f} GiB; linear fit of {n_points} measured stock runs "
                      f"({fit['rss'][1] / MIB:.1f} MiB, {fit['wall'][1]:.3f} wall s per audio s)")
        print(f"  {case.name:10s} spleeter      {stock.note}", flush=True)
    return cases, results, loads


# ------------------------------------------------------------------ precision and XLA
#: separation variants against float32: name -> (separate's options, Separator keyword arguments)
VARIANTS = {"float32": ([], {}),
            "bf16": (["--precision", "bf16"], {"precision": "bf16"}),
            "float32+xla": (["--jit-compile"], {"jit_compile": True}),
            "bf16+xla": (["--precision", "bf16", "--jit-compile"], {"precision": "bf16", "jit_compile": True})}


def variant_quality(params: str, variants: Sequence[str], n_songs: int, seconds: float) -> Dict[str, Dict[str, float]]:
    """Per variant: max absolute stem difference against float32 and both SDRs (museval's aggregation,
    :func:`spleeter_ext.curves.score`) on ``n_songs`` synthetic songs (the test set's generator and seeds); the
    float32 reference is separated once for all variants."""
    from spleeter_ext import Separator, curves
    from spleeter_ext.data.synth import render_track

    ref_sep = Separator(params)
    names = ref_sep.instruments
    mixes, refs, ests_ref = [], [], []
    for k in range(n_songs):
        stems = render_track(seconds, sample_rate=SAMPLE_RATE, seed=10_000 + k)
        mixes.append(sum(stems[n] for n in names).astype(np.float32))
        refs.append(np.stack([stems[n] for n in names]))
        a = ref_sep.separate(mixes[-1])
        ests_ref.append(np.stack([a[n] for n in names]))
    sdr_ref = curves.score(refs, ests_ref, names, SAMPLE_RATE)["SDR"]
    out = {}
    for variant in variants:
        low_sep = Separator(params, **VARIANTS[variant][1])
        ests_low = []
        for mix in mixes:
            b = low_sep.separate(mix)
            ests_low.append(np.stack([b[n] for n in names]))
        max_diff = max(float(np.abs(a - b).max()) for a, b in zip(ests_ref, ests_low))
        out[variant] = {"max_diff": max_diff, "sdr_float32": sdr_ref,
                        "sdr_low": curves.score(refs, ests_low, names, SAMPLE_RATE)["SDR"]}
    return out


def run_variants(work: Path, quick: bool, repeat: int, variants: Sequence[str]) -> str:
    """Wall time of each of ``variants`` against float32 on the 10-minute file (alternated runs, median) and
    their stems' agreement with float32's."""
    from spleeter_ext.config import DATASET_SECONDS, DATASET_TEST_TRACKS

    config = build_checkpoint(work / "model")
    cases = make_inputs(work / "inputs", quick)
    case = cases[0] if quick else next(c for c in cases if c.name == "10 min")
    walls: Dict[str, List[float]] = {name: [] for name in ["float32", *variants]}
    for _ in range(repeat):
        for name in walls:
            wall, _, _ = run_once("spleeter-ext", case, config, work, VARIANTS[name][0])
            walls[name].append(wall)
            print(f"  {name:12s} {wall:.1f} s", flush=True)
    f32 = statistics.median(walls["float32"])
    rows = [[name, f"{statistics.median(w):.1f}", f"{case.seconds / statistics.median(w):.1f}x",
             f"{f32 / statistics.median(w):.2f}x", " / ".join(f"{x:.1f}" for x in w)] for name, w in walls.items()]
    body = markdown_table(["variant", "wall s (median)", "x real time", "speed vs float32", "runs"], rows)
    body += f"\n\nOn the {case.name} file, runs alternated between the variants.\n\n"
    n_songs, seconds = (1, 5.0) if quick else (DATASET_TEST_TRACKS, DATASET_SECONDS)
    models = (("bundled (demo)", "demo"), ("stock-format 4-stem", str(config)))
    quality = {label: variant_quality(params, variants, n_songs, seconds) for label, params in models}
    qrows = []
    for variant in variants:
        for label, _ in models:
            q = quality[label][variant]
            qrows.append([variant, label, f"{q['max_diff']:.2e}", f"{q['sdr_float32']:.3f}", f"{q['sdr_low']:.3f}",
                          f"{q['sdr_low'] - q['sdr_float32']:+.3f}"])
            print("  " + " | ".join(qrows[-1]), flush=True)
    body += markdown_table(["variant", "model", "max abs stem difference vs float32", "SDR float32 (dB)",
                            "SDR variant (dB)", "difference (dB)"], qrows)
    body += f"\n\nSynthetic test set: {n_songs} songs of {seconds:g} s (`spleeter_ext.data.synth.render_track`)."
    return body


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update (section 'separate')")
    ap.add_argument("--quick", action="store_true", help="only the 30 s case and the 10-file batch")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each short case per tool (median wall time)")
    ap.add_argument("--ours-args", default="",
                    help="extra options of every spleeter-ext command, e.g. '--chunking crossfade' or '--shifts 2'")
    ap.add_argument("--section", default="separate", help="section of --out to write (default 'separate')")
    ap.add_argument("--workdir", help="keep the checkpoint and inputs here (reused when present) instead of a "
                                      "temporary folder")
    ap.add_argument("--variants", help="comma-separated, of " + ", ".join(v for v in VARIANTS if v != "float32")
                    + ": time these spleeter-ext variants against float32 instead of stock (section "
                      "'separate-precision')")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.variants:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        if not variants or any(v not in VARIANTS or v == "float32" for v in variants):
            ap.error(f"--variants: got {args.variants!r}; choose from "
                     + ", ".join(v for v in VARIANTS if v != "float32"))
        with work_folder(args.workdir, "spleeter_ext_bench_") as work:
            body = run_variants(work, args.quick, args.repeat, variants)
        if args.quick:  # a check that the code runs, not a measurement
            print(body, flush=True)
            return
        cmd = f"python -m tools.bench.separate --out docs/benchmarks.md --variants {','.join(variants)}"
        cmd += "" if args.repeat == 3 else f" --repeat {args.repeat}"
        write_section(args.out, "separate-precision", "Separation: bf16 and XLA against float32", body, cmd)
        print(body, flush=True)
        return

    from . import flops

    print("measuring convolution throughput...", flush=True)
    convs = [flops.conv_throughput(batch=3, runs=5)]
    with work_folder(args.workdir, "spleeter_ext_bench_") as work:
        cases, results, loads = run(work, args.quick, args.repeat, shlex.split(args.ours_args))

    print("measuring convolution throughput again...", flush=True)
    convs.append(flops.conv_throughput(batch=3, runs=5))
    fps = flops.flops_per_audio_second()
    body = build_report(cases, results, convs, fps, args.repeat, loads)
    cmd = "python -m tools.bench.separate --out docs/benchmarks.md" + (" --quick" if args.quick else "")
    cmd += "" if args.repeat == 3 else f" --repeat {args.repeat}"
    cmd += f" --workdir {args.workdir}" if args.workdir else ""
    cmd += f" --ours-args '{args.ours_args}' --section {args.section}" if args.ours_args else ""
    title = "Separation: spleeter-ext vs stock `spleeter separate`, 4-stem full-size checkpoint"
    if args.ours_args:
        title += f" (spleeter-ext {args.ours_args})"
    if args.quick:
        title += " (quick: 30 s and batch only)"
    write_section(args.out, args.section, title, body, cmd,
                  alias="" if args.ours_args else "make bench-separate")
    print(body, flush=True)


if __name__ == "__main__":
    main()
