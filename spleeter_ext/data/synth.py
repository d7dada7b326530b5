"""Music-like synthetic songs in pure numpy/scipy: the ``numpy`` engine of the synthetic dataset.

A song is first *planned* (:func:`plan_song`: tempo, key, scale, chord progression in sections, a
drum groove with fills, a bass line, harmony parts and a sung melody in phrases) and then
*synthesised* (:func:`render_plan`): every stem has its own timbre, is broadband (noise
components, room reverb from a random exponentially decaying noise impulse response) and the
stems are balanced with random levels and panning so that the mixture -- the exact float sum of
the stems, :func:`mix` -- peaks at most at ``0.9``.

Timbres:

* **drums** -- kick: a pitched-down sine with an exponential envelope and a noise click; snare: a
  band-passed noise burst plus two damped tones; hats: 808-style detuned square waves and noise,
  high-passed; toms and crash for fills and section starts.  The groove is one of several
  styles with per-bar variations, swing, fills and humanised timing/velocity.
* **bass** -- follows the chord roots (eighths, quarters, root-fifth, kick-locked or walking
  lines), a plucked saw-ish wavetable tone whose brightness decays faster than its loudness,
  low-pass filtered and softly saturated.
* **other** -- one or two layers among detuned pads, plucked/piano-like chord hits, a drawbar
  organ and arpeggios, with voice-led chord voicings.
* **vocals** -- a melody of syllables: an alias-suppressed (PolyBLEP) sawtooth glottal source
  with spectral tilt and aspiration noise, vibrato and portamento, through a cascade of five
  formant resonators whose frequencies glide from vowel to vowel, syllable envelopes, fricative
  and plosive consonant bursts, and silences between phrases.

Everything is deterministic for a seed: the plan draws from ``Generator(PCG64(child))`` streams
spawned from ``SeedSequence(seed)``, and so does the synthesis.  A 10 s stereo 44.1 kHz track
renders in about half a second on one core.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from ..errors import ParameterError

__all__ = [
    "STEMS",
    "VOCAL_RANGE",
    "SCALES",
    "Note",
    "Syllable",
    "Chord",
    "DrumHit",
    "SongPlan",
    "plan_song",
    "chord_at",
    "check_args",
    "render_track",
    "render_plan",
    "render_stem",
    "balance_levels",
    "mix",
    "reverb",
    "pan",
]

#: Stem names, in the order the mixture is summed.
STEMS: Tuple[str, ...] = ("vocals", "drums", "bass", "other")

#: Scales (semitones above the key's tonic) and how often a song uses each.
SCALES: Dict[str, Tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
}
_SCALE_WEIGHTS = (0.4, 0.3, 0.1, 0.1, 0.1)
NOTE_NAMES: Tuple[str, ...] = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Progressions as 0-based scale degrees (chords are stacked diatonic thirds of the song's scale).
_PROGRESSIONS_MAJOR = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 4, 3), (0, 5, 3, 4), (0, 3, 0, 4),
                       (1, 4, 0, 5), (0, 2, 3, 4), (3, 4, 2, 5), (0, 4, 3, 4))
_PROGRESSIONS_MINOR = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4),
                       (0, 2, 5, 6), (0, 6, 3, 4))
# Chord symbols (mma / lead-sheet spelling) of interval sets above the root.
_CHORD_SYMBOLS = {(4, 7): "", (3, 7): "m", (3, 6): "dim", (4, 8): "aug", (4, 7, 11): "maj7",
                  (4, 7, 10): "7", (3, 7, 10): "m7", (3, 6, 10): "m7b5"}

# Vowel formants (Hz, F1..F5) of an average adult voice and the resonators' bandwidths.
VOWELS: Dict[str, Tuple[float, float, float, float, float]] = {
    "a": (780.0, 1220.0, 2600.0, 3400.0, 4300.0),
    "e": (500.0, 1850.0, 2600.0, 3450.0, 4300.0),
    "i": (310.0, 2250.0, 3000.0, 3600.0, 4400.0),
    "o": (520.0, 900.0, 2500.0, 3300.0, 4200.0),
    "u": (340.0, 820.0, 2400.0, 3300.0, 4200.0),
    "ae": (660.0, 1700.0, 2550.0, 3400.0, 4300.0),
    "uh": (630.0, 1200.0, 2550.0, 3400.0, 4300.0),
}
_FORMANT_BW = np.array([80.0, 95.0, 130.0, 170.0, 220.0])
#: Default MIDI range of the melody (A3..F5): its fundamentals stay above 200 Hz.
VOCAL_RANGE: Tuple[int, int] = (57, 77)
_StepTime = Callable[[int, float], float]  # (bar index, sixteenth step) -> seconds
_CONSONANTS = ("", "", "", "s", "sh", "f", "h", "t", "k", "p")

_BASS_TOP = 52  # highest bass note (E3)
_GROOVES: Dict[str, Dict[str, Tuple[int, ...]]] = {
    # step indices (0..15) of each instrument in a bar; ``ghost`` are soft snare notes
    "rock": {"kick": (0, 8, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "four_on_floor": {"kick": (0, 4, 8, 12), "snare": (4, 12), "open_hat": (2, 6, 10, 14),
                      "hat": (0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15)},
    "half_time": {"kick": (0, 3, 10), "snare": (8,), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "funk": {"kick": (0, 3, 7, 10), "snare": (4, 12), "ghost": (6, 9, 15),
             "hat": tuple(range(16))},
    "pop": {"kick": (0, 6, 8), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14),
            "open_hat": (14,)},
    "latin": {"kick": (0, 3, 8, 11), "snare": (6, 12), "ghost": (3, 10),
              "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
}
_KEYS_RHYTHMS = ((0, 4, 8, 12), (2, 6, 10, 14), (0, 6, 12), (0, 3, 6, 10, 12), (0, 8),
                 (0, 3, 8, 11, 14))


@dataclass(frozen=True)
class Note:
    """A pitched note: ``onset`` and ``duration`` in seconds, MIDI ``pitch``, ``velocity`` in (0, 1]."""

    onset: float
    duration: float
    pitch: int
    velocity: float


@dataclass(frozen=True)
class Syllable(Note):
    """A sung note: its ``vowel`` (a key of :data:`VOWELS`), onset ``consonant`` ('' for none),
    the ``phrase`` it belongs to and the lyric ``word`` used by singing synthesisers."""

    vowel: str = "a"
    consonant: str = ""
    phrase: int = 0
    word: str = "la"


@dataclass(frozen=True)
class Chord:
    """A chord: ``onset``/``duration`` in seconds, ``root`` pitch class, the chord's pitch classes
    (root first) and its lead-sheet ``name`` (e.g. ``'F#m7'``), which mma understands."""

    onset: float
    duration: float
    root: int
    pitch_classes: Tuple[int, ...]
    name: str


@dataclass(frozen=True)
class DrumHit:
    """A drum hit: ``time`` in seconds, ``instrument`` (kick, snare, ghost, hat, open_hat, tom_lo,
    tom_mid, tom_hi, crash) and ``velocity`` in (0, 1]."""

    time: float
    instrument: str
    velocity: float


@dataclass(frozen=True)
class SongPlan:
    """The score of a synthetic song (what is played, not how it sounds)."""

    seconds: float
    seed: int
    tempo: float
    key: int
    scale: str
    chords: Tuple[Chord, ...]
    drums: Tuple[DrumHit, ...]
    bass: Tuple[Note, ...]
    other: Tuple[Tuple[str, Tuple[Note, ...]], ...]
    melody: Tuple[Syllable, ...]
    phrases: Tuple[Tuple[float, float], ...]
    groove: str
    section_bars: int

    @property
    def beat(self) -> float:
        """Seconds per beat (quarter note)."""
        return 60.0 / self.tempo

    @property
    def bar(self) -> float:
        """Seconds per 4/4 bar."""
        return 4.0 * self.beat

    @property
    def key_name(self) -> str:
        """E.g. ``'F# dorian'``."""
        return f"{NOTE_NAMES[self.key]} {self.scale}"

    def summary(self) -> Dict[str, object]:
        """JSON-friendly summary (tempo, key, groove, chord names)."""
        return {"tempo": round(self.tempo, 2), "key": self.key_name, "groove": self.groove,
                "chords": [c.name for c in self.chords]}


# --------------------------------------------------------------------------------------------
# Checks and random streams
# --------------------------------------------------------------------------------------------

def check_args(seconds: float, seed: int, sample_rate: Optional[int] = None) -> None:
    """Raise :class:`ParameterError` unless 0.5 <= ``seconds`` <= 3600, ``seed`` >= 0 is an integer
    and ``sample_rate`` (if given) is an integer in [8000, 192000]."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not math.isfinite(seconds) or not 0.5 <= seconds <= 3600:
        raise ParameterError(f"seconds={seconds!r} is out of range; pass a duration between 0.5 and 3600")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} is not a non-negative integer; pass e.g. seed=0")
    if sample_rate is not None and (isinstance(sample_rate, bool)
                                    or not isinstance(sample_rate, (int, np.integer))
                                    or not 8000 <= sample_rate <= 192000):
        raise ParameterError(f"sample_rate={sample_rate!r} is not an integer in [8000, 192000]; "
                             "pass e.g. 44100")


