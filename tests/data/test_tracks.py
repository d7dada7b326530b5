"""Dataset discovery (spleeter_ext.data.tracks): every layout, musdb's order and split, and the errors."""
import json
import logging
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.data.tracks import SourceRef, discover, musdb_validation_tracks
from spleeter_ext.errors import DatasetError, ParameterError
from spleeter_ext.log import logger

SR = 8000
MUSDB = ["vocals", "drums", "bass", "other"]


def write_track(folder: Path, stems, seconds=3.0, ext="wav", sr=SR, mixture="mixture"):
    """A track folder with one short noise file per stem (plus the sum as the mixture)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(folder.name.encode()))
    total = 0
    for stem in stems:
        x = (0.1 * rng.standard_normal((int(seconds * sr), 2))).astype(np.float32)
        sf.write(folder / f"{stem}.{ext}", x, sr)
        total = total + x
    if mixture:
        sf.write(folder / f"{mixture}.{ext}", total, sr)


def write_tree(root: Path, train, test=(), stems=MUSDB, **kwargs):
    for name in train:
        write_track(root / "train" / name, stems, **kwargs)
    for name in test:
        write_track(root / "test" / name, stems, **kwargs)
    return root


@contextmanager
def captured_log():
    """Records of the project logger (which may not propagate to the root logger)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_musdb_wav_tree_matches_musdb_order_and_split(tmp_path):
    valid = musdb_validation_tracks()
    assert len(valid) == 14
    train = ["A Classic Education - NightOwl", valid[3], "zz Last", valid[0], "Aimee Norwich - Child"]
    root = write_tree(tmp_path / "hq", train, test=["Zeno - Signs", "Al James - Schoolboy Facination"], seconds=1.0)
    names = {s: [t.name for t in discover(root, MUSDB, s)] for s in ("train", "valid", "test")}
    assert names == {"train": ["A Classic Education - NightOwl", "Aimee Norwich - Child", "zz Last"],
                     "valid": sorted([valid[0], valid[3]]),
                     "test": ["Al James - Schoolboy Facination", "Zeno - Signs"]}

    import musdb  # imported only here, to compare with the reference implementation

    for subset, split in (("train", "train"), ("valid", "valid"), ("test", None)):
        db = musdb.DB(str(root), is_wav=True, subsets=["test" if subset == "test" else "train"], split=split)
        assert names[subset] == [t.name for t in db.tracks], subset
    assert set(names["valid"]) <= set(valid) and names["valid"]


def test_wav_tree_fields_durations_and_meta_json_split(tmp_path):
    root = write_tree(tmp_path / "synth", ["song_000", "song_001", "song_002"], test=["song_100"], seconds=2.5)
    (root / "meta.json").write_text(json.dumps({"validation": ["song_001", "ghost"]}))  # ghost: ignored
    train = discover(root, MUSDB, "train")
    assert [t.name for t in train] == ["song_000", "song_002"]
    track = train[0]
    assert track.subset == "train" and list(track.sources) == MUSDB
    assert track.sources["vocals"] == SourceRef(str(root / "train" / "song_000" / "vocals.wav"), 0)
    assert track.mixture == SourceRef(str(root / "train" / "song_000" / "mixture.wav"), 0)
    assert track.duration == pytest.approx(2.5, abs=1e-3) and track.sample_rate == SR
    assert [t.name for t in discover(root, MUSDB, "valid")] == ["song_001"]
    assert [t.name for t in discover(root, MUSDB, "test")] == ["song_100"]


def test_synthetic_dataset_of_make_dataset(tmp_path):
    from spleeter_ext.data.make_dataset import make_dataset, validation_tracks

    root = make_dataset(tmp_path / "synth", n_train=3, n_test=1, seconds=1.0, seed=0)
    valid = discover(root, MUSDB, "valid")
    assert [t.name for t in valid] == validation_tracks(root)
    train = discover(root, MUSDB, "train")
    assert len(train) + len(valid) == 3 and not {t.name for t in train} & {t.name for t in valid}
    assert train[0].mixture is not None and train[0].duration == pytest.approx(1.0, abs=1e-3)


def test_declared_fallback_split_logs_info(tmp_path):
    names = [f"t{i:02d}" for i in range(10)]
    root = write_tree(tmp_path / "plain", names, seconds=0.5)
    with captured_log() as records:
        valid = discover(root, MUSDB, "valid", probe=False)
    assert [t.name for t in valid] == ["t08", "t09"]  # last 15 % of 10 (rounded), sorted
    assert [t.name for t in discover(root, MUSDB, "train", probe=False)] == names[:8]
    assert any(r.levelno == logging.INFO and "holding out the last 2 of 10" in r.getMessage() for r in records)


