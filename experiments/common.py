"""What every experiment shares: the models compared, the budgets, the data and the run identity."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional, Tuple

from spleeter_ext.errors import DatasetError
from spleeter_ext.log import logger

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "experiments" / "results"
DEFAULT_RUNS = REPO / "runs" / "experiments"
INSTRUMENTS = ("vocals", "drums", "bass", "other")
TARGETS = INSTRUMENTS + ("overall",)
METRICS = ("SDR", "SAR", "SIR", "ISR", "uSDR")
TESTSETS = ("test", "shift")


@dataclass(frozen=True)
class ModelSpec:
    key: str          # config base name: <key><suffix> is a preset of model_configs/
    dimension: str    # '1D' (waveform) or '2D' (spectrogram)
    label: str        # model family as in the paper

    @property
    def title(self) -> str:
        return f"{self.label} {self.dimension}"

    @property
    def stacked(self) -> bool:
        return self.key.startswith("stack_")


SINGLE_MODELS = (
    ModelSpec("spleeter_1d", "1D", "Spleeter U-Net"),
    ModelSpec("spleeter_2d", "2D", "Spleeter U-Net"),
    ModelSpec("wave_unet_1d", "1D", "Wave-U-Net"),
    ModelSpec("wave_unet_2d", "2D", "Wave-U-Net"),
    ModelSpec("demucs_1d", "1D", "Demucs"),
    ModelSpec("demucs_2d", "2D", "Demucs"),
)


def stack_of(spec: ModelSpec) -> ModelSpec:
    """The paper's phase two for ``spec``: two networks of its architecture, the second refining each stem."""
    return ModelSpec(f"stack_{spec.key}", spec.dimension, f"Stacked {spec.label}")


def model_spec(key: str) -> ModelSpec:
    """The spec of a single model key or of ``stack_<key>``."""
    singles = {s.key: s for s in SINGLE_MODELS}
    if key in singles:
        return singles[key]
    if key.startswith("stack_") and key[len("stack_"):] in singles:
        return stack_of(singles[key[len("stack_"):]])
    raise DatasetError(f"unknown model '{key}'; known: {', '.join(singles)} and stack_<any of them>")


@dataclass(frozen=True)
class SyntheticData:
    folder: str       # relative to the repository root
    engine: str
    n_train: int
    n_test: int
    seconds: float
    seed: int = 0
    #: a test set under a shift of timbre and style: another soundfont, grooves unseen in training
    shift_of: Optional["SyntheticData"] = None
    soundfont: Optional[str] = None


@dataclass(frozen=True)
class Budget:
    name: str
    config_suffix: str
    steps: int
    batch_size: int
    data: Optional[SyntheticData]   # None: --data is required
    eval_jobs: int
    metrics: str = "all"
    #: config keys overridden for every model (validation set of the learning curves, ...)
    overrides: Tuple[Tuple[str, object], ...] = ()
    shift: Optional[SyntheticData] = None
    description: str = ""


REALISTIC = SyntheticData("data/synthetic-realistic", "realistic", n_train=40, n_test=8, seconds=20.0)
BUDGETS: Dict[str, Budget] = {
    "default": Budget(
        "default", "_small", steps=1600, batch_size=4, data=REALISTIC, eval_jobs=2,
        overrides=(("validation_tracks", 6), ("validation_seconds", 20.0)),
        shift=SyntheticData("data/synthetic-shift", "realistic", n_train=0, n_test=8, seconds=20.0, seed=1,
                            shift_of=REALISTIC, soundfont="/usr/share/sounds/sf2/TimGM6mb.sf2"),
        description="the _small configs, 1600 steps at batch 4 (~3 s segments) on 40 realistic synthetic songs of "
                    "20 s (34 train + 6 validation), tested on 8 more; learning curves on the 6 validation songs"),
    "paper": Budget(
        "paper", "", steps=100_000, batch_size=4, data=None, eval_jobs=2,
        description="the paper-sized configs, 100,000 steps at batch 4 on MUSDB18 (--data required)"),
    # a few steps on a few seconds of numpy-synthesised audio, for the tests
    "tiny": Budget(
        "tiny", "_small", steps=2, batch_size=1,
        data=SyntheticData("data/synthetic-tiny", "numpy", n_train=3, n_test=2, seconds=4.0),
        eval_jobs=1, overrides=(("validation_tracks", 1), ("validation_seconds", 3.0), ("curve_steps", [1])),
        description="smoke test: 2 steps at batch 1 on 3 + 2 numpy synthetic tracks of 4 s"),
}
PUBLIC_BUDGETS = ("default", "paper")


