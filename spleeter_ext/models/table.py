"""The ``spleeter-ext models`` table: every registered model measured as its paper-sized preset (size,
cost per second of audio, receptive field)."""
from __future__ import annotations

from typing import Dict, List, Optional

from ..config import list_presets, load_config
from ..errors import SpleeterExtError
from . import registry

INSTRUMENTS = ["vocals", "drums", "bass", "other"]


def _preset_for(name: str) -> Optional[str]:
    """The paper-sized preset whose model.type is ``name`` (first by name order)."""
    for preset in list_presets():
        if preset.endswith("_small") or preset == "demo":
            continue
        cfg = load_config(preset)
        if registry.get(cfg["model"]["type"]).name == name:
            return preset
    return None


def _describe(body, domain: str, cfg: dict) -> Dict:
    from . import info

    try:
        return info.describe(body, domain, cfg["sample_rate"], cfg["frame_step"], cfg["F"])
    except SpleeterExtError:  # a parameter-free reference body: output independent of the input
        return {"params": info.count_params(body, domain, n_bins=cfg["F"]), "macs_per_second": 0,
                "receptive_field": "none (fixed output)", "receptive_field_seconds": None}


def _describe_stack(estimator, cfg: dict) -> Dict:
    """A stacked model: both stages' parameters and MACs add up; in one domain their receptive fields chain."""
    s1 = estimator.stage1
    first = _describe(s1.body, s1.domain, s1.config)
    refiner = _describe(estimator.body.refiners[0], estimator.body.refiner_domain, cfg)
    n = len(estimator.body.refiners)
    out = {"params": first["params"] + n * refiner["params"],
           "macs_per_second": first["macs_per_second"] + n * refiner["macs_per_second"],
           "receptive_field": "see stages", "receptive_field_seconds": None}
    if s1.domain == estimator.body.refiner_domain and all(
            isinstance(d["receptive_field"], int) for d in (first, refiner)):
        out["receptive_field"] = first["receptive_field"] + refiner["receptive_field"] - 1
        out["receptive_field_seconds"] = first["receptive_field_seconds"] * out["receptive_field"] / max(
            1, first["receptive_field"])
    return out


def model_rows() -> List[Dict]:
    from ..models.estimators import build_estimator

    rows = []
    for spec in registry.list_models():
        preset = _preset_for(spec.name)
        if preset:
            cfg = load_config(preset)
        else:
            cfg = load_config({"instrument_list": INSTRUMENTS, "model": {"type": spec.name}})
        estimator = build_estimator(cfg)
        if spec.domain == "stack":
            d = _describe_stack(estimator, cfg)
        else:
            d = _describe(estimator.body, spec.domain, cfg)
        aliases = [a for a, n in registry.aliases().items() if n == spec.name]
        rows.append({"name": spec.name, "aliases": aliases, "domain": spec.domain, "preset": preset or "-",
                     "params": d["params"], "macs_per_second": d["macs_per_second"],
                     "receptive_field": d["receptive_field"], "receptive_field_seconds": d["receptive_field_seconds"],
                     "description": spec.description})
    return rows


def model_table() -> str:
    header = ("model", "domain", "params", "GMAC/s audio", "receptive field", "measured as", "description")
    lines = []
    for r in model_rows():
        name = r["name"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
        if isinstance(r["receptive_field"], int):
            unit = "samples" if r["domain"] == "1d" else "frames"
            field = f"{r['receptive_field']} {unit} ({r['receptive_field_seconds']:.2f} s)"
        else:
            field = str(r["receptive_field"])
        lines.append((name, r["domain"], f"{r['params'] / 1e6:.2f} M", f"{r['macs_per_second'] / 1e9:.2f}", field,
                      r["preset"] if r["preset"] != "-" else "defaults, 4 stems", r["description"]))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths[:-1]), "-" * 11)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)
