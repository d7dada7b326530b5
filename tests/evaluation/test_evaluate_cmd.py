"""The evaluate command: a model run through the Separator and scored exactly like museval.

Material: two 4.5 s test tracks of the numpy synthesiser, a parameter-free model (the mixture passed
to the first stem) and a planted evaluation bug (estimates that are scaled copies of the references).
"""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spleeter_ext.errors import ParameterError
from spleeter_ext.evaluation import evaluate as ev
from spleeter_ext.evaluation.result import EvaluationResult
from spleeter_ext.evaluation.scoring import load_track
from spleeter_ext.evaluation.sdr import framewise_sdr
from spleeter_ext.separate.separator import Separator
from tests.conftest import passthrough_config
from tests.evaluation._evaluation_helpers import max_abs_diff_same_nan

INSTRUMENTS = ("vocals", "drums", "bass", "other")
SR = 44100


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from spleeter_ext.data.make_dataset import make_dataset

    return make_dataset(tmp_path_factory.mktemp("evalset") / "synth", n_train=0, n_test=2, seconds=4.5, seed=7)


@pytest.fixture(scope="module")
def passthrough(tmp_path_factory):
    """A Separator whose vocals are the mixture (the other stems get the ratio masks' tiny floor)."""
    config = passthrough_config(tmp_path_factory.mktemp("pt") / "passthrough.json", n_fft=4096, hop=1024, T=64,
                                instruments=INSTRUMENTS)
    return Separator(str(config))


class FromReferencesSeparator(Separator):
    """A stand-in model that 'separates' the next track by transforming its true stems.

    ``transform(references) -> estimates`` (both ``(n_instruments, n_samples, 2)``); a scaled copy
    plants the classic evaluation bug (targets written instead of predictions).
    """

    def __init__(self, tracks, transform, name):  # no model to load
        self.config = {"_source": name, "model": {"type": name}}
        self.checkpoint = None
        self.instruments = list(INSTRUMENTS)
        self.sample_rate, self.n_channels = SR, 2
        self.segment, self.overlap = SR, 0
        self.transform = transform
        self._queue = list(tracks)

    def separate(self, waveform, sample_rate=None):
        _, references = load_track(self._queue.pop(0), INSTRUMENTS, SR, 2)
        estimates = self.transform(references[:, : len(waveform)])
        return {name: estimates[j].astype(np.float32) for j, name in enumerate(INSTRUMENTS)}


def _references(dataset, track):
    return np.stack([sf.read(str(Path(dataset) / "test" / track / f"{name}.wav"))[0] for name in INSTRUMENTS])


def _estimates(folder, method, track):
    return np.stack([sf.read(str(folder / method / "test" / track / f"{name}.wav"), dtype="float32")[0]
                     for name in INSTRUMENTS])


