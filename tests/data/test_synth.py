"""Synthetic music data: the numpy engine, the realistic engine and the MUSDB18-HQ-style writer.

Music-likeness thresholds (measured over 60 seeds of 8 s before being fixed here, with margins):

* spectral flatness (mean over active 2048-point frames) of every stem < 0.25 (observed <= 0.09),
  white noise ~0.56;
* spectral dynamic range (Welch, 512-point, 30 Hz-16 kHz, max / 5th percentile) of every stem
  < 90 dB (observed <= 64 dB), pure tones > 130 dB: stems are broadband, not a few sinusoids;
* drums: the onset-strength autocorrelation picks the song's tempo (up to a factor 2, +-4 %;
  observed error <= 0.4 %);
* bass: >= 85 % of its energy below 300 Hz (observed >= 96 %);
* vocals: >= 85 % of the energy between 200 Hz and 4 kHz (observed >= 99 %); between phrases
  (from 0.25 s after one, leaving its release and reverb tail, to the next) every 50 ms frame is
  >= 30 dB below the loudest (observed >= 39 dB).
"""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from spleeter_ext.data import make_dataset as md
from spleeter_ext.data import realistic, synth
from spleeter_ext.errors import DatasetError, ParameterError

SR = 44100
SEEDS = (3, 8, 21)


@pytest.fixture(scope="module")
def songs() -> Dict[int, Tuple[synth.SongPlan, Dict[str, np.ndarray]]]:
    """Three 8 s songs (plan and stems), shared by the music-likeness tests."""
    return {seed: (synth.plan_song(8.0, seed), synth.render_track(8.0, SR, seed)) for seed in SEEDS}


# ---------------------------------------------------------------------------------------------
# Analysis helpers
# ---------------------------------------------------------------------------------------------

