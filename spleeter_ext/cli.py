"""``spleeter-ext``: the one command line, a thin Typer layer over library functions (TensorFlow loads lazily).

Every command shares ``--verbose`` and reports a ``SpleeterExtError`` as one ``error:`` line (:func:`command`).
"""
from __future__ import annotations

import functools
import inspect
import logging
from typing import Callable, List, Optional

import typer

from .config import DATASET_SECONDS, DATASET_TEST_TRACKS, DATASET_TRAIN_TRACKS
from .errors import SpleeterExtError
from .log import configure_logging, logger

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Music source separation on top of Spleeter: separate, train, evaluate, export.")

ParamsOption = typer.Option("spleeter:4stems", "-p", "--params_filename", "--params",
                            help="Model: spleeter:2stems|4stems|5stems, a JSON config, a trained model "
                                 "directory, or a preset name (see `spleeter-ext models`).")
VerboseOption = typer.Option(False, "--verbose", help="Debug logs.")
FilenameFormatOption = typer.Option("{filename}/{instrument}.{codec}", "-f", "--filename_format",
                                    help="Output name template: {filename}, {foldername}, {instrument}, {codec}.")
CodecOption = typer.Option("wav", "-c", "--codec", help="wav, flac, mp3, ogg, m4a or wma.")
BitrateOption = typer.Option("128k", "-b", "--bitrate", help="Bitrate of lossy codecs, e.g. 192k.")


def fail(message: str, code: int = 1) -> None:
    """Print ``error: <message>`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def command(name: Optional[str] = None, target: Optional[typer.Typer] = None,
            **settings) -> Callable[[Callable], Callable]:
    """Register ``fn`` as a command of ``target`` (default: this CLI) with the shared behaviour: a ``--verbose``
    option, logging configured before the command runs, and any :class:`SpleeterExtError` reported as one
    ``error:`` line. ``settings`` go to Typer's ``command`` (e.g. ``context_settings``)."""

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, verbose: bool = False, **kwargs):
            configure_logging(verbose)
            try:
                return fn(*args, **kwargs)
            except SpleeterExtError as exc:
                fail(str(exc))

        signature = inspect.signature(fn)
        verbose = inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=VerboseOption,
                                    annotation=bool)
        run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), verbose])
        run.__annotations__ = {**fn.__annotations__, "verbose": bool}
        return (target or app).command(name, **settings)(run)

    return register


@command()
def separate(
    files: List[str] = typer.Argument(..., help="Audio files to separate (any format FFmpeg decodes)."),
    params: str = ParamsOption,
    output_path: str = typer.Option("separated", "-o", "--output_path", help="Output directory."),
    filename_format: str = FilenameFormatOption,
    codec: str = CodecOption,
    bitrate: str = BitrateOption,
    offset: float = typer.Option(0.0, "-s", "--offset", help="Start offset in seconds."),
    duration: Optional[float] = typer.Option(None, "-d", "--duration",
                                             help="Seconds to separate from the offset (default: all of it)."),
    mwf: bool = typer.Option(False, "--mwf", help="Multichannel Wiener filtering (spectrogram models)."),
    segment: Optional[float] = typer.Option(None, "--segment", help="Segment length in seconds."),
    overlap: Optional[float] = typer.Option(None, "--overlap", help="Overlap between segments, fraction 0-0.9."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="CPU threads for TensorFlow (default: all)."),
    batch_size: int = typer.Option(1, "--batch-size", help="Segments per model call."),
    sample_format: Optional[str] = typer.Option(None, "--sample-format",
                                                help="wav sample format: s16 (default), s24 or f32."),
    input_rate: bool = typer.Option(False, "--input-rate",
                                    help="Write stems at the input's sample rate instead of the model's."),
    stems: Optional[str] = typer.Option(None, "--stems",
                                        help="Write only these stems, e.g. vocals,drums (default: all)."),
    two_stems: Optional[str] = typer.Option(None, "--two-stems",
                                            help="Write this stem and no_<stem>, the sum of the others "
                                                 "(Demucs' --two-stems), e.g. vocals."),
    shifts: int = typer.Option(0, "--shifts",
                               help="Average N separations of the input shifted by 0-0.5 s (seeded random; "
                                    "Demucs' --shifts); N times the work."),
    mask_extension: Optional[str] = typer.Option(None, "--mask-extension",
                                                 help="Spectrogram models, bins above F: zeros (cut there, "
                                                      "Spleeter's default) or average (full band). Default: "
                                                      "the model config's."),
    device: str = typer.Option("auto", "--device", help="auto (a GPU when TensorFlow sees one), cpu or gpu."),
    chunking: str = typer.Option("auto", "--chunking",
                                 help="auto, grid (spectrogram models: stems of one whole-file pass, as "
                                      "Spleeter's) or crossfade (overlapping segments, --overlap)."),
    allow_truncated: bool = typer.Option(False, "--allow-truncated",
                                         help="Separate the decodable part of an input shorter than its header "
                                              "declares (logged) instead of failing."),
    precision: str = typer.Option("float32", "--precision",
                                  help="float32 (Spleeter's numbers) or bf16 (the network computes in bfloat16; "
                                       "STFT and masks stay float32)."),
    jit_compile: bool = typer.Option(False, "--jit-compile", help="Run the network XLA-compiled."),
) -> None:
    """Separate audio files into stems."""
    from .separate.separator import Separator

    sep = Separator(params, MWF=mwf, segment=segment, overlap=overlap, batch_size=batch_size, threads=jobs,
                    stems=stems, two_stems=two_stems, shifts=shifts, mask_extension=mask_extension,
                    device=device, chunking=chunking, precision=precision, jit_compile=jit_compile)
    results = sep.separate_files(files, output_path, codec=codec, bitrate=bitrate, filename_format=filename_format,
                                 offset=offset, duration=duration, keep_input_rate=input_rate,
                                 sample_format=sample_format, allow_truncated=allow_truncated)
    failed = [r for r in results if not r.ok]
    for r in failed:
        typer.echo(f"error: {r.error}", err=True)
    if failed:
        logger.info("%d of %d files separated; %d failed", len(results) - len(failed), len(results), len(failed))
        raise typer.Exit(1)


