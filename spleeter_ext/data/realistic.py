"""Realistic synthetic songs: real sampled instruments and a sung melody.

The ``realistic`` engine of the synthetic dataset renders the song of :func:`synth.plan_song`
(tempo, key, chord progression in sections, melody) with Debian's tools:

* **mma** (Musical MIDI Accompaniment) turns the chord chart into drums, bass and accompaniment
  with a random groove of its standard library (rock, swing, bossa nova, funk, ...), switching
  to a variation of the groove for every other section;
* the MIDI file is split per stem (drums = MIDI channel 10; bass = mma's ``Bass``/``Walk``
  tracks in the bass register, given a random bass program; other = every other track, given a
  random piano/guitar/strings/organ program) and the tempo is set to the plan's exact tempo;
* **fluidsynth** renders each stem with the FluidR3 General MIDI soundfont (drums with a random
  drum kit);
* **festival**'s singing mode (``text2wave -mode singing``) sings the melody from a generated XML
  score with the ``kal_diphone`` voice (Debian package festvox-kallpc16k).  If festival cannot
  sing (no voice installed, or it fails), the formant-synthesis vocals of :mod:`.synth` sing the
  same melody instead, and a warning is logged once per process.

The stems are resampled/trimmed to exactly ``round(seconds * sample_rate)`` stereo float32
samples and balanced with random levels and panning (:func:`synth.balance_levels`), so the
mixture -- their float sum -- peaks at most at 0.9.  Output is deterministic for a seed on a
given installation (mma's randomness is seeded with ``RndSeed``).

Debian packages: ``mma``, ``fluidsynth``, ``fluid-soundfont-gm``, ``festival`` (and
``festvox-kallpc16k`` for the singing voice); ``sudo make deb`` installs them.
"""
from __future__ import annotations

import functools
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
from scipy import signal

from ..errors import DatasetError
from ..log import logger
from . import synth

__all__ = ["check_dependencies", "render_track", "festival_can_sing", "MidiFile", "read_midi",
           "write_midi", "GROOVES"]

SOUNDFONTS: Tuple[str, ...] = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
_PROGRAMS = {"mma": "mma", "fluidsynth": "fluidsynth", "text2wave": "festival"}
_MMA_LIBS = ("/usr/share/mma/lib/stdlib", "/usr/local/share/mma/lib/stdlib")
_TIMEOUT = 300.0

#: 4/4 grooves of mma's standard library that have drums, a bass line and accompaniment.
GROOVES: Tuple[str, ...] = (
    "50sRock", "60sRock", "8Beat", "Ballad", "Ballad128", "BasicRock", "Beguine", "BigBand",
    "BlueGrass", "Blues", "Blues128", "Bolero", "BoneyM", "BossaNova", "Broadway", "BubbleRock",
    "BVFunk", "BWMarch", "Calypso", "ChaCha", "Charleston", "CountryBlues", "CountrySwing",
    "Desert", "Dixie", "DixieMarch", "DSoul", "EasySwing", "Evansish", "FastBlues", "FastSwing",
    "FolkRock", "Foxtrot", "GuitarBallad", "HillCountry", "JazzCombo", "JazzRhumba", "JazzRock",
    "Jive", "LFusion", "LightTango", "Mambo", "March", "MellowJazz", "Merengue", "ModernJazz",
    "PianoBallad", "Polka", "PopBallad", "QuickStep", "R&B", "R&B-Ballad", "Rhumba", "Rock128",
    "RockBallad", "Salsa", "Samba", "Ska", "SlowBlues", "SlowBolero", "SlowBroadway",
    "SlowCountry", "SlowJazz", "SoftRock", "Softshoe", "Son", "Spiritual", "Strut", "Swing",
    "Tango", "Trance", "Twist", "WesternSwing", "Zydeco",
)

# General MIDI programs (0-based) per family of the "other" stem, bass programs, drum kits.
_OTHER_FAMILIES: Dict[str, Tuple[int, ...]] = {
    "piano": (0, 1, 2, 4, 5),
    "guitar": (24, 25, 26, 27, 28),
    "strings": (48, 49, 50, 51),
    "organ": (16, 17, 18, 19),
}
_BASS_PROGRAMS = (32, 33, 34, 35, 36, 38, 39)
_BASS_WEIGHTS = (0.2, 0.3, 0.15, 0.15, 0.05, 0.1, 0.05)
_DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)
_VOCAL_RANGE = (48, 67)  # comfortable for festival's kal_diphone voice (C3..G4)


