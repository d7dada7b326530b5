"""The catalog command line: inputs and Beam pipeline options told apart by Beam's parser."""
import pytest

from spleeter_ext.catalog.options import default_threads, split_arguments
from spleeter_ext.errors import ParameterError


def test_inputs_and_beam_options_mixed_in_any_order():
    inputs, options = split_arguments(["a.wav", "--project", "p", "songs/", "--region=eu", "--save_main_session",
                                       "--experiments", "x", "--experiments=y", "list.csv",
                                       "--setup_file", "./setup.py"])
    assert inputs == ["a.wav", "songs/", "list.csv"]
    assert options == {"project": "p", "region": "eu", "save_main_session": True, "experiments": ["x", "y"],
                       "setup_file": "./setup.py"}


def test_unknown_option_is_an_error():
    with pytest.raises(ParameterError, match="unknown option --regoin"):
        split_arguments(["a.wav", "--regoin", "eu"])


def test_threads_are_shared_out_among_local_worker_processes(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    multi = {"direct_running_mode": "multi_processing"}
    assert default_threads({}) is None
    assert default_threads({"direct_num_workers": 2}) is None  # in_memory: one process
    assert default_threads({"direct_num_workers": 2, **multi}) == 4
    assert default_threads({"direct_num_workers": 0, **multi}) == 1
    assert default_threads({"direct_num_workers": 2, "runner": "DataflowRunner", **multi}) is None


def test_the_readme_dataflow_command_parses():
    """The Dataflow command line of README.md: its Beam options are all known to Beam."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [command] = [c for c in re.findall(r"```text\n(.*?)```", readme, re.S) if "DataflowRunner" in c]
    line = command.split("\n", 1)[1].replace("\\\n", " ")
    tokens = shlex.split(line)
    assert tokens[:2] == ["spleeter-ext", "catalog"]
    ours = {"-p", "-o", "-j", "--runner"}  # the catalog command's own options, each with a value
    rest, k = [], 2
    while k < len(tokens):
        if tokens[k] in ours:
            k += 2
            continue
        rest.append(tokens[k])
        k += 1
    inputs, options = split_arguments(rest)
    assert inputs == ["gs://my-bucket/catalog/**"]
    assert options["project"] == "my-project" and options["number_of_worker_harness_threads"] == 1
    assert options["setup_file"] == "./setup.py" and options["max_num_workers"] == 100
