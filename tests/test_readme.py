"""Every command in README.md runs as written (``make`` targets: checked by a dry run or run by CI/demo)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def shell_lines():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


CLI_LINES = [line for line in shell_lines() if line.startswith("spleeter-ext")]
MAKE_LINES = [line for line in shell_lines() if line.startswith("make")]


def test_readme_has_the_two_setup_commands():
    assert "make demo" in MAKE_LINES and "make test" in MAKE_LINES


@pytest.mark.parametrize("line", [line for line in MAKE_LINES if line not in ("make demo", "make test")])
def test_make_lines_expand_to_tested_commands(line):
    """Long make targets (training, tables) are checked by a dry run: every recipe line they would run is a
    spleeter-ext command or this repository's experiments (``python -m experiments``)."""
    res = subprocess.run(line.split() + ["-n", "-o", "install", "-o", "deb"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, MAKEFLAGS=""))
    assert res.returncode == 0, res.stderr
    recipe = [cmd for cmd in res.stdout.splitlines() if cmd.strip() and not cmd.startswith(("make", "#"))]
    assert recipe, res.stdout
    for cmd in recipe:
        assert "spleeter-ext" in cmd or " -m experiments " in cmd, cmd


@pytest.mark.slow
def test_every_cli_line_runs(tmp_path):
    """Run the README's spleeter-ext lines in order, in a scratch folder holding song.mp3 and other_song.flac."""
    from spleeter_ext.audio.io import write
    from spleeter_ext.data.synth import render_track

    stems = render_track(12.0, seed=5)
    song = sum(stems.values())
    write(tmp_path / "song.mp3", song, 44100)
    write(tmp_path / "other_song.flac", song[: 5 * 44100], 44100)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    assert CLI_LINES, "README shows no spleeter-ext command"
    for line in CLI_LINES:
        res = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=1200)
        assert res.returncode == 0, f"{line}\n{res.stderr[-3000:]}"
