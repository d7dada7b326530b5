"""Catalog fixtures: a folder of good and bad inputs, and what ``separate`` makes of them (the reference)."""
import os
from pathlib import Path

import apache_beam  # noqa: F401  (required: `make install` installs the catalog extra; a broken install fails here)
import numpy as np
import pytest
import soundfile as sf

from tests.audio.signals import music, noise
from tests.conftest import run_cli, write_wav

INSTRUMENTS = ("vocals", "drums", "bass", "other")


def write_good(folder: Path, name: str, seconds: float, seed: int) -> Path:
    x = 0.7 * music(seconds) + noise(seconds, amplitude=0.05, seed=seed)
    return write_wav(folder / name, np.roll(x, 997 * seed, axis=0), subtype="PCM_16")


def write_bad(folder: Path) -> dict:
    """Missing, corrupt, truncated and NaN inputs (``separate`` refuses each with one error line)."""
    corrupt = folder / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    data = write_wav(folder / ".full.wav", music(3.0), subtype="PCM_16").read_bytes()
    (folder / ".full.wav").unlink()
    truncated = folder / "truncated.wav"
    truncated.write_bytes(data[: len(data) // 2])  # the header still says 3 s
    x = music(1.0)
    x[5000, 1] = np.nan
    nan = write_wav(folder / "nan.wav", x)  # float wav
    return {"missing": folder / "missing.wav", "corrupt": corrupt, "truncated": truncated, "nan": nan}


@pytest.fixture(scope="package")
def catalog_set(tmp_path_factory):
    """``songs/`` holds two good files and three bad ones (a fourth, missing, is named but absent);
    ``reference/`` holds ``spleeter-ext separate -p demo``'s stems of all of them, ``errors`` its
    ``error:`` lines by input."""
    root = tmp_path_factory.mktemp("catalog")
    songs = root / "songs"
    good = [write_good(songs, "first.wav", 3.0, seed=1), write_good(songs / "sub", "second.flac", 2.0, seed=2)]
    bad = write_bad(songs)
    res = run_cli("separate", "-p", "demo", "-o", root / "reference", *good, *bad.values())
    assert res.returncode == 1, res.stderr
    errors = {}
    for line in res.stderr.splitlines():
        if line.startswith("error: "):
            path = next(str(p) for p in bad.values() if line.startswith(f"error: {p}:"))
            errors[path] = line[len("error: "):]
    assert set(errors) == {str(p) for p in bad.values()}, res.stderr
    return {"root": root, "songs": songs, "good": good, "bad": bad, "reference": root / "reference",
            "errors": errors}


def read_stems(folder: Path, name: str) -> dict:
    return {inst: sf.read(str(folder / name / f"{inst}.wav"), dtype="int16")[0] for inst in INSTRUMENTS}


def assert_same_stems(out: Path, reference: Path, good) -> None:
    """Every good input's stems in ``out`` hold the very samples ``separate`` wrote."""
    for path in good:
        ours, theirs = read_stems(out, Path(path).stem), read_stems(reference, Path(path).stem)
        for inst in INSTRUMENTS:
            assert ours[inst].shape == theirs[inst].shape and len(ours[inst]) > 0, (path, inst)
            assert np.array_equal(ours[inst], theirs[inst]), (path, inst)


def no_leftovers(folder: Path) -> list:
    """Temporary or partial files left in ``folder`` (there should be none)."""
    return [p for p in folder.rglob("*") if p.is_file() and (p.name.startswith(".") or "beam-temp" in str(p))]


def by_input(records) -> dict:
    return {r["input"]: r for r in records}


def mtimes(folder: Path) -> dict:
    return {str(p): os.stat(p).st_mtime_ns for p in folder.rglob("*.wav")}