def test_flac_tree_with_custom_instruments_and_lazy_probe(tmp_path):
    stems = ["guitar", "keys", "voice"]
    root = write_tree(tmp_path / "flac", ["b", "a"], test=["c"], stems=stems, ext="flac", seconds=2.0, mixture="mix")
    tracks = discover(root, ["voice", "guitar"], "test", probe=False)
    assert len(tracks) == 1 and list(tracks[0].sources) == ["voice", "guitar"]
    assert tracks[0].sources["guitar"].path.endswith("c/guitar.flac")
    assert tracks[0].mixture.path.endswith("c/mix.flac")
    assert tracks[0]._duration is None  # nothing probed yet
    assert tracks[0].duration == pytest.approx(2.0, abs=1e-3)


def test_derived_accompaniment_target(tmp_path):
    root = write_tree(tmp_path / "hq", ["x", "y"], seconds=0.5)
    track = discover(root, ["vocals", "accompaniment"], "train", probe=False)[0]
    assert track.derived == {"accompaniment": ("bass", "drums", "other")}
    assert [r.path.rsplit("/", 1)[1] for r in track.refs("accompaniment")] == ["bass.wav", "drums.wav", "other.wav"]
    with pytest.raises(DatasetError, match="no stem 'piano'"):
        track.refs("piano")


def test_spleeter_csv(tmp_path):
    root = write_tree(tmp_path / "data", ["s1", "s2"], seconds=1.0)
    rows = ["mix_path,vocals_path,drums_path,bass_path,other_path,duration"]
    for name, duration in (("s2", 0.75), ("s1", 1.0)):
        rows.append(",".join([f"train/{name}/{s}.wav" for s in ["mixture"] + MUSDB] + [str(duration)]))
    csv = tmp_path / "data" / "train.csv"
    csv.write_text("\n".join(rows) + "\n")
    tracks = discover(root, ["vocals", "drums"], "train", csv="train.csv")  # relative: resolved against root
    assert [t.name for t in tracks] == ["s2", "s1"]  # row order
    assert tracks[0].duration == 0.75 and tracks[0].sample_rate == SR
    assert tracks[0].sources["drums"].path == str(root / "train" / "s2" / "drums.wav")
    assert tracks[0].mixture.path == str(root / "train" / "s2" / "mixture.wav")
    with pytest.raises(DatasetError, match=r"missing column\(s\) guitar_path"):
        discover(root, ["vocals", "guitar"], "train", csv=csv)
    (root / "train" / "s1" / "drums.wav").unlink()
    with pytest.raises(DatasetError, match=r"line 3 \(track 's1'\): missing stem file .*s1/drums.wav"):
        discover(root, ["vocals", "drums"], "train", csv=csv)
    with pytest.raises(DatasetError, match="no such CSV"):
        discover(root, ["vocals"], "train", csv="nope.csv")


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(DatasetError, match="no_such_dir: no such dataset folder"):
        discover(tmp_path / "no_such_dir", MUSDB)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no tracks found"):
        discover(tmp_path / "empty", MUSDB)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="no train/ or test/ folder"):
        discover(tmp_path / "flat", MUSDB)
    root = write_tree(tmp_path / "broken", ["good"], test=["good", "nobass"], seconds=0.5)
    (root / "test" / "nobass" / "bass.wav").unlink()
    with pytest.raises(DatasetError, match=r"track 'nobass': missing stem file .*test/nobass/bass.wav"):
        discover(root, MUSDB, "test")
    with pytest.raises(DatasetError, match="'valid' split is empty"):
        discover(write_tree(tmp_path / "one", ["solo"], seconds=0.5), MUSDB, "valid")
    with pytest.raises(ParameterError):
        discover(root, MUSDB, "validation")


def test_corrupt_file_is_named(tmp_path):
    root = write_tree(tmp_path / "bad", ["fine"], test=["fine", "garbled"], seconds=0.5)
    bad = root / "test" / "garbled" / "drums.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    tracks = discover(root, MUSDB, "test", probe=False)  # lazy: nothing read yet
    with pytest.raises(DatasetError, match=r"track 'garbled': cannot read .*garbled/drums.wav"):
        for track in tracks:
            _ = track.duration
    with pytest.raises(DatasetError, match="garbled/drums.wav"):
        discover(root, MUSDB, "test")