def _power(x: np.ndarray, nperseg: int = 2048) -> Tuple[np.ndarray, np.ndarray]:
    f, _, spec = signal.stft(x.mean(axis=1), SR, nperseg=nperseg, noverlap=nperseg * 3 // 4)
    return f, np.abs(spec) ** 2


def _flatness(x: np.ndarray) -> float:
    """Mean spectral flatness (geometric / arithmetic mean of the power spectrum) of active frames."""
    _, p = _power(x)
    energy = p.sum(axis=0)
    p = p[1:, energy > energy.max() * 1e-3] + 1e-20
    return float(np.mean(np.exp(np.mean(np.log(p), axis=0)) / np.mean(p, axis=0)))


def _dynamic_range_db(x: np.ndarray) -> float:
    """Long-term spectrum max over its 5th percentile (30 Hz-16 kHz), at museval's 512-tap resolution."""
    f, p = signal.welch(x.mean(axis=1), SR, nperseg=512)
    p = p[(f >= 30) & (f <= 16000)]
    return float(10 * np.log10(p.max() / (np.percentile(p, 5) + 1e-300)))


def _band_fraction(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = _power(x)
    e = p.sum(axis=1)
    return float(e[(f >= lo) & (f < hi)].sum() / e.sum())


def _estimate_tempo(x: np.ndarray) -> float:
    """Tempo (BPM) whose first four beat lags have the highest onset-strength autocorrelation."""
    hop = 512
    _, _, spec = signal.stft(x.mean(axis=1), SR, nperseg=2048, noverlap=2048 - hop)
    logmag = np.log1p(100 * np.abs(spec))
    flux = np.maximum(0.0, np.diff(logmag, axis=1)).sum(axis=0)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1:]
    ac /= ac[0]
    fps = SR / hop
    candidates = np.arange(60.0, 240.0, 0.5)
    usable = len(ac) // 2  # lags with at least half the signal overlapping
    scores = [np.mean([ac[lag] for k in range(1, 5) if (lag := int(round(k * 60 / bpm * fps))) < usable])
              for bpm in candidates]
    return float(candidates[int(np.argmax(scores))])


def _frame_db(x: np.ndarray, frame: float = 0.05) -> np.ndarray:
    n = int(frame * SR)
    mono = x.mean(axis=1)
    frames = mono[: len(mono) // n * n].reshape(-1, n)
    return 20 * np.log10(np.sqrt(np.mean(frames ** 2, axis=1)) + 1e-12)


# ---------------------------------------------------------------------------------------------
# numpy engine: format, determinism, levels
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,rate", [(1.0, 44100), (2.5, 44100), (1.37, 22050)])
def test_shapes_dtypes_and_exact_length(seconds: float, rate: int) -> None:
    stems = synth.render_track(seconds, rate, seed=1)
    assert set(stems) == set(synth.STEMS)
    for name, x in stems.items():
        assert x.dtype == np.float32, name
        assert x.shape == (int(round(seconds * rate)), 2), name
        assert np.all(np.isfinite(x)), name


def test_same_seed_identical_different_seed_different() -> None:
    a = synth.render_track(3.0, SR, seed=7)
    b = synth.render_track(3.0, SR, seed=7)
    c = synth.render_track(3.0, SR, seed=8)
    for name in synth.STEMS:
        assert np.array_equal(a[name], b[name]), name
        assert not np.allclose(a[name], c[name]), name
    assert synth.plan_song(3.0, 7) == synth.plan_song(3.0, 7)
    assert synth.plan_song(3.0, 7) != synth.plan_song(3.0, 8)


def test_mixture_is_exact_sum_and_never_clips(songs) -> None:
    tracks = [synth.render_track(2.0, SR, seed=100 + i) for i in range(5)] + [s for _, s in songs.values()]
    for stems in tracks:
        mixture = synth.mix(stems)
        assert mixture.dtype == np.float32
        assert np.array_equal(mixture, ((stems["vocals"] + stems["drums"]) + stems["bass"]) + stems["other"])
        assert np.abs(mixture).max() <= 0.9
        assert max(np.abs(x).max() for x in stems.values()) <= 0.9


def test_every_stem_is_audible(songs) -> None:
    for seed, (_, stems) in songs.items():
        for name, x in stems.items():
            rms_db = 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
            assert rms_db > -45, (seed, name, rms_db)
            active = np.mean(_frame_db(x) > _frame_db(x).max() - 40)
            assert active > (0.3 if name == "vocals" else 0.8), (seed, name, active)


def test_vocals_are_silent_between_phrases(songs) -> None:
    checked = 0
    for seed, (plan, stems) in songs.items():
        db = _frame_db(stems["vocals"])  # 50 ms frames
        quiet = db < db.max() - 40
        assert quiet.mean() <= 0.7, (seed, quiet.mean())
        gaps = [(a[1], b[0]) for a, b in zip(plan.phrases, plan.phrases[1:])]
        assert min(start - end for end, start in gaps) >= min(plan.beat, 0.45) - 1e-9
        for end, start in gaps:
            # from 0.25 s after a phrase (release and reverb tail) to just before the next one
            lo, hi = int(np.ceil((end + 0.25) / 0.05)), int((start - 0.05) / 0.05)
            if hi <= len(db) and hi > lo:
                assert np.all(db[lo:hi] < db.max() - 30), (seed, end, start)
                checked += 1
    assert checked >= 2


# ---------------------------------------------------------------------------------------------
# numpy engine: music-likeness
# ---------------------------------------------------------------------------------------------

def test_spectral_flatness_well_below_white_noise(songs) -> None:
    white = np.random.default_rng(0).standard_normal((8 * SR, 2))
    assert _flatness(white) > 0.5
    for seed, (_, stems) in songs.items():
        for name, x in stems.items():
            assert _flatness(x) < 0.25, (seed, name, _flatness(x))


def test_stems_are_broadband_not_pure_tones(songs) -> None:
    t = np.arange(8 * SR) / SR
    harmonic = sum(np.sin(2 * np.pi * 110 * k * t) / k for k in range(1, 20))
    assert _dynamic_range_db(np.stack([harmonic, harmonic], axis=1)) > 130
    for seed, (_, stems) in songs.items():
        for name, x in stems.items():
            assert _dynamic_range_db(x.astype(np.float64)) < 90, (seed, name)


def test_drum_onsets_are_periodic_at_the_tempo(songs) -> None:
    for seed, (plan, stems) in songs.items():
        ratio = _estimate_tempo(stems["drums"]) / plan.tempo
        assert min(abs(ratio - k) / k for k in (0.5, 1.0, 2.0)) < 0.04, (seed, plan.tempo, ratio)


def test_bass_energy_is_below_300_hz(songs) -> None:
    for seed, (_, stems) in songs.items():
        assert _band_fraction(stems["bass"], 0, 300) >= 0.85, seed


def test_vocal_energy_is_between_200_hz_and_4_khz(songs) -> None:
    for seed, (_, stems) in songs.items():
        assert _band_fraction(stems["vocals"], 200, 4000) >= 0.85, seed


def test_plan_is_musical() -> None:
    for seed in range(10):
        plan = synth.plan_song(12.0, seed)
        assert 80 <= plan.tempo <= 160
        scale = {(plan.key + s) % 12 for s in synth.SCALES[plan.scale]}
        assert all(set(c.pitch_classes) <= scale for c in plan.chords), seed
        assert all(plan.chords[i].onset + plan.chords[i].duration == pytest.approx(plan.chords[i + 1].onset)
                   for i in range(len(plan.chords) - 1))
        lo, hi = synth.VOCAL_RANGE
        assert all(lo <= s.pitch <= hi and s.vowel in synth.VOWELS for s in plan.melody), seed
        assert all(s.pitch % 12 in scale for s in plan.melody), seed
        assert all(24 <= n.pitch <= 52 for n in plan.bass), seed
        assert {h.instrument for h in plan.drums} >= {"kick", "snare"}
        assert plan.chords[-1].onset + plan.chords[-1].duration >= 12.0


def test_invalid_arguments_raise_parameter_error() -> None:
    for kwargs in ({"seconds": 0.0}, {"seconds": float("nan")}, {"seconds": 2.0, "seed": -1},
                   {"seconds": 2.0, "sample_rate": 100}):
        with pytest.raises(ParameterError):
            synth.render_track(**kwargs)
    with pytest.raises(ParameterError):
        synth.plan_song(2.0, 0, vocal_range=(60, 62))


# ---------------------------------------------------------------------------------------------
# make_dataset: MUSDB18-HQ layout, exactness, resume
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return md.make_dataset(tmp_path_factory.mktemp("synth") / "musdb", n_train=4, n_test=1, seconds=2.0, seed=5)


def test_dataset_loads_in_musdb_with_exact_mixtures(dataset: Path) -> None:
    import musdb

    db = musdb.DB(root=str(dataset), is_wav=True, subsets="train")
    assert [t.name for t in db] == [md.track_name(5, i) for i in range(1, 5)]
    for t in db.tracks[:2]:  # musdb decodes every file with an ffmpeg subprocess: two tracks suffice
        mixture = t.audio
        assert t.rate == SR and mixture.shape == (2 * SR, 2)
        sources = {name: t.sources[name].audio for name in synth.STEMS}
        assert np.array_equal(mixture, sum(sources.values())), t.name  # exact, not approximate
        assert np.abs(mixture).max() <= 0.9 + 4 / 32768
        assert all(np.abs(x).max() > 0.01 for x in sources.values()), t.name
    test = musdb.DB(root=str(dataset), is_wav=True, subsets="test")
    assert [t.name for t in test] == [md.track_name(5, 5)]
    for name in md.FILES:
        info = sf.info(str(dataset / "test" / md.track_name(5, 5) / f"{name}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "PCM_16")


def test_dataset_meta_and_validation_split(dataset: Path) -> None:
    meta = md.read_meta(dataset)
    assert meta["engine"] == "numpy" and meta["seed"] == 5 and meta["seconds"] == 2.0 and meta["complete"]
    train = sorted(p.name for p in (dataset / "train").iterdir())
    assert md.validation_tracks(dataset) == [train[-1]]  # last ~15 % of 4 train tracks
    assert [t["name"] for t in meta["tracks"]] == train + [md.track_name(5, 5)]
    assert all(isinstance(t["tempo"], float) for t in meta["tracks"])
    assert not (dataset / ".incomplete").exists()


def test_dataset_resumes_and_regenerates_identically(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(dataset, root)
    victim = root / "train" / md.track_name(5, 2)
    reference = sf.read(str(victim / "mixture.wav"), dtype="int16")[0]
    shutil.rmtree(victim)
    (root / "train" / md.track_name(5, 3) / "bass.wav").unlink()  # an incomplete track is redone
    (root / ".incomplete" / "stale.123").mkdir(parents=True)  # leftovers of an interrupted run
    keep = root / "train" / md.track_name(5, 1) / "mixture.wav"
    before = keep.stat().st_mtime_ns
    md.make_dataset(root, n_train=4, n_test=1, seconds=2.0, seed=5)
    assert np.array_equal(sf.read(str(victim / "mixture.wav"), dtype="int16")[0], reference)
    assert (root / "train" / md.track_name(5, 3) / "bass.wav").is_file()
    assert keep.stat().st_mtime_ns == before  # finished tracks are skipped
    assert not (root / ".incomplete").exists()


def test_dataset_parallel_jobs_match_serial(dataset: Path, tmp_path: Path) -> None:
    root = md.make_dataset(tmp_path / "par", n_train=4, n_test=1, seconds=2.0, seed=5, jobs=2)
    for subset in ("train", "test"):
        for folder in (dataset / subset).iterdir():
            for name in md.FILES:
                a = (folder / f"{name}.wav").read_bytes()
                b = (root / subset / folder.name / f"{name}.wav").read_bytes()
                assert a == b, (folder.name, name)


def test_dataset_refuses_other_settings_and_foreign_folders(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="seed=5"):
        md.make_dataset(dataset, n_train=4, n_test=1, seconds=2.0, seed=6)
    foreign = tmp_path / "foreign"
    (foreign / "train" / "Some Song").mkdir(parents=True)
    with pytest.raises(DatasetError, match="meta.json"):
        md.make_dataset(foreign, n_train=1, n_test=0, seconds=1.0)
    for kwargs in ({"n_train": -1}, {"n_train": 0, "n_test": 0}, {"engine": "fm"}, {"jobs": 0}):
        args = {"n_train": 1, "n_test": 0, "seconds": 1.0, **kwargs}
        with pytest.raises(ParameterError):
            md.make_dataset(tmp_path / "bad", **args)


def test_track_names_and_seeds_are_deterministic() -> None:
    assert md.track_name(0, 1) == md.track_name(0, 1)
    assert md.track_name(0, 1).startswith("Synth 0001 - ")
    assert md.track_seed(0, 1) != md.track_seed(0, 2) != md.track_seed(1, 2)
    assert len({md.track_name(0, i) for i in range(1, 50)}) == 49


# ---------------------------------------------------------------------------------------------
# realistic engine
# ---------------------------------------------------------------------------------------------

def test_midi_round_trip(tmp_path: Path) -> None:
    midi = realistic.MidiFile(192, [
        [(0, b"\xff\x51\x03\x07\xa1\x20")],
        [(0, b"\xff\x03\x04Bass"), (0, bytes([0xC1, 33])), (0, bytes([0x91, 40, 100])),
         (200, bytes([0x81, 40, 0])), (70000, bytes([0x91, 43, 90])), (70096, bytes([0x91, 43, 0]))],
    ])
    realistic.write_midi(tmp_path / "a.mid", midi)
    back = realistic.read_midi(tmp_path / "a.mid")
    assert back.division == 192
    assert [e for e in back.tracks[1] if e[1][:2] != b"\xff\x2f"] == midi.tracks[1]
    assert realistic._track_name(back.tracks[1]) == "Bass"


def test_singing_score_matches_the_melody() -> None:
    plan = synth.plan_song(6.0, 4, vocal_range=(48, 67))
    xml = realistic._singing_xml(plan.melody)
    root = ET.fromstring(xml.split("\n", 2)[2])  # without the XML declaration and DOCTYPE
    durations = [float(e.get("SECONDS")) for e in root if e.tag in ("DURATION", "REST")]
    assert len(root.findall("DURATION")) == len(plan.melody)
    end = plan.melody[-1].onset + plan.melody[-1].duration
    assert sum(durations) == pytest.approx(end, abs=1e-3)


def test_missing_debian_package_is_a_one_line_dataset_error(monkeypatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(realistic.shutil, "which", lambda name: None if name == "fluidsynth" else real_which(name))
    with pytest.raises(DatasetError) as info:
        realistic.check_dependencies()
    message = str(info.value)
    assert "fluidsynth" in message and "sudo make deb" in message and "\n" not in message


@pytest.mark.slow
def test_realistic_engine_renders_a_track(tmp_path: Path) -> None:
    realistic.check_dependencies()  # `make deb` installs them; a missing one fails with its package name
    stems = realistic.render_track(8.0, SR, seed=2)
    assert set(stems) == set(synth.STEMS)
    for name, x in stems.items():
        assert x.dtype == np.float32 and x.shape == (8 * SR, 2), name
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 10 ** (-45 / 20), name
    mixture = synth.mix(stems)
    assert np.abs(mixture).max() <= 0.9
    again = realistic.render_track(8.0, SR, seed=2)
    assert all(np.array_equal(stems[k], again[k]) for k in synth.STEMS)

    import musdb

    root = md.make_dataset(tmp_path / "real", n_train=1, n_test=0, seconds=8.0, seed=2, engine="realistic")
    (t,) = musdb.DB(root=str(root), is_wav=True, subsets="train")
    assert np.array_equal(t.audio, sum(t.sources[k].audio for k in synth.STEMS))
    assert all(np.abs(t.sources[k].audio).max() > 0.01 for k in synth.STEMS)
    assert json.loads((root / "meta.json").read_text())["engine"] == "realistic"


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["no voice", "singing fails"])
def test_realistic_engine_falls_back_to_formant_vocals(monkeypatch, failure: str) -> None:
    realistic.check_dependencies()  # `make deb` installs them; a missing one fails with its package name
    if failure == "no voice":  # the once-per-process probe found that festival cannot sing
        monkeypatch.setattr(realistic, "festival_can_sing", lambda: False)
    else:  # festival can sing in general but fails on this song

        def broken(*args, **kwargs):
            raise DatasetError("festival singing failed (simulated)")

        monkeypatch.setattr(realistic, "festival_can_sing", lambda: True)
        monkeypatch.setattr(realistic, "_finish_singing", broken)
    stems = realistic.render_track(4.0, SR, seed=3)
    assert all(np.abs(stems[k]).max() > 0.01 for k in synth.STEMS)
    formant = synth.render_stem(synth.plan_song(4.0, 3, vocal_range=realistic._VOCAL_RANGE), "vocals").mean(axis=1)
    assert np.corrcoef(stems["vocals"].mean(axis=1), formant)[0, 1] > 0.9
