"""JSON model configurations in Spleeter's format: descriptors, presets that extend, validation.

See :func:`load_config` for the descriptors and :func:`merge_configs` for how ``"extends"`` merges.
"""
from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from .errors import ConfigError

Number = (int, float)

# key -> (accepted python types, default or REQUIRED, one-line meaning)
REQUIRED = object()
SCHEMA: Dict[str, Tuple[tuple, Any, str]] = {
    # --- Spleeter's keys (same meaning as in spleeter 2.4.2) ---
    "train_csv": ((str,), None, "CSV of training tracks (mix_path, <instrument>_path, duration)"),
    "validation_csv": ((str,), None, "CSV of validation tracks"),
    "model_dir": ((str,), None, "directory of the checkpoint (relative: to the config file or MODEL_PATH)"),
    "mix_name": ((str,), "mix", "name of the mixture feature"),
    "instrument_list": ((list,), REQUIRED, "stems to separate, in output order"),
    "sample_rate": ((int,), 44100, "model sample rate in Hz"),
    "frame_length": ((int,), 4096, "STFT window length n_fft"),
    "frame_step": ((int,), 1024, "STFT hop length"),
    "T": ((int,), 512, "frames per spectrogram patch"),
    "F": ((int,), 1024, "frequency bins fed to 2D models"),
    "n_channels": ((int,), 2, "audio channels the model sees"),
    "separation_exponent": (Number, 2, "exponent of the ratio masks built from model outputs"),
    "mask_extension": ((str,), "zeros", "how masks extend above F: zeros | average"),
    "learning_rate": (Number, 1e-4, "Adam learning rate"),
    "batch_size": ((int,), 4, "training batch size (global, split across replicas)"),
    "training_cache": ((str,), None, "Spleeter's cache path (unused here: the pipeline streams)"),
    "validation_cache": ((str,), None, "Spleeter's cache path (unused here)"),
    "train_max_steps": ((int,), 200000, "training steps"),
    "throttle_secs": ((int,), 600, "Spleeter's evaluation throttle (unused: validation every checkpoint)"),
    "random_seed": ((int,), 0, "seed of initialisation and data stream"),
    "save_checkpoints_steps": ((int,), 300, "checkpoint every N steps"),
    "save_summary_steps": ((int,), 5, "TensorBoard summary every N steps"),
    "chunk_duration": (Number, 20.0, "Spleeter's chunk length (unused: segments are random)"),
    "n_chunks_per_song": ((int,), 2, "Spleeter's chunks per song (unused)"),
    "loss_type": ((str,), "L1_mask", "L1_mask | weighted_L1_mask (2D); waveform models use L1 on samples"),
    "optimizer": ((str,), "Adam", "Adam | Adadelta | SGD"),
    "MWF": ((bool,), False, "multichannel Wiener filter at separation (norbert)"),
    "model": ((dict,), REQUIRED, "{'type': registered model name, 'params': body arguments}"),
    # --- keys of this project ---
    "description": ((str,), "", "free text"),
    "segment_seconds": (Number, None, "training segment length of waveform models (default: T frames)"),
    "validation_tracks": ((int,), 4, "validation tracks scored at each checkpoint"),
    "validation_seconds": (Number, 10.0, "seconds of each validation track (its central excerpt)"),
    "curve_steps": ((list,), None, "steps at which the validation SDR is scored into curves.csv "
                                   "(default: 100, 200, 400, ... and the last step)"),
    "augmentation": ((dict,), None, "training augmentation, see AUGMENTATION_SCHEMA"),
    "inference": ((dict,), None, "separation defaults, see INFERENCE_SCHEMA"),
    "stage_loss_weight": (Number, 1.0, "stacked models: weight of the first-stage loss (0: stage two only)"),
    "precision": ((str,), "float32", "training precision (Keras policy): float32 | mixed_bfloat16 | mixed_float16"),
    "jit_compile": ((bool,), False, "compile the training step with XLA (Keras compile(jit_compile=...))"),
}
#: Training precisions (Keras mixed-precision policy names); variables stay float32 under each.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
AUGMENTATION_SCHEMA: Dict[str, Tuple[tuple, Any, str]] = {
    "remix": ((bool,), True, "draw each source from a different random track"),
    "gain": ((list,), [0.25, 1.25], "uniform random gain range per source"),
    "channel_swap": ((bool,), True, "swap left/right with probability 1/2 per source"),
    "skip_silent": ((bool,), True, "redraw segments whose targets are all silent"),
}
#: Default crossfade of chunked separation, as a fraction of the segment: 5 % of the ~36 s default
#: segment is 1.8 s. Spectrogram models see independent T-frame patches inside a segment anyway (as in
#: Spleeter), so a longer crossfade buys nothing but computation.
DEFAULT_OVERLAP = 0.05
INFERENCE_SCHEMA: Dict[str, Tuple[tuple, Any, str]] = {
    "segment_seconds": (Number, None, "segment length of chunked separation"),
    "overlap": (Number, DEFAULT_OVERLAP, "fraction of a segment shared with its neighbour"),
}
MODEL_SCHEMA: Dict[str, Tuple[tuple, Any, str]] = {
    "type": ((str,), "unet.unet", "registered model name"),
    "params": ((dict,), {}, "arguments of the model's constructor"),
}
#: key naming the preset or config file a config extends (see :func:`merge_configs`)
EXTENDS = "extends"
SPLEETER_PRESETS = ("2stems", "4stems", "5stems", "2stems-16kHz", "4stems-16kHz", "5stems-16kHz")
#: Synthetic dataset of ``make_dataset`` and ``spleeter-ext make-dataset``: 8 training and 4 test songs of 20 s.
DATASET_TRAIN_TRACKS, DATASET_TEST_TRACKS, DATASET_SECONDS = 8, 4, 20.0


