"""Fixtures of the separation tests: a checkpoint that stock ``spleeter train`` writes for a 16 kHz config."""
import subprocess

import pytest


@pytest.fixture(scope="session")
def stock_model_16k(tmp_path_factory):
    """Stock Spleeter's 16 kHz geometry (frames 4096/1024, F = 1536 bins, up to 16.5 kHz) with a small U-Net
    and T = 64, trained 4 steps by stock ``spleeter train``; 2 stems, like ``spleeter:2stems-16kHz``."""
    from tools import stock

    root = tmp_path_factory.mktemp("stock16k")
    instruments = ["vocals", "accompaniment"]
    stock.write_training_set(root, instruments, n_tracks=2, seconds=3.0)
    config = stock.write_config(root / "config.json", root / "model", instruments, frame_length=4096,
                                frame_step=1024, T=64, F=1536, conv_n_filters=[8, 16, 16, 32, 32, 64], steps=4,
                                batch_size=2, chunk_duration=2.0)
    try:
        stock.train(config, root)
    except subprocess.CalledProcessError as exc:
        raise AssertionError(f"stock spleeter train failed:\n{exc.stdout[-3000:]}\n{exc.stderr[-3000:]}")
    return {"config": config, "model_dir": root / "model", "instruments": instruments}