# --------------------------------------------------------------------------------------------
# Dependencies
# --------------------------------------------------------------------------------------------

def _soundfont() -> Optional[str]:
    return next((p for p in SOUNDFONTS if os.path.isfile(p)), None)


def check_dependencies() -> Dict[str, str]:
    """Paths of ``mma``, ``fluidsynth``, ``text2wave`` and the GM soundfont; raises
    :class:`DatasetError` naming the missing Debian package otherwise."""
    found: Dict[str, str] = {}
    for program, package in _PROGRAMS.items():
        path = shutil.which(program)
        if path is None:
            raise DatasetError(f"realistic data engine: the program '{program}' is missing (Debian package "
                               f"{package}); install it with `sudo make deb`")
        found[program] = path
    soundfont = _soundfont()
    if soundfont is None:
        raise DatasetError(f"realistic data engine: no General MIDI soundfont at {SOUNDFONTS[0]} (Debian "
                           "package fluid-soundfont-gm); install it with `sudo make deb`")
    found["soundfont"] = soundfont
    return found


def _start(cmd: Sequence[str], cwd: Optional[str] = None) -> subprocess.Popen:
    """Start ``cmd`` (mma's Python hashing pinned, so its output is reproducible)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env)


def _wait(proc: subprocess.Popen, what: str) -> str:
    """Wait for ``proc``; return its stderr, raise :class:`DatasetError` if it failed or hung."""
    cmd = " ".join(proc.args)
    try:
        out, err = proc.communicate(timeout=_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise DatasetError(f"realistic data engine: {what} took over {_TIMEOUT:.0f} s ({cmd}); "
                           "check that the program works on its own") from exc
    if proc.returncode != 0:
        detail = (err or out).strip().splitlines()
        last = detail[-1] if detail else f"exit status {proc.returncode}"
        raise DatasetError(f"realistic data engine: {what} failed ({last}); run `{cmd}` to see why")
    return err


def _run(cmd: Sequence[str], what: str, cwd: Optional[str] = None) -> str:
    return _wait(_start(cmd, cwd), what)


# --------------------------------------------------------------------------------------------
# Standard MIDI files (a minimal reader/writer: mido is not a dependency)
# --------------------------------------------------------------------------------------------

@dataclass
class MidiFile:
    """A type-1 standard MIDI file: ``division`` ticks per quarter note and tracks of
    ``(absolute tick, raw event bytes)`` with explicit status bytes (meta events start ``0xFF``)."""

    division: int
    tracks: List[List[Tuple[int, bytes]]] = field(default_factory=list)


def _read_vlq(data: bytes, i: int) -> Tuple[int, int]:
    value = 0
    while True:
        byte = data[i]
        i += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def read_midi(path: Path) -> MidiFile:
    """Parse a standard MIDI file (running status resolved)."""
    data = Path(path).read_bytes()
    if data[:4] != b"MThd":
        raise DatasetError(f"{path}: not a standard MIDI file (no MThd header); regenerate it")
    length, _fmt, _ntracks, division = struct.unpack(">IHHH", data[4:14])
    if division & 0x8000:
        raise DatasetError(f"{path}: SMPTE time division is not supported; use ticks per quarter note")
    midi = MidiFile(division)
    i = 8 + length
    while i + 8 <= len(data):
        chunk, size = data[i:i + 4], struct.unpack(">I", data[i + 4:i + 8])[0]
        body = data[i + 8:i + 8 + size]
        i += 8 + size
        if chunk != b"MTrk":
            continue
        events: List[Tuple[int, bytes]] = []
        j, tick, status = 0, 0, 0
        while j < len(body):
            delta, j = _read_vlq(body, j)
            tick += delta
            byte = body[j]
            if byte == 0xFF:
                n, k = _read_vlq(body, j + 2)
                events.append((tick, body[j:k + n]))
                j = k + n
            elif byte in (0xF0, 0xF7):
                n, k = _read_vlq(body, j + 1)
                events.append((tick, body[j:k + n]))
                j = k + n
            else:
                if byte & 0x80:
                    status = byte
                    j += 1
                n = 1 if status >> 4 in (0xC, 0xD) else 2
                events.append((tick, bytes([status]) + body[j:j + n]))
                j += n
        midi.tracks.append(events)
    return midi


def write_midi(path: Path, midi: MidiFile) -> None:
    """Write ``midi`` as a type-1 standard MIDI file (events sorted by tick, end-of-track added)."""
    chunks = [b"MThd" + struct.pack(">IHHH", 6, 1, len(midi.tracks), midi.division)]
    for events in midi.tracks:
        body = bytearray()
        last = 0
        ordered = sorted((e for e in events if e[1][:2] != b"\xff\x2f"), key=lambda e: e[0])
        for tick, raw in ordered:
            body += _vlq(tick - last) + raw
            last = tick
        end = max([last] + [t for t, raw in events if raw[:2] == b"\xff\x2f"])
        body += _vlq(end - last) + b"\xff\x2f\x00"
        chunks.append(b"MTrk" + struct.pack(">I", len(body)) + bytes(body))
    Path(path).write_bytes(b"".join(chunks))


def _track_name(events: Sequence[Tuple[int, bytes]]) -> str:
    for _, raw in events:
        if raw[:2] == b"\xff\x03":
            _, k = _read_vlq(raw, 2)
            return raw[k:].decode("latin-1")
    return ""


def _notes(events: Sequence[Tuple[int, bytes]]) -> List[int]:
    return [raw[1] for _, raw in events if raw[0] >> 4 == 0x9 and len(raw) == 3 and raw[2] > 0]


def _channels(events: Sequence[Tuple[int, bytes]]) -> set:
    return {raw[0] & 0x0F for _, raw in events if 0x80 <= raw[0] < 0xF0}


# --------------------------------------------------------------------------------------------
# Accompaniment: mma -> per-stem MIDI -> fluidsynth
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _library() -> Dict[str, Tuple[str, Tuple[str, ...]]]:
    """``{groove (lower case): (library file, every groove that file defines)}`` of mma's standard library."""
    pattern = re.compile(r"^\s*DefGroove\s+(\S+)", re.IGNORECASE | re.MULTILINE)
    found: Dict[str, Tuple[str, Tuple[str, ...]]] = {}
    for lib in _MMA_LIBS:
        if not os.path.isdir(lib):
            continue
        for name in sorted(os.listdir(lib)):
            if name.endswith(".mma"):
                names = tuple(pattern.findall(Path(lib, name).read_text(errors="replace")))
                for groove in names:
                    found.setdefault(groove.lower(), (name, names))
    return found