# Child streams of SeedSequence(seed): the plan uses the first five, the synthesis the rest.
_STREAMS = ("form", "drum_plan", "bass_plan", "other_plan", "melody_plan",
            "vocals", "drums", "bass", "other", "mix")


def _rngs(seed: int) -> Dict[str, np.random.Generator]:
    children = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    return {name: np.random.Generator(np.random.PCG64(child)) for name, child in zip(_STREAMS, children)}


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------

def _chord(scale: Sequence[int], key: int, degree: int, seventh: bool) -> Tuple[int, Tuple[int, ...], str]:
    """Diatonic chord on ``degree``: (root pitch class, pitch classes, symbol)."""
    n = len(scale)
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    pcs = [(key + scale[(degree + s) % n]) % 12 for s in steps]
    intervals = tuple((p - pcs[0]) % 12 for p in pcs[1:])
    if intervals not in _CHORD_SYMBOLS:  # e.g. a minor-major seventh: fall back to the triad
        pcs, intervals = pcs[:3], intervals[:2]
    return pcs[0], tuple(pcs), NOTE_NAMES[pcs[0]] + _CHORD_SYMBOLS[intervals]


def chord_at(chords: Sequence[Chord], t: float) -> Chord:
    """The chord sounding at time ``t`` (the last one after the end)."""
    for c in chords:
        if c.onset <= t + 1e-9 < c.onset + c.duration:
            return c
    return chords[-1]


def plan_song(seconds: float, seed: int = 0, vocal_range: Tuple[int, int] = VOCAL_RANGE) -> SongPlan:
    """Plan a random song lasting at least ``seconds`` (deterministic for ``seed``).

    ``vocal_range`` is the melody's MIDI pitch range (lowest, highest); it changes only the
    melody, not the tempo, harmony or accompaniment (default :data:`VOCAL_RANGE`, A3..F5).
    """
    check_args(seconds, seed)
    lo, hi = vocal_range
    if not (24 <= lo and hi <= 127 and hi - lo >= 12):
        raise ParameterError(f"vocal_range={vocal_range!r} must span at least an octave within MIDI "
                             f"24..127; pass e.g. {VOCAL_RANGE}")
    rngs = _rngs(seed)
    form = rngs["form"]
    tempo = float(form.uniform(80.0, 160.0))
    key = int(form.integers(12))
    scale_name = str(form.choice(list(SCALES), p=_SCALE_WEIGHTS))
    scale = SCALES[scale_name]
    beat = 60.0 / tempo
    bar = 4 * beat
    n_bars = int(math.ceil(seconds / bar)) + 1
    section_bars = int(form.choice([4, 8]))
    chord_bars = float(form.choice([0.5, 1.0, 1.0, 1.0, 2.0]))
    sevenths = form.random() < 0.35
    bank = _PROGRESSIONS_MAJOR if scale[2] == 4 else _PROGRESSIONS_MINOR
    progressions = [bank[i] for i in form.choice(len(bank), size=2, replace=False)]

    chords: List[Chord] = []
    t, section = 0.0, 0
    while t < n_bars * bar - 1e-9:
        prog = progressions[section % 2]
        section_end = min(t + section_bars * bar, n_bars * bar)
        i = 0
        while t < section_end - 1e-9:
            root, pcs, name = _chord(scale, key, prog[i % len(prog)], sevenths and form.random() < 0.8)
            dur = min(chord_bars * bar, section_end - t)
            chords.append(Chord(t, dur, root, pcs, name))
            t += dur
            i += 1
        section += 1

    groove = str(form.choice(list(_GROOVES)))
    swing = float(form.uniform(0.08, 0.3)) if form.random() < 0.25 else 0.0
    step = beat / 4

    def step_time(bar_index: int, s: float) -> float:
        shift = swing * step if int(s) % 2 == 1 else 0.0
        return bar_index * bar + s * step + shift

    drums = _plan_drums(rngs["drum_plan"], groove, n_bars, section_bars, step_time)
    kick_steps = _GROOVES[groove]["kick"]
    bass = _plan_bass(rngs["bass_plan"], chords, scale, key, n_bars, kick_steps, step_time)
    other = _plan_other(rngs["other_plan"], chords, n_bars, step, step_time)
    melody, phrases = _plan_melody(rngs["melody_plan"], chords, scale, key, seconds, n_bars, beat, (lo, hi))
    return SongPlan(float(seconds), int(seed), tempo, key, scale_name, tuple(chords), drums, bass,
                    other, melody, phrases, groove, section_bars)


