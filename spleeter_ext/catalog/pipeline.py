"""The catalog pipeline: expand inputs, plan and check outputs, skip complete ones, separate the rest
with one :class:`~spleeter_ext.separate.Separator` per worker, and write one results record per input."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.utils import shared

from ..errors import SpleeterExtError
from ..log import configure_logging, logger
from . import inputs, plan, storage
from .job import DONE, FAILED, RESULTS_NAME, SKIPPED, CatalogJob, CatalogSummary, record


def _failed(what: str, error: str) -> Dict[str, object]:
    return record(what, FAILED, error=error)


class ExpandInputs(beam.DoFn):
    """A command-line input -> the audio paths it names (main output) and failed records (``failed``)."""

    def __init__(self, job: CatalogJob):
        self.job = job

    def process(self, spec: str):
        exclude = storage.identity(self.job.destination)
        for path, error in inputs.expand(spec, self.job.path_column, exclude):
            if error:
                yield beam.pvalue.TaggedOutput(FAILED, _failed(path, error))
            else:
                yield path


def _triage(item, job: CatalogJob):
    """After grouping an input with the clashes found for it: failed, skipped, or to separate."""
    path, grouped = item
    (stems,), errors = list(grouped["outputs"]), sorted(grouped["clashes"])
    if errors:
        return [beam.pvalue.TaggedOutput(FAILED, _failed(path, errors[0]))]
    if not job.overwrite and all(storage.exists(p) for p in stems.values()):
        return [beam.pvalue.TaggedOutput(SKIPPED, record(path, SKIPPED, stems))]
    return [(path, stems)]


class SeparateFiles(beam.DoFn):
    """Separate each input exactly as ``separate`` does, with a model built once per worker process
    (on its first input, through Beam's shared handle, so threads of one process share it).

    Local inputs and outputs go straight through :meth:`Separator.separate_files` (which writes each
    stem under a temporary name and renames it when complete). A remote input is first copied to the
    worker's scratch folder; stems bound for a remote folder are written there too, then uploaded
    under a temporary name and renamed. Any failure becomes a failed record; the pipeline goes on.
    """

    def __init__(self, job: CatalogJob):
        self.job = job
        self._shared = shared.Shared()
        self._counts = {s: Metrics.counter("catalog", s) for s in (DONE, FAILED)}
        self._audio = Metrics.counter("catalog", "audio_seconds")

    def acquire_separator(self, scratch: str):
        """This process's separator, built on first use (a remote model directory is copied to ``scratch``)."""
        job = self.job

        def build():
            from ..separate.separator import Separator

            return Separator(storage.stage_model(job.params, scratch), threads=job.threads)

        return self._shared.acquire(build, tag=(job.params, job.threads))

    def setup(self):
        configure_logging(self.job.verbose)
        self.scratch = tempfile.mkdtemp(prefix="spleeter-ext-catalog-")
        self.separator = None  # built with the first input: a worker that only meets skipped inputs needs none

    def teardown(self):
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)

    def process(self, item):
        path, stems = item
        if self.separator is None:
            self.separator = self.acquire_separator(self.scratch)
        t0 = time.monotonic()
        work = tempfile.mkdtemp(dir=self.scratch)
        try:
            rec = self._separate(path, stems, work)
        except SpleeterExtError as exc:
            rec = _failed(path, str(exc))
        except Exception as exc:  # one input must never stop the catalog
            rec = _failed(path, f"{path}: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rec["wall_seconds"] = round(time.monotonic() - t0, 3)
        self._counts[rec["status"]].inc()
        if rec["audio_seconds"]:
            self._audio.inc(int(round(rec["audio_seconds"])))
        yield rec

    def _separate(self, path: str, stems: Dict[str, str], work: str) -> Dict[str, object]:
        from ..audio import probe

        job = self.job
        local_in = path
        if storage.is_remote(path):
            local_in = storage.download(path, os.path.join(work, "input", path.rstrip("/").rsplit("/", 1)[-1]))
        direct = not storage.is_remote(path) and not storage.is_remote(job.destination)
        if direct:
            destination, template = job.destination, job.filename_format
        else:
            destination, template = os.path.join(work, "stems"), "{instrument}.{codec}"
        result = self.separator.separate_files([local_in], destination, codec=job.codec, bitrate=job.bitrate,
                                               filename_format=template, progress=False)[0]
        if not result.ok:
            return _failed(path, (result.error or "separation failed").replace(local_in, path))
        seconds = probe(result.outputs[job.instruments[0]]).duration
        if not direct:
            for inst, uri in stems.items():
                storage.upload(result.outputs[inst], uri)
        return record(path, DONE, dict(result.outputs) if direct else dict(stems), audio_seconds=seconds)


def build(p: beam.Pipeline, specs: Sequence[str], job: CatalogJob, results: str,
          separate: Optional[SeparateFiles] = None) -> None:
    """Add the catalog's transforms to ``p``; the results manifest goes to ``results``."""
    expanded = (p | "Inputs" >> beam.Create(list(specs))
                | "Expand" >> beam.ParDo(ExpandInputs(job)).with_outputs(FAILED, main="paths"))
    planned = (expanded.paths
               | "Once each" >> beam.Distinct()
               | "Plan" >> beam.Map(lambda path: (path, plan.outputs_of(path, job))))
    clashes = (planned
               | "Claims" >> beam.FlatMap(lambda kv: plan.claims(*kv))
               | "By path" >> beam.GroupByKey()
               | "Clashes" >> beam.FlatMap(lambda kv: plan.clashes(list(kv[1]))))
    triaged = ({"outputs": planned, "clashes": clashes}
               | "Join" >> beam.CoGroupByKey()
               | "Triage" >> beam.FlatMap(_triage, job).with_outputs(FAILED, SKIPPED, main="todo"))
    separated = triaged.todo | "Separate" >> beam.ParDo(separate or SeparateFiles(job))
    ((expanded[FAILED], triaged[FAILED], triaged[SKIPPED], separated)
     | "All records" >> beam.Flatten()
     | "JSON" >> beam.Map(lambda rec: json.dumps(rec, ensure_ascii=False))
     | "Results" >> beam.io.WriteToText(results, shard_name_template="", num_shards=1))


def model_instruments(params: str) -> Sequence[str]:
    """The stems a model descriptor separates, from its config (a remote model directory is fetched)."""
    from ..config import load_config

    with tempfile.TemporaryDirectory(prefix="spleeter-ext-catalog-") as scratch:
        return load_config(storage.stage_model(params, scratch))["instrument_list"]


def pipeline_error(exc: BaseException) -> str:
    """One line for a failed pipeline: the toolkit's own message when a worker raised one."""
    text = str(exc).strip()
    ours = re.findall(r"spleeter_ext\.errors\.\w+: ([^\n]+)", text)
    if ours:
        line = ours[-1]
    elif isinstance(exc, SpleeterExtError):
        line = text.splitlines()[0]
    else:
        line = f"the pipeline failed: {type(exc).__name__}: {(text.splitlines() or [''])[-1]}"
    return re.sub(r" \[while running '[^']*'\]", "", line)


def summarize(results: str) -> CatalogSummary:
    """Counts and the first errors of a results manifest."""
    return CatalogSummary.read(storage.read_text_lines(results), results)


def run_catalog(specs: Sequence[str], job: CatalogJob,
                pipeline_options: Union[PipelineOptions, Mapping[str, Any], Sequence[str], None] = None,
                results: Optional[str] = None) -> CatalogSummary:
    """Run the catalog on the runner the Beam options name (DirectRunner by default) and wait for it.

    ``pipeline_options``: Beam's options, as an object, a dict (``{"runner": "DataflowRunner", ...}``)
    or command-line flags. Raises :class:`ParameterError` for a bad codec or filename template before
    anything runs.
    """
    for path in (job.destination, results or "", job.params, *specs):
        storage.check_reachable(path)
    job = dataclasses.replace(job, destination=storage.normalise(job.destination),
                              instruments=tuple(job.instruments or model_instruments(job.params)))
    plan.check_job(job)
    results = results or storage.join(job.destination, RESULTS_NAME)
    options = pipeline_options
    if isinstance(options, Mapping):
        options = PipelineOptions.from_dictionary(dict(options))
    elif not isinstance(options, PipelineOptions):
        options = PipelineOptions(list(options or []))
    FileSystems.set_options(options)
    t0 = time.monotonic()
    separate = SeparateFiles(job)
    in_process = (options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")
                  and options.view_as(DirectOptions).direct_running_mode == "in_memory")
    with tempfile.TemporaryDirectory(prefix="spleeter-ext-catalog-") as scratch:
        # In-process workers share this very separator (same shared handle), built before the pipeline so
        # that a broken model fails once, here. Worker processes build their own (a broken model fails
        # their set-up: Beam prints their tracebacks, then the pipeline's error is reduced to one line).
        held = separate.acquire_separator(scratch) if in_process else None
        try:
            with beam.Pipeline(options=options) as p:
                build(p, list(specs), job, results, separate)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            raise SpleeterExtError(pipeline_error(exc)) from None
        del held
    summary = summarize(results)
    logger.info("catalog finished in %.1f s", time.monotonic() - t0)
    return summary
