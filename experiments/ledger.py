"""The committed results of the experiments: CSV files that accumulate across sessions.

``runs.csv``: one row per trained model, seed and test set (museval metrics per target);
``curves.csv``: the validation SDR of every run at its curve steps; ``oracles.csv``: the oracle
rows per test set. Rows are keyed by config, steps, batch size, seed and data fingerprint (plus the
test set or step); the commit that produced a row is recorded beside it, and a newer row with the same
key replaces an older one. Tables and figures are regenerated from these files alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import pandas as pd

RUN_KEY = ("config", "steps", "batch_size", "seed", "data", "testset")
CURVE_KEY = ("config", "batch_size", "seed", "data", "step")
ORACLE_KEY = ("method", "data", "testset")


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return str(a) == str(b)


class Ledger:
    """The CSV files of one budget's results folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.paths = {"runs": self.folder / "runs.csv", "curves": self.folder / "curves.csv",
                      "oracles": self.folder / "oracles.csv"}

    def frame(self, name: str) -> pd.DataFrame:
        path = self.paths[name]
        if not path.is_file():
            return pd.DataFrame()
        return pd.read_csv(path, dtype={"data": str, "commit": str, "collapsed": str}, keep_default_na=True)

    def rows(self, name: str, **match) -> List[dict]:
        frame = self.frame(name)
        if frame.empty:
            return []
        out = []
        for row in frame.to_dict("records"):
            if all(_same(row.get(k), v) for k, v in match.items()):
                out.append({k: ("" if isinstance(v, float) and np.isnan(v) and k in ("collapsed", "commit") else v)
                            for k, v in row.items()})
        return out

    def find(self, name: str, **key) -> Optional[dict]:
        found = self.rows(name, **key)
        return found[-1] if found else None

    def add(self, name: str, rows: Iterable[dict], key: Sequence[str]) -> None:
        """Insert ``rows``, replacing rows with the same ``key``; the file is rewritten atomically and sorted."""
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        old = self.frame(name)
        frame = pd.concat([old, new], ignore_index=True) if not old.empty else new
        frame = frame.drop_duplicates(subset=list(key), keep="last")
        frame = frame.sort_values(list(key), kind="stable").reset_index(drop=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.paths[name]
        tmp = path.with_name(f".{path.name}.tmp")
        frame.to_csv(tmp, index=False, float_format="%.8g")
        os.replace(tmp, path)

    # convenience -------------------------------------------------------------------------------
    def add_run(self, row: Dict) -> None:
        self.add("runs", [row], RUN_KEY)

    def add_curves(self, rows: Sequence[Dict]) -> None:
        self.add("curves", rows, CURVE_KEY)

    def add_oracles(self, rows: Sequence[Dict]) -> None:
        self.add("oracles", rows, ORACLE_KEY)
