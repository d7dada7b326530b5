"""Catalog benchmark: ``spleeter-ext catalog`` (Beam DirectRunner, worker processes) against
``spleeter-ext separate`` on the same files in one run, and a cloud estimate from the measured
per-worker real-time factor.

``python -m tools.bench.catalog --out docs/benchmarks.md [--files 20] [--seconds 30] [--workers 2]
[--model full|demo|CONFIG] [--workdir DIR]``

1. The model: by default the 4-stem full-size Spleeter checkpoint that ``bench.separate`` builds (stock
   ``spleeter train``, 2 steps), as users run ``spleeter:4stems``; ``--model demo`` for a quick check.
2. ``--files`` different music-like songs of ``--seconds`` (``bench.separate.write_song``), 16-bit wav.
3. Both commands run as their own processes, ``separate`` first: wall time, CPU seconds (GNU time), and
   the peak RSS of every process of the command's tree (sampled ``VmHWM`` from ``/proc``), so the
   catalog's worker processes are reported one by one. Both tools' stems are checked (present, full
   length, finite, not silent) and compared with each other sample by sample.
4. The per-worker real-time factor is the catalog's summed per-file wall seconds over the audio seconds
   (from its results manifest): the time one worker holding one core takes per second of audio, model
   start-up excluded. The cloud estimate scales it to 100,000 songs of 4 minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .common import markdown_table, work_folder, write_section
from .separate import (
    GIB,
    INSTRUMENTS,
    _env,
    build_checkpoint,
    check_outputs,
    cpu_seconds,
    ours_cli,
    ours_command,
    with_cpu_time,
    write_song,
)

MIN_THROUGHPUT_RATIO = 0.8  # requirement: catalog >= 0.8x separate's throughput on this machine
CLOUD_SONGS = 100_000
CLOUD_SONG_SECONDS = 240.0
CLOUD_HOURS = (24.0, 12.0, 6.0)  # wall-time targets of the estimate


@dataclass
class Run:
    tool: str
    wall: float
    cpu: Optional[float]
    peaks: Dict[int, Tuple[str, float]] = field(default_factory=dict)  # pid -> (command line, peak RSS bytes)

    def peak(self, marker: str = "") -> float:
        values = [rss for cmd, rss in self.peaks.values() if marker in cmd]
        return max(values) if values else float("nan")


# ------------------------------------------------------------------ process tree sampling
def _children() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(root: int) -> List[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _peak_rss(pid: int) -> Optional[Tuple[str, float]]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return cmd, float(line.split()[1]) * 1024.0
    return None


def run_sampled(cmd: Sequence[str], cwd: Path, timeout: float) -> Tuple[float, int, str, Dict[int, Tuple[str, float]]]:
    """Run ``cmd``; return wall seconds, exit status, stderr and the peak RSS of each process of its tree."""
    peaks: Dict[int, Tuple[str, float]] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=str(cwd), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in _descendants(proc.pid):
                got = _peak_rss(pid)
                if got and got[1] >= peaks.get(pid, ("", 0.0))[1]:
                    peaks[pid] = got
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
    return time.perf_counter() - t0, proc.returncode, err, peaks


# ------------------------------------------------------------------ runs
def catalog_command(files: Sequence[Path], model: str, out: Path, workers: int) -> List[str]:
    return [ours_cli(), "catalog", "-p", model, "-o", str(out), *map(str, files),
            "--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]


def measure(tool: str, cmd: List[str], files: Sequence[Path], out: Path, work: Path, seconds: float) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    wall, code, err, peaks = run_sampled(with_cpu_time(cmd), work, timeout=1800 + 20 * seconds)
    if code != 0:
        raise RuntimeError(f"{tool} failed (exit {code}):\n{err[-4000:]}")
    check_outputs(out, files, tool)
    run = Run(tool, wall, cpu_seconds(err), peaks)
    print(f"  {tool:8s} {wall:8.1f} s  {seconds / wall:6.2f}x real time  (load {os.getloadavg()[0]:.1f})", flush=True)
    return run


def stem_difference(a: Path, b: Path, files: Sequence[Path]) -> int:
    """Largest difference, in 16-bit steps, between the two tools' stems of every file."""
    import soundfile as sf

    worst = 0
    for f in files:
        for inst in INSTRUMENTS:
            x = sf.read(str(a / f.stem / f"{inst}.wav"), dtype="int16")[0].astype(np.int32)
            y = sf.read(str(b / f.stem / f"{inst}.wav"), dtype="int16")[0].astype(np.int32)
            worst = max(worst, int(np.abs(x - y).max()) if x.shape == y.shape else 1 << 16)
    return worst


def worker_rtf(results: Path) -> Tuple[float, float, int]:
    """``(wall s per audio s of one worker, audio seconds, records done)`` from a results manifest."""
    recs = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    done = [r for r in recs if r["status"] == "done"]
    audio = sum(r["audio_seconds"] for r in done)
    return sum(r["wall_seconds"] for r in done) / audio, audio, len(done)


