"""Catalog inputs: audio files, folders, globs and manifests (one path per line, or CSV / JSONL with a
path column) on any filesystem Beam supports, expanded to the audio files they name.

Folders and globs keep files with an audio extension (:data:`AUDIO_EXTENSIONS`), skip hidden files
(temporary stems among them) and anything under the output folder; files named one by one, on the
command line or in a manifest, are taken as they are (a missing one becomes a failed record).
"""
from __future__ import annotations

import csv
import json
import os
from typing import Iterator, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

from . import storage

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wma",
                    ".aif", ".aiff", ".aifc", ".webm", ".mka")
#: Manifest extension -> layout.
MANIFESTS = {".txt": "lines", ".lst": "lines", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
GLOB_CHARACTERS = "*?["

#: ``(path, None)`` for an input, ``(what, error)`` for something that names no input.
Item = Tuple[str, Optional[str]]


def manifest_layout(spec: str) -> Optional[str]:
    return MANIFESTS.get(os.path.splitext(spec)[1].lower())


def _is_folder(spec: str) -> bool:
    if not storage.is_remote(spec):
        return os.path.isdir(spec)
    if spec.endswith("/"):
        return True
    return not storage.exists(spec) and bool(_match(spec + "/**"))


def _match(pattern: str):
    return [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]


def _keep(path: str, exclude: Optional[str]) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name.startswith(".") or not name.lower().endswith(AUDIO_EXTENSIONS):
        return False
    return exclude is None or not storage.identity(path).startswith(exclude.rstrip("/") + "/")


def _listing(spec: str, pattern: str, exclude: Optional[str]) -> Iterator[Item]:
    try:
        found = sorted(p for p in _match(pattern) if _keep(p, exclude))
    except Exception as exc:  # Beam raises its own error types for unreachable filesystems
        yield spec, f"{spec}: cannot list ({exc}); check the path and its permissions"
        return
    if not found:
        yield spec, (f"{spec}: no audio file found (looked for {', '.join(AUDIO_EXTENSIONS)}, outside the output "
                     "folder); check the path or pattern")
    for path in found:
        yield path, None


def _resolve(entry: str, manifest: str) -> str:
    """A manifest entry, relative ones taken from the manifest's folder."""
    entry = os.path.expanduser(entry)
    if storage.is_remote(entry) or os.path.isabs(entry):
        return entry
    if storage.is_remote(manifest):
        return FileSystems.join(FileSystems.split(manifest)[0], entry)
    return os.path.join(os.path.dirname(manifest), entry)


def read_manifest(manifest: str, column: str = "path") -> Iterator[Item]:
    """The paths a manifest names; a malformed line or a missing column gives an error item."""
    layout = manifest_layout(manifest)
    if not storage.exists(manifest):
        yield manifest, f"{manifest}: manifest not found; check the path"
        return
    lines = storage.read_text_lines(manifest)
    if layout == "lines":
        for line in lines:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield _resolve(entry, manifest), None
        return
    if layout == "csv":
        reader = csv.DictReader(lines)
        if reader.fieldnames is None or column not in reader.fieldnames:
            found = ", ".join(reader.fieldnames or []) or "none"
            yield manifest, (f"{manifest}: no '{column}' column (columns: {found}); name the column of paths "
                             f"'{column}' or pass --path-column")
            return
        for row in reader:
            entry = (row.get(column) or "").strip()
            if entry:
                yield _resolve(entry, manifest), None
            elif any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield f"{manifest}:{reader.line_num}", (f"{manifest} line {reader.line_num}: empty '{column}'; "
                                                        "give the audio file's path")
        return
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            entry = exc
        if not isinstance(entry, dict) or not isinstance(entry.get(column), str) or not entry[column].strip():
            yield f"{manifest}:{number}", (f"{manifest} line {number}: not a JSON object with a '{column}' string; "
                                           f"write one object per line, e.g. {{\"{column}\": \"song.wav\"}}")
            continue
        yield _resolve(entry[column].strip(), manifest), None


def expand(spec: str, column: str = "path", exclude: Optional[str] = None) -> Iterator[Item]:
    """What one command-line input names: a manifest's entries, a folder's or a glob's audio files, or
    the file itself. ``exclude`` is the output folder (its :func:`storage.identity`)."""
    spec = storage.normalise(spec)
    if manifest_layout(spec):
        for path, error in read_manifest(spec, column):
            yield (path, error) if error else (storage.normalise(path), None)
    elif any(c in spec for c in GLOB_CHARACTERS):
        yield from _listing(spec, spec, exclude)
    elif _is_folder(spec):
        yield from _listing(spec, spec.rstrip("/") + "/**", exclude)
    else:
        yield spec, None