def _plan_drums(rng: np.random.Generator, groove: str, n_bars: int, section_bars: int,
                step_time: _StepTime) -> Tuple[DrumHit, ...]:
    base = _GROOVES[groove]
    hits: List[DrumHit] = []
    sixteenth_hats = rng.random() < 0.3
    for b in range(n_bars):
        pattern = {k: set(v) for k, v in base.items()}
        if sixteenth_hats and "hat" in pattern:
            pattern["hat"] = set(range(16)) - pattern.get("open_hat", set())
        if rng.random() < 0.35:  # per-bar variation of the kick
            s = int(rng.choice([2, 6, 7, 11, 14, 15]))
            pattern["kick"] ^= {s}
            pattern["kick"].add(0)
        if rng.random() < 0.2:
            pattern.setdefault("ghost", set()).add(int(rng.choice([7, 9, 13, 15])))
        last_of_section = b % section_bars == section_bars - 1
        if (last_of_section and rng.random() < 0.75) or (b % 4 == 3 and rng.random() < 0.25):
            start = int(rng.choice([8, 12]))  # fill over the last beat or two
            for k in pattern:
                pattern[k] = {s for s in pattern[k] if s < start}
            kind = rng.choice(["snare", "toms"])
            for s in range(start, 16, int(rng.choice([1, 2]))):
                if kind == "snare":
                    inst = "snare"
                else:
                    inst = ("tom_hi", "tom_mid", "tom_lo")[min(2, 3 * (s - start) // (16 - start))]
                hits.append(DrumHit(step_time(b, s), inst, 0.55 + 0.4 * (s - start) / (16 - start)))
            pattern.setdefault("kick", set()).add(start)
        for inst, steps in pattern.items():
            for s in sorted(steps):
                if inst == "hat":
                    vel = 0.8 if s % 4 == 0 else (0.6 if s % 2 == 0 else 0.4)
                elif inst == "ghost":
                    vel = 0.25
                else:
                    vel = 0.9 if s in (0, 4, 8, 12) else 0.75
                hits.append(DrumHit(step_time(b, s), inst, vel))
        if b % section_bars == 0 and b > 0 and rng.random() < 0.7:
            hits.append(DrumHit(step_time(b, 0), "crash", 0.8))
    jitter = rng.normal(0.0, 0.004, len(hits))
    velj = rng.uniform(0.85, 1.1, len(hits))
    out = [DrumHit(max(0.0, h.time + float(j)), h.instrument, float(min(1.0, h.velocity * v)))
           for h, j, v in zip(hits, jitter, velj)]
    return tuple(sorted(out, key=lambda h: (h.time, h.instrument)))


def _nearest_pitch(pc: int, target: float) -> int:
    """MIDI pitch of pitch class ``pc`` nearest to ``target``."""
    base = 12 * round((target - pc) / 12) + pc
    return int(base)


def _plan_bass(rng: np.random.Generator, chords: Sequence[Chord], scale: Sequence[int], key: int,
               n_bars: int, kick_steps: Sequence[int], step_time: _StepTime
               ) -> Tuple[Note, ...]:
    style = str(rng.choice(["eighths", "quarters", "root_fifth", "kick", "walking"]))
    center = float(rng.uniform(33, 40))
    gate = float(rng.uniform(0.6, 0.95))
    scale_pcs = sorted((key + s) % 12 for s in scale)
    notes: List[Note] = []
    patterns = {
        "eighths": (0, 2, 4, 6, 8, 10, 12, 14),
        "quarters": (0, 4, 8, 12),
        "root_fifth": (0, 6, 8, 12),
        "kick": tuple(sorted(set(kick_steps) | {0})),
        "walking": (0, 4, 8, 12),
    }
    steps = patterns[style]
    for b in range(n_bars):
        times = [step_time(b, s) for s in steps] + [step_time(b + 1, 0)]
        for j, s in enumerate(steps):
            t = times[j]
            chord = chord_at(chords, t + 1e-6)
            root = _nearest_pitch(chord.root, center)
            pitch = root
            if style == "root_fifth" and j in (1, 3):
                pitch = root + (7 if j == 3 else 12) if root + 12 <= 52 else root + 7
            elif style == "walking" and j > 0:
                nxt = chord_at(chords, times[-1] + 1e-6)
                target = _nearest_pitch(nxt.root, center)
                if j == len(steps) - 1:  # chromatic or diatonic approach to the next root
                    pitch = target + int(rng.choice([-1, 1, -2, 2]))
                else:
                    pcs = chord.pitch_classes
                    pitch = _nearest_pitch(pcs[int(rng.integers(len(pcs)))], center + 3)
            elif style in ("eighths", "kick") and rng.random() < 0.1:
                pitch = root + 12
            if rng.random() < 0.05:  # passing scale tone
                pitch = _nearest_pitch(scale_pcs[int(rng.integers(len(scale_pcs)))], pitch)
            while pitch > _BASS_TOP:  # keep the line in the bass register
                pitch -= 12
            dur = (times[j + 1] - t) * gate
            vel = (0.9 if s % 4 == 0 else 0.75) * float(rng.uniform(0.9, 1.05))
            notes.append(Note(t, dur, int(pitch), min(1.0, vel)))
    return tuple(notes)


def _voicing(pcs: Sequence[int], center: float, previous: Optional[Sequence[int]]) -> List[int]:
    """Close voicing of ``pcs`` whose mean is nearest to ``center`` (or to the previous voicing)."""
    target = float(np.mean(previous)) if previous else center
    target = 0.5 * target + 0.5 * center
    best: List[int] = []
    best_cost = 1e9
    for inv in range(len(pcs)):
        order = list(pcs[inv:]) + list(pcs[:inv])
        for octave in range(3, 7):
            v = [12 * octave + order[0]]
            for pc in order[1:]:
                p = 12 * (v[-1] // 12) + pc
                while p <= v[-1]:
                    p += 12
                v.append(p)
            cost = abs(float(np.mean(v)) - target)
            if cost < best_cost:
                best, best_cost = v, cost
    return best


def _plan_other(rng: np.random.Generator, chords: Sequence[Chord], n_bars: int, step: float,
                step_time: _StepTime) -> Tuple[Tuple[str, Tuple[Note, ...]], ...]:
    first = str(rng.choice(["pad", "keys", "organ", "keys"]))
    layers = [first]
    if rng.random() < 0.55:
        layers.append("arp" if first != "keys" or rng.random() < 0.5 else "pad")
    center = float(rng.uniform(58, 66))
    out: List[Tuple[str, Tuple[Note, ...]]] = []
    for layer in layers:
        notes: List[Note] = []
        previous: Optional[List[int]] = None
        if layer in ("pad", "organ"):
            for c in chords:
                v = _voicing(c.pitch_classes, center, previous)
                previous = v
                for p in v:
                    notes.append(Note(c.onset, c.duration, p, float(rng.uniform(0.6, 0.8))))
        elif layer == "keys":
            rhythm = _KEYS_RHYTHMS[int(rng.integers(len(_KEYS_RHYTHMS)))]
            gate = float(rng.uniform(0.3, 0.95))
            for b in range(n_bars):
                times = [step_time(b, s) for s in rhythm] + [step_time(b + 1, 0)]
                for j in range(len(rhythm)):
                    c = chord_at(chords, times[j] + 1e-6)
                    v = _voicing(c.pitch_classes, center, previous)
                    previous = v
                    vel = (0.85 if rhythm[j] % 8 == 0 else 0.7) * float(rng.uniform(0.9, 1.05))
                    for k, p in enumerate(v):
                        strum = k * float(rng.uniform(0.0, 0.012))
                        notes.append(Note(times[j] + strum, (times[j + 1] - times[j]) * gate, p,
                                          min(1.0, vel)))
        else:  # arpeggio over the chord, an octave above the harmony's centre
            rate = int(rng.choice([2, 2, 1]))  # 8ths or 16ths
            shape = str(rng.choice(["up", "down", "updown"]))
            idx = 0
            for b in range(n_bars):
                for s in range(0, 16, rate):
                    t = step_time(b, s)
                    c = chord_at(chords, t + 1e-6)
                    v = _voicing(c.pitch_classes, center + 12, None)
                    seq = v if shape == "up" else v[::-1] if shape == "down" else v + v[-2:0:-1]
                    p = seq[idx % len(seq)]
                    idx += 1
                    vel = (0.8 if s % 4 == 0 else 0.6) * float(rng.uniform(0.9, 1.1))
                    notes.append(Note(t, rate * step * 0.9, p, min(1.0, vel)))
        out.append((layer, tuple(notes)))
    return tuple(out)


_WORDS = {"a": ("la", "far", "heart", "star", "are", "ah"), "e": ("yeah", "there", "air", "where"),
          "i": ("me", "see", "free", "dream", "sea", "we"), "o": ("go", "so", "home", "oh", "know"),
          "u": ("you", "blue", "through", "true", "do"), "ae": ("back", "hand", "stand"),
          "uh": ("love", "sun", "run", "come", "up")}


def _plan_melody(rng: np.random.Generator, chords: Sequence[Chord], scale: Sequence[int], key: int,
                 seconds: float, n_bars: int, beat: float, vocal_range: Tuple[int, int]
                 ) -> Tuple[Tuple[Syllable, ...], Tuple[Tuple[float, float], ...]]:
    lo, hi = vocal_range
    span = int(rng.integers(10, 15))
    low = int(rng.integers(lo, max(lo + 1, hi - span + 1)))
    high = min(hi, low + span)
    scale_pitches = [p for p in range(low, high + 1) if (p - key) % 12 in scale]
    end = n_bars * 4 * beat
    gap_min = max(beat, 0.45)
    # lead-in before the first phrase, at most a fifth of the song so that short songs have vocals
    half = beat / 2
    t = min(float(rng.choice([0.0, 0.5, 1.0, 2.0, 4.0])) * beat, half * math.floor(0.2 * seconds / half))
    syllables: List[Syllable] = []
    phrases: List[Tuple[float, float]] = []
    idx = len(scale_pitches) // 2
    durations = np.array([0.5, 1.0, 1.5, 2.0, 0.25])
    dur_p = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    vowels = list(VOWELS)
    phrase = 0
    while t < end - 2 * beat:
        length = float(rng.choice([3.0, 4.0, 6.0, 7.0, 8.0])) * beat
        phrase_end = min(t + length, end)
        start = t
        while t < phrase_end - 0.2 * beat:
            d = float(rng.choice(durations, p=dur_p)) * beat
            d = min(d, phrase_end - t)
            chord = chord_at(chords, t + 1e-6)
            on_beat = abs((t / beat) - round(t / beat)) < 1e-6
            cands = [i for i, p in enumerate(scale_pitches) if p % 12 in chord.pitch_classes]
            if on_beat and cands and rng.random() < 0.7:  # strong beats land on chord tones
                idx = min(cands, key=lambda i: abs(i - idx) + 0.1 * rng.random())
            else:
                idx += int(rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]))
            idx = int(np.clip(idx, 0, len(scale_pitches) - 1))
            vowel = vowels[int(rng.integers(len(vowels)))]
            words = _WORDS[vowel]
            syllables.append(Syllable(t, d, scale_pitches[idx], float(rng.uniform(0.75, 1.0)),
                                      vowel=vowel, consonant=str(rng.choice(_CONSONANTS)),
                                      phrase=phrase, word=words[int(rng.integers(len(words)))]))
            t += d
        phrases.append((start, t))
        phrase += 1
        t += max(gap_min, float(rng.choice([1.0, 1.5, 2.0, 3.0, 4.0])) * beat)
        t = beat * math.ceil(t / beat - 1e-6) if rng.random() < 0.7 else t
    return tuple(syllables), tuple(phrases)


# --------------------------------------------------------------------------------------------
# DSP building blocks
# --------------------------------------------------------------------------------------------

def pan(x: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan/balance of a mono ``(n,)`` or stereo ``(n, 2)`` signal; ``position`` in [-1, 1]."""
    theta = (float(np.clip(position, -1.0, 1.0)) + 1.0) * math.pi / 4
    gains = np.array([math.cos(theta), math.sin(theta)]) * math.sqrt(2.0)
    if x.ndim == 1:
        return x[:, None] * gains[None, :]
    return x * gains[None, :]


def reverb(x: np.ndarray, sample_rate: int, rng: np.random.Generator, rt60: float, wet: float,
           predelay: float = 0.01, damping_hz: float = 6000.0) -> np.ndarray:
    """Room-like reverb: convolve a stereo ``(n, 2)`` signal with decorrelated exponentially decaying
    noise impulse responses (unit energy, low-pass damped) and add ``wet`` of it to the dry signal.
    The output has the input's length (the tail is cut)."""
    n_ir = max(16, int(rt60 * 0.85 * sample_rate))
    t = np.arange(n_ir) / sample_rate
    ir = rng.standard_normal((n_ir, 2), dtype=np.float32) * np.exp(-6.91 * t / rt60)[:, None]
    a = math.exp(-2 * math.pi * min(damping_hz, 0.45 * sample_rate) / sample_rate)
    ir = signal.lfilter([1 - a], [1, -a], ir, axis=0)
    ir /= np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True)) + 1e-12
    ir = np.concatenate([np.zeros((int(predelay * sample_rate), 2)), ir])
    # single-precision FFT convolution: twice as fast, and its ~1e-7 error is far below audibility
    size = sp_fft.next_fast_len(len(x) + len(ir) - 1, real=True)
    spec = sp_fft.rfft(x.astype(np.float32), size, axis=0)
    spec *= sp_fft.rfft(ir.astype(np.float32), size, axis=0)
    wet_sig = sp_fft.irfft(spec, size, axis=0)[: len(x)]
    return x + wet * wet_sig


