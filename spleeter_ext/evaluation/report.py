"""Reports: aggregation of per-track scores into tables (SiSEC18 median, means, uSDR), sanity flags of a
scored track, and the markdown/CSV reports of an evaluation run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import ParameterError
from ..log import logger
from .metrics import CROSSCHECK_TOLERANCE_DB, METRICS, TrackScores, museval_version
from .oracle import ORACLES
from .sdr import pad_or_truncate

if TYPE_CHECKING:
    from .result import EvaluationResult

__all__ = ["aggregate", "make_protocol", "track_medians", "sanity_flags", "format_markdown", "write_csv",
           "write_reports", "log_flags", "OVERALL"]

#: label of the row that averages the instrument rows
OVERALL = "overall"

AGGREGATION_TEXT = (
    "<M>_median: SiSEC18 (median over non-NaN 1 s frames per track, then median over tracks; all-NaN tracks "
    "skipped as in museval.EvalStore); <M>_mean: mean over tracks of the per-track medians; uSDR_mean: MDX "
    "whole-track SDR (eps=1e-7), mean over tracks; overall: unweighted mean of the instrument rows"
)


def _check_scores(scores: Iterable[TrackScores], where: str) -> List[TrackScores]:
    scores = list(scores)
    if not scores:
        raise ParameterError(f"{where}: no TrackScores given; evaluate at least one track with evaluate_track")
    for item in scores:
        if not isinstance(item, TrackScores):
            raise ParameterError(f"{where}: expected TrackScores from evaluate_track, got {type(item).__name__}")
    windows = {(s.win_seconds, s.hop_seconds) for s in scores}
    if len(windows) > 1:
        raise ParameterError(f"{where}: tracks were scored with different windows {sorted(windows)}; "
                             "re-evaluate them with one win_seconds/hop_seconds")
    return scores


def _instruments(scores: Sequence[TrackScores]) -> List[str]:
    seen: List[str] = []
    for item in scores:
        for name in item.instruments:
            if name not in seen:
                seen.append(name)
    return seen


def _common_metrics(scores: Sequence[TrackScores]) -> List[str]:
    common = [m for m in METRICS if all(m in s.values for s in scores)]
    dropped = sorted({m for s in scores for m in s.metrics} - set(common))
    if dropped:
        logger.info("aggregate: %s missing on some tracks (metrics='sdr' there); reporting %s only", dropped, common)
    return common


def make_protocol(scores: Sequence[TrackScores], dataset: str = "MUSDB18", subset: str = "test",
                  extra: Optional[Dict[str, object]] = None) -> Dict[str, object]:
    """The protocol dict of a report: what was scored and how it was aggregated."""
    scores = _check_scores(scores, "make_protocol")
    metrics = _common_metrics(scores)
    protocol: Dict[str, object] = {
        "dataset": dataset,
        "subset": subset,
        "n_tracks": len(scores),
        "instruments": _instruments(scores),
        "metrics": metrics,
        "cSDR": "museval BSSEval v4 images framewise SDR (exact fast implementation; identical to museval)",
        "SIR/ISR/SAR": "museval.evaluate (v4, 512-tap filters per track)" if len(metrics) > 1 else "not computed",
        "window_seconds": scores[0].win_seconds,
        "hop_seconds": scores[0].hop_seconds,
        "aggregation": AGGREGATION_TEXT,
        "museval_version": museval_version(),
        "spleeter_ext_version": __version__,
    }
    if extra:
        protocol.update(extra)
    return protocol


def track_medians(scores: Iterable[TrackScores]) -> pd.DataFrame:
    """Per-track scores: columns ``track, target, metric, score`` (median over non-NaN frames)."""
    rows = []
    for item in _check_scores(scores, "track_medians"):
        for metric in item.metrics:
            for name, value in zip(item.instruments, item.median(metric)):
                rows.append((item.track_name, name, metric, float(value)))
        for name, value in zip(item.instruments, item.usdr):
            rows.append((item.track_name, name, "uSDR", float(value)))
    return pd.DataFrame(rows, columns=["track", "target", "metric", "score"])


def aggregate(scores: Iterable[TrackScores], dataset: str = "MUSDB18", subset: str = "test",
              extra_protocol: Optional[Dict[str, object]] = None) -> pd.DataFrame:
    """Aggregate tracks into one row per instrument plus an ``overall`` row.

    Columns: ``n_tracks``, ``all_nan_tracks`` (tracks whose frames are all NaN for the instrument:
    they drop out of the medians), ``n_frames``, ``nan_frame_share``, then for every metric held by all tracks
    ``<M>_median`` (SiSEC18) and ``<M>_mean``, then ``uSDR_mean``.
    The protocol dict is attached as ``df.attrs['protocol']``.

    Conventions (every table carries them in its protocol dict):

    * ``<M>_median``: SiSEC18, per track the median over the non-NaN frames, then the median over
      tracks (museval's ``EvalStore`` defaults; like pandas there, a track whose frames are all NaN is
      skipped, whereas spleeter's ``evaluate`` would turn the whole number into NaN);
    * ``<M>_mean``: mean over tracks of the same per-track medians (some papers use it; not comparable
      with the median);
    * ``uSDR_mean``: Music Demixing Challenge, whole-track SDR with eps = 1e-7, mean over tracks; not
      comparable with cSDR numbers;
    * ``nan_frame_share``: share of frames that are NaN (museval skips frames in which any stem is
      silent: 22-31 % of all frames in the SiSEC18 submissions);
    * the ``overall`` row is the unweighted mean of the instrument rows (SiSEC18's "mean of 4"); its NaN
      share and counts are pooled (``n_tracks`` there counts distinct tracks).
    """
    scores = _check_scores(scores, "aggregate")
    metrics = _common_metrics(scores)
    medians = track_medians(scores)
    rows: Dict[str, Dict[str, float]] = {}
    for name in _instruments(scores):
        holding = [s for s in scores if name in s.instruments]
        sdr = np.concatenate([s.sdr[s.instruments.index(name)] for s in holding])
        all_nan = sum(bool(np.isnan(s.sdr[s.instruments.index(name)]).all()) for s in holding)
        row: Dict[str, float] = {"n_tracks": len(holding), "all_nan_tracks": all_nan, "n_frames": int(sdr.size),
                                 "nan_frame_share": float(np.isnan(sdr).mean()) if sdr.size else float("nan")}
        for metric in metrics:
            per_track = medians.loc[(medians.target == name) & (medians.metric == metric), "score"]
            row[f"{metric}_median"] = float(per_track.median())
            row[f"{metric}_mean"] = float(per_track.mean())
        usdr = medians.loc[(medians.target == name) & (medians.metric == "uSDR"), "score"]
        row["uSDR_mean"] = float(usdr.mean())
        rows[name] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    overall = df.mean(axis=0, numeric_only=True)
    overall["n_tracks"] = len({s.track_name for s in scores})
    overall["all_nan_tracks"] = df["all_nan_tracks"].sum()
    overall["n_frames"] = df["n_frames"].sum()
    overall["nan_frame_share"] = float((df["nan_frame_share"] * df["n_frames"]).sum() / max(df["n_frames"].sum(), 1))
    df.loc[OVERALL] = overall
    for column in ("n_tracks", "all_nan_tracks", "n_frames"):
        df[column] = df[column].astype(int)
    df.index.name = "target"
    df.attrs["protocol"] = make_protocol(scores, dataset=dataset, subset=subset, extra=extra_protocol)
    return df


def _scaled_copy(estimate: np.ndarray, target: np.ndarray) -> Optional[tuple]:
    """``(gain, correlation, residual_db)`` of the least-squares fit ``estimate ≈ gain · target``.

    ``residual_db`` is the energy of ``estimate − gain · target`` relative to the estimate's; returns
    None when either signal is all-zero.
    """
    x = estimate.astype(np.float64, copy=False).ravel()
    y = target.astype(np.float64, copy=False).ravel()
    xx, yy, xy = float(np.dot(x, x)), float(np.dot(y, y)), float(np.dot(x, y))
    if xx == 0 or yy == 0:
        return None
    gain = xy / yy
    correlation = xy / np.sqrt(xx * yy)
    residual = x - gain * y
    rr = float(np.dot(residual, residual))
    residual_db = 10 * np.log10(rr / xx) if rr > 0 else -np.inf
    return gain, correlation, residual_db


#: a stem estimate at least this far (dB) below its reference's energy has collapsed to silence
COLLAPSE_DB = -30.0
COLLAPSED = "estimate collapsed"


def collapsed_stems(flags: List[str], instruments: List[str], n_tracks: int) -> List[str]:
    """Instruments flagged as collapsed on at least half of ``n_tracks`` tracks."""
    counts = {name: sum(f": {name}: {COLLAPSED}" in flag for flag in flags) for name in instruments}
    return [name for name, c in counts.items() if n_tracks and c >= n_tracks / 2]


def sanity_flags(references: np.ndarray, estimates: np.ndarray, mixture: Optional[np.ndarray],
                 scores: TrackScores, max_db: float = 100.0, copy_correlation: float = 1 - 1e-6,
                 copy_residual_db: float = -80.0, collapse_db: float = COLLAPSE_DB) -> List[str]:
    """Human-readable warnings about a scored track; an empty list means nothing suspicious.

    Flags:

    * any frame of any metric above ``max_db`` (real systems' track medians are 5–16 dB; the largest
      frame SIR among all 31 SiSEC18 submissions is 86 dB; values around 150–260 dB are float
      round-off floors), and frames that were +inf (stored as NaN);
    * an estimate that is a scaled copy of its reference — normalised correlation above
      ``copy_correlation`` and residual after the least-squares gain below ``copy_residual_db``
      (a pure gain error scores a finite SDR, e.g. 6.02 dB for 0.5×, but SIR/SAR at the round-off
      floor: targets written instead of predictions, or a data leak);
    * an estimate equal to (a scaled copy of) the mixture (SAR at the round-off floor, low SIR);
    * a collapsed estimate: ``collapse_db`` dB or more below its reference's energy (a near-silent
      output scores about 0 dB SDR, above a model that tries and fails, so averages reward it);
    * NaN frames (silent stem in the frame) and their share, instruments whose frames are all NaN;
    * a single evaluated source (SIR undefined), estimate/reference length mismatch, and a museval
      SDR that disagrees with the fast SDR.

    ``references``/``estimates`` are ``(n_instruments, n_samples, n_channels)``, ``mixture``
    ``(n_samples, n_channels)`` or None to skip the mixture test.
    """
    references = np.asarray(references)
    estimates = np.asarray(estimates)
    if references.ndim != 3 or estimates.ndim != 3 or references.shape[0] != len(scores.instruments):
        raise ParameterError(f"sanity_flags: references {references.shape} / estimates {estimates.shape} must be "
                             f"(n_instruments={len(scores.instruments)}, n_samples, n_channels)")
    track = scores.track_name
    flags: List[str] = []

    for metric in scores.metrics:
        values = scores.values[metric]
        for j, name in enumerate(scores.instruments):
            high = values[j][values[j] > max_db]
            if high.size:
                flags.append(f"{track}: {name}: {metric} exceeds {max_db:g} dB in {high.size} frame(s) (max "
                             f"{high.max():.1f} dB): estimate equal to the reference up to a gain or short filter, "
                             "or a single-source evaluation")
            n_inf = int(scores.inf_counts.get(metric, np.zeros(len(scores.instruments), int))[j])
            if n_inf:
                flags.append(f"{track}: {name}: {metric} is +inf in {n_inf} frame(s) (zero error energy; stored as "
                             "NaN like museval)")

    estimates_aligned = pad_or_truncate(references, estimates)
    for j, name in enumerate(scores.instruments):
        fit = _scaled_copy(estimates_aligned[j], references[j])
        if fit and fit[1] > copy_correlation and fit[2] < copy_residual_db:
            flags.append(f"{track}: {name}: estimate is a scaled copy of its reference (gain {fit[0]:.4g}, residual "
                         f"{fit[2]:.1f} dB): targets written instead of predictions, or a leak")
        ref_energy = float(np.sum(np.square(references[j], dtype=np.float64)))
        est_energy = float(np.sum(np.square(estimates_aligned[j], dtype=np.float64)))
        if ref_energy > 0 and (est_energy == 0 or 10 * np.log10(est_energy / ref_energy) <= collapse_db):
            level = 10 * np.log10(est_energy / ref_energy) if est_energy > 0 else -np.inf
            flags.append(f"{track}: {name}: {COLLAPSED} ({level:.1f} dB below its reference): a near-silent output "
                         "scores about 0 dB SDR, above a model that tries and fails")
        if mixture is not None:
            mix = np.asarray(mixture)
            if mix.shape != references.shape[1:]:
                raise ParameterError(f"sanity_flags: mixture {mix.shape} must match the references' "
                                     f"(n_samples, n_channels) {references.shape[1:]}")
            fit = _scaled_copy(estimates_aligned[j], mix)
            if fit and fit[1] > copy_correlation and fit[2] < copy_residual_db:
                flags.append(f"{track}: {name}: estimate equals the mixture (gain {fit[0]:.4g}, residual "
                             f"{fit[2]:.1f} dB): no separation happened")

    sdr = scores.sdr
    if sdr.size:
        frame_nan = np.isnan(sdr).all(axis=0)
        if frame_nan.any():
            flags.append(f"{track}: {int(frame_nan.sum())} of {sdr.shape[1]} frames ({frame_nan.mean():.1%}) are NaN "
                         "for every instrument (a reference or estimate is silent in the frame) and are skipped")
        for j, name in enumerate(scores.instruments):
            if np.isnan(sdr[j]).all():
                flags.append(f"{track}: {name}: every frame is NaN, so its track median is NaN and the track drops "
                             "out of the SiSEC18 median")
            extra = np.isnan(sdr[j]) & ~frame_nan
            if extra.any():
                flags.append(f"{track}: {name}: {int(extra.sum())} more NaN frame(s) ({extra.mean():.1%}) "
                             "from +inf SDR")

    if len(scores.instruments) == 1 and "SIR" in scores.values:
        flags.append(f"{track}: only one source was evaluated: SIR is undefined (+inf) and SDR equals SAR; "
                     "evaluate all stems jointly")
    if scores.length_mismatch or estimates.shape[1] != references.shape[1]:
        diff = scores.length_mismatch or estimates.shape[1] - references.shape[1]
        flags.append(f"{track}: estimates are {diff:+d} samples vs the references (zero-padded/truncated as museval "
                     "does)")
    if scores.sdr_crosscheck_db is not None and scores.sdr_crosscheck_db > CROSSCHECK_TOLERANCE_DB:
        flags.append(f"{track}: museval SDR differs from the fast SDR by {scores.sdr_crosscheck_db:.3g} dB")
    return flags


def _format_cell(column: str, value: object) -> str:
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return "–"
    if column in ("n_tracks", "all_nan_tracks", "n_frames"):
        return str(int(value))
    if column == "nan_frame_share":
        return f"{100 * float(value):.1f} %"
    return f"{float(value):.2f}"


def format_markdown(df: pd.DataFrame, protocol: Optional[Dict[str, object]] = None) -> str:
    """A markdown table of :func:`aggregate`'s output preceded by its protocol (``df.attrs`` if None)."""
    protocol = df.attrs.get("protocol", {}) if protocol is None else protocol
    lines = []
    if protocol:
        lines.append("Protocol:")
        for key, value in protocol.items():
            text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            lines.append(f"- {key}: {text}")
        lines.append("")
    header = [df.index.name or "target"] + list(df.columns)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(df.columns)) + "|")
    for label, row in df.iterrows():
        cells = [str(label)] + [_format_cell(col, row[col]) for col in df.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(df: pd.DataFrame, path: Union[str, Path], protocol: Optional[Dict[str, object]] = None) -> Path:
    """Write the table to ``path`` (CSV) and its protocol next to it as ``<path stem>.protocol.json``.

    Returns the path of the protocol file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    protocol = df.attrs.get("protocol", {}) if protocol is None else protocol
    df.to_csv(path, index=True, float_format="%.6g")
    sidecar = path.with_name(path.stem + ".protocol.json")
    sidecar.write_text(json.dumps(protocol, indent=2, default=str))
    return sidecar


# --- the reports of an evaluation run ---
_EXPECTED = {"MIX": "expected for the mixture floor: every estimate is the mixture (SAR at the round-off floor)"}


def _summary_frame(result: "EvaluationResult") -> pd.DataFrame:
    rows = {}
    for method in result.methods:
        table = result.tables[method]
        row: Dict[str, float] = {}
        for target in table.index:
            if target != OVERALL:
                row[f"SDR {target}"] = table.loc[target, "SDR_median"]
        row["SDR"] = table.loc[OVERALL, "SDR_median"]
        for metric in METRICS[1:]:
            if f"{metric}_median" in table.columns:
                row[metric] = table.loc[OVERALL, f"{metric}_median"]
        row["SDR mean over tracks"] = table.loc[OVERALL, "SDR_mean"]
        row["uSDR (MDX)"] = table.loc[OVERALL, "uSDR_mean"]
        row["NaN frames"] = table.loc[OVERALL, "nan_frame_share"]
        rows[method] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "method"
    return frame


def _markdown(frame: pd.DataFrame) -> List[str]:
    lines = ["| " + " | ".join([frame.index.name or ""] + list(frame.columns)) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|"]
    for label, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            if isinstance(value, float) and np.isnan(value):
                cells.append("–")
            elif column == "NaN frames":
                cells.append(f"{100 * value:.1f} %")
            else:
                cells.append(f"{value:.2f}")
        lines.append("| " + " | ".join([str(label)] + cells) + " |")
    return lines


def write_reports(result: "EvaluationResult") -> None:
    """Write ``report.csv`` (+ protocol), ``tracks.csv``, ``flags.json`` and ``report.md`` of an evaluation."""
    out = result.output_dir
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result.summary(), out / "report.csv", protocol=result.protocol)
    frames = [track_medians(result.scores[m]).assign(method=m) for m in result.methods]
    pd.concat(frames, ignore_index=True)[["method", "track", "target", "metric", "score"]].to_csv(
        out / "tracks.csv", index=False, float_format="%.6g")
    (out / "flags.json").write_text(json.dumps(result.flags, indent=2))

    title = result.model or "oracles"
    lines = [f"# Evaluation of {title} on {result.protocol['dataset']} ({result.subset})", ""]
    lines.append("Protocol:")
    for key, value in result.protocol.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or "none"
        lines.append(f"- {key}: {value}")
    lines += ["", "## Summary", "",
              "SDR per target and SDR/ISR/SIR/SAR overall: SiSEC18 (median over 1 s frames, then median over tracks; "
              "overall = mean of the targets). 'SDR mean over tracks': mean of the per-track medians. "
              "uSDR: MDX whole-track SDR, mean over tracks and targets. NaN frames: frames skipped because a "
              "reference or estimate is silent.", ""]
    lines += _markdown(_summary_frame(result))
    for method in result.methods:
        lines += ["", f"## {method}" + (" (oracle)" if method in ORACLES else ""), ""]
        lines.append(format_markdown(result.tables[method], protocol={}).rstrip("\n"))
    lines += ["", "## Sanity flags", ""]
    lines.append("NaN frames (skipped because a reference or estimate is silent in the frame; 22-31 % in the SiSEC18 "
                 "submissions): " + ", ".join(f"{m} {100 * result.tables[m].loc[OVERALL, 'nan_frame_share']:.1f} %"
                                             for m in result.methods) + ".")
    lines.append("")
    any_flag = False
    for method in result.methods:
        method_flags = result.flags.get(method) or []
        if not method_flags:
            continue
        any_flag = True
        note = f" ({_EXPECTED[method]})" if method in _EXPECTED else ""
        lines.append(f"### {method}{note}")
        lines.append("")
        lines += [f"- {flag}" for flag in method_flags]
        lines.append("")
    if not any_flag:
        lines.append("No flag: no metric above 100 dB, no scaled copy of a reference or of the mixture, no NaN frame.")
    (out / "report.md").write_text("\n".join(lines).rstrip("\n") + "\n")


def log_flags(result: "EvaluationResult", limit: int = 20) -> None:
    """Log the NaN share of every method and the model's sanity flags (at most ``limit`` lines)."""
    for method in result.methods:
        share = result.tables[method].loc[OVERALL, "nan_frame_share"]
        logger.info("%s: %.1f%% of the frames are NaN (a silent reference or estimate) and skipped", method,
                    100 * share)
        method_flags = result.flags.get(method) or []
        if not method_flags:
            continue
        if method in _EXPECTED or method != result.model:
            logger.info("%s: %d sanity flag(s) (oracle row%s); see %s", method, len(method_flags),
                        f", {_EXPECTED[method]}" if method in _EXPECTED else "", result.report_md)
            continue
        for flag in method_flags[:limit]:
            logger.warning("sanity: %s: %s", method, flag)
        if len(method_flags) > limit:
            logger.warning("sanity: %s: %d more flag(s) in %s", method, len(method_flags) - limit, result.report_md)
