"""Where each input's stems go (``separate``'s naming, on any filesystem) and which inputs would clash.

``separate`` refuses a run whose outputs collide, before any work; a catalog cannot see all of its
inputs in one place, so it groups every claimed path by its identity (:func:`claims`) and turns each
clash into a failed record for the inputs involved (:func:`clashes`), worded as ``separate`` words it.
"""
from __future__ import annotations

import os
from typing import Dict, Iterator, List, Sequence, Tuple

from ..separate.naming import output_paths
from . import storage
from .job import CatalogJob

#: An absolute folder no input lives in: names are planned under it, then moved under ``-o``.
_ROOT = "/spleeter-ext-catalog-destination"


def check_job(job: CatalogJob) -> None:
    """Raise :class:`ParameterError` as ``separate`` does for an unknown codec, bitrate or template field,
    or a template that gives two stems of one input the same name: before any work, not once per input."""
    from ..audio import parse_bitrate

    output_paths(["input.wav"], _ROOT, job.instruments, job.codec, job.filename_format)
    if job.codec not in ("wav", "flac"):  # lossless codecs ignore the bitrate, as in separate
        parse_bitrate(job.bitrate)


def outputs_of(path: str, job: CatalogJob) -> Dict[str, str]:
    """``{instrument: stem path}`` of one input, under ``job.destination`` (any filesystem)."""
    plan = output_paths([path], _ROOT, job.instruments, job.codec, job.filename_format)[0]
    return {inst: storage.join(job.destination, os.path.relpath(str(p), _ROOT)) for inst, p in plan.items()}


#: ``(identity of a path, (input, stem path or "" for the input itself, instrument))``.
Claim = Tuple[str, Tuple[str, str, str]]


def claims(path: str, outputs: Dict[str, str]) -> Iterator[Claim]:
    """Every path one input reads or writes, keyed by identity."""
    yield storage.identity(path), (path, "", "")
    for inst, out in outputs.items():
        yield storage.identity(out), (path, out, inst)


def clashes(group: Sequence[Tuple[str, str, str]]) -> Iterator[Tuple[str, str]]:
    """``(input, error)`` for each input whose stem lands on another input's stem, or on an input."""
    writers: List[Tuple[str, str, str]] = sorted(c for c in group if c[1])
    read = sorted({c[0] for c in group if not c[1]})
    inputs = sorted({c[0] for c in writers})
    for path, out, _ in writers:
        if read:
            yield path, f"{path}: output {out} would overwrite an input file; choose another -o or -f"
        elif len(inputs) > 1:
            other = next((c for c in writers if c[0] != path))
            yield path, (f"{path}: output {out} would also be written for {other[0]} ({other[2]}); "
                         "add {filename} or {foldername} to the filename format (-f)")
