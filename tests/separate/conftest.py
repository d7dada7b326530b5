"""Fixtures of the separation tests: a checkpoint that stock ``spleeter train`` writes for a 16 kHz config."""
import pytest

from tests.conftest import train_stock_model


@pytest.fixture(scope="session")
def stock_model_16k(tmp_path_factory):
    """Stock Spleeter's 16 kHz geometry (frames 4096/1024, F = 1536 bins, up to 16.5 kHz) with a small U-Net
    and T = 64, trained 4 steps by stock ``spleeter train``; 2 stems, like ``spleeter:2stems-16kHz``."""
    root = tmp_path_factory.mktemp("stock16k")
    instruments = ["vocals", "accompaniment"]
    config = train_stock_model(root, instruments, seconds=3.0, chunk_duration=2.0, frame_length=4096, frame_step=1024,
                               T=64, F=1536)
    return {"config": config, "model_dir": root / "model", "instruments": instruments}