def test_discovery_does_not_import_musdb(tmp_path):
    root = write_tree(tmp_path / "hq", ["a", "b"], seconds=0.5)
    code = ("import sys; from spleeter_ext.data.tracks import discover; "
            f"assert len(discover({str(root)!r}, ['vocals'], 'train')) == 1; "
            "assert 'musdb' not in sys.modules and 'stempeg' not in sys.modules, 'musdb imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def write_stem_mp4(path: Path, seconds: float, sr: int = 44100, seed: int = 0) -> np.ndarray:
    """A MUSDB-style stem file (5 stereo AAC streams: mixture, drums, bass, other, vocals: sines of
    220, 330, 440 and 660 Hz); returns the sources ``(samples, channels, 4)`` in stream order."""
    import av

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    srcs = np.stack([np.stack([0.2 * np.sin(2 * np.pi * f * t)] * 2, axis=1) for f in (220, 330, 440, 660)],
                    axis=-1).astype(np.float32)
    srcs += (0.01 * rng.standard_normal(srcs.shape)).astype(np.float32)
    streams_audio = [srcs.sum(axis=-1)] + [srcs[..., i] for i in range(4)]
    with av.open(str(path), "w", format="mp4") as container:
        streams = []
        for _ in streams_audio:
            stream = container.add_stream("aac", rate=sr)
            stream.layout = "stereo"
            streams.append(stream)
        for stream, audio in zip(streams, streams_audio):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio.T), format="fltp", layout="stereo")
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return srcs


def test_musdb_stem_mp4_release(tmp_path):
    root = tmp_path / "musdb18"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    write_stem_mp4(root / "train" / "Song B.stem.mp4", 2.0)
    write_stem_mp4(root / "train" / "Song A.stem.mp4", 2.0, seed=1)
    write_stem_mp4(root / "test" / "Song T.stem.mp4", 2.0, seed=2)
    (root / "train" / "notes.txt").write_text("not a track")
    tracks = discover(root, ["vocals", "drums", "accompaniment"], "train")
    assert [t.name for t in tracks] == ["Song A"]  # Song B is the declared (15 %) validation split
    track = discover(root, ["vocals", "drums", "accompaniment"], "valid")[0]
    assert track.name == "Song B"
    path = str(root / "train" / "Song B.stem.mp4")
    assert track.sources["vocals"] == SourceRef(path, 4) and track.sources["drums"] == SourceRef(path, 1)
    assert track.mixture == SourceRef(path, 0)
    assert [r.stream for r in track.refs("accompaniment")] == [2, 1, 3]
    assert track.duration == pytest.approx(2.0, abs=0.05) and track.sample_rate == 44100

    from spleeter_ext.audio import io as audio_io

    for stream, freq in ((4, 660), (1, 220)):  # vocals and drums streams: identified by their sine
        x, rate = audio_io.read(path, offset=0.5, duration=1.0, sample_rate=44100, stream=stream)
        assert rate == 44100 and x.shape[1] == 2 and abs(len(x) - 44100) < 2048
        spectrum = np.abs(np.fft.rfft(x[:, 0]))
        assert np.fft.rfftfreq(len(x), 1 / 44100)[np.argmax(spectrum)] == pytest.approx(freq, abs=3)
    with pytest.raises(DatasetError, match="has no stem 'guitar'"):
        discover(root, ["guitar"], "test")

    # the training pipeline reads the right stream of each stem file, by offset
    from spleeter_ext.data.pipeline import ExampleSampler

    sampler = ExampleSampler(discover(root, ["vocals", "drums", "bass"], "train"), ["vocals", "drums", "bass"],
                             44100, 2, 22050, seed=0, cache_bytes=0)
    sources = sampler.example(0).sources
    for i, freq in enumerate((660, 220, 330)):
        spectrum = np.abs(np.fft.rfft(sources[:, 0, i]))
        assert np.fft.rfftfreq(22050, 1 / 44100)[np.argmax(spectrum)] == pytest.approx(freq, abs=3)


def test_discovery_opens_each_file_once(tmp_path, monkeypatch):
    """Probing reads each file's header with one open, the streams of a stem file together."""
    import av

    stems = tmp_path / "musdb18"
    (stems / "train").mkdir(parents=True)
    for name in ("A", "B"):
        write_stem_mp4(stems / "train" / f"{name}.stem.mp4", 1.0)
    (stems / "meta.json").write_text(json.dumps({"validation": []}))
    tree = write_tree(tmp_path / "hq", ["x", "y", "z"], seconds=0.5)
    (tree / "meta.json").write_text(json.dumps({"validation": []}))
    opened = []
    original = av.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return original(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    tracks = discover(stems, ["vocals", "drums", "accompaniment"], "train")
    assert sorted(opened) == sorted(str(stems / "train" / f"{n}.stem.mp4") for n in ("A", "B"))
    assert [t.duration for t in tracks] == [pytest.approx(1.0, abs=0.05)] * 2
    del opened[:]
    tracks = discover(tree, MUSDB, "train")
    assert len(opened) == len(set(opened)) == 3 * 5  # 4 stems and the mixture per track
    assert all(t.duration == pytest.approx(0.5, abs=1e-3) and t.sample_rate == SR for t in tracks)
