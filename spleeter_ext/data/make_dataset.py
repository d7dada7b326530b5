"""Write a synthetic dataset in MUSDB18-HQ's layout (MUSDB18 cannot be downloaded here).

``make_dataset(out, n_train, n_test, seconds)`` writes::

    out/train/Synth 0001 - Velvet Harbor/{mixture,vocals,drums,bass,other}.wav
    out/test/Synth 0009 - Paper Lanterns/...
    out/meta.json

which ``musdb.DB(root=out, is_wav=True)`` loads like MUSDB18-HQ: stereo 44.1 kHz 16-bit PCM wav.

**Exactness guarantee.** The stems are quantised to 16-bit integers and ``mixture.wav`` holds
their integer sum (no clipping is possible: the float mixture peaks at most at 0.9).  Read back
as floats (soundfile/musdb divide by 32768), ``mixture == vocals + drums + bass + other``
*exactly*, sample by sample, since every value is a multiple of 2**-15 far inside float64's
(and float32's) exact-integer range.  (musdb 0.4 decodes wav files through ffmpeg as 16-bit
integers, so a float mixture.wav would be requantised anyway: PCM_16 is both MUSDB18-HQ's format
and exactly what musdb reads.)

**Validation split.** musdb's ``split='train'/'valid'`` uses the 14 MUSDB18 track names of its
own setup file, which synthetic tracks never match.  ``meta.json`` instead lists the validation
tracks -- the last ~15 % of the training tracks -- under ``"validation"``; read them with
:func:`validation_tracks` and filter ``musdb.DB(root, is_wav=True, subsets='train')`` by name.

**Robustness.** Each track is written into ``out/.incomplete/`` and renamed into place, so an
interrupted run never leaves a half track; a rerun with the same settings skips finished tracks
(resume) and regenerates the rest identically (every track's seed derives from ``seed`` and its
number).  ``jobs > 1`` renders tracks in parallel processes.  Run one writer per folder at a time.

Command line: ``spleeter-ext make-dataset OUT [--train N] [--test N] [--seconds S]``.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import soundfile as sf

from .._version import __version__
from ..config import DATASET_SECONDS, DATASET_TEST_TRACKS, DATASET_TRAIN_TRACKS
from ..errors import DatasetError, ParameterError
from ..log import logger, track
from . import synth

__all__ = ["make_dataset", "read_meta", "validation_tracks", "track_name", "track_seed", "ENGINES",
           "SAMPLE_RATE", "VALIDATION_FRACTION"]

ENGINES = ("numpy", "realistic")
SAMPLE_RATE = 44100
VALIDATION_FRACTION = 0.15
FILES = ("mixture",) + synth.STEMS
META = "meta.json"
_INCOMPLETE = ".incomplete"
_FORMAT = 1  # bump when the on-disk layout or the seed derivation changes

_ADJECTIVES = ("Velvet", "Paper", "Silver", "Hollow", "Electric", "Quiet", "Golden", "Midnight",
               "Crimson", "Broken", "Distant", "Northern", "Wild", "Glass", "Neon", "Faded",
               "Secret", "Summer", "Winter", "Lonely", "Bright", "Burning", "Hidden", "Endless",
               "Restless", "Amber", "Blue", "Copper", "Gentle", "Silent")
_NOUNS = ("Harbor", "Lanterns", "Rivers", "Highway", "Mirrors", "Satellites", "Gardens", "Echoes",
          "Horizon", "Streets", "Letters", "Shadows", "Engines", "Islands", "Windows", "Stars",
          "Heartbeat", "Valley", "Thunder", "Ocean", "Signals", "Parade", "Station", "Orchard",
          "Machines", "Weather", "Carousel", "Lighthouse", "Canyon", "Radio")


def track_seed(seed: int, index: int) -> int:
    """The render seed of track number ``index`` (1-based) of a dataset made with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


