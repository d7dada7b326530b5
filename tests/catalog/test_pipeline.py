"""The catalog on Beam's DirectRunner, in-process and with two worker processes: stems identical to
``separate``'s, one failed record per bad input with ``separate``'s reason, resumable, remote paths."""
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spleeter_ext.catalog import CatalogJob, run_catalog
from tests.catalog.conftest import INSTRUMENTS, assert_same_stems, by_input, mtimes, no_leftovers, write_good
from tests.conftest import run_cli

MULTI = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


def run(specs, out, results=None, **settings):
    job = CatalogJob(params="demo", destination=str(out), instruments=INSTRUMENTS, **settings)
    summary = run_catalog([str(s) for s in specs], job, {"runner": "DirectRunner"}, results=results)
    return summary, by_input(read_records(summary.results))


def read_records(path):
    from spleeter_ext.catalog.storage import read_text_lines

    return [json.loads(line) for line in read_text_lines(str(path)) if line.strip()]


def check_records(records, catalog_set, out, rename=lambda p: str(p), stem_path=None):
    """One record per input: done with its four stems for the good ones, failed with ``separate``'s
    reason for the bad ones."""
    good, bad = catalog_set["good"], catalog_set["bad"]
    assert set(records) == {rename(p) for p in good} | {rename(p) for p in bad.values()}
    for path in good:
        rec = records[rename(path)]
        stems = {inst: (stem_path or (lambda n, i: str(out / n / f"{i}.wav")))(Path(path).stem, inst)
                 for inst in INSTRUMENTS}
        assert rec["status"] == "done" and rec["error"] is None, rec
        assert rec["outputs"] == stems
        assert rec["audio_seconds"] == pytest.approx(3.0 if path.stem == "first" else 2.0, abs=1e-3)
        assert rec["wall_seconds"] > 0
    for path in bad.values():
        rec = records[rename(path)]
        expected = catalog_set["errors"][str(path)].replace(str(path), rename(path))
        assert rec == {"input": rename(path), "status": "failed", "outputs": {}, "audio_seconds": None,
                       "wall_seconds": rec["wall_seconds"], "error": expected}


def test_in_process_matches_separate_and_resumes(catalog_set, tmp_path):
    out = tmp_path / "out"
    summary, records = run([catalog_set["songs"], catalog_set["bad"]["missing"]], out)
    check_records(records, catalog_set, out)
    assert summary.counts == {"done": 2, "failed": 4, "skipped": 0}
    assert_same_stems(out, catalog_set["reference"], catalog_set["good"])
    assert no_leftovers(out) == []

    before = mtimes(out)  # a rerun skips complete stems and retries the failed inputs
    summary, records = run([catalog_set["songs"], catalog_set["bad"]["missing"]], out)
    assert summary.counts == {"done": 0, "failed": 4, "skipped": 2}
    assert {p: r["status"] for p, r in records.items() if r["status"] != "failed"} == {
        str(p): "skipped" for p in catalog_set["good"]}
    assert records[str(catalog_set["good"][0])]["outputs"]["bass"] == str(out / "first" / "bass.wav")
    assert mtimes(out) == before

    summary, _ = run([catalog_set["good"][0]], out, overwrite=True)
    assert summary.counts == {"done": 1, "failed": 0, "skipped": 0}
    assert mtimes(out)[str(out / "first" / "vocals.wav")] > before[str(out / "first" / "vocals.wav")]
    assert_same_stems(out, catalog_set["reference"], catalog_set["good"])


def test_two_worker_processes_from_a_manifest(catalog_set, tmp_path):
    """The CLI with Beam options passed through: two DirectRunner worker processes, a CSV manifest
    with relative and absolute paths."""
    songs, bad = catalog_set["songs"], catalog_set["bad"]
    manifest = tmp_path / "catalog.csv"
    rows = [("1", songs / "first.wav"), ("2", "songs/sub/second.flac")] + [(str(k), p) for k, p in
                                                                           enumerate(bad.values(), 3)]
    manifest.write_text("id,path\n" + "".join(f"{k},{p}\n" for k, p in rows))
    shutil.copytree(songs, tmp_path / "songs")  # the relative row resolves against the manifest's folder
    out = tmp_path / "out"
    res = run_cli("catalog", manifest, "-p", "demo", "-o", out, *MULTI, timeout=900)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "2 done" in res.stdout and "4 failed" in res.stdout
    errors = sorted(line[len("error: "):] for line in res.stderr.splitlines() if line.startswith("error: "))
    assert errors == sorted(catalog_set["errors"].values())
    records = by_input(read_records(out / "catalog-results.jsonl"))
    second = str(tmp_path / "songs" / "sub" / "second.flac")
    check_records(records, catalog_set, out, rename=lambda p: second if p.name == "second.flac" else str(p))
    assert_same_stems(out, catalog_set["reference"], catalog_set["good"])
    assert no_leftovers(out) == []