def _one_pole(x: np.ndarray, cutoff: float, sample_rate: int, axis: int = 0) -> np.ndarray:
    a = math.exp(-2 * math.pi * min(cutoff, 0.45 * sample_rate) / sample_rate)
    return signal.lfilter([1 - a], [1, -a], x, axis=axis)


def _butter(kind: str, freq, sample_rate: int, order: int = 2) -> np.ndarray:
    nyq = 0.5 * sample_rate
    if isinstance(freq, (tuple, list)):
        lo, hi = freq
        hi = min(hi, 0.45 * sample_rate)
        lo = min(lo, 0.8 * hi)
        return signal.butter(order, [lo / nyq, hi / nyq], btype=kind, output="sos")
    return signal.butter(order, min(freq, 0.45 * sample_rate) / nyq, btype=kind, output="sos")


def _texture(x: np.ndarray, sample_rate: int, rng: np.random.Generator, level_db: float,
             highpass: float = 200.0) -> np.ndarray:
    """Add envelope-following noise ``level_db`` below the signal (breath, bow, string, tape noise),
    which keeps each stem broadband without filling its silences."""
    env = _one_pole(np.abs(x).mean(axis=1), 30.0, sample_rate)
    white = rng.standard_normal(x.shape, dtype=np.float32)
    a = math.exp(-2 * math.pi * min(highpass, 0.45 * sample_rate) / sample_rate)
    noise = signal.lfilter([1.0, -1.0], [1.0, -a], white, axis=0)  # one-pole high-pass
    return x + (10 ** (level_db / 20) * 1.4) * env[:, None] * noise