@command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def catalog(
    inputs: List[str] = typer.Argument(..., help="Audio files, folders, globs, or manifests (.txt: one path per "
                                                 "line; .csv/.jsonl: a path column), on any filesystem Beam "
                                                 "supports (local, gs://, s3://...); Beam pipeline options "
                                                 "(--project, --region, --direct_num_workers...) may be mixed in."),
    params: str = ParamsOption,
    output_path: str = typer.Option("separated", "-o", "--output_path", help="Output directory (local or a URI)."),
    filename_format: str = FilenameFormatOption,
    codec: str = CodecOption,
    bitrate: str = BitrateOption,
    runner: str = typer.Option("DirectRunner", "--runner",
                               help="Beam runner: DirectRunner (this machine), DataflowRunner, FlinkRunner, ..."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Separate again inputs whose stems are complete."),
    results: Optional[str] = typer.Option(None, "--results", help="Results manifest, JSON lines "
                                                                  "(default: <output>/catalog-results.jsonl)."),
    path_column: str = typer.Option("path", "--path-column", help="Column (CSV) or key (JSONL) of manifest paths."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j",
                                       help="TensorFlow threads per worker (default: the cores shared out among "
                                            "local DirectRunner workers, else all)."),
) -> None:
    """Separate a catalog on Apache Beam: resumable (complete stems are skipped), one results record per input."""
    verbose = logger.isEnabledFor(logging.DEBUG)
    if not verbose:  # Beam's import-time warnings go to the root logger; its workers log at INFO
        logging.getLogger().setLevel(logging.ERROR)
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    from .catalog.job import CatalogJob, require_beam

    require_beam()
    from .catalog.options import default_threads, split_arguments
    from .catalog.pipeline import run_catalog

    specs, options = split_arguments(inputs)
    if not specs:
        fail("no input given; pass audio files, folders, globs or manifests")
    options["runner"] = runner
    if not verbose:
        options.setdefault("default_sdk_harness_log_level", "CRITICAL")  # failures reach us as one line
    job = CatalogJob(params=params, destination=output_path, codec=codec, bitrate=bitrate,
                     filename_format=filename_format, overwrite=overwrite, path_column=path_column,
                     threads=jobs or default_threads(options), verbose=verbose)
    summary = run_catalog(specs, job, options, results=results)
    for error in summary.errors:
        typer.echo(f"error: {error}", err=True)
    if summary.failed > len(summary.errors):
        typer.echo(f"error: ... and {summary.failed - len(summary.errors)} more failed inputs; see {summary.results}",
                   err=True)
    typer.echo(summary.line())
    if summary.failed:
        raise typer.Exit(1)


@command()
def models() -> None:
    """List every registered model: parameters, multiply-accumulates per second, receptive field, domain."""
    from .models.table import model_table

    typer.echo(model_table())


@command()
def train(
    params: str = typer.Option(..., "-p", "--params_filename", "--params", help="Model config (JSON or preset)."),
    data: str = typer.Option(..., "-d", "--data",
                             help="Dataset root: MUSDB18 (stems or wav), a folder tree, or CSV root."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total training steps (default: train_max_steps)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch size."),
    model_dir: Optional[str] = typer.Option(None, "--model-dir", help="Checkpoint directory (default: model_dir)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Overrides random_seed."),
    csv: Optional[str] = typer.Option(None, "--csv", help="Spleeter-style training CSV (paths relative to --data)."),
    no_validation: bool = typer.Option(False, "--no-validation", help="Skip validation at checkpoints."),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="float32, mixed_bfloat16 or mixed_float16 (default: the config's "
                                                 "'precision', float32)."),
    jit_compile: Optional[bool] = typer.Option(None, "--jit-compile/--no-jit-compile",
                                               help="Compile the training step with XLA (default: the config's "
                                                    "'jit_compile', off)."),
) -> None:
    """Train (or resume) a model; rerun the same command to resume after an interruption."""
    from .log import is_terminal
    from .train import train as run

    try:
        out = run(params, data, steps=steps, batch_size=batch_size, model_dir=model_dir, seed=seed, csv=csv,
                  verbose=1 if is_terminal() else 2, validate=not no_validation, precision=precision,
                  jit_compile=jit_compile)
    except KeyboardInterrupt as exc:
        typer.echo(f"interrupted: {exc}; rerun the same command to resume", err=True)
        raise typer.Exit(130)
    typer.echo(str(out))


@command("make-dataset")
def make_dataset(
    out: str = typer.Argument(..., help="Output folder (MUSDB18-HQ wav layout)."),
    train: int = typer.Option(DATASET_TRAIN_TRACKS, "--train", help="Training tracks."),
    test: int = typer.Option(DATASET_TEST_TRACKS, "--test", help="Test tracks."),
    seconds: float = typer.Option(DATASET_SECONDS, "--seconds", help="Length of each track."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    engine: str = typer.Option("numpy", "--engine",
                               help="numpy (no system dependency), realistic (fluidsynth, mma, festival) or auto "
                                    "(realistic when its Debian packages are installed)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel renderers."),
) -> None:
    """Generate a synthetic MUSDB-format dataset (mixture = sum of stems, nothing clipped)."""
    from .data.make_dataset import make_dataset as run

    if engine == "auto":
        from .data.realistic import check_dependencies

        try:
            check_dependencies()
            engine = "realistic"
        except SpleeterExtError as exc:
            logger.warning("realistic engine unavailable (%s); using the numpy engine", exc)
            engine = "numpy"
    typer.echo(str(run(out, train, test, seconds, seed=seed, engine=engine, jobs=jobs)))


@command()
def evaluate(
    params: str = typer.Option(..., "-p", "--params_filename", "--params", help="Model to evaluate."),
    data: str = typer.Option(..., "-d", "--data", help="Dataset root (MUSDB18 stems or wav, or a synthetic set)."),
    subset: str = typer.Option("test", "--subset", help="test, train or valid."),
    output: str = typer.Option("evaluation", "-o", "--output", help="Where the museval JSONs and reports go."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Scoring processes (bounded by free memory)."),
    metrics: str = typer.Option("sdr", "--metrics", help="sdr (exact and fast) or all (museval's SIR/SAR/ISR too)."),
    no_oracles: bool = typer.Option(False, "--no-oracles", help="Skip the oracle rows (IRM1, IRM2, IBM1, MWF, MIX)."),
    max_tracks: Optional[int] = typer.Option(None, "--max-tracks", help="Evaluate only the first N tracks."),
    seconds: Optional[float] = typer.Option(None, "--seconds",
                                            help="Evaluate only the first S seconds of each track (quick checks)."),
    mwf: bool = typer.Option(False, "--mwf", help="Separate with the multichannel Wiener filter."),
) -> None:
    """Separate a dataset split and score it with museval (BSSEval v4), beside oracle bounds."""
    from .evaluation.evaluate import evaluate as run

    kwargs = {"oracles": ()} if no_oracles else {}
    result = run(params, data, subset=subset, output_dir=output, jobs=jobs, metrics=metrics, max_tracks=max_tracks,
                 seconds=seconds, mwf=mwf, **kwargs)
    typer.echo(result.report_md.read_text())
    typer.echo(f"reports: {result.report_md} and {result.report_csv}")


@command()
def export(
    params: str = typer.Option(..., "-p", "--params_filename", "--params", help="Model to export."),
    output: str = typer.Option(..., "-o", "--output", help="Output directory."),
    fmt: List[str] = typer.Option(["savedmodel"], "--format", help="savedmodel and/or tflite (repeatable)."),
    segment: Optional[float] = typer.Option(None, "--segment", help="Segment length in seconds."),
    overlap: Optional[float] = typer.Option(None, "--overlap", help="Overlap between segments (fraction)."),
) -> None:
    """Export a model as a SavedModel (waveform in, stems out; STFT inside) and TFLite where the ops allow."""
    from .export import export as run

    formats = tuple(dict.fromkeys(["savedmodel"] + list(fmt)))  # TFLite converts from the SavedModel
    for kind, path in run(params, output, formats=formats, segment_seconds=segment, overlap=overlap).items():
        typer.echo(f"{kind}: {path}")


@command()
def demo(
    output: str = typer.Option("demo_output", "-o", "--output", help="Where the stems and the picture go."),
    params: str = typer.Option("demo", "-p", "--params_filename", "--params", help="Model (default: the bundled one)."),
) -> None:
    """Separate a real 4-stem example excerpt offline with the bundled model; print where and how well."""
    from .demo import format_result, run_demo

    typer.echo(format_result(run_demo(output, params), params))


def main() -> None:
    """Console-script entry point (also ``python -m spleeter_ext``)."""
    app(prog_name="spleeter-ext")


if __name__ == "__main__":
    main()
