"""Figures 2, 4 and 5 (matplotlib, written as PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label_bars(ax, x: np.ndarray, values: np.ndarray, errors) -> None:
    """Value labels beyond the end of each bar's error bar."""
    errors = np.zeros_like(values) if errors is None else np.nan_to_num(np.asarray(errors, dtype=float))
    for xi, value, error in zip(x, values, errors):
        up = value >= 0
        ax.annotate(f"{value:.2f}", (xi, value + error if up else value - error), ha="center",
                    va="bottom" if up else "top", fontsize=8, xytext=(0, 2 if up else -2), textcoords="offset points")


def figure2(models: Sequence[dict], oracles: Sequence[dict], path: Path, seeds: int) -> None:
    """Average without SIR per model (bars, seed std), SDR beside each bar, two oracle lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(models))
    avg = np.array([m["avg_without_SIR"] for m in models])
    errors = np.array([m["avg_without_SIR_std"] for m in models]) if seeds > 1 else None
    ax.bar(x, avg, color=["#4C72B0" if m["dimension"] == "1D" else "#DD8452" for m in models], yerr=errors, capsize=4)
    _label_bars(ax, x, avg, errors)
    for o in oracles:
        if o["key"] in ("IRM2", "IRM1"):
            ax.axhline(o["avg_without_SIR"], color="grey", linestyle="--" if o["key"] == "IRM2" else ":",
                       linewidth=1, label=f"{o['key']} oracle")
    # SDR beside each bar: the adjusted average includes SAR, which rewards a filtered mixture
    ax.plot(x, [m["SDR"] for m in models], linestyle="none", marker="D", color="black", markersize=5, label="SDR")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{m['model']}\n{m['dimension']}" for m in models], fontsize=8)
    ax.set_ylabel("average of SDR, SAR, ISR (dB); ◆ SDR")
    ax.set_title("Figure 2: adjusted average (without SIR)"
                 + (f", mean ± std over {seeds} seeds" if seeds > 1 else ", one seed"), fontsize=10)
    ax.axhline(0, color="black", linewidth=0.5)
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color="#4C72B0", label="1D (waveform)"), Patch(color="#DD8452", label="2D (spectrogram)")]
    ax.legend(handles=handles, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure4(base: dict, stacked: dict, path: Path, seeds: int) -> None:
    """The single model against its stack: SDR and average without SIR."""
    plt = _plt()
    groups = ("SDR", "avg_without_SIR")
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(groups))
    width = 0.36
    for offset, row, label, colour in ((-width / 2, base, f"{base['model']} {base['dimension']}", "#4C72B0"),
                                       (width / 2, stacked, f"{stacked['model']} {stacked['dimension']}", "#C44E52")):
        vals = np.array([row[g] for g in groups])
        errors = [row[f"{g}_std"] for g in groups] if seeds > 1 else None
        ax.bar(x + offset, vals, width, yerr=errors, capsize=4, label=label, color=colour)
        _label_bars(ax, x + offset, vals, errors)
    ax.set_xticks(x)
    ax.set_xticklabels(["SDR", "average without SIR"])
    ax.set_ylabel("dB")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_title("Figure 4: phase two, single model vs its stack" + (f" ({seeds} seeds)" if seeds > 1 else ""),
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure5(curves: Dict[str, "object"], labels: Dict[str, str], path: Path, seeds: int, batch_size: int) -> None:
    """Validation SDR against steps and against training FLOPs (log axes), mean over seeds with ± std bands.

    ``curves``: ``{model key: DataFrame with step, SDR, SDR_std, train_flops}``."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    colours = plt.get_cmap("tab10")
    for i, (key, frame) in enumerate(curves.items()):
        style = "--" if key.startswith("stack_") else "-"
        for ax, axis in zip(axes, ("step", "train_flops")):
            x = frame[axis].to_numpy(dtype=float)
            y = frame["SDR"].to_numpy(dtype=float)
            ax.plot(x, y, style, marker="o", markersize=3, color=colours(i % 10), label=labels.get(key, key))
            if seeds > 1:
                std = np.nan_to_num(frame["SDR_std"].to_numpy(dtype=float))
                ax.fill_between(x, y - std, y + std, color=colours(i % 10), alpha=0.15, linewidth=0)
    for ax, title in zip(axes, (f"training steps (batch {batch_size})", "training FLOPs (forward + backward)")):
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.axhline(0, color="black", linewidth=0.5)
    axes[0].set_ylabel("validation SDR (dB, SiSEC18 median)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Figure 5: learning curves" + (f", mean ± std over {seeds} seeds" if seeds > 1 else ", one seed"),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
