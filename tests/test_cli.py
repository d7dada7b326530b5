"""End-to-end through the installed console script on tiny generated audio."""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import cli_path, passthrough_config, run_cli, write_wav


@pytest.fixture(scope="module")
def pt_config(tmp_path_factory):
    return passthrough_config(tmp_path_factory.mktemp("cfg") / "pt.json")


def _song(path, seconds=2.0, seed=0):
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * 44100), 2)).astype(np.float32)
    return write_wav(path, x, subtype="PCM_16")


def test_batch_goes_on_past_bad_files(pt_config, tmp_path):
    good1 = _song(tmp_path / "good1.wav", seed=1)
    good2 = _song(tmp_path / "good2.wav", seed=2)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(os.urandom(5000))
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    truncated = tmp_path / "truncated.wav"
    data = _song(tmp_path / "full.wav", seconds=4.0).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # header still says 4 s
    missing = tmp_path / "missing.wav"
    files = [good1, missing, empty, corrupt, folder, truncated, good2]
    res = run_cli("separate", "-p", pt_config, "-o", tmp_path / "out", *files)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    for bad in (missing, empty, corrupt, folder, truncated):
        assert sum(str(bad) in line for line in errors) == 1, (bad, errors)
    assert len(errors) == 5
    for good in (good1, good2):
        for inst in ("vocals", "accompaniment"):
            y, _ = sf.read(tmp_path / "out" / good.stem / f"{inst}.wav")
            assert len(y) == 2 * 44100
    for bad in ("truncated", "corrupt", "empty"):  # nothing half-written under a final name
        assert not (tmp_path / "out" / bad).exists() or not any((tmp_path / "out" / bad).iterdir())
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".wav"]
    assert leftovers == []


def test_conflicting_outputs_refused_before_any_work(pt_config, tmp_path):
    a = _song(tmp_path / "a" / "song.wav")
    b = _song(tmp_path / "b" / "song.wav")
    res = run_cli("separate", "-p", pt_config, "-o", tmp_path / "out", a, b)
    assert res.returncode != 0 and "error:" in res.stderr and "{foldername}" in res.stderr
    assert not (tmp_path / "out").exists()
    res = run_cli("separate", "-p", pt_config, "-o", tmp_path / "out", "-f", "{foldername}/{instrument}.{codec}", a, b)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "a" / "vocals.wav").exists() and (tmp_path / "out" / "b" / "vocals.wav").exists()


def test_inputs_are_never_overwritten(pt_config, tmp_path):
    song = _song(tmp_path / "vocals.wav")
    before = song.read_bytes()
    res = run_cli("separate", "-p", pt_config, "-o", tmp_path, "-f", "{instrument}.{codec}", song)
    assert res.returncode != 0 and "overwrite" in res.stderr
    assert song.read_bytes() == before


def test_nan_input_is_refused(pt_config, tmp_path):
    x = np.zeros((44100, 2), np.float32)
    x[1000, 0] = np.nan
    bad = write_wav(tmp_path / "nan.wav", x)
    res = run_cli("separate", "-p", pt_config, "-o", tmp_path / "out", bad)
    assert res.returncode == 1 and "NaN" in res.stderr
    assert not (tmp_path / "out" / "nan" / "vocals.wav").exists()


def test_offset_duration_and_template(pt_config, tmp_path):
    song = _song(tmp_path / "song.wav", seconds=3.0)
    x, _ = sf.read(song, dtype="float32")
    res = run_cli("separate", "-p", pt_config, "-o", tmp_path / "out", "-s", "0.5", "-d", "1.25",
                  "-f", "{foldername}-{filename}-{instrument}.{codec}", "--sample-format", "f32", song)
    assert res.returncode == 0, res.stderr
    y, _ = sf.read(tmp_path / "out" / f"{tmp_path.name}-song-vocals.wav", dtype="float32")
    np.testing.assert_allclose(y, x[22050: 22050 + 55125], atol=1e-5)


def test_killed_run_leaves_no_partial_stem(pt_config, tmp_path):
    """SIGKILL while stems are being written (a partial file exists and the process is alive) leaves no
    file under a final name."""
    song = _song(tmp_path / "long.wav", seconds=120.0)
    out = tmp_path / "out"
    proc = subprocess.Popen([cli_path(), "separate", "-p", str(pt_config), "-o", str(out), "--segment", "2",
                             str(song)], stderr=subprocess.PIPE, text=True)
    partial = []
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not partial:
        partial = list(out.rglob(".*.part-*")) if out.exists() else []
        time.sleep(0.02)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    stderr = proc.communicate()[1]
    assert partial, f"no partial stem appeared within 120 s (exit status {proc.returncode}): {stderr[-2000:]}"
    assert alive, f"the separation ended before it was killed (exit status {proc.returncode}): {stderr[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert all(p.name.startswith(".") and ".wav.part-" in p.name for p in partial), partial
    assert list(out.rglob("*.wav")) == []


def test_unknown_config_key_names_key_and_file(tmp_path, pt_config):
    cfg = json.loads(pt_config.read_text())
    cfg["frame_lenght"] = 1024
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg))
    res = run_cli("separate", "-p", bad, "-o", tmp_path / "o", _song(tmp_path / "s.wav"))
    assert res.returncode != 0
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "frame_lenght" in line and str(bad) in line


def test_unknown_model_type_lists_available(tmp_path, pt_config):
    cfg = json.loads(pt_config.read_text())
    cfg["model"]["type"] = "nope"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg))
    res = run_cli("separate", "-p", bad, "-o", tmp_path / "o", _song(tmp_path / "s.wav"))
    assert res.returncode != 0 and "Unknown model 'nope'. Available:" in res.stderr and "unet.unet" in res.stderr


def test_every_command_shares_verbose_and_one_line_errors(tmp_path):
    """The shared command decorator: each command has --verbose, and a toolkit error is one `error:` line
    with exit status 1 (no traceback)."""
    from typer.testing import CliRunner

    from spleeter_ext.cli import app

    runner = CliRunner()
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert set(names) == {"separate", "catalog", "models", "train", "make-dataset", "evaluate", "export", "demo"}
    for name in names:
        res = runner.invoke(app, [name, "--help"])
        assert res.exit_code == 0 and "--verbose" in res.output, (name, res.output)
    res = runner.invoke(app, ["make-dataset", str(tmp_path / "d"), "--train", "0", "--test", "0", "--verbose"])
    assert res.exit_code == 1 and res.output.splitlines() == [
        "error: n_train=0 and n_test=0 make an empty dataset; ask for at least one track"]
    res = runner.invoke(app, ["export", "-p", "no_such_model", "-o", str(tmp_path / "e")])
    assert res.exit_code == 1 and res.output.startswith("error: no_such_model: not a config file")


def test_make_dataset_defaults_are_the_librarys():
    import inspect

    from spleeter_ext.cli import make_dataset as command
    from spleeter_ext.data.make_dataset import make_dataset

    library = inspect.signature(make_dataset).parameters
    cli = inspect.signature(command).parameters
    assert (library["n_train"].default, library["n_test"].default, library["seconds"].default) == (8, 4, 20.0)
    assert [cli[k].default.default for k in ("train", "test", "seconds")] == [8, 4, 20.0]


def test_python_dash_m_runs_the_same_command_line():
    import sys

    res = subprocess.run([sys.executable, "-m", "spleeter_ext", "make-dataset", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "Usage: spleeter-ext make-dataset" in res.stdout and "[default: 8]" in res.stdout
