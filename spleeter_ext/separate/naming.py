"""Output paths with Spleeter's filename templating (``{filename}``, ``{foldername}``,
``{instrument}``, ``{codec}``), checked for conflicts before any work starts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

from ..errors import ParameterError

DEFAULT_FORMAT = "{filename}/{instrument}.{codec}"
CODECS = ("wav", "mp3", "ogg", "m4a", "wma", "flac")


def output_paths(inputs: Sequence[str], destination: str, instruments: Sequence[str], codec: str,
                 filename_format: str = DEFAULT_FORMAT) -> List[Dict[str, Path]]:
    """For each input, ``{instrument: output path}``.

    Raises:
        ParameterError: an unknown template field, two outputs of the run mapping to the same path,
            or an output that would overwrite an input.
    """
    if codec not in CODECS:
        raise ParameterError(f"unknown codec '{codec}'; use one of {', '.join(CODECS)}")
    plans: List[Dict[str, Path]] = []
    seen: Dict[Path, str] = {}
    inputs_resolved = {Path(p).resolve() for p in inputs}
    for path in inputs:
        p = Path(path)
        fields = {"filename": p.stem if not p.name.endswith(".stem.mp4") else p.name[: -len(".stem.mp4")],
                  "foldername": p.resolve().parent.name, "codec": codec}
        plan: Dict[str, Path] = {}
        for inst in instruments:
            try:
                name = filename_format.format(instrument=inst, **fields)
            except (KeyError, IndexError, ValueError) as exc:
                raise ParameterError(f"filename format '{filename_format}': unknown or invalid field {exc}; "
                                     "use {filename}, {foldername}, {instrument} and {codec}") from None
            out = Path(destination) / name
            key = Path(os.path.abspath(out))
            if key in seen:
                raise ParameterError(f"{path}: output {out} would also be written for {seen[key]}; "
                                     "add {filename} or {foldername} to the filename format (-f)")
            if key.resolve() in inputs_resolved:
                raise ParameterError(f"{path}: output {out} would overwrite an input file; choose another -o or -f")
            seen[key] = f"{path} ({inst})"
            plan[inst] = out
        plans.append(plan)
    return plans