def _check_section(cfg: dict, schema: dict, where: str, source: str) -> dict:
    out = {}
    for key, value in cfg.items():
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{source}: unknown key '{where}{key}'; known keys: {known}")
        types = schema[key][0]
        if isinstance(value, bool) and bool not in types:
            ok = False
        elif value is None and schema[key][1] is None:
            ok = True
        else:
            ok = isinstance(value, types)
        if not ok:
            names = "/".join(t.__name__ for t in types)
            raise ConfigError(
                f"{source}: key '{where}{key}' must be {names}, got {type(value).__name__} {value!r}"
            )
        out[key] = value
    for key, (_, default, _) in schema.items():
        if key not in out:
            if default is REQUIRED:
                raise ConfigError(f"{source}: missing required key '{where}{key}'")
            out[key] = copy.deepcopy(default)
    return out


def validate_config(cfg: dict, source: str = "<config>") -> dict:
    """Return a validated copy of ``cfg`` with defaults filled in.

    Raises:
        ConfigError: unknown key, wrong type or inconsistent values (the message names the key).
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: a config must be a JSON object, got {type(cfg).__name__}")
    out = _check_section(cfg, SCHEMA, "", source)
    out["model"] = _check_section(out["model"], MODEL_SCHEMA, "model.", source)
    if out["augmentation"] is not None:
        out["augmentation"] = _check_section(out["augmentation"], AUGMENTATION_SCHEMA, "augmentation.", source)
    else:
        out["augmentation"] = _check_section({}, AUGMENTATION_SCHEMA, "augmentation.", source)
    if out["inference"] is not None:
        out["inference"] = _check_section(out["inference"], INFERENCE_SCHEMA, "inference.", source)
    else:
        out["inference"] = _check_section({}, INFERENCE_SCHEMA, "inference.", source)

    instruments = out["instrument_list"]
    if not instruments or not all(isinstance(i, str) and i for i in instruments):
        raise ConfigError(f"{source}: 'instrument_list' must be a non-empty list of names, got {instruments!r}")
    if len(set(instruments)) != len(instruments):
        raise ConfigError(f"{source}: 'instrument_list' has duplicates: {instruments!r}")
    for key in ("sample_rate", "frame_length", "frame_step", "T", "F", "n_channels", "batch_size"):
        if out[key] <= 0:
            raise ConfigError(f"{source}: '{key}' must be positive, got {out[key]}")
    if out["F"] > out["frame_length"] // 2 + 1:
        raise ConfigError(
            f"{source}: 'F' ({out['F']}) exceeds the STFT's {out['frame_length'] // 2 + 1} bins "
            f"for frame_length {out['frame_length']}"
        )
    if out["frame_step"] > out["frame_length"]:
        raise ConfigError(f"{source}: 'frame_step' must not exceed 'frame_length'")
    if out["mask_extension"] not in ("zeros", "average"):
        raise ConfigError(f"{source}: 'mask_extension' must be 'zeros' or 'average', got {out['mask_extension']!r}")
    if out["loss_type"] not in ("L1_mask", "weighted_L1_mask"):
        raise ConfigError(f"{source}: 'loss_type' must be 'L1_mask' or 'weighted_L1_mask', got {out['loss_type']!r}")
    if out["optimizer"] not in ("Adam", "Adadelta", "SGD"):
        raise ConfigError(f"{source}: 'optimizer' must be Adam, Adadelta or SGD, got {out['optimizer']!r}")
    gain = out["augmentation"]["gain"]
    if len(gain) != 2 or not all(isinstance(g, Number) for g in gain) or not 0 <= gain[0] <= gain[1]:
        raise ConfigError(f"{source}: 'augmentation.gain' must be [low, high] with 0 <= low <= high, got {gain!r}")
    steps = out["curve_steps"]
    if steps is not None and not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in steps):
        raise ConfigError(f"{source}: 'curve_steps' must be a list of positive step numbers, got {steps!r}")
    if out["precision"] not in PRECISIONS:
        raise ConfigError(f"{source}: 'precision' must be one of {', '.join(PRECISIONS)}, got {out['precision']!r}")
    ov = out["inference"]["overlap"]
    if not 0 <= ov < 1:
        raise ConfigError(f"{source}: 'inference.overlap' must be in [0, 1), got {ov}")
    return out


def _read_json(path: Path, source: Optional[str] = None) -> dict:
    source = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def preset_dirs() -> List[Path]:
    """Folders searched for preset names: the package's resources, then model_configs/ (the source
    tree's, or the copy a regular install places inside the package)."""
    here = Path(__file__).resolve().parent
    dirs = [here / "resources" / "presets", here.parent / "model_configs", here / "model_configs"]
    return [d for d in dirs if d.is_dir()]


