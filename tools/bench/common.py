"""Shared helpers of the benchmarks: machine description and the markdown section writer."""
from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}){mem}, Python {platform.python_version()}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_section(path: str, key: str, title: str, body: str, command: str, alias: str = "") -> None:
    """Replace (or append) the section ``key`` of the markdown file ``path``; ``alias`` is the make
    target that runs ``command``."""
    p = Path(path)
    text = p.read_text() if p.exists() else "# Benchmarks\n\nEvery table says the command that made it.\n"
    stamp = time.strftime("%Y-%m-%d")
    section = (f"<!-- bench:{key} -->\n## {title}\n\nMeasured {stamp} on {machine()}.\n"
               f"Command: `{command}`{f' (or `{alias}`)' if alias else ''}\n\n{body.strip()}\n<!-- /bench:{key} -->\n")
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->\n", re.S)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def peak_rss_of(cmd: Sequence[str], env=None, cwd=None, timeout=None):
    """Run ``cmd``; return ``(wall seconds, peak RSS bytes of the child, returncode, stderr)``.

    Uses ``resource.getrusage(RUSAGE_CHILDREN)`` deltas, read in a fresh helper process so that
    earlier children do not mask the figure (ru_maxrss is a maximum over all waited children).
    """
    helper = (
        "import resource,subprocess,sys,time,json;"
        "t=time.perf_counter();p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
        "w=time.perf_counter()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps([w,r*1024,p.returncode,p.stderr[-4000:]]))"
    )
    out = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=timeout)
    import json

    wall, rss, code, err = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, rss, code, err


@contextlib.contextmanager
def work_folder(workdir: Optional[str], prefix: str) -> Iterator[Path]:
    """``workdir`` (created, kept: checkpoints and inputs are reused) or a temporary folder removed after."""
    if workdir:
        work = Path(workdir).resolve()
        work.mkdir(parents=True, exist_ok=True)
        yield work
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
