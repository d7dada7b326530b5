"""Configs: descriptors, defaults, validation errors that name the file and the key, presets that extend."""
import json
from pathlib import Path

import pytest

from spleeter_ext.config import (
    DEFAULT_OVERLAP,
    SCHEMA,
    dump_config,
    list_presets,
    load_config,
    merge_configs,
    model_dir_of,
    resolve_descriptor,
    validate_config,
)
from spleeter_ext.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
#: every preset's JSON as committed before the presets were shrunk to their differences (78cebf2; the stacks: 29f6714),
#: then changed on purpose: softmax masks for the 2D Wave-U-Net and Demucs presets and their stacks (docs/models.md)
BEFORE = json.loads((Path(__file__).parent / "fixtures" / "presets_resolved.json").read_text())
MINIMAL = {"instrument_list": ["vocals", "accompaniment"], "model": {"type": "passthrough_2d"}}


def _write(path: Path, cfg) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return path


# --- presets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BEFORE))
def test_every_preset_resolves_to_exactly_its_former_values(name):
    raw, _, _ = resolve_descriptor(name)
    assert raw == BEFORE[name]
    cfg = load_config(name)
    assert dump_config(cfg) == validate_config(BEFORE[name])
    assert cfg["_source"] == f"preset '{name}'"


def test_small_presets_state_only_their_differences():
    for path in sorted((ROOT / "model_configs").glob("*_small.json")):
        own = json.loads(path.read_text())
        base = path.stem[: -len("_small")]
        assert own["extends"] == base, path.name
        assert len(own) < len(BEFORE[path.stem]), path.name
        assert all(own[k] != BEFORE[base].get(k) for k in own if not isinstance(own[k], dict)), path.name


def test_every_preset_is_listed():
    assert set(BEFORE) <= set(list_presets())


# --- defaults and descriptors -----------------------------------------------------------------------
def test_defaults_are_filled_in(tmp_path):
    cfg = load_config(_write(tmp_path / "min.json", MINIMAL))
    for key, (_, default, _) in SCHEMA.items():
        if key not in MINIMAL and key not in ("augmentation", "inference"):
            assert cfg[key] == default, key
    assert cfg["model"] == {"type": "passthrough_2d", "params": {}}
    assert cfg["augmentation"] == {"remix": True, "gain": [0.25, 1.25], "channel_swap": True, "skip_silent": True}
    assert cfg["inference"] == {"segment_seconds": None, "overlap": DEFAULT_OVERLAP}
    assert cfg["_source"] == str(tmp_path / "min.json") and cfg["_root"] == str(tmp_path)
    assert "_source" not in dump_config(cfg) and "_root" not in dump_config(cfg)


def test_spleeter_presets_load_from_the_installed_package():
    cfg = load_config("spleeter:4stems")
    assert cfg["instrument_list"] == ["vocals", "drums", "bass", "other"] and cfg["_root"] is None
    assert load_config("spleeter:2stems")["instrument_list"] == ["vocals", "accompaniment"]
    with pytest.raises(ConfigError, match="spleeter:3stems: unknown Spleeter preset; available: spleeter:2stems"):
        load_config("spleeter:3stems")


def test_model_directory_and_relative_model_dir(tmp_path):
    model = tmp_path / "run"
    _write(model / "config.json", MINIMAL)
    (model / "checkpoint").write_text("")
    cfg = load_config(str(model))
    assert cfg["_source"] == str(model / "config.json") and model_dir_of(cfg) == model
    _write(tmp_path / "conf" / "c.json", {**MINIMAL, "model_dir": "weights"})
    (tmp_path / "conf" / "weights").mkdir()
    assert model_dir_of(load_config(str(tmp_path / "conf" / "c.json"))) == tmp_path / "conf" / "weights"
    assert model_dir_of(load_config(_write(tmp_path / "none.json", MINIMAL))) is None
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"{empty}: a model directory must hold config.json"):
        load_config(str(empty))


def test_unknown_descriptor_lists_the_presets():
    with pytest.raises(ConfigError, match="no_such: not a config file, model directory or preset; available "
                                          "presets: spleeter:2stems.*spleeter_2d_small"):
        load_config("no_such")


def test_dict_descriptor():
    cfg = load_config({**MINIMAL, "_source": "mine", "_root": None})
    assert cfg["_source"] == "mine" and cfg["sample_rate"] == 44100
    assert load_config(dump_config(cfg))["_source"] == "<config>"


# --- validation errors name the file and the key ----------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"frame_lenght": 1024}, "unknown key 'frame_lenght'; known keys: F, MWF, T,"),
    ({"model": {"type": "passthrough_2d", "parms": {}}}, "unknown key 'model.parms'; known keys: params, type"),
    ({"augmentation": {"pitch": True}}, "unknown key 'augmentation.pitch'"),
    ({"inference": {"overlap": 1.0}}, r"'inference.overlap' must be in \[0, 1\), got 1.0"),
    ({"sample_rate": 44100.0}, "key 'sample_rate' must be int, got float 44100.0"),
    ({"MWF": 1}, "key 'MWF' must be bool, got int 1"),
    ({"T": True}, "key 'T' must be int, got bool True"),
    ({"F": 3000}, "'F' \\(3000\\) exceeds the STFT's 2049 bins for frame_length 4096"),
    ({"frame_step": 0}, "'frame_step' must be positive, got 0"),
    ({"mask_extension": "mirror"}, "'mask_extension' must be 'zeros' or 'average', got 'mirror'"),
    ({"instrument_list": ["a", "a"]}, "'instrument_list' has duplicates"),
    ({"augmentation": {"gain": [2, 1]}}, "'augmentation.gain' must be \\[low, high\\]"),
])
def test_validation_errors_name_file_and_key(tmp_path, change, message):
    path = _write(tmp_path / "bad.json", {**MINIMAL, **change})
    with pytest.raises(ConfigError, match=f"^{path}: {message}") as info:
        load_config(str(path))
    assert "\n" not in str(info.value)


