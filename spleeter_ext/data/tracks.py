"""Dataset discovery: MUSDB18 (stems or wav), plain folder trees and Spleeter CSVs as one list of tracks.

Every layout becomes a list of :class:`Track` in a stable order, so that the training pipeline
(:mod:`spleeter_ext.data.pipeline`) and the evaluation code never care where the audio came from.

Layouts recognised by :func:`discover` (``root`` is the data root):

``MUSDB18`` stems release
    ``root/{train,test}/<name>.stem.mp4``; one file per track whose audio streams are
    0 mixture, 1 drums, 2 bass, 3 other, 4 vocals (musdb's ``stem_ids``).
``MUSDB18-HQ`` wav release, synthetic sets, plain folder trees
    ``root/{train,test}/<name>/<instrument>.<ext>`` with any audio extension (``.wav``, ``.flac``,
    ``.mp3``...) and any instrument names (the config's ``instrument_list``), plus an optional
    ``mixture.<ext>``. Discovered from the folders directly: musdb (and its ffmpeg binary) is not needed.
Spleeter CSV (``csv=``)
    columns ``<instrument>_path`` for every instrument, optional ``mix_path`` and ``duration``;
    paths relative to ``root`` (as in Spleeter's ``train_csv``/``validation_csv``).

Splits of the MUSDB-style layouts follow musdb (``musdb.DB(split=...)``): tracks sorted by name,
``test`` is ``root/test``, and ``train``/``valid`` divide ``root/train`` by a list of validation
names. That list is, in order of preference:

1. musdb's standard 14 ``validation_tracks`` (read from the installed ``musdb/configs/mus.yaml``
   without importing musdb) when any of them is a track of ``root/train``;
2. the ``validation`` list of ``root/meta.json`` (written by :mod:`spleeter_ext.data.make_dataset`;
   ``validation_tracks`` is accepted too);
3. a declared deterministic split: the last 15 % of the sorted train names (logged at INFO).

Derived targets: an instrument without a file of its own that musdb defines as a sum of stems
(``accompaniment`` = drums + bass + other, ``linear_mixture``) is supported when those stems exist;
:meth:`Track.refs` gives the files whose sum is the instrument.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import AudioError, DatasetError, ParameterError
from ..log import logger

SUBSETS = ("train", "valid", "test")
STEM_SUFFIX = ".stem.mp4"
#: File extensions accepted for stems of folder trees, in order of preference when several exist.
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".aif", ".aiff", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma",
                    ".mp4")
#: Names of the mixture file in a track folder (any audio extension).
MIXTURE_NAMES = ("mixture", "mix")
#: Fraction of the sorted train names held out when no validation list applies.
FALLBACK_VALID_FRACTION = 0.15

# musdb's setup, used only when the installed musdb/configs/mus.yaml cannot be read.
_MUSDB_STEM_IDS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
_MUSDB_DERIVED = {"accompaniment": ("bass", "drums", "other"), "linear_mixture": ("vocals", "bass", "drums", "other")}
# (root, held-out names) of the declared fallback splits already logged.
_ANNOUNCED_SPLITS: set = set()


@dataclass(frozen=True)
class SourceRef:
    """One audio stream on disk: ``path`` and the audio ``stream`` index inside it (0 for plain files)."""

    path: str
    stream: int = 0


class Track:
    """One song of a dataset.

    Attributes:
        name: track name (folder name, stem-file name without ``.stem.mp4``, or CSV-derived).
        subset: ``'train'``, ``'valid'`` or ``'test'``: the split it was discovered for.
        sources: ``{stem: SourceRef}`` for every stem file the requested instruments need. Equal to the
            instrument list unless an instrument is derived (see ``derived``).
        mixture: the file's own mixture when the layout has one, else None. The training and validation
            pipelines never use it (they sum the sources); it is there for evaluation.
        derived: ``{instrument: (stem, ...)}`` for instruments that are a sum of stems of ``sources``
            (musdb's targets, e.g. ``accompaniment``).
        duration: seconds (shortest of the track's streams), probed from file headers on first access
            unless given (e.g. by a CSV's ``duration`` column).
        sample_rate: native sample rate (Hz) of the first source, probed on first access unless given.
    """

    __slots__ = ("name", "subset", "sources", "mixture", "derived", "_duration", "_sample_rate")

    def __init__(self, name: str, subset: str, sources: Dict[str, SourceRef], mixture: Optional[SourceRef] = None,
                 duration: Optional[float] = None, sample_rate: Optional[int] = None,
                 derived: Optional[Dict[str, Tuple[str, ...]]] = None):
        self.name = name
        self.subset = subset
        self.sources = dict(sources)
        self.mixture = mixture
        self.derived = dict(derived or {})
        self._duration = None if duration is None else float(duration)
        self._sample_rate = None if sample_rate is None else int(sample_rate)

    def refs(self, instrument: str) -> Tuple[SourceRef, ...]:
        """The stream(s) whose sum is ``instrument``: one for a stem file, several for a derived target."""
        if instrument in self.derived:
            return tuple(self.sources[s] for s in self.derived[instrument])
        if instrument in self.sources:
            return (self.sources[instrument],)
        raise DatasetError(f"track '{self.name}': no stem '{instrument}' (it has {', '.join(self.sources)}); "
                           "discover the dataset again with this instrument in the instrument list")

    @property
    def duration(self) -> float:
        if self._duration is None:
            self.probe()
        return self._duration

    @property
    def sample_rate(self) -> int:
        if self._sample_rate is None:
            self.probe()
        return self._sample_rate

    def probe(self) -> "Track":
        """Read the headers of every stream of the track (cheap: nothing is decoded, each file is opened
        once with a small probe size) and fill in ``duration`` (the shortest stream) and ``sample_rate``
        if unknown.

        Raises:
            DatasetError: a file is missing, unreadable or empty (the message names the track and file).
        """
        from ..audio import io as audio_io

        refs = list(dict.fromkeys(list(self.sources.values()) + ([self.mixture] if self.mixture else [])))
        files: Dict[str, List[SourceRef]] = {}
        for ref in refs:
            files.setdefault(ref.path, []).append(ref)
        infos = {}
        for path, group in files.items():
            try:
                infos.update(zip(group, audio_io.probe_streams(path, [ref.stream for ref in group])))
            except AudioError as exc:
                raise DatasetError(f"track '{self.name}': cannot read {_describe(*group)}: {exc}; "
                                   "replace or re-download the file, or remove the track") from None
        durations, rate = [], None
        for ref in refs:
            info = infos[ref]
            if not info.duration or info.duration <= 0:
                raise DatasetError(f"track '{self.name}': {_describe(ref)} is empty (duration {info.duration}); "
                                   "replace the file or remove the track")
            durations.append(float(info.duration))
            rate = rate or int(info.sample_rate)
        if self._duration is None:
            self._duration = min(durations)
        if self._sample_rate is None:
            self._sample_rate = rate
        return self

    def __repr__(self) -> str:
        duration = "?" if self._duration is None else f"{self._duration:.2f}s"
        return f"Track({self.name!r}, subset={self.subset!r}, sources={list(self.sources)}, duration={duration})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Track):
            return NotImplemented
        return (self.name, self.subset, self.sources, self.mixture, self.derived) == (
            other.name, other.subset, other.sources, other.mixture, other.derived)

    __hash__ = None


def _describe(*refs: SourceRef) -> str:
    """The file of ``refs`` (streams of one file), with their stream indices when they matter."""
    if len(refs) > 1:
        return f"{refs[0].path} (streams {', '.join(str(ref.stream) for ref in refs)})"
    ref = refs[0]
    return ref.path if ref.stream == 0 and not ref.path.endswith(STEM_SUFFIX) else f"{ref.path} (stream {ref.stream})"


# ------------------------------------------------------------------------------------------------ musdb setup
@functools.lru_cache(maxsize=1)
def musdb_setup() -> dict:
    """musdb's ``configs/mus.yaml`` read from the installed package file (musdb is not imported, so the
    ffmpeg binary its import wants is not needed). An empty dict when musdb is not installed."""
    spec = importlib.util.find_spec("musdb")
    if spec is None or not spec.submodule_search_locations:
        logger.debug("musdb is not installed: its standard validation split is unavailable")
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "configs" / "mus.yaml"
    try:
        import yaml

        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ImportError, ValueError) as exc:
        logger.debug("cannot read %s: %s", path, exc)
        return {}


def musdb_validation_tracks() -> List[str]:
    """musdb's standard validation track names (14 names of MUSDB18's train set)."""
    return list(musdb_setup().get("validation_tracks") or [])


def musdb_stem_ids() -> Dict[str, int]:
    """Stream index of each stem in a MUSDB18 ``.stem.mp4`` file (``mixture`` is 0)."""
    return dict(musdb_setup().get("stem_ids") or _MUSDB_STEM_IDS)


def musdb_derived_targets() -> Dict[str, Tuple[str, ...]]:
    """musdb's targets that are sums of several stems, e.g. ``accompaniment``: ``(bass, drums, other)``."""
    targets = musdb_setup().get("targets")
    if not targets:
        return dict(_MUSDB_DERIVED)
    return {name: tuple(parts) for name, parts in targets.items() if len(parts) > 1}


# ------------------------------------------------------------------------------------------------ discovery
def discover(root: "str | Path", instruments: Sequence[str], subset: str = "train",
             csv: "str | Path | None" = None, probe: bool = True) -> List[Track]:
    """Find the tracks of one subset of a dataset.

    Args:
        root: data root (MUSDB18 / MUSDB18-HQ / synthetic / folder tree root, or the folder CSV paths
            are relative to).
        instruments: stems to load, in output order (the config's ``instrument_list``).
        subset: ``'train'``, ``'valid'`` (the validation split of ``root/train``) or ``'test'``.
            With ``csv`` the CSV *is* the subset and ``subset`` only labels the tracks.
        csv: a Spleeter CSV (``train_csv``/``validation_csv``); relative paths are tried against the
            working directory, then ``root``.
        probe: read every file's header now (cheap), so that an unreadable track fails here rather than
            during training, and durations are known. With False they are probed on first use.

    Returns:
        Tracks in musdb order (sorted by name; CSV: row order).

    Raises:
        DatasetError: missing root, unknown layout, empty subset, missing stem file or column,
            unreadable file (the message names it and says how to fix it).
        ParameterError: unknown ``subset`` or empty ``instruments``.
    """
    if subset not in SUBSETS:
        raise ParameterError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    instruments = list(instruments)
    if not instruments or not all(isinstance(i, str) and i for i in instruments):
        raise ParameterError(f"instruments must be a non-empty list of names, got {instruments!r}")
    root = Path(root).expanduser()
    if csv is not None:
        tracks = _discover_csv(root, _resolve_csv(root, csv), instruments, subset)
    else:
        if not root.is_dir():
            raise DatasetError(f"{root}: no such dataset folder; pass the root of a MUSDB18(-HQ) copy, "
                               "a folder tree root/{train,test}/<track>/<instrument>.wav or a CSV")
        if not (root / "train").is_dir() and not (root / "test").is_dir():
            raise DatasetError(f"{root}: no train/ or test/ folder; expected root/{{train,test}}/<track>.stem.mp4 "
                               "or root/{train,test}/<track>/<instrument>.<ext> (or pass a CSV)")
        folder = root / ("test" if subset == "test" else "train")
        if not folder.is_dir():
            raise DatasetError(f"{folder}: missing; the '{subset}' subset lives in {folder.name}/ of the dataset root")
        stems = sorted(p.name for p in folder.iterdir() if p.name.endswith(STEM_SUFFIX) and p.is_file())
        if stems:
            names = [n[: -len(STEM_SUFFIX)] for n in stems]
        else:
            names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise DatasetError(f"{folder}: no tracks found; expected <track>.stem.mp4 files or "
                               "<track>/<instrument>.<ext> folders")
        if subset != "test":
            valid = validation_names(root, names)
            names = [n for n in names if (n in valid) == (subset == "valid")]
            if not names:
                raise DatasetError(f"{folder}: the '{subset}' split is empty ({len(valid)} validation names); "
                                   "add tracks or edit the validation list of meta.json")
        if stems:
            tracks = [_stem_track(folder / f"{n}{STEM_SUFFIX}", n, instruments, subset) for n in names]
        else:
            tracks = [_folder_track(folder / n, n, instruments, subset) for n in names]
    if probe:
        for track in tracks:
            track.probe()
    logger.debug("discovered %d %s tracks in %s", len(tracks), subset, csv or root)
    return tracks


def validation_names(root: "str | Path", train_names: Iterable[str]) -> List[str]:
    """The names of ``root/train`` held out for validation (see the module docstring for the rule)."""
    train_names = sorted(train_names)
    present = set(train_names)
    standard = [n for n in musdb_validation_tracks() if n in present]
    if standard:
        return standard
    meta = Path(root) / "meta.json"
    if meta.is_file():
        try:
            content = json.loads(meta.read_text(encoding="utf-8"))
            listed = content.get("validation", content.get("validation_tracks"))
        except (OSError, ValueError, AttributeError) as exc:
            raise DatasetError(f"{meta}: cannot read its validation list ({exc}); fix or delete the file") from None
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                raise DatasetError(f"{meta}: 'validation' must be a list of track names")
            unknown = [n for n in listed if n not in present]
            if unknown:
                logger.warning("%s: validation track(s) %s are not in %s; ignored", meta, ", ".join(unknown),
                               Path(root) / "train")
            return [n for n in listed if n in present]
    n_valid = max(1, round(FALLBACK_VALID_FRACTION * len(train_names))) if len(train_names) > 1 else 0
    held = train_names[len(train_names) - n_valid:]
    announcement = (str(root), tuple(held))
    if announcement not in _ANNOUNCED_SPLITS:  # once per dataset, not once per subset discovered
        _ANNOUNCED_SPLITS.add(announcement)
        logger.info("%s: no musdb validation tracks and no meta.json list; holding out the last %d of %d sorted "
                    "train tracks for validation (%s)", root, n_valid, len(train_names), ", ".join(held) or "none")
    return held


def _find_audio(folder: Path, stem: str) -> Optional[Path]:
    """``folder/<stem>.<ext>`` for the first accepted audio extension present (case-insensitive)."""
    found = {}
    for path in folder.iterdir():
        suffix = path.suffix.lower()
        if path.stem == stem and suffix in AUDIO_EXTENSIONS and path.is_file():
            found[suffix] = path
    for ext in AUDIO_EXTENSIONS:
        if ext in found:
            return found[ext]
    return None


def _folder_track(folder: Path, name: str, instruments: List[str], subset: str) -> Track:
    sources: Dict[str, SourceRef] = {}
    derived: Dict[str, Tuple[str, ...]] = {}
    derivable = musdb_derived_targets()
    for inst in instruments:
        path = _find_audio(folder, inst)
        if path is not None:
            sources[inst] = SourceRef(str(path))
            continue
        parts = derivable.get(inst)
        part_paths = [_find_audio(folder, p) for p in parts] if parts else []
        if parts and all(part_paths):
            derived[inst] = tuple(parts)
            sources.update({p: SourceRef(str(pp)) for p, pp in zip(parts, part_paths)})
            continue
        extra = f" (or its parts {', '.join(parts)})" if parts else ""
        raise DatasetError(f"track '{name}': missing stem file {folder / inst}.wav{extra} "
                           f"(any of {', '.join(AUDIO_EXTENSIONS)}); every track folder needs one file per "
                           f"instrument of {instruments}")
    mixture = next((p for p in (_find_audio(folder, m) for m in MIXTURE_NAMES) if p), None)
    return Track(name, subset, sources, SourceRef(str(mixture)) if mixture else None, derived=derived)


def _stem_track(path: Path, name: str, instruments: List[str], subset: str) -> Track:
    ids = musdb_stem_ids()
    derivable = musdb_derived_targets()
    sources: Dict[str, SourceRef] = {}
    derived: Dict[str, Tuple[str, ...]] = {}
    for inst in instruments:
        if inst in ids and inst != "mixture":
            sources[inst] = SourceRef(str(path), ids[inst])
        elif inst in derivable:
            derived[inst] = tuple(derivable[inst])
            sources.update({p: SourceRef(str(path), ids[p]) for p in derivable[inst]})
        else:
            known = [s for s in ids if s != "mixture"] + list(derivable)
            raise DatasetError(f"track '{name}': {path} has no stem '{inst}'; MUSDB18 stem files hold "
                               f"{', '.join(known)}; use a folder tree or a CSV for other instruments")
    return Track(name, subset, sources, SourceRef(str(path), ids.get("mixture", 0)), derived=derived)


# ------------------------------------------------------------------------------------------------ CSV
def _resolve_csv(root: Path, csv: "str | Path") -> Path:
    csv = Path(csv).expanduser()
    for candidate in ([csv] if csv.is_absolute() else [csv, root / csv]):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{csv}: no such CSV file (also tried {root / csv}); check train_csv/validation_csv")


def _discover_csv(root: Path, csv: Path, instruments: List[str], subset: str) -> List[Track]:
    import pandas as pd

    try:
        frame = pd.read_csv(csv)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{csv}: cannot parse the CSV ({exc}); it needs columns "
                           f"{', '.join(f'{i}_path' for i in instruments)} [, mix_path, duration]") from None
    missing = [f"{i}_path" for i in instruments if f"{i}_path" not in frame.columns]
    if missing:
        raise DatasetError(f"{csv}: missing column(s) {', '.join(missing)}; a Spleeter CSV has one "
                           f"'<instrument>_path' column per instrument (columns: {', '.join(frame.columns)})")
    if frame.empty:
        raise DatasetError(f"{csv}: no rows; add one row per track")
    tracks = []
    for row_number, row in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        paths = {i: _csv_path(root, csv, row_number, row[f"{i}_path"]) for i in instruments}
        mix = row.get("mix_path")
        mixture = _csv_path(root, csv, row_number, mix) if isinstance(mix, str) and mix else None
        first = mixture or paths[instruments[0]]
        parent = first.parent
        name = parent.name if parent != root and parent.name else first.stem
        for inst, path in paths.items():
            if not path.is_file():
                raise DatasetError(f"{csv} line {row_number} (track '{name}'): missing stem file {path} "
                                   f"for column {inst}_path; paths are relative to the data root {root}")
        duration = row.get("duration")
        duration = float(duration) if duration is not None and not _is_nan(duration) else None
        tracks.append(Track(name, subset, {i: SourceRef(str(p)) for i, p in paths.items()},
                            SourceRef(str(mixture)) if mixture is not None and mixture.is_file() else None,
                            duration=duration))
    return tracks


def _csv_path(root: Path, csv: Path, row_number: int, value) -> Path:
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{csv} line {row_number}: empty path; every row needs a path per instrument")
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _is_nan(value) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True
