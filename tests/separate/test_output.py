"""The output side of separation: a full disk (a real one, a small tmpfs), permissions, an output path below a
regular file and a write error in the middle of a stem each fail their input with one line naming it and the
cause, leave no stem under its final name unless the input's stems are all complete, remove temporary files,
and let the other inputs of the batch be written."""
import errno
import os
import subprocess

import av
import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.errors import AudioError
from spleeter_ext.separate.output import StemSet
from tests.conftest import passthrough_config, run_cli, write_wav

SR = 44100
STEMS = ("vocals", "accompaniment")


@pytest.fixture(scope="module")
def separator(tmp_path_factory):
    from spleeter_ext import Separator

    cfg = passthrough_config(tmp_path_factory.mktemp("pt") / "pt.json")
    return cfg, Separator(str(cfg), segment=1.0)


def _song(path, seconds, seed=0):
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * SR), 2)).astype(np.float32)
    return write_wav(path, x, subtype="PCM_16")


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _assert_complete(out, name, seconds):
    for stem in STEMS:
        assert sf.info(str(out / name / f"{stem}.wav")).frames == int(seconds * SR), (name, stem)


class _FailingOutput:
    """An output container whose ``mux`` fails with EIO after ``after`` packets (a disk error mid-stem)."""

    def __init__(self, real, after):
        self._real, self._left = real, after

    def __getattr__(self, name):
        return getattr(self._real, name)

    def mux(self, packet):
        self._left -= 1
        if self._left < 0:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._real.mux(packet)


@pytest.fixture
def failing_writes(monkeypatch):
    """``fail(marker, after=n, error=None)``: output files whose path contains ``marker`` fail after ``n``
    packets (``error``: their opening raises it instead)."""
    real_open = av.open
    rules = []

    def fake_open(file, mode="r", *args, **kwargs):
        for marker, after, error in rules:
            if mode == "w" and marker in str(file):
                if error is not None:
                    raise error
                return _FailingOutput(real_open(file, mode, *args, **kwargs), after)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(av, "open", fake_open)
    return lambda marker, after=0, error=None: rules.append((marker, after, error))


def test_write_error_mid_stem_fails_that_input_only(separator, tmp_path, failing_writes):
    _, sep = separator
    a, b = _song(tmp_path / "a.wav", 3.0, 1), _song(tmp_path / "b.wav", 2.0, 2)
    failing_writes("/a/.accompaniment", after=5)  # the temporary file of a's second stem breaks after 5 packets
    results = sep.separate_files([str(a), str(b)], str(tmp_path / "out"), progress=False)
    assert not results[0].ok and results[1].ok
    error = results[0].error
    assert "\n" not in error and error.startswith(f"{a}: cannot write its stems: ")
    assert "accompaniment.wav" in error and "Input/output error" in error
    assert _files(tmp_path / "out") == ["b/accompaniment.wav", "b/vocals.wav"]  # a's vocals not kept alone
    _assert_complete(tmp_path / "out", "b", 2.0)


def test_permission_denied_fails_that_input_only(separator, tmp_path, failing_writes):
    """Root writes anywhere, so the refusal is injected there; other users get a real read-only directory."""
    _, sep = separator
    a, b = _song(tmp_path / "a.wav", 1.0, 1), _song(tmp_path / "b.wav", 1.0, 2)
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    if os.geteuid() == 0:
        failing_writes("/a/", error=PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
    else:
        (out / "a").chmod(0o555)
    results = sep.separate_files([str(a), str(b)], str(out), progress=False)
    (out / "a").chmod(0o755)
    assert not results[0].ok and results[1].ok
    assert results[0].error.startswith(f"{a}: cannot write its stems: ") and "Permission denied" in results[0].error
    assert _files(out) == ["b/accompaniment.wav", "b/vocals.wav"]


def test_output_below_a_regular_file(separator, tmp_path):
    cfg, _ = separator
    a, b = _song(tmp_path / "a.wav", 1.0, 1), _song(tmp_path / "b.wav", 1.0, 2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_text("a regular file where a's folder would go")
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "out", a, b)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(a) in errors[0] and f"{tmp_path / 'out' / 'a'} is a file, not a directory" \
        in errors[0]
    assert _files(tmp_path / "out") == ["a", "b/accompaniment.wav", "b/vocals.wav"]
    res = run_cli("separate", "-p", cfg, "-o", tmp_path / "out" / "a" / "deeper", b)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(b) in errors[0] and "is a file, not a directory" in errors[0]


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB file system (tmpfs), mounted for the test: root only."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is tested on a tmpfs mounted for the test, which needs root; the injected "
                    "write failures above cover the same code path")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    assert done.returncode == 0, f"root could not mount a tmpfs: {done.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk(separator, tmp_path, small_disk):
    """4 s of stereo 16-bit stems need 1.4 MB: the disk fills mid-stem; the 1 s input after it fits once the
    first input's temporary files are gone."""
    cfg, _ = separator
    big, small = _song(tmp_path / "big.wav", 4.0, 1), _song(tmp_path / "small.wav", 1.0, 2)
    res = run_cli("separate", "-p", cfg, "-o", small_disk, big, small)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {big}: cannot write its stems: ")
    assert "No space left on device" in errors[0]
    assert _files(small_disk) == ["small/accompaniment.wav", "small/vocals.wav"]
    _assert_complete(small_disk, "small", 1.0)


def test_stem_set_is_all_or_nothing(tmp_path, failing_writes):
    """Finishing fails for the second stem: the first, although complete, is not renamed either."""
    paths = {s: tmp_path / f"{s}.flac" for s in STEMS}
    failing_writes("accompaniment", after=0)
    stems = StemSet("in.wav", paths, SR, SR, 2, "flac", "128k", None, ())
    stems.write(np.zeros((2, 100, 2), np.float32))  # too little for the encoder to emit a packet yet
    with pytest.raises(AudioError, match=r"^in\.wav: cannot write its stems: .*accompaniment\.flac.*Input/output"):
        stems.close()
    assert _files(tmp_path) == []