def test_missing_required_key_and_bad_json(tmp_path):
    path = _write(tmp_path / "no_model.json", {"instrument_list": ["a"]})
    with pytest.raises(ConfigError, match=f"^{path}: missing required key 'model'$"):
        load_config(str(path))
    path = _write(tmp_path / "broken.json", '{"instrument_list": ["a"],\n "model": }')
    with pytest.raises(ConfigError, match=f"^{path}: invalid JSON at line 2 column 11"):
        load_config(str(path))
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'gone.json'}: no such config file$"):
        load_config(str(tmp_path / "gone.json"))
    path = _write(tmp_path / "list.json", "[1, 2]")
    with pytest.raises(ConfigError, match=f"^{path}: a config must be a JSON object, got list$"):
        load_config(str(path))


# --- extends ----------------------------------------------------------------------------------------
def test_merge_rule():
    base = {"a": 1, "list": [1, 2, 3], "model": {"type": "x", "params": {"p": 1, "q": {"r": 1, "s": 2}}}}
    assert merge_configs(base, {"a": 2, "list": [9], "model": {"params": {"q": {"s": 3}, "t": 4}}}) == {
        "a": 2, "list": [9], "model": {"type": "x", "params": {"p": 1, "q": {"r": 1, "s": 3}, "t": 4}}}
    # another model type: the base's params belong to another constructor and are not inherited
    assert merge_configs(base, {"model": {"type": "y", "params": {"z": 1}}})["model"] == {"type": "y",
                                                                                        "params": {"z": 1}}
    assert merge_configs(base, {"model": {"type": "x"}})["model"] == base["model"]
    assert base["model"]["params"]["q"] == {"r": 1, "s": 2}  # the base is never modified


def test_extends_a_preset_and_a_relative_file(tmp_path):
    child = _write(tmp_path / "mine.json", {"extends": "spleeter_2d_small", "T": 64, "model_dir": "runs/mine",
                                            "model": {"params": {"conv_n_filters": [4, 8, 8, 8, 8, 8]}}})
    cfg = load_config(str(child))
    assert cfg["T"] == 64 and cfg["learning_rate"] == 0.001 and cfg["train_max_steps"] == 2000
    assert cfg["model"] == {"type": "spleeter_unet_2d", "params": {"conv_n_filters": [4, 8, 8, 8, 8, 8]}}
    assert cfg["_source"] == str(child) and "extends" not in dump_config(cfg)
    grandchild = _write(tmp_path / "sub" / "more.json", {"extends": "../mine.json", "batch_size": 1})
    cfg2 = load_config(str(grandchild))
    assert cfg2["batch_size"] == 1 and cfg2["T"] == 64 and cfg2["model"] == cfg["model"]
    assert load_config({"extends": "spleeter:2stems", "T": 64})["instrument_list"] == ["vocals", "accompaniment"]


def test_extends_errors_name_the_file(tmp_path):
    missing = _write(tmp_path / "missing.json", {"extends": "spleeter_3d"})
    with pytest.raises(ConfigError, match=f"^{missing}: 'extends' names 'spleeter_3d', which is no preset or "
                                          "config file; available presets: "):
        load_config(str(missing))
    gone = _write(tmp_path / "gone.json", {"extends": "nothing_here.json"})
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'nothing_here.json'}: no such config file$"):
        load_config(str(gone))
    a = _write(tmp_path / "a.json", {"extends": "b.json", "T": 64})
    _write(tmp_path / "b.json", {"extends": "./a.json", "T": 32})
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'b.json'}: 'extends' makes a cycle \\({a} -> "
                                          f"{tmp_path / 'b.json'} -> {tmp_path / 'a.json'}\\)"):
        load_config(str(a))
    itself = _write(tmp_path / "self.json", {"extends": "self.json"})
    with pytest.raises(ConfigError, match=f"^{itself}: 'extends' makes a cycle \\({itself} -> {itself}\\)"):
        load_config(str(itself))
    not_a_name = _write(tmp_path / "number.json", {"extends": 3})
    with pytest.raises(ConfigError, match=f"^{not_a_name}: key 'extends' must name a preset"):
        load_config(str(not_a_name))


def test_extended_configs_are_validated(tmp_path):
    child = _write(tmp_path / "child.json", {"extends": "spleeter_2d", "frame_lenght": 1024})
    with pytest.raises(ConfigError, match=f"^{child}: unknown key 'frame_lenght'"):
        load_config(str(child))
    bad_base = _write(tmp_path / "base.json", {**MINIMAL, "augmentation": {"pitch": 1}})
    child = _write(tmp_path / "ok_child.json", {"extends": "base.json", "T": 64})
    with pytest.raises(ConfigError, match=f"^{bad_base}: unknown key 'augmentation.pitch'"):
        load_config(str(child))
    incomplete = _write(tmp_path / "part.json", {"T": 64})  # a base must be a whole config itself
    child = _write(tmp_path / "whole.json", {**MINIMAL, "extends": "part.json"})
    with pytest.raises(ConfigError, match=f"^{incomplete}: missing required key"):
        load_config(str(child))
