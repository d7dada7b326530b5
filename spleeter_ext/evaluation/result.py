"""The outcome of an evaluation: per-method tables, protocol and flags, and reading it back from disk."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import pandas as pd

from ..errors import ParameterError
from .metrics import TrackScores
from .oracle import ORACLES
from .report import OVERALL

__all__ = ["EvaluationResult"]


@dataclass
class EvaluationResult:
    """What :func:`~spleeter_ext.evaluation.evaluate.evaluate` produced.

    Attributes
    ----------
    output_dir : Path
    subset : str
    model : str or None
        Method name of the model (None for :func:`evaluate_oracles`).
    methods : list of str
        The model first, then the oracles, in report order.
    tables : dict
        ``method -> DataFrame`` of :func:`~spleeter_ext.evaluation.report.aggregate`: one row per
        instrument plus ``overall``; columns ``<M>_median`` (SiSEC18), ``<M>_mean``, ``uSDR_mean``...
    protocol : dict
        What was scored and how (also in ``report.protocol.json``).
    flags : dict
        ``method -> list of str``: sanity flags per method.
    scores : dict
        ``method -> list of TrackScores`` (empty when loaded from disk with :meth:`load`).
    timings : dict
        Seconds spent loading the model, separating, scoring and in total.
    """

    output_dir: Path
    subset: str
    model: Optional[str]
    methods: List[str]
    tables: Dict[str, pd.DataFrame]
    protocol: Dict[str, object]
    flags: Dict[str, List[str]]
    scores: Dict[str, List[TrackScores]] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def report_md(self) -> Path:
        return self.output_dir / "report.md"

    @property
    def report_csv(self) -> Path:
        return self.output_dir / "report.csv"

    @property
    def protocol_json(self) -> Path:
        return self.output_dir / "report.protocol.json"

    def overall(self, method: Optional[str] = None, column: str = "SDR_median") -> float:
        """The ``overall`` row's value of ``column`` for ``method`` (default: the model)."""
        method = method or self.model
        if method not in self.tables:
            raise ParameterError(f"no method {method!r} in this evaluation (have {self.methods})")
        table = self.tables[method]
        if column not in table.columns:
            raise ParameterError(f"no column {column!r} for {method} (have {list(table.columns)}); "
                                 "SIR/ISR/SAR need metrics='all'")
        return float(table.loc[OVERALL, column])

    def summary(self) -> pd.DataFrame:
        """All methods in one frame indexed by ``(method, target)`` (the content of ``report.csv``)."""
        frames = []
        for method in self.methods:
            table = self.tables[method].copy()
            table.insert(0, "kind", "oracle" if method in ORACLES else "model")
            table.insert(0, "method", method)
            frames.append(table.reset_index())
        return pd.concat(frames, ignore_index=True).set_index(["method", "target"])

    @classmethod
    def load(cls, output_dir: Union[str, Path]) -> "EvaluationResult":
        """Read a finished evaluation back from ``report.csv``, its protocol and ``flags.json``."""
        output_dir = Path(output_dir)
        csv, protocol_path, flags_path = (output_dir / "report.csv", output_dir / "report.protocol.json",
                                          output_dir / "flags.json")
        for path in (csv, protocol_path, flags_path):
            if not path.is_file():
                raise ParameterError(f"{path}: missing; {output_dir} holds no finished evaluation")
        frame = pd.read_csv(csv)
        protocol = json.loads(protocol_path.read_text())
        flags = json.loads(flags_path.read_text())
        methods = list(dict.fromkeys(frame["method"]))
        tables = {}
        for method in methods:
            table = frame[frame["method"] == method].drop(columns=["method", "kind"]).set_index("target")
            table.attrs["protocol"] = protocol
            tables[method] = table
        return cls(output_dir=output_dir, subset=str(protocol.get("subset")), model=protocol.get("model"),
                   methods=methods, tables=tables, protocol=protocol, flags=flags,
                   timings=dict(protocol.get("timings_seconds") or {}))