def list_presets() -> List[str]:
    names = set()
    for d in preset_dirs():
        names.update(p.stem for p in d.glob("*.json"))
    return sorted(names)


class _Found(NamedTuple):
    raw: dict
    source: str  # how messages name it
    root: Optional[Path]  # folder a relative model_dir or extends resolves against
    file: Optional[Path]  # the JSON file (None for Spleeter's bundled configs)

    @property
    def identity(self) -> str:
        return str(self.file.resolve()) if self.file else self.source


def _find(descriptor: str, relative_to: Optional[Path] = None) -> Optional[_Found]:
    """The JSON a descriptor names, or None when nothing has that name.

    With ``relative_to`` (the folder of a config that extends this one), a path (``.json`` or with a
    folder) is taken relative to it and a bare name is a preset only, never a folder of the working
    directory.
    """
    if descriptor.startswith("spleeter:"):
        name = descriptor.split(":", 1)[1]
        if name not in SPLEETER_PRESETS:
            raise ConfigError(f"{descriptor}: unknown Spleeter preset; available: "
                              + ", ".join(f"spleeter:{n}" for n in SPLEETER_PRESETS))
        text = resources.files("spleeter.resources").joinpath(f"{name}.json").read_text()
        return _Found(json.loads(text), descriptor, None, None)
    path = Path(descriptor).expanduser()
    is_path = relative_to is None or path.suffix == ".json" or len(path.parts) > 1
    if relative_to is not None and is_path and not path.is_absolute():
        path = relative_to / path
    if is_path and path.is_dir():
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise ConfigError(f"{descriptor}: a model directory must hold config.json "
                              "(written by 'spleeter-ext train')")
        return _Found(_read_json(cfg_path), str(cfg_path), path, cfg_path)
    if is_path and (path.suffix == ".json" or path.exists()):
        return _Found(_read_json(path), str(path), path.parent, path)
    for folder in preset_dirs():
        candidate = folder / f"{descriptor}.json"
        if candidate.is_file():
            return _Found(_read_json(candidate), f"preset '{descriptor}'", folder, candidate)
    return None


