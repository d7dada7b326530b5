"""`make demo`'s job: the bundled model separates the real excerpt shipped by stempeg, offline."""
import re

import numpy as np
import soundfile as sf

from spleeter_ext.demo import example_path
from tests.conftest import run_cli


def test_bundled_model_is_small_and_documented():
    from spleeter_ext.config import load_config, model_dir_of

    cfg = load_config("demo")
    folder = model_dir_of(cfg)
    assert (folder / "checkpoint").is_file() and (folder / "MODEL_CARD.md").is_file()
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 15 * 1024 * 1024
    card = (folder / "MODEL_CARD.md").read_text()
    assert "spleeter-ext train" in card and "make-dataset" in card and "IRM" in card


def test_demo_writes_stems_picture_and_scores(tmp_path):
    res = run_cli("demo", "-o", tmp_path / "out", env={"GITHUB_HOST": "http://127.0.0.1:9"})
    assert res.returncode == 0, res.stderr
    n = sf.info(str(tmp_path / "out" / "falcon69_mixture.wav")).frames
    assert abs(n / 44100 - 6.08) < 0.1
    for stem in ("vocals", "drums", "bass", "other"):
        path = tmp_path / "out" / "falcon69" / f"{stem}.wav"
        assert path.as_posix() in res.stdout
        y, sr = sf.read(path)
        assert sr == 44100 and len(y) == n and np.isfinite(y).all() and np.abs(y).max() > 1e-3
    png = tmp_path / "out" / "falcon69_spectrograms.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    rows = re.findall(r"^\s+(vocals|drums|bass|other)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)$", res.stdout, re.M)
    assert len(rows) == 4, res.stdout
    assert example_path().name in res.stdout or "Falcon 69" in res.stdout