def _add(out: np.ndarray, start: int, sig: np.ndarray) -> None:
    """``out[start:start+len(sig)] += sig`` clipped to ``out``'s bounds."""
    if start >= len(out) or start + len(sig) <= 0:
        return
    s0 = max(0, -start)
    end = min(len(out), start + len(sig))
    out[start + s0:end] += sig[s0:s0 + end - start - s0]


_TABLE = 2048


def _table(amps: np.ndarray) -> np.ndarray:
    """Single-cycle wavetable (with a wrap-around sample) of sine harmonics ``amps[k-1]``."""
    spec = np.zeros(_TABLE // 2 + 1, dtype=complex)
    k = min(len(amps), _TABLE // 2 - 1)
    spec[1:1 + k] = -0.5j * _TABLE * np.asarray(amps[:k])
    table = np.fft.irfft(spec, _TABLE)
    return np.append(table, table[0])


def _lookup(table: np.ndarray, phase: np.ndarray) -> np.ndarray:
    pos = phase * _TABLE
    i = pos.astype(np.int64)
    frac = pos - i
    return table[i] + frac * (table[i + 1] - table[i])


def _harmonics(freq: float, sample_rate: int, slope: float, limit_hz: float = 16000.0,
               odd_only: bool = False) -> np.ndarray:
    k = np.arange(1, max(1, int(min(limit_hz, 0.45 * sample_rate) / freq)) + 1, dtype=float)
    amps = k ** -slope
    if odd_only:
        amps[1::2] *= 0.15
    return amps


def _midi_hz(p: float) -> float:
    return 440.0 * 2.0 ** ((p - 69.0) / 12.0)


def _envelope(n: int, sample_rate: int, attack: float, decay: float, sustain: float,
              gate: int, release: float) -> np.ndarray:
    """Attack-decay-sustain-release envelope of ``n`` samples with the key released at ``gate``."""
    t = np.arange(n) / sample_rate
    a = max(attack, 1e-3)
    env = np.where(t < a, t / a, sustain + (1 - sustain) * np.exp(-(t - a) / max(decay, 1e-3)))
    gate = int(np.clip(gate, 1, n))
    if gate < n:
        env[gate:] = env[gate - 1] * np.exp(-(t[gate:] - t[gate - 1]) / max(release, 1e-3))
    fade = min(n, int(0.002 * sample_rate))
    env[n - fade:] *= np.linspace(1, 0, fade)
    return env


# --------------------------------------------------------------------------------------------
# Stems
# --------------------------------------------------------------------------------------------

def _drum_kit(rng: np.random.Generator, sr: int) -> Dict[str, List[Tuple[np.ndarray, float]]]:
    """A random drum kit: a few variants of each instrument, with a stereo position each."""
    def t_of(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sr)) / sr

    kit: Dict[str, List[Tuple[np.ndarray, float]]] = {}
    f_hi, f_lo = rng.uniform(110, 200), rng.uniform(42, 60)
    tau_p, tau_a = rng.uniform(0.02, 0.05), rng.uniform(0.15, 0.35)
    drive = rng.uniform(1.0, 3.0)
    click_sos = _butter("highpass", 2000.0, sr)

    def kick() -> np.ndarray:
        t = t_of(tau_a * 5)
        f = f_lo + (f_hi - f_lo) * np.exp(-t / tau_p)
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / tau_a)
        m = min(len(t), int(0.03 * sr))  # the click is over after a few milliseconds
        body[:m] += signal.sosfilt(click_sos, rng.standard_normal(m)) * np.exp(-t[:m] / 0.003) * 0.5
        return np.tanh(drive * body) / math.tanh(drive)

    snare_sos = _butter("bandpass", (rng.uniform(800, 1500), rng.uniform(7000, 11000)), sr)
    f_s = rng.uniform(170, 240)
    tau_n = rng.uniform(0.08, 0.2)
    noise_mix = rng.uniform(0.5, 0.9)

    def snare() -> np.ndarray:
        t = t_of(tau_n * 6)
        tone = (np.sin(2 * np.pi * f_s * t) + 0.5 * np.sin(2 * np.pi * 1.6 * f_s * t)) * np.exp(-t / 0.05)
        noise = signal.sosfilt(snare_sos, rng.standard_normal(len(t))) * np.exp(-t / tau_n)
        noise /= np.abs(noise).max() + 1e-12
        return (1 - noise_mix) * tone / 1.5 + noise_mix * noise

    hat_sos = _butter("highpass", rng.uniform(6000, 8500), sr, order=4)
    ratios = np.array([1.0, 1.4471, 1.6170, 1.9265, 2.5028, 2.6637]) * rng.uniform(260, 340)
    metal_mix = rng.uniform(0.2, 0.6)

    def hat(decay: float) -> np.ndarray:
        t = t_of(decay * 6)
        metal = np.sign(np.sin(2 * np.pi * ratios[:, None] * t[None, :] + rng.uniform(0, 6.3, (6, 1)))).sum(0)
        src = metal_mix * metal / 6 + (1 - metal_mix) * rng.standard_normal(len(t))
        y = signal.sosfilt(hat_sos, src) * np.exp(-t / decay)
        return y / (np.abs(y).max() + 1e-12)

    def tom(freq: float) -> np.ndarray:
        t = t_of(0.6)
        f = freq * (1 + 0.5 * np.exp(-t / 0.02))
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.18)
        m = int(0.1 * sr)
        body[:m] += 0.1 * signal.sosfilt(click_sos, rng.standard_normal(m)) * np.exp(-t[:m] / 0.02)
        return body

    crash_sos = _butter("bandpass", (3000.0, 14000.0), sr)

    def crash() -> np.ndarray:
        t = t_of(2.0)
        y = signal.sosfilt(crash_sos, rng.standard_normal(len(t))) * np.exp(-t / rng.uniform(0.5, 1.0))
        return y / (np.abs(y).max() + 1e-12)

    closed = rng.uniform(0.025, 0.06)
    hat_pos = rng.uniform(-0.5, 0.5)
    tom_base = rng.uniform(90, 130)
    kit["kick"] = [(kick(), 0.0) for _ in range(2)]
    snare_pos = rng.uniform(-0.15, 0.15)
    kit["snare"] = [(snare(), snare_pos) for _ in range(3)]
    kit["ghost"] = kit["snare"]
    kit["hat"] = [(0.6 * hat(closed), hat_pos) for _ in range(4)]
    kit["open_hat"] = [(0.6 * hat(rng.uniform(0.18, 0.35)), hat_pos) for _ in range(2)]
    kit["tom_lo"] = [(tom(tom_base), 0.3)]
    kit["tom_mid"] = [(tom(tom_base * 1.35), 0.0)]
    kit["tom_hi"] = [(tom(tom_base * 1.8), -0.3)]
    kit["crash"] = [(0.5 * crash(), -hat_pos)]
    return kit