def groove_file(groove: str) -> Optional[str]:
    """The mma library file that defines ``groove`` (its style family), or None."""
    entry = _library().get(groove.lower())
    return entry[0] if entry else None


def _groove_variants(groove: str) -> Tuple[str, ...]:
    """Other grooves defined in ``groove``'s library file (no intros, endings or fills)."""
    entry = _library().get(groove.lower())
    if entry is None:
        return ()
    return tuple(n for n in entry[1]
                 if n.lower() != groove.lower() and not re.search("intro|end|fill", n, re.IGNORECASE))


def first_groove(seed: int, grooves: Sequence[str] = GROOVES) -> str:
    """The groove :func:`render_track` tries first for ``seed`` (it falls back to others only when that
    groove lacks a stem)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return grooves[int(rng.permutation(len(grooves))[0])]


def unseen_grooves(seeds: Sequence[int]) -> Tuple[str, ...]:
    """Grooves of :data:`GROOVES` from library files (style families) that none of the tracks rendered
    with ``seeds`` starts from: a test set drawn from them plays other styles than those tracks."""
    used = {groove_file(first_groove(int(s))) for s in seeds}
    return tuple(g for g in GROOVES if groove_file(g) not in used)


def _chord_chart(plan: synth.SongPlan, n_bars: int) -> List[str]:
    """One mma line per bar: four beat slots, ``/`` repeating the previous chord."""
    lines = []
    previous = None
    for b in range(n_bars):
        slots = []
        for beat in range(4):
            chord = synth.chord_at(plan.chords, (4 * b + beat) * plan.beat + 1e-6).name
            slots.append("/" if chord == previous and beat > 0 else chord)
            previous = chord
        lines.append(f"{b + 1} " + " ".join(slots))
    return lines


def _mma_song(plan: synth.SongPlan, groove: str, variant: Optional[str], n_bars: int, seed: int) -> str:
    chart = _chord_chart(plan, n_bars)
    lines = ["// generated by spleeter_ext.data.realistic", f"RndSeed {seed}",
             f"Tempo {max(1, round(plan.tempo))}"]
    for b, line in enumerate(chart):
        if b % plan.section_bars == 0:
            section = b // plan.section_bars
            lines.append(f"Groove {variant if variant and section % 2 == 1 else groove}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _split_stems(midi: MidiFile, tempo: float, rng: np.random.Generator) -> Dict[str, MidiFile]:
    """Split mma's output into drums/bass/other MIDI files with random programs and exact tempo."""
    conductor = [(t, raw) for t, raw in midi.tracks[0] if raw[:2] != b"\xff\x51"]
    conductor.append((0, b"\xff\x51\x03" + int(round(60e6 / tempo)).to_bytes(3, "big")))
    out = {name: MidiFile(midi.division, [list(conductor)]) for name in ("drums", "bass", "other")}
    bass_program = int(rng.choice(_BASS_PROGRAMS, p=_BASS_WEIGHTS))
    kit = int(rng.choice(_DRUM_KITS))
    families = list(_OTHER_FAMILIES)
    for events in midi.tracks[1:]:
        notes = _notes(events)
        if not notes:
            continue
        channels = _channels(events)
        name = _track_name(events).lower()
        if 9 in channels:
            stem, program = "drums", kit
        elif re.match(r"(bass|walk)(-|$)", name) and float(np.median(notes)) < 48:
            stem, program = "bass", bass_program
        else:
            family = _OTHER_FAMILIES[families[int(rng.integers(len(families)))]]
            stem, program = "other", int(family[int(rng.integers(len(family)))])
        # program changes first: write_midi's stable sort keeps them before the notes at tick 0
        kept = [(t, raw) for t, raw in events if raw[:2] != b"\xff\x51" and raw[0] >> 4 != 0xC]
        out[stem].tracks.append([(0, bytes([0xC0 | ch, program])) for ch in sorted(channels)] + kept)
    return out


