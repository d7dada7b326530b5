"""``spleeter-ext``: a thin Typer CLI over library functions (TensorFlow is imported lazily).

Every :class:`~spleeter_ext.errors.SpleeterExtError` becomes one line ``error: <message>`` on stderr
and a non-zero exit status.
"""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .errors import SpleeterExtError
from .log import configure_logging, logger

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Music source separation on top of Spleeter: separate, train, evaluate, export.")

ParamsOption = typer.Option("spleeter:4stems", "-p", "--params_filename", "--params",
                            help="Model: spleeter:2stems|4stems|5stems, a JSON config, a trained model "
                                 "directory, or a preset name (see `spleeter-ext models`).")
VerboseOption = typer.Option(False, "--verbose", help="Debug logs.")


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def separate(
    files: List[str] = typer.Argument(..., help="Audio files to separate (any format FFmpeg decodes)."),
    params: str = ParamsOption,
    output_path: str = typer.Option("separated", "-o", "--output_path", help="Output directory."),
    filename_format: str = typer.Option("{filename}/{instrument}.{codec}", "-f", "--filename_format",
                                        help="Output name template: {filename}, {foldername}, {instrument}, {codec}."),
    codec: str = typer.Option("wav", "-c", "--codec", help="wav, flac, mp3, ogg, m4a or wma."),
    bitrate: str = typer.Option("128k", "-b", "--bitrate", help="Bitrate of lossy codecs, e.g. 192k."),
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
    verbose: bool = VerboseOption,
) -> None:
    """Separate audio files into stems."""
    configure_logging(verbose)
    from .separate.separator import Separator

    try:
        sep = Separator(params, MWF=mwf, segment=segment, overlap=overlap, batch_size=batch_size, threads=jobs)
        results = sep.separate_files(files, output_path, codec=codec, bitrate=bitrate, filename_format=filename_format,
                                     offset=offset, duration=duration, keep_input_rate=input_rate,
                                     sample_format=sample_format)
    except SpleeterExtError as exc:
        _fail(str(exc))
    failed = [r for r in results if not r.ok]
    for r in failed:
        typer.echo(f"error: {r.error}", err=True)
    if failed:
        logger.info("%d of %d files separated; %d failed", len(results) - len(failed), len(results), len(failed))
        raise typer.Exit(1)


@app.command()
def models(verbose: bool = VerboseOption) -> None:
    """List every registered model: parameters, multiply-accumulates per second, receptive field, domain."""
    configure_logging(verbose)
    from .models.table import model_table

    try:
        typer.echo(model_table())
    except SpleeterExtError as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="spleeter-ext")
    except SpleeterExtError as exc:  # pragma: no cover - commands catch their own
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
