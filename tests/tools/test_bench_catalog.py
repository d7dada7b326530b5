"""The catalog benchmark's measuring parts: per-process peak memory, the per-worker real-time factor and
the cloud estimate built from them (the timing run itself is `make bench-catalog`)."""
import json
import sys

import pytest

from tools.bench.catalog import GIB, cloud_estimate, run_sampled, worker_rtf


def test_peak_memory_of_each_process_of_the_tree(tmp_path):
    child = "import time; x = bytearray(300 << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.8)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    wall, code, _, peaks = run_sampled([sys.executable, "-c", parent], tmp_path, timeout=60)
    assert code == 0 and wall > 0.8
    assert len(peaks) == 2
    big = max(rss for _, rss in peaks.values())
    assert 300 << 20 < big < 600 << 20  # the child holds 300 MiB; the parent holds none of it
    assert min(rss for _, rss in peaks.values()) < 100 << 20


def test_worker_rtf_and_cloud_estimate(tmp_path):
    recs = [{"status": "done", "audio_seconds": 30.0, "wall_seconds": 6.0},
            {"status": "done", "audio_seconds": 30.0, "wall_seconds": 3.0},
            {"status": "failed", "audio_seconds": None, "wall_seconds": 0.1}]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert worker_rtf(tmp_path / "r.jsonl") == (pytest.approx(0.15), 60.0, 2)
    text = cloud_estimate(0.15, 1.5 * GIB, 20.0)
    # 100,000 x 4 min = 6,667 h of audio; x 0.15 = 1,000 worker-hours; 24 h -> 42 workers
    assert "6,667 hours of audio" in text and "**1,000 worker-hours**" in text
    assert "| 24 h | 42 | 11 x 4-vCPU VMs |" in text and "| 6 h | 167 | 42 x 4-vCPU VMs |" in text
    assert "**1.50 GiB**" in text and "n2-standard-4" in text
