"""``spleeter-ext demo``: separate a real 4-stem example offline with the bundled model, write the stems and a
spectrogram picture, and score each stem against the true one.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

import numpy as np

from .errors import AudioError
from .log import logger

EXAMPLE_NAME = "The Easton Ellises - Falcon 69.stem.mp4"


def example_path() -> Path:
    """The 6-second excerpt of "The Easton Ellises - Falcon 69" (a MUSDB18-style ``.stem.mp4`` with its true
    stems) shipped inside the installed ``stempeg`` package; read with our PyAV reader, since stempeg itself
    insists on an ffmpeg binary."""
    spec = importlib.util.find_spec("stempeg")
    if spec is None or spec.origin is None:
        raise AudioError("stempeg is not installed, so its example excerpt is missing; run `make install`")
    path = Path(spec.origin).parent / "data" / EXAMPLE_NAME
    if not path.is_file():
        raise AudioError(f"{path}: the stempeg package does not ship its example excerpt; reinstall stempeg")
    return path


@dataclass
class DemoResult:
    output: Path
    mixture: Path
    stems: Dict[str, str]
    picture: Path
    sdr: Dict[str, float] = field(default_factory=dict)
    usdr: Dict[str, float] = field(default_factory=dict)
    mixture_sdr: Dict[str, float] = field(default_factory=dict)


def spectrogram_figure(mixture: np.ndarray, estimates: Dict[str, np.ndarray], references: Dict[str, np.ndarray],
                       sample_rate: int, path: Path, title: str) -> Path:
    """PNG: the mixture's spectrogram on top, then each estimate beside its reference (dB, 0-11 kHz)."""
    import matplotlib

    matplotlib.use("Agg")
    import librosa
    import librosa.display
    import matplotlib.pyplot as plt

    def mag(x):
        return np.abs(librosa.stft(np.ascontiguousarray(x.mean(axis=1)), n_fft=2048, hop_length=512))

    ref = float(mag(mixture).max()) or 1.0  # 0 dB = the loudest bin of the mixture

    def db(x):
        return librosa.amplitude_to_db(mag(x), ref=ref, amin=1e-8, top_db=None)

    names = list(estimates)
    fig, axes = plt.subplots(len(names) + 1, 2, figsize=(12, 2.4 * (len(names) + 1)), constrained_layout=True)
    kwargs = dict(sr=sample_rate, hop_length=512, x_axis="time", y_axis="hz", vmin=-90, vmax=0, cmap="magma")
    gs = axes[0, 0].get_gridspec()
    for ax in axes[0]:
        ax.remove()
    top = fig.add_subplot(gs[0, :])
    img = librosa.display.specshow(db(mixture), ax=top, **kwargs)
    top.set(title=f"mixture: {title}", ylim=(0, 11000), xlabel="")
    for row, name in enumerate(names, start=1):
        for col, (label, x) in enumerate((("estimate", estimates[name]), ("true stem", references[name]))):
            ax = axes[row, col]
            librosa.display.specshow(db(x), ax=ax, **kwargs)
            ax.set(title=f"{name} ({label})", ylim=(0, 11000), xlabel="" if row < len(names) else "time (s)")
    fig.colorbar(img, ax=[top] + list(axes[1:].ravel()), format="%+2.0f dB", shrink=0.6)
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
    return path


def run_demo(output: str = "demo_output", params: str = "demo", separator=None) -> DemoResult:
    """Separate the bundled example; write stems and a spectrogram PNG under ``output``."""
    from .audio import io as audio_io
    from .evaluation.sdr import framewise_sdr, track_sdr
    from .separate.separator import Separator

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    src = example_path()
    streams = audio_io.read_stems(src, sample_rate=44100)
    mixture = streams.pop("mixture")
    mix_path = out / "falcon69_mixture.wav"
    audio_io.write(mix_path, mixture, 44100, sample_format="f32")
    sep = separator or Separator(params)
    result = sep.separate_files([str(mix_path)], str(out), filename_format="falcon69/{instrument}.{codec}",
                                sample_format="f32", progress=False)[0]
    if not result.ok:
        raise AudioError(result.error)
    estimates = {name: audio_io.read(path, sample_rate=44100)[0] for name, path in result.outputs.items()}
    names = [n for n in estimates if n in streams]
    res = DemoResult(out, mix_path, result.outputs, out / "falcon69_spectrograms.png")
    if names:
        ref = np.stack([streams[n][: len(mixture)] for n in names])
        est = np.stack([estimates[n][: len(mixture)] for n in names])
        frames = framewise_sdr(ref, est, silent_source="nan")
        usdr = track_sdr(ref, est)
        floor = framewise_sdr(ref, np.stack([mixture] * len(names)), silent_source="nan")
        for k, n in enumerate(names):
            res.sdr[n] = float(np.nanmedian(frames[k])) if np.isfinite(frames[k]).any() else float("nan")
            res.usdr[n] = float(usdr[k])
            res.mixture_sdr[n] = float(np.nanmedian(floor[k])) if np.isfinite(floor[k]).any() else float("nan")
    spectrogram_figure(mixture, {n: estimates[n] for n in names}, {n: streams[n] for n in names}, 44100,
                       res.picture, src.name.replace(".stem.mp4", ""))
    logger.info("demo: stems in %s, picture %s", out / "falcon69", res.picture)
    return res


def format_result(res: DemoResult, params: str) -> str:
    lines = [f"Separated the excerpt of '{EXAMPLE_NAME[: -len('.stem.mp4')]}' shipped by stempeg (real 4-stem "
             f"recording) with model '{params}'.",
             f"  mixture:  {res.mixture}"]
    lines += [f"  {name:<8}  {path}" for name, path in res.stems.items()]
    lines.append(f"  picture:  {res.picture}")
    if res.sdr:
        lines.append("SDR against the true stems (dB; cSDR = median over 1 s frames as museval, uSDR = whole excerpt; "
                     "'mixture' = the floor of returning the mixture):")
        lines.append(f"  {'stem':<8} {'cSDR':>7} {'uSDR':>7} {'mixture':>8}")
        for n in res.sdr:
            lines.append(f"  {n:<8} {res.sdr[n]:>7.2f} {res.usdr[n]:>7.2f} {res.mixture_sdr[n]:>8.2f}")
    return "\n".join(lines)
