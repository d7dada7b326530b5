"""Stock Spleeter 2.4.2 beside spleeter-ext, for the parity tests and ``make bench``: a small training set
and config, ``spleeter train`` and ``spleeter separate`` (audio through our PyAV adapter, no ffmpeg binary).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

ADAPTER = "spleeter_ext.audio.adapter.PyAVAudioAdapter"
SPLEETER_4STEMS_FILTERS = [16, 32, 64, 128, 256, 512]


def spleeter_cli() -> List[str]:
    """The stock ``spleeter`` command of this interpreter's environment."""
    exe = Path(sys.executable).with_name("spleeter")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "spleeter"]


def write_training_set(root: Path, instruments: Sequence[str], n_tracks: int = 3, seconds: float = 8.0,
                       sample_rate: int = 44100, seed: int = 0) -> Path:
    """Write ``n_tracks`` music-like tracks (wav) and Spleeter's ``train.csv``; return the CSV path."""
    import soundfile as sf

    from spleeter_ext.data.synth import render_track

    root = Path(root)
    rows = []
    for t in range(n_tracks):
        stems = render_track(seconds, sample_rate=sample_rate, seed=seed + t)
        names = list(instruments)
        if names == ["vocals", "accompaniment"]:
            stems = {"vocals": stems["vocals"], "accompaniment": stems["drums"] + stems["bass"] + stems["other"]}
        folder = root / f"track{t}"
        folder.mkdir(parents=True, exist_ok=True)
        mix = np.sum([stems[i] for i in names], axis=0)
        sf.write(folder / "mixture.wav", mix, sample_rate, subtype="FLOAT")
        for name in names:
            sf.write(folder / f"{name}.wav", stems[name], sample_rate, subtype="FLOAT")
        rows.append([f"track{t}/mixture.wav"] + [f"track{t}/{n}.wav" for n in names] + [f"{seconds}"])
    csv = root / "train.csv"
    header = ["mix_path"] + [f"{n}_path" for n in instruments] + ["duration"]
    csv.write_text("\n".join(",".join(r) for r in [header] + rows) + "\n")
    return csv


def write_config(path: Path, model_dir: Path, instruments: Sequence[str], train_csv: str = "train.csv",
                 frame_length: int = 4096, frame_step: int = 1024, T: int = 512, F: int = 1024,
                 conv_n_filters: Optional[Sequence[int]] = None, steps: int = 4, batch_size: int = 2,
                 chunk_duration: float = 4.0, activation: str = "ELU", model_type: str = "unet.unet",
                 mask_extension: str = "zeros") -> Path:
    """A Spleeter JSON config (only keys stock Spleeter reads), with an absolute ``model_dir``."""
    cfg = {
        "train_csv": train_csv, "validation_csv": train_csv, "model_dir": str(Path(model_dir).resolve()),
        "mix_name": "mix", "instrument_list": list(instruments), "sample_rate": 44100,
        "frame_length": frame_length, "frame_step": frame_step, "T": T, "F": F, "n_channels": 2,
        "separation_exponent": 2, "mask_extension": mask_extension, "learning_rate": 1e-3,
        "batch_size": batch_size, "training_cache": str(Path(path).parent / "cache" / "train"),
        "validation_cache": str(Path(path).parent / "cache" / "valid"), "train_max_steps": steps,
        "throttle_secs": 1, "random_seed": 3, "save_checkpoints_steps": steps, "save_summary_steps": steps,
        "chunk_duration": chunk_duration, "n_chunks_per_song": 1,
        "model": {"type": model_type, "params": {"conv_activation": activation, "deconv_activation": activation}},
    }
    if conv_n_filters is not None:
        cfg["model"]["params"]["conv_n_filters"] = list(conv_n_filters)
    Path(path).write_text(json.dumps(cfg, indent=2))
    return Path(path)


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def train(config: Path, data_root: Path, timeout: float = 900) -> None:
    """``spleeter train -p config -d data_root -a PyAV`` (raises CalledProcessError with its output)."""
    cmd = spleeter_cli() + ["train", "-p", str(config), "-d", str(data_root), "-a", ADAPTER]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout, env=_env(),
                   cwd=str(Path(config).parent))


def separate_cmd(files: Sequence[str], config: Path, out: Path, adapter: Optional[str] = ADAPTER) -> List[str]:
    """The stock ``spleeter separate`` command line (stock's default ffmpeg adapter with ``adapter=None``)."""
    cmd = spleeter_cli() + ["separate", "-p", str(config), "-o", str(out)] + [str(f) for f in files]
    if adapter:
        cmd += ["-a", adapter]
    return cmd


def separate_arrays(config: Path, waveforms: Dict[str, np.ndarray], mwf: bool = False,
                    timeout: float = 900) -> Dict[str, Dict[str, np.ndarray]]:
    """Stock ``spleeter.separator.Separator(config).separate`` on each waveform, run in a subprocess.

    Stock Spleeter builds tf.estimator graphs, which invalidate Keras layers created earlier in the
    same process, so the comparison runs it apart. Returns ``{name: {instrument: (n, C)}}``.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, **waveforms)
        cmd = [sys.executable, __file__, str(config), str(src), str(dst)] + (["--mwf"] if mwf else [])
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout, env=_env())
        out: Dict[str, Dict[str, np.ndarray]] = {}
        with np.load(dst) as data:
            for key in data.files:
                name, inst = key.split("::", 1)
                out.setdefault(name, {})[inst] = data[key]
        return out


def _main(argv: List[str]) -> None:
    from spleeter.separator import Separator

    config, src, dst = argv[:3]
    sep = Separator(config, MWF="--mwf" in argv, multiprocess=False)
    result = {}
    with np.load(src) as data:
        for name in data.files:
            for inst, wav in sep.separate(data[name]).items():
                result[f"{name}::{inst}"] = wav
    np.savez(dst, **result)


if __name__ == "__main__":
    _main(sys.argv[1:])
