"""Shared fixtures: generated audio and a checkpoint written by stock ``spleeter train``.

Nothing here is downloaded: audio comes from the project's numpy synthesiser, and the Spleeter
checkpoint is trained for a few steps by stock Spleeter 2.4.2 (installed as a dependency) reading
audio through our PyAV adapter, so no ffmpeg binary is involved.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


def cli_path() -> str:
    exe = VENV_BIN / "spleeter-ext"
    assert exe.exists(), f"console script missing at {exe}: run `make install`"
    return str(exe)


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Run the installed console script; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=timeout)


@pytest.fixture(scope="session")
def stock_model(tmp_path_factory):
    """A 3-stem Spleeter-format checkpoint written by stock ``spleeter train`` (small U-Net, 4 steps).

    Returns a dict with ``config`` (path), ``model_dir`` and ``data`` (root with the tracks).
    """
    root = tmp_path_factory.mktemp("stock")
    instruments = ["vocals", "drums", "bass"]
    config = train_stock_model(root, instruments, seconds=6.0, chunk_duration=3.0, frame_length=1024, frame_step=256,
                               T=64, F=256)
    return {"config": config, "model_dir": root / "model", "data": root, "instruments": instruments}


def train_stock_model(root: Path, instruments, seconds: float, chunk_duration: float, **geometry) -> Path:
    """Train a small U-Net (filters 8..64) for 4 steps with stock ``spleeter train`` on 2 generated tracks in
    ``root``; returns the config path (the checkpoint is in ``root/model``)."""
    from tools import stock

    stock.write_training_set(root, instruments, n_tracks=2, seconds=seconds)
    config = stock.write_config(root / "config.json", root / "model", instruments,
                                conv_n_filters=[8, 16, 16, 32, 32, 64], steps=4, batch_size=2,
                                chunk_duration=chunk_duration, **geometry)
    try:
        stock.train(config, root)
    except subprocess.CalledProcessError as exc:  # show stock Spleeter's own output
        raise AssertionError(f"stock spleeter train failed:\n{exc.stdout[-3000:]}\n{exc.stderr[-3000:]}")
    assert (root / "model" / "checkpoint").is_file()
    return config


@pytest.fixture(scope="session")
def music():
    """A 7 s music-like stereo mixture at 44.1 kHz and its four stems."""
    from spleeter_ext.data.synth import render_track

    stems = render_track(7.0, sample_rate=44100, seed=11)
    return sum(stems.values()).astype(np.float32), stems


def write_wav(path, waveform, sample_rate=44100, subtype="FLOAT"):
    import soundfile as sf

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), waveform, sample_rate, subtype=subtype)
    return Path(path)


def passthrough_config(path, n_fft=1024, hop=256, T=64, instruments=("vocals", "accompaniment"), **extra):
    """A config whose model passes the mixture to the first instrument (mask 1), all bins kept."""
    cfg = {"instrument_list": list(instruments), "frame_length": n_fft, "frame_step": hop, "T": T,
           "F": n_fft // 2 + 1, "mask_extension": "average", "model": {"type": "passthrough_2d"}}
    cfg.update(extra)
    Path(path).write_text(json.dumps(cfg))
    return Path(path)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A tiny MUSDB-format set from the numpy engine: 3 train (1 of them validation) + 2 test tracks of 6 s."""
    from spleeter_ext.data.make_dataset import make_dataset

    return make_dataset(tmp_path_factory.mktemp("synth") / "data", 3, 2, 6.0, seed=0, engine="numpy")


def tiny_training_config(path, model, params, steps=8, save_every=4, **extra):
    """A training config small enough for a few seconds per step on this CPU."""
    cfg = {"instrument_list": ["vocals", "drums", "bass", "other"], "frame_length": 512, "frame_step": 128,
           "T": 64, "F": 128, "segment_seconds": 0.4, "batch_size": 2, "learning_rate": 1e-3,
           "train_max_steps": steps, "save_checkpoints_steps": save_every, "save_summary_steps": 1,
           "validation_tracks": 1, "validation_seconds": 1.0, "random_seed": 1,
           "model": {"type": model, "params": params}}
    cfg.update(extra)
    Path(path).write_text(json.dumps(cfg))
    return Path(path)
