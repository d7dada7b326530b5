"""Training: loss goes down for each family, kill-and-resume, NaN stop, distribution, CLI round trip."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.config import load_config
from tests.conftest import cli_path, run_cli, tiny_training_config

FAMILIES = {
    "spleeter_unet_2d": {"conv_n_filters": [8, 8, 16, 16, 16, 16]},
    "spleeter_unet_1d": {"conv_n_filters": [8, 16, 16], "kernel_size": 9, "strides": 4},
    "wave_unet_1d": {"depth": 5, "base_filters": 6},
    "wave_unet_2d": {"depth": 3, "base_filters": 6},
    "demucs_1d": {"channels": 8, "depth": 3},
    "demucs_2d": {"channels": 8, "depth": 2},
    "stack_unet": {"stage1": {"type": "spleeter_unet_2d", "params": {"conv_n_filters": [8, 8, 16, 16, 16, 16]}},
                   "refiner": {"conv_n_filters": [4, 8, 8, 8, 8, 8]}},
}


@pytest.mark.parametrize("model", list(FAMILIES))
def test_loss_goes_down(model, synth_data, tmp_path):
    """Fit a few epochs on the synthetic set (one track, no augmentation): the loss must fall."""
    from spleeter_ext.data.pipeline import training_dataset
    from spleeter_ext.data.tracks import discover
    from spleeter_ext.models.estimators import build_estimator
    from spleeter_ext.train import make_keras_model

    tf.keras.utils.set_random_seed(0)
    cfg = load_config(tiny_training_config(tmp_path / "c.json", model, FAMILIES[model]))
    est = build_estimator(cfg)
    est.build()
    keras_model = make_keras_model(est)
    keras_model.compile(optimizer=tf.keras.optimizers.Adam(3e-3))
    tracks = discover(synth_data, cfg["instrument_list"], "train")[:1]
    data = training_dataset(tracks, cfg["instrument_list"], 44100, 2, est.training_segment_samples(), 2, seed=0,
                            augmentation=None)
    # the same few examples again and again: a model that learns must fit them
    data = data.take(3).cache().repeat()
    history = keras_model.fit(data, epochs=6, steps_per_epoch=6, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < 0.9 * history[0], history


def _train_cmd(config, data, model_dir, *extra):
    return [cli_path(), "train", "-p", str(config), "-d", str(data), "--model-dir", str(model_dir), *map(str, extra)]


def test_train_cli_writes_a_model_dir_that_separates(synth_data, tmp_path):
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=4,
                               save_every=2)
    res = subprocess.run(_train_cmd(cfg, synth_data, tmp_path / "model"), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    model_dir = tmp_path / "model"
    run = json.loads((model_dir / "run.json").read_text())
    assert run["seed"] == 1 and run["versions"]["spleeter"] == "2.4.2" and "tensorflow" in run["versions"]
    assert json.loads((model_dir / "config.json").read_text())["train_max_steps"] == 4
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("-4")
    assert list((model_dir / "logs").glob("events.*"))  # TensorBoard
    song = next((Path(synth_data) / "test").iterdir()) / "mixture.wav"
    res = run_cli("separate", "-p", model_dir, "-o", tmp_path / "sep", song)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "sep").rglob("*.wav"))) == 4



def test_resuming_with_another_model_or_seed_is_refused(synth_data, tmp_path):
    """A model directory resumes only under the model, stems, STFT, loss and seed it was trained with;
    more steps (or another learning rate) continue it."""
    params = FAMILIES["wave_unet_2d"]
    cfg = tiny_training_config(tmp_path / "c.json", "wave_unet_2d", params, steps=2, save_every=2)
    model_dir = tmp_path / "model"
    res = subprocess.run(_train_cmd(cfg, synth_data, model_dir, "--no-validation"), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    other = tiny_training_config(tmp_path / "other.json", "wave_unet_2d", {**params, "output_activation": "softmax"},
                                 steps=4, save_every=2)
    for config, extra, key in [(other, [], "model.params.output_activation"), (cfg, ["--seed", "7"], "random_seed")]:
        res = subprocess.run(_train_cmd(config, synth_data, model_dir, "--no-validation", *extra),
                             capture_output=True, text=True, timeout=600)
        assert res.returncode != 0
        message = [line for line in res.stderr.splitlines() if str(model_dir) in line]
        assert len(message) == 1 and f"'{key}'" in message[0] and "--model-dir" in message[0], res.stderr[-2000:]
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("-2")  # untouched
    longer = tiny_training_config(tmp_path / "longer.json", "wave_unet_2d", params, steps=4, save_every=2,
                                  learning_rate=1e-4)
    res = subprocess.run(_train_cmd(longer, synth_data, model_dir, "--no-validation"), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((model_dir / "run.json").read_text())["start_step"] == 2
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("-4")

def test_kill_and_resume(synth_data, tmp_path):
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=400,
                               save_every=3)
    model_dir = tmp_path / "model"
    cmd = _train_cmd(cfg, synth_data, model_dir, "--no-validation")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (tf.train.latest_checkpoint(str(model_dir)) or "").endswith("-6"):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    stopped = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
    assert stopped >= 6  # saved at the step the signal arrived, not only at the last multiple of 3
    # SIGKILL mid-run: the latest checkpoint listed must still restore
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1]) <= stopped:
        time.sleep(0.1)
    time.sleep(0.5)  # somewhere between two checkpoints, possibly while one is being written
    proc.kill()
    proc.wait()
    latest = tf.train.latest_checkpoint(str(model_dir))
    killed_at = int(latest.rsplit("-", 1)[1])
    assert killed_at >= stopped
    reader = tf.train.load_checkpoint(latest)
    assert any("optimizer" in name for name in reader.get_variable_to_shape_map())
    # resume to a total just beyond: the step counter continues from the checkpoint
    res = subprocess.run(cmd[:-1] + ["--steps", str(killed_at + 2), "--no-validation"], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    run = json.loads((model_dir / "run.json").read_text())
    assert run["start_step"] == killed_at
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"-{killed_at + 2}")


def test_nan_loss_stops_with_the_step(synth_data, tmp_path, monkeypatch):
    from spleeter_ext.models import estimators
    from spleeter_ext.train import TrainingError, train

    original = estimators.STFTMaskEstimator.compute_losses

    def poisoned(self, mixture, sources, training=True):
        loss, per = original(self, mixture, sources, training)
        return loss * np.float32("nan"), per

    monkeypatch.setattr(estimators.STFTMaskEstimator, "compute_losses", poisoned)
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=4)
    with pytest.raises(TrainingError, match="step 1"):
        train(str(cfg), str(synth_data), model_dir=str(tmp_path / "m"), verbose=0, validate=False)


@pytest.mark.slow
def test_two_replicas_split_the_global_batch(synth_data, tmp_path):
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=2,
                               save_every=2, batch_size=4)
    env = dict(os.environ, SPLEETER_EXT_LOGICAL_CPUS="2")
    res = subprocess.run(_train_cmd(cfg, synth_data, tmp_path / "model", "--no-validation"), capture_output=True,
                         text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads((tmp_path / "model" / "run.json").read_text())
    assert run["replicas"] == 2
    assert tf.train.latest_checkpoint(str(tmp_path / "model")).endswith("-2")


def test_missing_stem_names_the_file(synth_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    victim = sorted((data / "train").iterdir())[0] / "bass.wav"
    victim.unlink()
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=2)
    res = subprocess.run(_train_cmd(cfg, data, tmp_path / "model"), capture_output=True, text=True, timeout=600)
    assert res.returncode != 0
    assert "error:" in res.stderr and victim.parent.name in res.stderr and "bass" in res.stderr


def _weights(model_dir):
    reader = tf.train.load_checkpoint(str(model_dir))
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith("model/")]
    return reader, {n: reader.get_tensor(n) for n in names}


def test_checkpoints_load_across_precisions(synth_data, tmp_path):
    """mixed_float16 (loss-scaled) -> mixed_bfloat16 -> float32 resumes of one run; the checkpoints stay float32
    and separate alike under float32 and bf16, and the global policy does not leak out of train()."""
    from spleeter_ext import Separator
    from spleeter_ext.evaluation.sdr import track_sdr
    from spleeter_ext.train import train
    from tests.separate.test_precision import BF16_MIN_SDR

    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=2,
                               save_every=1)
    out = tmp_path / "model"
    train(cfg, synth_data, model_dir=out, steps=1, verbose=0, validate=False, precision="mixed_float16")
    train(cfg, synth_data, model_dir=out, steps=2, verbose=0, validate=False, precision="mixed_bfloat16")
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    reader, after_bf16 = _weights(out)
    dtypes = reader.get_variable_to_dtype_map()
    assert {dtypes[n] for n in after_bf16} == {tf.float32}
    train(cfg, synth_data, model_dir=out, steps=3, verbose=0, validate=False, precision="float32")
    _, after_f32 = _weights(out)
    assert json.loads((out / "config.json").read_text())["precision"] == "float32"
    assert any(not np.array_equal(after_bf16[n], after_f32[n]) for n in after_bf16)  # the resume trained on

    x = np.random.default_rng(0).uniform(-0.3, 0.3, (44100, 2)).astype(np.float32)
    ref = Separator(str(out)).separate(x)
    low = Separator(str(out), precision="bf16").separate(x)
    for name in ref:
        assert np.abs(ref[name]).max() > 1e-3
        # bfloat16's 8-bit significand in the network: the same bound as on the bundled model
        sdr = track_sdr(ref[name][None], low[name][None])[0]
        assert sdr > BF16_MIN_SDR, (name, sdr)


def test_xla_training_matches_the_graph(synth_data, tmp_path):
    """Two SGD steps without dropout, with and without XLA, from the same seed: the same weights within float
    error."""
    from spleeter_ext.train import train

    params = dict(FAMILIES["spleeter_unet_2d"], dropout=0.0)
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", params, steps=2, optimizer="SGD")
    train(cfg, synth_data, model_dir=tmp_path / "a", verbose=0, validate=False)
    train(cfg, synth_data, model_dir=tmp_path / "b", verbose=0, validate=False, jit_compile=True)
    _, a = _weights(tmp_path / "a")
    _, b = _weights(tmp_path / "b")
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_train_cli_precision_options(synth_data, tmp_path):
    cfg = tiny_training_config(tmp_path / "tiny.json", "spleeter_unet_2d", FAMILIES["spleeter_unet_2d"], steps=1)
    res = subprocess.run(_train_cmd(cfg, synth_data, tmp_path / "bad", "--precision", "half"), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "precision" in last and "half" in last, res.stderr[-2000:]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(json.loads(cfg.read_text()), precision="fp16")))
    res = subprocess.run(_train_cmd(bad, synth_data, tmp_path / "bad2"), capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and "'precision' must be one of" in res.stderr.strip().splitlines()[-1]
    res = subprocess.run(_train_cmd(cfg, synth_data, tmp_path / "ok", "--precision", "mixed_bfloat16",
                                    "--jit-compile", "--no-validation"), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    saved = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert saved["precision"] == "mixed_bfloat16" and saved["jit_compile"] is True
