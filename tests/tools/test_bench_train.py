"""The training benchmark's choices: one `_small` config per family for the SDR comparison, known variants."""
import pytest

from spleeter_ext.config import list_presets
from tools.bench import train as bench


def test_one_small_config_per_family():
    names = [n for n in list_presets() if n != "demo"]
    chosen = bench.quality_configs(names)
    assert all(n.endswith("_small") for n in chosen)
    assert sorted(bench.family(n) for n in chosen) == ["demucs", "spleeter", "stack", "wave_unet"]
    assert bench.family("stack_wave_unet_2d") == "stack" and bench.family("wave_unet_1d_small") == "wave_unet"


def test_unknown_variant_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--variants", "float32,int8", "--quick"])
    assert "--variants" in capsys.readouterr().err
