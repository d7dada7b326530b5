"""What a catalog run is asked to do (:class:`CatalogJob`), what one input became (a results record)
and what the whole run did (:class:`CatalogSummary`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import SpleeterExtError
from ..separate.naming import DEFAULT_FORMAT

#: The results manifest, beside the stems unless ``--results`` says otherwise.
RESULTS_NAME = "catalog-results.jsonl"
#: Statuses of a results record.
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
STATUSES = (DONE, FAILED, SKIPPED)
#: Failed inputs printed by the CLI (the manifest holds them all).
SHOWN_ERRORS = 20


def require_beam() -> None:
    """Raise a one-line error when Apache Beam is not installed."""
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise SpleeterExtError("apache-beam is not installed; run 'make install' or "
                               "pip install 'spleeter-ext[catalog]'") from None


@dataclass(frozen=True)
class CatalogJob:
    """Settings of a catalog run; shipped to every worker (picklable, small).

    ``params``, ``destination``, ``codec``, ``bitrate`` and ``filename_format`` mean what they mean
    for ``separate``; ``instruments`` are the model's stems (read from its config at launch when empty);
    ``threads`` are TensorFlow's CPU threads per worker (``None``: all cores).
    """

    params: str
    destination: str
    instruments: Sequence[str] = ()
    codec: str = "wav"
    bitrate: str = "128k"
    filename_format: str = DEFAULT_FORMAT
    overwrite: bool = False
    path_column: str = "path"
    threads: Optional[int] = None
    verbose: bool = False


def record(input_path: str, status: str, outputs: Optional[Dict[str, str]] = None,
           audio_seconds: Optional[float] = None, wall_seconds: Optional[float] = None,
           error: Optional[str] = None) -> Dict[str, object]:
    """One line of the results manifest."""
    assert status in STATUSES, status
    return {"input": input_path, "status": status, "outputs": dict(outputs or {}),
            "audio_seconds": None if audio_seconds is None else round(float(audio_seconds), 3),
            "wall_seconds": None if wall_seconds is None else round(float(wall_seconds), 3),
            "error": error}


@dataclass
class CatalogSummary:
    """Counts of a finished run, read back from its results manifest."""

    results: str
    counts: Dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    errors: List[str] = field(default_factory=list)
    audio_seconds: float = 0.0

    def add(self, rec: Dict[str, object]) -> None:
        self.counts[rec["status"]] += 1
        if rec["status"] == FAILED and len(self.errors) < SHOWN_ERRORS:
            self.errors.append(str(rec["error"]))
        if rec["status"] == DONE and rec.get("audio_seconds"):
            self.audio_seconds += float(rec["audio_seconds"])

    @property
    def failed(self) -> int:
        return self.counts[FAILED]

    def line(self) -> str:
        c = self.counts
        s = self.audio_seconds
        audio = f"{s:.1f} s" if s < 600 else f"{s / 60:.1f} min" if s < 36000 else f"{s / 3600:.1f} h"
        return (f"{c[DONE]} done ({audio} of audio), {c[SKIPPED]} skipped "
                f"(stems already complete), {c[FAILED]} failed; results: {self.results}")

    @classmethod
    def read(cls, lines, results: str) -> "CatalogSummary":
        summary = cls(results)
        for line in lines:
            if line.strip():
                summary.add(json.loads(line))
        return summary