CRASH = textwrap.dedent("""
    import os, sys
    from spleeter_ext.separate import separator

    real = separator.Separator.separate_files

    def separate_files(self, files, *args, **kwargs):
        if files[0].endswith("crash.wav"):
            os._exit(137)  # as if the machine died
        return real(self, files, *args, **kwargs)

    separator.Separator.separate_files = separate_files
    from spleeter_ext.cli import main

    sys.argv = ["spleeter-ext", "catalog", *sys.argv[1:]]
    main()
""")


def test_rerun_after_a_crash_finishes_only_the_remaining_files(catalog_set, tmp_path):
    songs = tmp_path / "songs"
    for k in range(4):
        write_good(songs, f"song{k}.wav", 1.0, seed=10 + k)
    write_good(songs, "crash.wav", 1.0, seed=20)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", CRASH, str(songs), "-p", "demo", "-o", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 137, res.stderr[-3000:]
    assert not (out / "catalog-results.jsonl").exists()
    complete = {p for p in songs.glob("*.wav") if all((out / p.stem / f"{i}.wav").exists() for i in INSTRUMENTS)}
    (out / "crash").mkdir(parents=True, exist_ok=True)
    (out / "crash" / "vocals.wav").write_bytes(b"half a stem from a killed run")  # one stem, not the set
    before = mtimes(out)

    summary, records = run([songs], out)
    assert summary.counts["failed"] == 0
    assert {p for p, r in records.items() if r["status"] == "skipped"} == {str(p) for p in complete}
    assert {p for p, r in records.items() if r["status"] == "done"} == {str(p) for p in songs.glob("*.wav")} - {
        str(p) for p in complete}
    assert {p: t for p, t in mtimes(out).items() if p in before and "crash" not in p} == {
        p: t for p, t in before.items() if "crash" not in p}
    import soundfile as sf

    for p in songs.glob("*.wav"):
        for inst in INSTRUMENTS:
            assert sf.info(str(out / p.stem / f"{inst}.wav")).frames == 44100


def test_remote_filesystem_inputs_outputs_and_manifest(catalog_set, tmp_path):
    """Inputs, stems and the results manifest on an object store (``fakefs://``, a Beam filesystem on a
    local folder): inputs are copied to scratch, stems uploaded under temporary names and renamed."""
    from tests.catalog.fakefs import FakeFileSystem

    bucket = tmp_path / "bucket"
    FakeFileSystem.root = str(bucket)
    shutil.copytree(catalog_set["songs"], bucket / "in")

    def uri(p):
        return str(p).replace(str(catalog_set["songs"]), "fakefs://in")

    summary, records = run(["fakefs://in", uri(catalog_set["bad"]["missing"])], "fakefs://out")
    check_records(records, catalog_set, None, rename=uri, stem_path=lambda n, i: f"fakefs://out/{n}/{i}.wav")
    assert summary.results == "fakefs://out/catalog-results.jsonl"
    assert_same_stems(bucket / "out", catalog_set["reference"], catalog_set["good"])
    assert no_leftovers(bucket / "out") == []

    summary, _ = run(["fakefs://in"], "fakefs://out")
    assert summary.counts == {"done": 0, "failed": 3, "skipped": 2}


def test_clashing_outputs_fail_both_inputs_and_nothing_is_written(tmp_path):
    a = write_good(tmp_path / "a", "song.wav", 1.0, seed=1)
    b = write_good(tmp_path / "b", "song.wav", 1.0, seed=2)
    out = tmp_path / "out"
    summary, records = run([a, b], out)
    assert summary.counts == {"done": 0, "failed": 2, "skipped": 0}
    assert records[str(a)]["error"] == (f"{a}: output {out / 'song' / 'bass.wav'} would also be written for {b} "
                                        "(bass); add {filename} or {foldername} to the filename format (-f)")
    assert "{foldername}" in records[str(b)]["error"] and str(a) in records[str(b)]["error"]
    assert not (out / "song").exists()

    summary, records = run([a, b], out, filename_format="{foldername}/{instrument}.{codec}")
    assert summary.counts == {"done": 2, "failed": 0, "skipped": 0}
    assert records[str(b)]["outputs"]["vocals"] == str(out / "b" / "vocals.wav")


def test_command_line_errors_stop_before_any_work(tmp_path):
    song = write_good(tmp_path, "song.wav", 1.0, seed=1)
    res = run_cli("catalog", song, "-p", "demo", "-o", tmp_path / "out", "--regoin", "eu")
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("error: unknown option --regoin")
    res = run_cli("catalog", song, "-p", "demo", "-o", tmp_path / "out", "-c", "aiff")
    assert res.returncode == 1 and "error: unknown codec 'aiff'" in res.stderr
    res = run_cli("catalog", song, "-p", "no-such-model", "-o", tmp_path / "out")
    assert res.returncode == 1 and "error: no-such-model: not a config file" in res.stderr
    assert not (tmp_path / "out").exists()
