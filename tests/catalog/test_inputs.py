"""Catalog inputs: folders, globs and manifests expanded to audio paths; bad manifests give error items."""
import json

from spleeter_ext.catalog.inputs import expand


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return str(path)


def paths(items):
    assert all(error is None for _, error in items), items
    return [p for p, _ in items]


def test_folder_keeps_audio_files_and_skips_hidden_files_and_the_output_folder(tmp_path):
    lib = tmp_path / "lib"
    keep = [touch(lib / "a.wav"), touch(lib / "deep" / "b.MP3"), touch(lib / "c.stem.mp4")]
    touch(lib / "cover.jpg")
    touch(lib / ".a.wav.part-1234")
    touch(lib / "out" / "a" / "vocals.wav")  # stems of an earlier run inside the input folder
    found = paths(list(expand(str(lib), exclude=str(lib / "out"))))
    assert found == sorted(keep)
    assert paths(list(expand(str(lib) + "/"))) == sorted(keep + [str(lib / "out" / "a" / "vocals.wav")])


def test_globs_and_files(tmp_path, monkeypatch):
    a, b = touch(tmp_path / "x" / "a.wav"), touch(tmp_path / "y" / "b.wav")
    touch(tmp_path / "x" / "notes.txt")
    assert paths(list(expand(str(tmp_path / "*" / "*")))) == [a, b]
    monkeypatch.chdir(tmp_path)
    assert paths(list(expand("x/a.wav"))) == [a]  # made absolute
    assert paths(list(expand("x/missing.wav"))) == [str(tmp_path / "x" / "missing.wav")]  # fails later, as in separate
    [(what, error)] = list(expand(str(tmp_path / "*.flac")))
    assert what == str(tmp_path / "*.flac") and "no audio file found" in error


def test_manifests_of_lines_csv_and_jsonl(tmp_path):
    a, b = touch(tmp_path / "m" / "a.wav"), touch(tmp_path / "elsewhere" / "b.wav")
    (tmp_path / "m" / "list.txt").write_text(f"# my catalog\na.wav\n\n  {b}  \n")
    assert paths(list(expand(str(tmp_path / "m" / "list.txt")))) == [a, b]
    (tmp_path / "m" / "list.csv").write_text(f"\ufeffid,file\n1,a.wav\n2,{b}\n")
    assert paths(list(expand(str(tmp_path / "m" / "list.csv"), column="file"))) == [a, b]
    [(what, error)] = list(expand(str(tmp_path / "m" / "list.csv")))
    assert what.endswith("list.csv") and "no 'path' column (columns: id, file)" in error
    lines = [json.dumps({"path": "a.wav", "artist": "x"}), "", "not json", json.dumps({"file": b})]
    (tmp_path / "m" / "list.jsonl").write_text("\n".join(lines) + "\n")
    items = list(expand(str(tmp_path / "m" / "list.jsonl")))
    assert items[0] == (a, None)
    assert [w.rsplit(":", 1)[1] for w, e in items[1:]] == ["3", "4"]
    assert all("line" in e and "'path'" in e for _, e in items[1:])
    [(what, error)] = list(expand(str(tmp_path / "missing.txt")))
    assert error.endswith("manifest not found; check the path")