def _render_drums(plan: SongPlan, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    kit = _drum_kit(rng, sr)
    out = np.zeros((n, 2))
    gains = {"kick": 1.0, "snare": 0.8, "ghost": 0.8, "hat": 0.45, "open_hat": 0.4,
             "tom_lo": 0.8, "tom_mid": 0.8, "tom_hi": 0.8, "crash": 0.45}
    for hit in plan.drums:
        variants = kit[hit.instrument]
        sample, position = variants[int(rng.integers(len(variants)))]
        theta = (position + 1) * math.pi / 4
        g = gains[hit.instrument] * hit.velocity
        start = int(round(hit.time * sr))
        _add(out[:, 0], start, sample * (g * math.cos(theta) * math.sqrt(2)))
        _add(out[:, 1], start, sample * (g * math.sin(theta) * math.sqrt(2)))
    out = _texture(out, sr, rng, -40.0)
    return reverb(out, sr, rng, rt60=float(rng.uniform(0.25, 0.8)), wet=float(rng.uniform(0.1, 0.3)))


def _render_bass(plan: SongPlan, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    slope = rng.uniform(1.0, 1.6)
    tau_b = rng.uniform(0.04, 0.2)
    decay = rng.uniform(0.4, 1.5)
    sustain = rng.uniform(0.2, 0.6)
    square = rng.random() < 0.25
    sub = rng.uniform(0.0, 0.5)
    pluck_sos = _butter("lowpass", 1500.0, sr)
    tables: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}  # (bright, dark) wavetables per pitch
    for note in plan.bass:
        f = _midi_hz(note.pitch)
        length = int((note.duration + 0.08) * sr)
        gate = int(note.duration * sr)
        phase = (np.arange(length) * (f / sr) + rng.random()) % 1.0
        if note.pitch not in tables:
            tables[note.pitch] = (_table(_harmonics(f, sr, slope, 5000.0, odd_only=square)),
                                  _table(_harmonics(f, sr, 2.8, 1200.0)))
        bright, dark = tables[note.pitch]
        t = np.arange(length) / sr
        b = np.exp(-t / tau_b)
        x = _lookup(dark, phase) * (1 - b) + _lookup(bright, phase) * b
        x += sub * np.sin(2 * np.pi * phase)
        env = _envelope(length, sr, 0.004, decay, sustain, gate, 0.03)
        click = signal.sosfilt(pluck_sos, rng.standard_normal(min(length, int(0.01 * sr))))
        x[: len(click)] += 0.3 * click * np.linspace(1, 0, len(click))
        _add(out, int(round(note.onset * sr)), note.velocity * env * x)
    out = signal.sosfilt(_butter("lowpass", rng.uniform(600, 2000), sr), out)
    drive = rng.uniform(1.0, 2.5)
    out = np.tanh(drive * out / (np.abs(out).max() + 1e-12)) / math.tanh(drive)
    stereo = pan(out, 0.0)
    stereo = _texture(stereo, sr, rng, -38.0, highpass=100.0)
    return reverb(stereo, sr, rng, rt60=float(rng.uniform(0.2, 0.5)), wet=float(rng.uniform(0.05, 0.15)),
                  damping_hz=3000.0)


def _render_other(plan: SongPlan, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((n, 2))
    for layer, notes in plan.other:
        buf = np.zeros((n, 2))
        if layer == "pad":
            cutoff = rng.uniform(1500, 4000)
            attack, release = rng.uniform(0.05, 0.3), rng.uniform(0.15, 0.4)
            detune = rng.uniform(4, 12)
            for note in notes:
                f = _midi_hz(note.pitch)
                amps = _harmonics(f, sr, 1.0, 9000.0)
                k = np.arange(1, len(amps) + 1)
                table = _table(amps / (1 + (k * f / cutoff) ** 4))
                length = int((note.duration + release * 3) * sr)
                env = _envelope(length, sr, attack, 1.0, 0.8, int(note.duration * sr), release)
                for side, cents in ((0, -detune), (1, detune)):
                    fr = f * 2 ** (cents / 1200)
                    phase = (np.arange(length) * (fr / sr) + rng.random()) % 1.0
                    _add(buf[:, side], int(round(note.onset * sr)), 0.5 * note.velocity * env * _lookup(table, phase))
        elif layer == "organ":
            draw = rng.uniform(0.0, 1.0, 7) * np.array([1.0, 0.8, 0.6, 0.5, 0.3, 0.3, 0.2])
            draw[0] = 1.0
            trem_rate, trem_depth = rng.uniform(4.5, 7.0), rng.uniform(0.05, 0.2)
            for note in notes:
                f = _midi_hz(note.pitch)
                amps = np.zeros(8)
                for h, d in zip((1, 2, 3, 4, 5, 6, 8), draw):
                    if h * f < 0.45 * sr:
                        amps[h - 1] = d
                table = _table(amps)
                length = int((note.duration + 0.05) * sr)
                env = _envelope(length, sr, 0.01, 1.0, 1.0, int(note.duration * sr), 0.02)
                t = np.arange(length) / sr + note.onset
                env = env * (1 - trem_depth * (0.5 + 0.5 * np.sin(2 * np.pi * trem_rate * t)))
                phase = (np.arange(length) * (f / sr) + rng.random()) % 1.0
                x = 0.4 * note.velocity * env * _lookup(table, phase)
                start = int(round(note.onset * sr))
                _add(buf[:, 0], start, x)
                _add(buf[:, 1], start, x * (1 - trem_depth))
        else:  # keys (piano/pluck-like) and arpeggios
            slope = rng.uniform(1.0, 1.8)
            tau_b = rng.uniform(0.06, 0.3)
            decay = rng.uniform(0.3, 1.2) if layer == "keys" else rng.uniform(0.15, 0.5)
            width = rng.uniform(0.2, 0.8)
            tables: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
            for note in notes:
                f = _midi_hz(note.pitch)
                if note.pitch not in tables:
                    tables[note.pitch] = (_table(_harmonics(f, sr, slope, 10000.0)),
                                          _table(_harmonics(f, sr, 3.0, 2500.0)))
                bright, dark = tables[note.pitch]
                length = int((note.duration + 0.3) * sr)
                t = np.arange(length) / sr
                b = np.exp(-t / tau_b)
                phase = (np.arange(length) * (f / sr) + rng.random()) % 1.0
                x = _lookup(dark, phase) * (1 - b) + _lookup(bright, phase) * b
                x *= note.velocity * _envelope(length, sr, 0.003, decay, 0.0, int(note.duration * sr), 0.08)
                position = width * ((note.pitch - 60) / 12.0)
                theta = (float(np.clip(position, -1, 1)) + 1) * math.pi / 4
                start = int(round(note.onset * sr))
                _add(buf[:, 0], start, 0.4 * math.cos(theta) * x)
                _add(buf[:, 1], start, 0.4 * math.sin(theta) * x)
        rms = np.sqrt(np.mean(buf ** 2)) + 1e-12
        out += buf / rms * 10 ** (rng.uniform(-3, 0) / 20)
    out = _texture(out, sr, rng, -36.0)
    return reverb(out, sr, rng, rt60=float(rng.uniform(0.4, 1.2)), wet=float(rng.uniform(0.15, 0.35)))


def _polyblep_saw(phase: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Alias-suppressed sawtooth in [-1, 1] from a phase in [0, 1) and per-sample increment ``dt``."""
    y = 2.0 * phase - 1.0
    m = phase < dt
    x = phase[m] / dt[m]
    y[m] -= x + x - x * x - 1.0
    m = phase > 1.0 - dt
    x = (phase[m] - 1.0) / dt[m]
    y[m] -= x * x + x + x + 1.0
    return y


def _formant_sos(formants: np.ndarray, sr: int) -> np.ndarray:
    """Cascade of unity-DC-gain two-pole resonators (Klatt-style) as second-order sections."""
    rows = []
    for f, bw in zip(formants, _FORMANT_BW):
        if f >= 0.45 * sr:
            continue
        r = math.exp(-math.pi * bw / sr)
        c = -2 * r * math.cos(2 * math.pi * f / sr)
        rows.append([1 + c + r * r, 0.0, 0.0, 1.0, c, r * r])
    return np.array(rows)


def _render_vocals(plan: SongPlan, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if not plan.melody:
        return np.zeros((n, 2))
    tract = rng.uniform(0.95, 1.18)  # vocal-tract length: > 1 raises the formants
    vib_rate, vib_depth = rng.uniform(4.8, 6.5), rng.uniform(0.2, 0.5)
    breath = 10 ** (rng.uniform(-30, -20) / 20)
    tilt = rng.uniform(1500, 4000)
    glide = rng.uniform(0.02, 0.05)

    # Pitch contour (MIDI units): held notes, portamento, drift, vibrato fading in on each note.
    midi = np.full(n, float(plan.melody[0].pitch))
    vib_env = np.zeros(n)
    amp = np.zeros(n)
    cons_plan: List[Tuple[int, str, int]] = []
    for s in plan.melody:
        a = int(round(s.onset * sr))
        if a >= n:
            break
        b = min(n, int(round((s.onset + s.duration) * sr)))
        midi[a:] = s.pitch
        length = b - a
        t = np.arange(length) / sr
        vib_env[a:b] = np.clip((t - 0.15) / 0.25, 0, 1)
        cons_len = int(rng.uniform(0.04, 0.09) * sr) if s.consonant in ("s", "sh", "f", "h") else \
            int(0.015 * sr) if s.consonant else 0
        cons_len = min(cons_len, length // 3)
        v0 = cons_len * 2 // 3  # the vowel starts while the consonant ends
        nb = length - v0
        if nb <= 0:
            continue
        tail = min(int(rng.uniform(0.06, 0.12) * sr), nb // 2)
        legato = 0.9 if s.duration > 0.3 else 0.8
        env = _envelope(nb, sr, rng.uniform(0.015, 0.04), 0.8, 0.75, int(nb * legato) - tail // 2,
                        tail / (3 * sr))
        amp[a + v0:b] = np.maximum(amp[a + v0:b], s.velocity * env)
        if cons_len:
            cons_plan.append((a, s.consonant, cons_len))
    midi = signal.lfilter([1 - math.exp(-1 / (glide * sr))], [1, -math.exp(-1 / (glide * sr))], midi,
                          zi=[midi[0] * math.exp(-1 / (glide * sr))])[0]
    t = np.arange(n) / sr
    drift = np.interp(t, np.linspace(0, t[-1], max(2, n // 4410)),
                      rng.normal(0, 0.08, max(2, n // 4410)))
    midi = midi + drift + vib_depth * vib_env * np.sin(2 * np.pi * vib_rate * t + rng.uniform(0, 6.3))
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    dt = f0 / sr
    phase = np.cumsum(dt) % 1.0
    src = _one_pole(_polyblep_saw(phase, dt), tilt, sr)
    src /= np.abs(src).max() + 1e-12
    aspiration = signal.sosfilt(_butter("highpass", 1000.0, sr), rng.standard_normal(n, dtype=np.float32))
    src = (src + breath * aspiration * (1.5 - phase)) * amp

    # Formant cascade, piecewise constant in short blocks gliding from vowel to vowel.
    out = np.zeros(n)
    zi = None
    bounds: List[Tuple[int, np.ndarray]] = []
    prev = np.array(VOWELS[plan.melody[0].vowel]) * tract
    bounds.append((0, prev))
    for s in plan.melody:
        a = int(round(s.onset * sr))
        if a >= n:
            break
        cur = np.array(VOWELS[s.vowel]) * tract * rng.uniform(0.97, 1.03, 5)
        steps = 6
        block = max(1, int(min(0.06, s.duration / 3) * sr / steps))
        for i in range(steps):
            bounds.append((a + i * block, prev + (cur - prev) * (i + 1) / steps))
        prev = cur
    bounds.append((n, prev))
    for (start, formants), (end, _) in zip(bounds[:-1], bounds[1:]):
        start, end = min(start, n), min(end, n)
        if end <= start:
            continue
        sos = _formant_sos(formants, sr)
        if zi is None or len(zi) != len(sos):
            zi = np.zeros((len(sos), 2))
        out[start:end], zi = signal.sosfilt(sos, src[start:end], zi=zi)

    # Consonants: fricative hiss or plosive bursts, relative to the sung level.
    level = np.percentile(np.abs(out[amp > 0.1]), 95) if np.any(amp > 0.1) else 1.0
    bands = {"s": (4500.0, 10000.0), "sh": (2000.0, 6000.0), "f": (1500.0, 9000.0), "h": (800.0, 5000.0),
             "t": (2500.0, 9000.0), "k": (1200.0, 4000.0), "p": (400.0, 3000.0)}
    gains = {"s": 0.25, "sh": 0.25, "f": 0.12, "h": 0.08, "t": 0.5, "k": 0.45, "p": 0.4}
    sos_cache = {c: _butter("bandpass", band, sr) for c, band in bands.items()}
    for a, c, length in cons_plan:
        burst = signal.sosfilt(sos_cache[c], rng.standard_normal(length))
        burst /= np.abs(burst).max() + 1e-12
        ramp = max(1, min(length // 3, int(0.01 * sr)))
        env = np.ones(length)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        if c in ("t", "k", "p"):
            env *= np.exp(-np.arange(length) / (0.004 * sr))
        _add(out, a, gains[c] * level * burst * env)
    stereo = _texture(pan(out, 0.0), sr, rng, -42.0, highpass=60.0)  # breath/room noise under the voice
    return reverb(stereo, sr, rng, rt60=float(rng.uniform(0.3, 0.8)), wet=float(rng.uniform(0.1, 0.25)),
                  predelay=float(rng.uniform(0.01, 0.04)))


_RENDERERS = {"vocals": _render_vocals, "drums": _render_drums, "bass": _render_bass, "other": _render_other}


def render_stem(plan: SongPlan, stem: str, sample_rate: int = 44100) -> np.ndarray:
    """Synthesise one stem of ``plan`` as float64 ``(round(plan.seconds * sample_rate), 2)``, peak 1
    (0 if silent), deterministic for ``plan.seed``."""
    if stem not in _RENDERERS:
        raise ParameterError(f"stem={stem!r} is unknown; pass one of {', '.join(STEMS)}")
    check_args(plan.seconds, plan.seed, sample_rate)
    n = int(round(plan.seconds * sample_rate))
    x = _RENDERERS[stem](plan, int(sample_rate), n, _rngs(plan.seed)[stem])
    peak = np.abs(x).max()
    return x / peak if peak > 0 else x


def balance_levels(stems: Mapping[str, np.ndarray], rng: np.random.Generator, peak: float = 0.9
                   ) -> Dict[str, np.ndarray]:
    """Random per-stem levels (RMS around typical pop balances, +-3 dB) and stereo balance, then a
    common gain so the float32 mixture (:func:`mix`) and every stem peak at most at ``peak``.
    Returns float32 ``(n, 2)`` arrays in :data:`STEMS` order."""
    offsets = {"vocals": 0.0, "drums": -1.0, "bass": -3.0, "other": -3.5}
    spread = {"vocals": 0.1, "drums": 0.15, "bass": 0.1, "other": 0.5}
    out: Dict[str, np.ndarray] = {}
    for name in STEMS:
        x = np.asarray(stems[name], dtype=np.float64)
        rms = math.sqrt(float(np.mean(x ** 2)))
        gain = 10 ** ((offsets[name] + rng.uniform(-3, 3)) / 20) / rms if rms > 0 else 0.0
        out[name] = pan(x * gain, float(rng.uniform(-spread[name], spread[name])))
    target = peak * float(rng.uniform(0.75, 1.0))
    scale = target / max(max(np.abs(v).max() for v in out.values()), np.abs(sum(out.values())).max(), 1e-12)
    result = {k: (v * scale).astype(np.float32) for k, v in out.items()}
    while np.abs(mix(result)).max() > peak:  # float32 rounding could push a hair above
        result = {k: (v * np.float32(1 - 1e-6)).astype(np.float32) for k, v in result.items()}
    return result


def mix(stems: Mapping[str, np.ndarray]) -> np.ndarray:
    """The mixture: the float sum of the stems in :data:`STEMS` order (float32 in, float32 out)."""
    total = np.zeros_like(np.asarray(stems[STEMS[0]]))
    for name in STEMS:
        total = total + stems[name]
    return total


def render_plan(plan: SongPlan, sample_rate: int = 44100) -> Dict[str, np.ndarray]:
    """Synthesise and balance every stem of ``plan``: ``{'vocals','drums','bass','other'}`` each
    float32 ``(round(plan.seconds * sample_rate), 2)``, mixture peak <= 0.9."""
    raw = {stem: render_stem(plan, stem, sample_rate) for stem in STEMS}
    return balance_levels(raw, _rngs(plan.seed)["mix"])


def render_track(seconds: float, sample_rate: int = 44100, seed: int = 0) -> Dict[str, np.ndarray]:
    """Render a random song of ``seconds`` (deterministic for ``seed``) as four stems.

    Returns ``{'vocals', 'drums', 'bass', 'other'}``, each a float32 array of shape
    ``(round(seconds * sample_rate), 2)``; their sum (:func:`mix`) peaks at most at 0.9.
    """
    check_args(seconds, seed, sample_rate)
    return render_plan(plan_song(seconds, seed), sample_rate)