def _fluidsynth(midi_path: Path, wav_path: Path, sample_rate: int, soundfont: str) -> subprocess.Popen:
    """Start rendering ``midi_path`` to a float WAV (read it with :func:`_read_wav` once done)."""
    return _start(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-O", "float", "-T", "wav",
                   "-F", str(wav_path), soundfont, str(midi_path)])


def _read_wav(path: Path, sample_rate: int) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return _resample(audio, rate, sample_rate) if rate != sample_rate else audio


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    g = math.gcd(int(rate), int(target))
    return signal.resample_poly(x, target // g, rate // g, axis=0)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Stereo, exactly ``n`` samples (trimmed or zero-padded)."""
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    x = x[:n, :2]
    if len(x) < n:
        x = np.concatenate([x, np.zeros((n - len(x), 2))])
    return x


# --------------------------------------------------------------------------------------------
# Vocals: festival singing mode
# --------------------------------------------------------------------------------------------

def _singing_xml(melody: Sequence[synth.Syllable]) -> str:
    """A festival SINGING score: each syllable one word (``FREQ`` in Hz, ``SECONDS``), rests between."""
    lines = ['<?xml version="1.0"?>',
             '<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>',
             '<SINGING BPM="60">']
    t = 0.0
    for s in melody:
        if s.onset - t > 1e-3:
            lines.append(f'<REST SECONDS="{s.onset - t:.4f}"></REST>')
        freq = 440.0 * 2 ** ((s.pitch - 69) / 12)
        lines.append(f'<DURATION SECONDS="{s.duration:.4f}"><PITCH FREQ="{freq:.2f}">{s.word}</PITCH></DURATION>')
        t = s.onset + s.duration
    lines.append("</SINGING>")
    return "\n".join(lines) + "\n"


def _start_singing(melody: Sequence[synth.Syllable], workdir: Path) -> Tuple[subprocess.Popen, Path]:
    xml, wav = workdir / "vocals.xml", workdir / "vocals_festival.wav"
    xml.write_text(_singing_xml(melody))
    return _start(["text2wave", "-mode", "singing", str(xml), "-o", str(wav)]), wav


def _finish_singing(proc: subprocess.Popen, wav: Path) -> Tuple[np.ndarray, int]:
    err = _wait(proc, "festival singing")
    if not wav.is_file() or wav.stat().st_size < 1000:
        raise DatasetError(f"realistic data engine: festival wrote no audio ({err.strip()[-200:]}); "
                           "install a voice with `apt-get install festvox-kallpc16k`")
    audio, rate = sf.read(str(wav), dtype="float64", always_2d=True)
    return audio.mean(axis=1), int(rate)


@functools.lru_cache(maxsize=None)
def festival_can_sing() -> bool:
    """Whether festival's singing mode works here (probed once per process; logs why not)."""
    if shutil.which("text2wave") is None:
        logger.warning("festival is not installed (Debian package festival): the realistic engine's vocals "
                       "fall back to formant synthesis; install it with `sudo make deb`")
        return False
    melody = [synth.Syllable(0.1, 0.5, 57, 1.0, word="love"), synth.Syllable(0.6, 0.5, 60, 1.0, word="you")]
    with tempfile.TemporaryDirectory(prefix="spleeter_ext_festival_") as tmp:
        try:
            audio, _ = _finish_singing(*_start_singing(melody, Path(tmp)))
        except DatasetError as exc:
            logger.warning("festival cannot sing (%s): the realistic engine's vocals fall back to formant "
                           "synthesis; install a voice with `apt-get install festvox-kallpc16k`", exc)
            return False
    if np.abs(audio).max() < 1e-3:
        logger.warning("festival sang silence: the realistic engine's vocals fall back to formant synthesis; "
                       "install a voice with `apt-get install festvox-kallpc16k`")
        return False
    return True


def _gate(x: np.ndarray, sample_rate: int, floor_db: float = -50.0, range_db: float = 12.0) -> np.ndarray:
    """Soft noise gate: silence what stays ``floor_db`` below the peak envelope (festival leaves a
    faint noise floor in its rests), fading over ``range_db``."""
    a = math.exp(-1.0 / (0.02 * sample_rate))
    rectified = np.abs(x)
    # forward and backward smoothing: the gate opens before onsets and closes after releases
    env = np.maximum(signal.lfilter([1 - a], [1, -a], rectified),
                     signal.lfilter([1 - a], [1, -a], rectified[::-1])[::-1])
    level = 20 * np.log10(env / (env.max() + 1e-12) + 1e-12)
    gain = np.clip((level - floor_db) / range_db, 0.0, 1.0)
    gain = signal.lfilter([1 - a], [1, -a], gain)  # no clicks
    return x * gain


def _sung_vocals(mono: np.ndarray, rate: int, sample_rate: int, n: int,
                 rng: np.random.Generator) -> np.ndarray:
    mono = _resample(mono, rate, sample_rate) if rate != sample_rate else mono
    mono = _gate(_fit(mono[:, None], n)[:, 0], sample_rate)
    return synth.reverb(synth.pan(mono, 0.0), sample_rate, rng, rt60=float(rng.uniform(0.4, 1.0)),
                        wet=float(rng.uniform(0.1, 0.25)), predelay=float(rng.uniform(0.01, 0.04)))


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------

def render_track(seconds: float, sample_rate: int = 44100, seed: int = 0, soundfont: Optional[str] = None,
                 grooves: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Render a random song of ``seconds`` with sampled instruments and a sung melody.

    ``soundfont`` (a General MIDI ``.sf2``; default FluidR3) and ``grooves`` (the mma grooves to draw
    from; default :data:`GROOVES`) change the timbres and styles, e.g. for a test set under a shift.

    Returns ``{'vocals', 'drums', 'bass', 'other'}``, each float32 ``(round(seconds *
    sample_rate), 2)``; their sum (:func:`synth.mix`) peaks at most at 0.9.  Raises
    :class:`DatasetError` if a Debian package is missing or a tool fails.
    """
    synth.check_args(seconds, seed, sample_rate)
    tools = check_dependencies()
    if soundfont is not None:
        if not os.path.isfile(soundfont):
            raise DatasetError(f"realistic data engine: soundfont {soundfont} does not exist; install it (e.g. the "
                               "Debian package timgm6mb-soundfont for /usr/share/sounds/sf2/TimGM6mb.sf2)")
        tools["soundfont"] = soundfont
    pool = tuple(grooves) if grooves is not None else GROOVES
    unknown = [g for g in pool if groove_file(g) is None]
    if not pool or unknown:
        raise DatasetError(f"realistic data engine: grooves {unknown or '[]'} are not in mma's library; choose "
                           "from realistic.GROOVES")
    plan = synth.plan_song(seconds, seed, vocal_range=_VOCAL_RANGE)
    rng = np.random.Generator(np.random.PCG64(seed))
    n = int(round(seconds * sample_rate))
    n_bars = int(math.ceil(seconds / plan.bar)) + 1
    grooves = [pool[i] for i in rng.permutation(len(pool))]
    with tempfile.TemporaryDirectory(prefix="spleeter_ext_realistic_") as tmp:
        workdir = Path(tmp)
        parts: Dict[str, MidiFile] = {}
        for attempt, groove in enumerate(grooves[:8]):
            variants = _groove_variants(groove)
            variant = variants[int(rng.integers(len(variants)))] if variants and attempt == 0 else None
            song = workdir / "song.mma"
            song.write_text(_mma_song(plan, groove, variant, n_bars, seed))
            _run(["mma", str(song), "-f", str(workdir / "song.mid")], f"mma (groove {groove})", cwd=tmp)
            parts = _split_stems(read_midi(workdir / "song.mid"), plan.tempo, rng)
            if all(len(part.tracks) > 1 for part in parts.values()):
                logger.debug("seed %d: groove %s%s", seed, groove, f" then {variant}" if variant else "")
                break
            logger.debug("seed %d: groove %s lacks a stem; trying another", seed, groove)
        else:
            raise DatasetError(f"realistic data engine: no mma groove produced drums, bass and accompaniment "
                               f"for seed {seed}; check `mma` and its groove library ({_MMA_LIBS[0]})")
        # fluidsynth renders the three accompaniment stems while festival sings
        jobs: Dict[str, subprocess.Popen] = {}
        singing: Optional[Tuple[subprocess.Popen, Path]] = None
        stems: Dict[str, np.ndarray] = {}
        try:
            for name, part in parts.items():
                write_midi(workdir / f"{name}.mid", part)
                jobs[name] = _fluidsynth(workdir / f"{name}.mid", workdir / f"{name}.wav", sample_rate,
                                         tools["soundfont"])
            if festival_can_sing() and plan.melody:
                try:
                    singing = _start_singing(plan.melody, workdir)
                except (DatasetError, OSError) as exc:
                    logger.warning("seed %d: festival did not start (%s); singing with formant synthesis instead",
                                   seed, exc)
            for name, proc in jobs.items():
                _wait(proc, f"fluidsynth rendering {name}.mid")
                stems[name] = _fit(_read_wav(workdir / f"{name}.wav", sample_rate), n)
            if singing is not None:
                try:
                    mono, rate = _finish_singing(*singing)
                    stems["vocals"] = _sung_vocals(mono, rate, sample_rate, n, rng)
                except DatasetError as exc:
                    logger.warning("seed %d: %s; singing with formant synthesis instead", seed, exc)
        finally:  # on error, stop what still runs before its folder disappears
            for proc in list(jobs.values()) + ([singing[0]] if singing else []):
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        if "vocals" not in stems:
            stems["vocals"] = synth.render_stem(plan, "vocals", sample_rate)
    silent = [k for k in synth.STEMS if not np.abs(stems[k]).max() > 1e-4]
    if silent:
        raise DatasetError(f"realistic data engine: stem(s) {', '.join(silent)} came out silent for seed {seed}; "
                           "check fluidsynth and the soundfont with `fluidsynth -ni -F out.wav <sf2> <midi>`")
    raw = {k: stems[k] / np.abs(stems[k]).max() for k in synth.STEMS}
    return synth.balance_levels(raw, rng)