def git_commit(root: Path = REPO) -> Optional[str]:
    """HEAD's commit read from the git metadata directly (no git process; works in a worktree)."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(None, 1)[1]
        common = Path((git / "commondir").read_text().strip()) if (git / "commondir").is_file() else None
        for base in [git] + ([git / common if not common.is_absolute() else common] if common else []):
            loose = base / ref
            if loose.is_file():
                return loose.read_text().strip()
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
    except (OSError, IndexError):
        pass
    return None


def versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("spleeter-ext", "spleeter", "tensorflow", "numpy", "pandas", "museval", "matplotlib"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def data_fingerprint(root: Path) -> str:
    """Short hash of the train/test file names and sizes (cheap: no audio is read)."""
    digest = hashlib.sha1()
    for subset in ("train", "test"):
        folder = root / subset
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(root)}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:10]


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO.resolve()))
    except ValueError:
        return str(path)


@dataclass
class DataInfo:
    root: Path
    fingerprint: str
    source: str
    generation_seconds: float = 0.0
    note: str = ""

    def card(self) -> dict:
        return {"root": display_path(self.root), "fingerprint": self.fingerprint, "source": self.source,
                "generation_seconds": round(self.generation_seconds, 1), "note": self.note}


def _style(spec: SyntheticData) -> Optional[dict]:
    if spec.shift_of is None:
        return None
    from spleeter_ext.data import realistic
    from spleeter_ext.data.make_dataset import track_seed

    base = spec.shift_of
    seeds = [track_seed(base.seed, i) for i in range(1, base.n_train + 1)]
    return {"soundfont": spec.soundfont, "grooves": list(realistic.unseen_grooves(seeds))}


def prepare_data(spec: Optional[SyntheticData], data: Optional[str], budget_name: str = "") -> DataInfo:
    """The dataset of a run: ``data`` as given, or the synthetic set ``spec`` (generated if missing)."""
    if data:
        root = Path(data).expanduser().resolve()
        if not root.is_dir():
            raise DatasetError(f"--data {data}: no such folder")
        return DataInfo(root, data_fingerprint(root), "given with --data")
    if spec is None:
        raise DatasetError(f"--budget {budget_name} needs --data /path/to/musdb18 (MUSDB18 stems or MUSDB18-HQ wav)")
    from spleeter_ext.data.make_dataset import make_dataset

    engine, folder, note = spec.engine, spec.folder, ""
    if engine == "realistic":
        from spleeter_ext.data import realistic

        try:
            realistic.check_dependencies()
        except DatasetError as exc:
            if spec.shift_of is not None:
                raise
            note = f"realistic engine unavailable ({exc}); fell back to the numpy engine"
            logger.warning("%s", note)
            engine, folder = "numpy", folder.replace("realistic", "numpy")
    root = REPO / folder
    start = time.perf_counter()
    style = _style(spec)
    make_dataset(root, spec.n_train, spec.n_test, spec.seconds, seed=spec.seed, engine=engine,
                 jobs=min(2, os.cpu_count() or 1), style=style)
    seconds = time.perf_counter() - start
    source = (f"synthetic, engine {engine}: {spec.n_train} train + {spec.n_test} test tracks of {spec.seconds:g} s, "
              f"seed {spec.seed} (spleeter_ext.data.make_dataset)")
    if style:
        source += (f"; shifted: soundfont {Path(str(spec.soundfont)).name}, {len(style['grooves'])} grooves from "
                   f"style families that no training song starts from")
    return DataInfo(root, data_fingerprint(root), source, seconds, note)


@dataclass
class Context:
    """A budget with its data resolved: what every command works on."""

    budget: Budget
    data: DataInfo
    shift: Optional[DataInfo]
    steps: int
    results: Path
    runs_root: Path
    extra: dict = field(default_factory=dict)