# ------------------------------------------------------------------ report
def cloud_estimate(rtf: float, worker_peak: float, overhead: float) -> str:
    """Workers, hours and memory for :data:`CLOUD_SONGS` songs of :data:`CLOUD_SONG_SECONDS`."""
    audio_h = CLOUD_SONGS * CLOUD_SONG_SECONDS / 3600.0
    worker_h = audio_h * rtf
    rows = []
    for hours in CLOUD_HOURS:
        workers = int(np.ceil(worker_h / hours))
        rows.append([f"{hours:g} h", workers, f"{int(np.ceil(workers / 4))} x 4-vCPU VMs"])
    mem = worker_peak / GIB
    return "\n".join([
        f"Cloud estimate for {CLOUD_SONGS:,} songs of {CLOUD_SONG_SECONDS / 60:g} minutes "
        f"({audio_h:,.0f} hours of audio), from the measured per-worker real-time factor {rtf:.3f} (wall "
        "seconds of one worker on one core per second of audio):",
        "",
        f"* work: {audio_h:,.0f} h x {rtf:.3f} = **{worker_h:,.0f} worker-hours** (one worker = one SDK process "
        "on one vCPU: Dataflow's default of one process per vCPU, with `--number_of_worker_harness_threads 1 "
        "--jobs 1`), plus a fixed start-up per worker (here the catalog's wall time not spent separating was "
        f"{overhead:.0f} s: imports, model builds, pipeline stages, the last file), negligible against hours;",
        "* memory per worker: the measured peak RSS of one worker process, "
        f"**{mem:.2f} GiB**; memory does not grow with song length (separation streams), so 4-minute songs need "
        f"the same. A 4-vCPU VM runs 4 workers: {4 * mem:.1f} GiB, "
        + ("which fits a 16 GB n2-standard-4;" if 4 * mem < 13 else "so choose a high-memory machine type;"),
        "* workers needed for a wall-time target:",
        "",
        markdown_table(["wall time", "workers (vCPUs)", "machines"], rows),
        "",
        "A cloud vCPU is one hyperthread, often slower than a core of this machine, and input download / stem "
        "upload add a little per song: read these as lower bounds and size with a margin (say 1.5x); "
        "re-running the same command after a preemption resumes, skipping complete stems.",
    ])


def build_report(files: int, seconds: float, workers: int, model: str, sep: Run, cat: Run, rtf: float,
                 diff: int, overhead: float) -> str:
    audio = files * seconds
    tput = {r.tool: audio / r.wall for r in (sep, cat)}
    ratio = tput["catalog"] / tput["separate"]
    rows = []
    for r in (sep, cat):
        workers_peak = r.peak("sdk_worker") if r.tool == "catalog" else float("nan")
        rows.append([r.tool, f"{r.wall:.1f}", f"{tput[r.tool]:.2f}", f"{r.cpu:.1f}" if r.cpu is not None else "",
                     f"{r.peak() / GIB:.2f}", f"{workers_peak / GIB:.2f}" if workers_peak == workers_peak else "",
                     f"{tput[r.tool] / tput['separate']:.2f}x"])
    met = "met" if ratio >= MIN_THROUGHPUT_RATIO else "NOT met"
    lines = [
        f"{files} songs of {seconds:g} s ({audio:g} s of audio), model: {model}. `separate` takes all files in one "
        f"command; `catalog` runs the DirectRunner with {workers} worker processes "
        f"(`--direct_num_workers {workers} --direct_running_mode multi_processing`, TensorFlow threads shared out: "
        f"{max(1, (os.cpu_count() or 1) // workers)} per worker). Wall time includes start-up (imports, model "
        "build: once for `separate`, once per worker for `catalog`).",
        "",
        markdown_table(["command", "wall s", "x real time", "CPU s", "peak RSS GiB (largest process)",
                        "peak RSS GiB per worker", "throughput vs separate"], rows),
        "",
        f"Stems: the largest difference between the two tools' stems is {diff} (16-bit steps)"
        + (" - identical." if diff == 0 else " (TensorFlow's thread count differs between the runs)."),
        f"Requirement: catalog throughput {ratio:.2f}x separate's >= {MIN_THROUGHPUT_RATIO}x: {met}.",
        "",
        cloud_estimate(rtf, cat.peak("sdk_worker"), overhead),
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update (section 'catalog')")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="full", help="full (4-stem full-size checkpoint), demo, or a config/preset")
    ap.add_argument("--workdir", help="keep the checkpoint and inputs here (reused when present)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with work_folder(args.workdir, "spleeter_ext_bench_catalog_") as work:
        if args.model == "full":
            model, label = str(build_checkpoint(work / "model")), "4-stem full-size Spleeter U-Net checkpoint"
        else:
            model, label = args.model, f"`{args.model}`"
        print("rendering inputs...", flush=True)
        (work / "inputs").mkdir(parents=True, exist_ok=True)
        files = [write_song(work / "inputs" / f"song_{k:02d}.wav", args.seconds, seed=4000 + k)
                 for k in range(args.files)]
        audio = args.files * args.seconds
        sep = measure("separate", ours_command(files, model, work / "out_separate"), files, work / "out_separate",
                      work, audio)
        cat = measure("catalog", catalog_command(files, model, work / "out_catalog", args.workers), files,
                      work / "out_catalog", work, audio)
        rtf, _, _ = worker_rtf(work / "out_catalog" / "catalog-results.jsonl")
        diff = stem_difference(work / "out_separate", work / "out_catalog", files)
        overhead = max(0.0, cat.wall - rtf * audio / args.workers)  # wall time not spent separating
    body = build_report(args.files, args.seconds, args.workers, label, sep, cat, rtf, diff, overhead)
    cmd = "python -m tools.bench.catalog --out docs/benchmarks.md"
    for flag, value, default in (("--files", args.files, 20), ("--seconds", f"{args.seconds:g}", "30"),
                                 ("--workers", args.workers, 2), ("--model", args.model, "full")):
        cmd += f" {flag} {value}" if value != default else ""
    write_section(args.out, "catalog", f"Catalog: `spleeter-ext catalog` (Beam, {args.workers} local workers) vs "
                                       "`separate`", body, cmd, alias="make bench-catalog")
    print(body, flush=True)


if __name__ == "__main__":
    main()
