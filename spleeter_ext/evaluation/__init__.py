"""Evaluation of source separation: museval-exact fast SDR, oracle bounds, reports and sanity checks.

Importing it does not import museval (which needs the ffmpeg binary through musdb); ``metrics='all'`` does.
"""
from .metrics import METRICS, TrackScores, evaluate_track, save_museval_json, to_museval_json
from .oracle import ORACLES, ibm, irm, mixture_as_estimate, oracle_estimates, oracle_mwf
from .report import aggregate, format_markdown, make_protocol, sanity_flags, track_medians, write_csv
from .sdr import framewise_sdr, pad_or_truncate, track_sdr
from .stft import istft, stft

__all__ = [
    "framewise_sdr", "track_sdr", "pad_or_truncate",
    "TrackScores", "evaluate_track", "to_museval_json", "save_museval_json", "METRICS",
    "irm", "ibm", "oracle_mwf", "mixture_as_estimate", "oracle_estimates", "ORACLES",
    "aggregate", "make_protocol", "track_medians", "sanity_flags", "format_markdown", "write_csv",
    "stft", "istft",
]
