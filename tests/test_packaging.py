"""A regular (non-editable) install carries everything the package reads: model configs, presets and
the bundled demo model."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_resolves_every_preset_without_the_source_tree(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("spleeter_ext-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for cfg in (ROOT / "model_configs").glob("*.json"):
        assert f"spleeter_ext/model_configs/{cfg.name}" in names
    for res in (ROOT / "spleeter_ext" / "resources").rglob("*"):
        if res.is_file():
            assert "spleeter_ext/" + res.relative_to(ROOT / "spleeter_ext").as_posix() in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = ("import spleeter_ext, spleeter_ext.config as c; assert spleeter_ext.__file__.startswith(%r); "
             "print(' '.join(c.list_presets())); c.load_config('stack_spleeter_2d_small'); c.load_config('demo')"
             % str(unpacked))
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    presets = set(out.stdout.split())
    expected = {p.stem for p in (ROOT / "model_configs").glob("*.json")} | {"demo"}
    assert presets == expected