def _available() -> str:
    return ", ".join([f"spleeter:{n}" for n in SPLEETER_PRESETS[:3]] + list_presets())


def merge_configs(base: dict, override: dict) -> dict:
    """``override`` laid over ``base``: the merge rule of ``"extends"``.

    JSON objects merge key by key, recursively (so ``model.params`` keeps the base's arguments that the
    override does not name); any other value (list, string, number, null) replaces the base's. An
    object naming another ``type`` than the base's (a ``model`` or a stacked ``stage1``) replaces it
    whole, since its ``params`` belong to another model.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("type", old.get("type")) == old.get("type"):
            out[key] = merge_configs(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_extends(found: _Found, chain: Tuple[_Found, ...] = ()) -> dict:
    """``found.raw`` with its ``"extends"`` chain resolved; each base is validated on its own."""
    raw, source = found.raw, found.source
    if not isinstance(raw, dict) or EXTENDS not in raw:
        return raw
    name = raw[EXTENDS]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: key '{EXTENDS}' must name a preset, a JSON file or spleeter:<preset>, "
                          f"got {name!r}")
    base = _find(name, relative_to=found.root or Path("."))
    if base is None:
        raise ConfigError(f"{source}: '{EXTENDS}' names '{name}', which is no preset or config file; "
                          f"available presets: {_available()}")
    chain = chain + (found,)
    if base.identity in [f.identity for f in chain]:
        cycle = " -> ".join([f.source for f in chain] + [base.source])
        raise ConfigError(f"{source}: '{EXTENDS}' makes a cycle ({cycle}); a config cannot extend itself, "
                          "directly or through its bases")
    resolved = _resolve_extends(base, chain)
    validate_config(resolved, base.source)
    return merge_configs(resolved, {k: v for k, v in raw.items() if k != EXTENDS})


def resolve_descriptor(descriptor: str) -> Tuple[dict, str, Optional[Path]]:
    """The JSON behind a descriptor with ``"extends"`` resolved: ``(raw dict, source name, folder)``."""
    found = _find(descriptor)
    if found is None:
        raise ConfigError(f"{descriptor}: not a config file, model directory or preset; available presets: "
                          f"{_available()}")
    return _resolve_extends(found), found.source, found.root


def load_config(descriptor: "str | dict | Path") -> dict:
    """Load, resolve and validate a configuration.

    Descriptors: ``spleeter:2stems|4stems|5stems`` (and ``-16kHz``: Spleeter's bundled configs), a JSON
    file, a model directory written by ``spleeter-ext train`` (its ``config.json``), a preset name (a
    file of ``model_configs/`` or ``demo``), or a dict. A config may name a base with ``"extends"``
    (a preset, ``spleeter:<preset>`` or a JSON file relative to it) and override its keys
    (:func:`merge_configs`). The result carries ``_source`` (where it came from) and ``_root`` (its
    folder, for a relative ``model_dir``); :func:`dump_config` strips both.
    """
    if isinstance(descriptor, dict):
        raw, source, root = copy.deepcopy(descriptor), descriptor.get("_source", "<config>"), descriptor.get("_root")
        raw.pop("_source", None)
        raw.pop("_root", None)
        root = Path(root) if root else None
        raw = _resolve_extends(_Found(raw, source, root, None))
    else:
        raw, source, root = resolve_descriptor(str(descriptor))
    cfg = validate_config(raw, source)
    cfg["_source"] = source
    cfg["_root"] = str(root) if root else None
    return cfg


def dump_config(cfg: dict) -> dict:
    """The JSON-serialisable config, without the private ``_`` keys."""
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def model_dir_of(cfg: dict) -> Optional[Path]:
    """Where the checkpoint of ``cfg`` lives, or None when the config names none.

    A relative ``model_dir`` resolves against the config's folder when it exists there; a config
    that came from a model directory (``config.json`` beside the checkpoint) uses that directory.
    """
    if cfg.get("_root") and (Path(cfg["_root"]) / "checkpoint").exists():
        return Path(cfg["_root"])
    md = cfg.get("model_dir")
    if not md:
        return None
    p = Path(md).expanduser()
    if not p.is_absolute() and cfg.get("_root"):
        q = Path(cfg["_root"]) / p
        if q.exists():
            return q
    return p
