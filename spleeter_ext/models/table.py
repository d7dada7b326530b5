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


def model_rows() -> List[Dict]:
    from ..models.estimators import build_estimator
    from . import info

    rows = []
    for spec in registry.list_models():
        preset = _preset_for(spec.name)
        if preset:
            cfg = load_config(preset)
        else:
            cfg = load_config({"instrument_list": INSTRUMENTS, "model": {"type": spec.name}})
        body = build_estimator(cfg).body
        domain = "2d" if spec.domain == "stack" else spec.domain
        try:
            d = info.describe(body, domain, cfg["sample_rate"], cfg["frame_step"], cfg["F"])
        except SpleeterExtError:  # a parameter-free reference body: output independent of the input
            d = {"params": info.count_params(body, domain, n_bins=cfg["F"]), "macs_per_second": 0,
                 "receptive_field": "none (fixed output)", "receptive_field_seconds": None}
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
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths[:-1]), "-" * 11)]
    out += [fmt.format(*l) for l in lines]
    return "\n".join(out)