@pytest.fixture(scope="module")
def sdr_run(passthrough, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_sdr")
    return ev.evaluate(passthrough, dataset, output_dir=out, metrics="sdr", oracles=("IRM1", "IRM2", "MIX"),
                       method="passthrough", save_estimates=True)


def test_scores_are_museval_sdr_of_the_estimates(sdr_run, dataset):
    assert sdr_run.methods == ["passthrough", "IRM1", "IRM2", "MIX"]
    tracks = sorted(p.name for p in (Path(dataset) / "test").iterdir())
    for method in sdr_run.methods:
        for track, scores in zip(tracks, sdr_run.scores[method]):
            assert scores.track_name == track
            references = _references(dataset, track)
            estimates = _estimates(sdr_run.output_dir, method, track)
            expected = framewise_sdr(references, estimates)
            assert max_abs_diff_same_nan(scores.sdr, expected) < 1e-9
            # museval's per-track JSON, values rounded to 5 decimals like museval's TrackStore
            saved = json.loads((sdr_run.output_dir / method / "test" / f"{track}.json").read_text())
            assert [t["name"] for t in saved["targets"]] == list(INSTRUMENTS)
            frames = np.array([[f["metrics"]["SDR"] for f in t["frames"]] for t in saved["targets"]], dtype=float)
            assert max_abs_diff_same_nan(frames, np.round(expected, 5)) < 1e-9
    # the parameter-free model's vocals are the mixture: its SDR is the mixture floor's
    assert np.allclose(sdr_run.tables["passthrough"].loc["vocals", "SDR_median"],
                       sdr_run.tables["MIX"].loc["vocals", "SDR_median"], atol=1e-3)


def test_oracles_beat_the_mixture_floor(sdr_run):
    floor = sdr_run.overall("MIX")
    assert sdr_run.overall("IRM1") > floor + 5
    assert sdr_run.overall("IRM2") > floor + 5
    for target in INSTRUMENTS:
        assert sdr_run.tables["IRM2"].loc[target, "SDR_median"] > sdr_run.tables["MIX"].loc[target, "SDR_median"]


def test_reports_state_the_protocol(sdr_run, dataset):
    md = sdr_run.report_md.read_text()
    for needle in ("dataset_root: " + str(Path(dataset).resolve()), "subset: test", "aggregation: ",
                   "window_seconds: 1.0", "museval_version: ", "model: passthrough", "model_type: passthrough_2d",
                   "oracle_stft: periodic Hann, n_fft 4096, hop 1024", "## Summary", "## IRM2 (oracle)",
                   "## Sanity flags", "uSDR"):
        assert needle in md, needle
    protocol = json.loads(sdr_run.protocol_json.read_text())
    assert protocol["model"] == "passthrough" and protocol["metrics"] == ["SDR"]
    assert protocol["oracles"] == ["IRM1", "IRM2", "MIX"] and protocol["n_tracks"] == 2
    assert not (sdr_run.output_dir / ".work").exists()
    # the CSV reads back into the same numbers
    loaded = EvaluationResult.load(sdr_run.output_dir)
    assert loaded.methods == sdr_run.methods and loaded.model == "passthrough"
    for method in sdr_run.methods:
        for column in ("SDR_median", "SDR_mean", "uSDR_mean", "nan_frame_share"):
            assert np.allclose(loaded.tables[method][column], sdr_run.tables[method][column], rtol=1e-5)
    assert (sdr_run.output_dir / "tracks.csv").is_file()


def test_flags_report_the_mixture_copy(sdr_run):
    flags = sdr_run.flags["passthrough"]
    assert any("vocals: estimate equals the mixture" in f for f in flags)
    assert sum("equals the mixture" in f for f in sdr_run.flags["MIX"]) == 2 * len(INSTRUMENTS)
    md = sdr_run.report_md.read_text()
    assert "vocals: estimate equals the mixture" in md
    assert "expected for the mixture floor" in md


def test_all_metrics_equal_museval(dataset, tmp_path):
    """SDR/ISR/SIR/SAR per frame equal museval.evaluate on the same estimates (one 3 s excerpt: museval is slow)."""
    import museval

    from spleeter_ext.data.tracks import discover
    from spleeter_ext.evaluation.signals import degraded_estimates

    separator = FromReferencesSeparator(discover(dataset, INSTRUMENTS, "test"), degraded_estimates, "leaky")
    result = ev.evaluate(separator, dataset, output_dir=tmp_path, metrics="all", oracles=(), max_tracks=1,
                         seconds=3.0, save_estimates=True)
    assert "first 3 s" in result.protocol["excerpt"] and result.protocol["metrics"] == ["SDR", "ISR", "SIR", "SAR"]
    scores = result.scores["leaky"][0]
    references = _references(dataset, scores.track_name)[:, : 3 * SR]
    estimates = _estimates(tmp_path, "leaky", scores.track_name)
    expected = museval.evaluate(references, estimates, win=SR, hop=SR)
    for name, values in zip(("SDR", "ISR", "SIR", "SAR"), expected):
        values = np.where(np.isinf(values), np.nan, values)
        assert np.isfinite(values).any()
        assert max_abs_diff_same_nan(scores.values[name], values) < 1e-6, name
    assert scores.sdr_crosscheck_db < 1e-6
    saved = json.loads((tmp_path / "leaky" / "test" / f"{scores.track_name}.json").read_text())
    sir = np.array([[f["metrics"]["SIR"] for f in t["frames"]] for t in saved["targets"]], dtype=float)
    assert max_abs_diff_same_nan(sir, np.round(scores.values["SIR"], 5)) < 1e-9


def test_planted_scaled_copy_is_flagged_in_report_and_log(dataset, tmp_path):
    from spleeter_ext.data.tracks import discover

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("spleeter_ext")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        separator = FromReferencesSeparator(discover(dataset, INSTRUMENTS, "test"), lambda refs: 0.5 * refs,
                                            "planted_scaled_copy")
        result = ev.evaluate(separator, dataset, output_dir=tmp_path, oracles=())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert result.model == "planted_scaled_copy"
    # a pure gain error scores a finite SDR of 20 log10(1 / 0.5) = 6.02 dB in every frame
    assert np.allclose(result.tables[result.model].loc["overall", "SDR_median"], 20 * np.log10(2), atol=1e-6)
    flags = result.flags[result.model]
    assert sum("scaled copy of its reference (gain 0.5" in f for f in flags) == 2 * len(INSTRUMENTS)
    assert "scaled copy of its reference" in result.report_md.read_text()
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert any("scaled copy of its reference" in w for w in warnings)


def test_parallel_scoring_equals_inline(passthrough, dataset, tmp_path, sdr_run):
    result = ev.evaluate(passthrough, dataset, output_dir=tmp_path, jobs=2, metrics="sdr",
                         oracles=("IRM1", "IRM2", "MIX"), method="passthrough")
    assert "2 scoring worker(s)" in result.protocol["scoring"]
    for method in sdr_run.methods:
        for mine, theirs in zip(result.scores[method], sdr_run.scores[method]):
            assert max_abs_diff_same_nan(mine.sdr, theirs.sdr) == 0.0
    assert not (tmp_path / ".work").exists()


def test_arguments_are_checked(passthrough, dataset, tmp_path):
    for kwargs in ({"metrics": "sir"}, {"subset": "dev"}, {"oracles": ("IRM3",)}, {"jobs": 0},
                   {"max_tracks": 0}, {"seconds": 0.5}):
        with pytest.raises(ParameterError):
            ev.evaluate(passthrough, dataset, output_dir=tmp_path, **kwargs)
    with pytest.raises(ParameterError):
        ev.evaluate_oracles(dataset, output_dir=tmp_path, oracles=())
    assert ev.method_name("runs/experiments/spleeter_2d_small/seed0/") == "seed0"
    assert ev.method_name("spleeter:4stems") == "spleeter_4stems"
    assert ev.method_name("model_configs/demucs_1d.json") == "demucs_1d"
    assert ev.method_name("MIX") == "model_MIX"


def test_command_line(dataset, tmp_path):
    """``spleeter-ext evaluate`` (run in process through the Typer app) writes the same reports."""
    from typer.testing import CliRunner

    from spleeter_ext.cli import app

    config = passthrough_config(tmp_path / "pt.json", n_fft=4096, hop=1024, T=64, instruments=INSTRUMENTS)
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["evaluate", "-p", str(config), "-d", str(dataset), "-o", str(out), "--no-oracles",
                                   "--max-tracks", "1", "--seconds", "2"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith(f"reports: {out / 'report.md'} and {out / 'report.csv'}")
    loaded = EvaluationResult.load(out)
    assert loaded.methods == ["pt"] and loaded.protocol["tracks_evaluated"] == 1
    assert "first 2 s" in loaded.protocol["excerpt"]
    res = CliRunner().invoke(app, ["evaluate", "-p", str(config), "-d", str(tmp_path / "missing"), "-o", str(out)])
    assert res.exit_code == 1 and res.output.startswith("error: ") and "missing" in res.output