def track_name(seed: int, index: int) -> str:
    """``'Synth 0001 - Velvet Harbor'``: number and random words (deterministic)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index), 1])))
    words = [_ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))], _NOUNS[int(rng.integers(len(_NOUNS)))]]
    if rng.random() < 0.3:
        words.insert(0, "The")
    return f"Synth {index:04d} - {' '.join(words)}"


def _renderer(engine: str) -> Callable[..., Dict[str, np.ndarray]]:
    if engine == "numpy":
        return synth.render_track
    from . import realistic

    return realistic.render_track


def _quantize(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def _write_track(folder: Path, stems: Dict[str, np.ndarray]) -> None:
    """Write the 16-bit stems and their exact integer sum as the mixture."""
    ints = {name: _quantize(stems[name]) for name in synth.STEMS}
    total = sum(ints[name].astype(np.int32) for name in synth.STEMS)
    if np.abs(total).max() > 32767:
        raise DatasetError(f"{folder.name}: the mixture would clip ({int(np.abs(total).max())} > 32767); "
                           "the renderer must keep the mixture peak at most 0.9")
    ints["mixture"] = total.astype(np.int16)
    for name in FILES:
        sf.write(str(folder / f"{name}.wav"), ints[name], SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _render_one(out: str, subset: str, name: str, seed: int, seconds: float, engine: str,
                style: Optional[Dict[str, object]] = None) -> str:
    """Render one track into ``out/.incomplete`` then move it to ``out/<subset>/<name>`` (atomic)."""
    root = Path(out)
    final = root / subset / name
    tmp = root / _INCOMPLETE / f"{name}.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        stems = _renderer(engine)(seconds, SAMPLE_RATE, seed, **(style or {}))
        _write_track(tmp, stems)
        if final.exists():  # a stale incomplete folder (files deleted by hand): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return name


def _is_complete(folder: Path) -> bool:
    return all((folder / f"{name}.wav").is_file() for name in FILES)


def read_meta(root: Union[str, Path]) -> Dict[str, object]:
    """The ``meta.json`` of a synthetic dataset (generator settings, tracks, validation names)."""
    path = Path(root) / META
    if not path.is_file():
        raise DatasetError(f"{path}: missing; {root} is not a synthetic dataset, make one with make_dataset()")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc}); delete it and rerun make_dataset()") from exc


def validation_tracks(root: Union[str, Path]) -> List[str]:
    """Names of the training tracks held out for validation (the last ~15 % of ``train``)."""
    return list(read_meta(root)["validation"])  # type: ignore[arg-type]


def _check(n_train: int, n_test: int, seconds: float, seed: int, engine: str, jobs: int) -> None:
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"{key}={value!r} is not a non-negative integer; pass e.g. {key}=10")
    if n_train + n_test == 0:
        raise ParameterError("n_train=0 and n_test=0 make an empty dataset; ask for at least one track")
    synth.check_args(seconds, seed, SAMPLE_RATE)
    if engine not in ENGINES:
        raise ParameterError(f"engine={engine!r} is unknown; pass one of {', '.join(ENGINES)}")
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ParameterError(f"jobs={jobs!r} is not a positive integer; pass e.g. jobs=1")


def _write_json(path: Path, data: Dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def make_dataset(out: Union[str, Path], n_train: int = DATASET_TRAIN_TRACKS, n_test: int = DATASET_TEST_TRACKS,
                 seconds: float = DATASET_SECONDS, seed: int = 0, engine: str = "numpy", jobs: int = 1,
                 style: Optional[Dict[str, object]] = None) -> Path:
    """Write ``n_train`` + ``n_test`` synthetic songs of ``seconds`` in MUSDB18-HQ's wav layout.

    ``engine`` is ``'numpy'`` (:mod:`.synth`, fast, no system dependency) or ``'realistic'``
    (:mod:`.realistic`: mma + fluidsynth + festival).  Returns ``Path(out)``.  Resumes an
    interrupted run made with the same settings; raises :class:`DatasetError` if ``out`` holds a
    dataset made with other settings or something that is not a synthetic dataset.  ``style`` passes
    ``soundfont``/``grooves`` to the realistic engine (a test set under a shift of timbre and style).
    """
    _check(n_train, n_test, seconds, seed, engine, jobs)
    if style and engine != "realistic":
        raise ParameterError(f"style={style!r} needs engine='realistic'")
    if engine == "realistic":
        from . import realistic

        realistic.check_dependencies()
    root = Path(out)
    settings = {"engine": engine, "seed": int(seed), "seconds": float(seconds), "n_train": int(n_train),
                "n_test": int(n_test), "sample_rate": SAMPLE_RATE, "format": _FORMAT}
    if style:
        settings["style"] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in style.items()}
    meta_path = root / META
    if meta_path.is_file():
        old = read_meta(root)
        diff = [f"{k}={old.get(k)!r}" for k, v in settings.items() if old.get(k) != v]
        if diff:
            raise DatasetError(f"{meta_path}: the dataset there was made with {', '.join(diff)}; pass the same "
                               "settings to resume it, or choose another output folder")
    elif any(any((root / s).iterdir()) for s in ("train", "test") if (root / s).is_dir()):
        raise DatasetError(f"{root}: holds train/test tracks but no {META}, so it is not a synthetic dataset; "
                           "choose an empty or new output folder")
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root / _INCOMPLETE, ignore_errors=True)  # leftovers of an interrupted run

    n_val = max(1, round(VALIDATION_FRACTION * n_train)) if n_train >= 2 else 0
    tasks = []
    for index in range(1, n_train + n_test + 1):
        subset = "train" if index <= n_train else "test"
        tasks.append({"name": track_name(seed, index), "subset": subset, "index": index,
                      "seed": track_seed(seed, index), "validation": subset == "train" and index > n_train - n_val})
    for subset in ("train", "test"):
        (root / subset).mkdir(exist_ok=True)
    meta: Dict[str, object] = {
        "generator": "spleeter_ext.data.make_dataset", "version": __version__, **settings,
        "layout": "MUSDB18-HQ wav: <subset>/<track>/{mixture,vocals,drums,bass,other}.wav",
        "subtype": "PCM_16",
        "guarantee": "mixture.wav is the integer sum of the PCM_16 stems: read as float, mixture == "
                     "vocals + drums + bass + other exactly, sample by sample",
        "validation_fraction": VALIDATION_FRACTION,
        "validation": [t["name"] for t in tasks if t["validation"]],
        "tracks": [dict(t, **_musical_summary(int(t["seed"]), float(seconds), engine)) for t in tasks],
        "complete": False,
    }
    _write_json(meta_path, meta)

    pending = [t for t in tasks if not _is_complete(root / str(t["subset"]) / str(t["name"]))]
    if len(pending) < len(tasks):
        logger.info("%s: %d of %d tracks already complete; rendering the other %d", root,
                    len(tasks) - len(pending), len(tasks), len(pending))
    args = [(str(root), str(t["subset"]), str(t["name"]), int(t["seed"]), float(seconds), engine, style)
            for t in pending]
    for _ in track(_run_all(args, jobs), total=len(args), desc=f"synthetic {engine} tracks", unit="track"):
        pass
    meta["complete"] = True
    _write_json(meta_path, meta)
    shutil.rmtree(root / _INCOMPLETE, ignore_errors=True)
    logger.info("wrote %d train and %d test tracks (%d for validation) to %s", n_train, n_test, n_val, root)
    return root


def _musical_summary(seed: int, seconds: float, engine: str) -> Dict[str, object]:
    """Tempo, key and chords of a track (both engines play :func:`synth.plan_song`'s harmony)."""
    plan = synth.plan_song(seconds, seed)
    summary = plan.summary()
    if engine != "numpy":
        summary.pop("groove")  # the realistic engine plays an mma groove instead
    return summary


def _run_all(args: Sequence[tuple], jobs: int) -> Iterator[str]:
    """Render tracks, yielding each name when done; parallel processes when ``jobs > 1``."""
    if jobs == 1 or len(args) <= 1:
        for a in args:
            yield _render_one(*a)
        return
    # fork where available: unlike spawn it needs no ``if __name__ == "__main__"`` guard in the
    # caller's script, and the workers only run numpy/scipy/soundfile code and subprocesses
    context = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(args)), mp_context=context) as pool:
        futures = {pool.submit(_render_one, *a) for a in args}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_EXCEPTION)
                for f in done:
                    yield f.result()
        finally:
            for f in futures:
                f.cancel()
