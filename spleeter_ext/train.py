"""Training with Keras ``fit`` on the streaming tf.data pipeline (no tf.estimator).

* The step counter is the optimizer's ``iterations``; checkpoints (``tf.train.CheckpointManager``:
  model, optimizer state, step) are written every ``save_checkpoints_steps`` steps and when the
  process receives SIGINT/SIGTERM. TensorFlow writes a checkpoint's files first and the ``checkpoint``
  index last, so a run killed at any moment leaves the previous checkpoint intact.
* Rerunning the same command resumes: weights, optimizer state and step are restored and the data
  stream restarts at that step (example ``k`` of the stream is a pure function of ``(seed, k)``).
* TensorBoard logs (``model_dir/logs``): loss per instrument, and the validation SDR of the learning curve
  (:mod:`spleeter_ext.curves`: ``curves.csv`` at log-spaced steps, with training time and FLOPs).
* A NaN/Inf loss stops the run with an error naming the step.
* The resolved config (``config.json``), git commit, package versions and seed (``run.json``) are
  written next to the checkpoints, so the model directory is directly usable by
  ``spleeter-ext separate -p MODEL_DIR``.
* The distribution strategy comes from the environment (:func:`strategy_from_environment`). With several
  workers (``TF_CONFIG``) only the chief writes to the model directory, each worker reads its own shard
  of the example stream, and a missing or lost worker stops the job with one error
  (:mod:`spleeter_ext.distribute`).
"""
from __future__ import annotations

import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from . import curves, distribute
from .config import dump_config, load_config
from .errors import ConfigError, SpleeterExtError
from .log import logger


class TrainingError(SpleeterExtError):
    """Training cannot go on (NaN loss, unusable data)."""


def strategy_from_environment():
    """The tf.distribute strategy for this process.

    * ``TF_CONFIG`` set (several machines): ``MultiWorkerMirroredStrategy``
      (:func:`spleeter_ext.distribute.multi_worker_strategy`);
    * several local GPUs: ``MirroredStrategy``;
    * ``SPLEETER_EXT_LOGICAL_CPUS=N`` (testing): N logical CPU devices under ``MirroredStrategy``;
    * otherwise the default strategy.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return distribute.multi_worker_strategy()
    n_cpu = int(os.environ.get("SPLEETER_EXT_LOGICAL_CPUS", "0") or 0)
    if n_cpu > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n_cpu)
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(n_cpu)])
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _git_commit() -> Optional[str]:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> Dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("spleeter-ext", "spleeter", "tensorflow", "numpy", "av", "musdb", "museval", "librosa"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _optimizer(cfg: dict):
    import tensorflow as tf

    name = cfg.get("optimizer", "Adam")
    lr = float(cfg["learning_rate"])
    if name == "Adadelta":
        return tf.keras.optimizers.Adadelta()
    if name == "SGD":
        return tf.keras.optimizers.SGD(lr)
    return tf.keras.optimizers.Adam(lr)


def make_keras_model(estimator):
    """A ``tf.keras.Model`` whose ``train_step``/``test_step`` call the estimator's losses."""
    import tensorflow as tf

    class SeparationModel(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.estimator = estimator
            self.body = estimator.body
            self.trackers = {name: tf.keras.metrics.Mean(name=f"loss_{name}") for name in estimator.instruments}
            self.total = tf.keras.metrics.Mean(name="loss")

        @property
        def metrics(self):
            return [self.total] + list(self.trackers.values())

        def _update(self, loss, per):
            self.total.update_state(loss)
            for name, value in per.items():
                self.trackers[name].update_state(value)
            return {m.name: m.result() for m in self.metrics}

        def train_step(self, data):
            mixture, sources = data
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaling = isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
            with tf.GradientTape() as tape:
                loss, per = self.estimator.compute_losses(mixture, sources, training=True)
                scaled = loss / replicas
                if scaling:
                    scaled = self.optimizer.get_scaled_loss(scaled)
            grads = tape.gradient(scaled, self.body.trainable_variables)
            if scaling:
                grads = self.optimizer.get_unscaled_gradients(grads)
            self.optimizer.apply_gradients(
                [(g, v) for g, v in zip(grads, self.body.trainable_variables) if g is not None])
            return self._update(loss, per)

        def test_step(self, data):
            mixture, sources = data
            loss, per = self.estimator.compute_losses(mixture, sources, training=False)
            return self._update(loss, per)

        def call(self, inputs, training=None):
            return self.estimator.separate_segments(inputs, training=training)

    return SeparationModel()


class _Control:
    """Signal flag shared by the callbacks."""

    def __init__(self):
        self.signal: Optional[int] = None


def _callbacks(manager, step_of, cfg, control: _Control, writer, recorder, total_steps, curve_at):
    import tensorflow as tf

    save_every = int(cfg["save_checkpoints_steps"])
    summary_every = max(1, int(cfg["save_summary_steps"]))
    instruments = cfg["instrument_list"]

    class Checkpointing(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = step_of()
            logs = logs or {}
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise TrainingError(f"loss became {float(loss)} at step {step}; lower 'learning_rate' or check the "
                                    f"data (the last good checkpoint is {manager.latest_checkpoint})")
            if step % summary_every == 0:
                with writer.as_default(step=step):
                    for key, value in logs.items():
                        tf.summary.scalar(f"train/{key}", float(value))
            if control.signal is not None:
                path = self._save(step)
                logger.info("Received signal %d: saved %s at step %d; rerun the same command to resume",
                            control.signal, path, step)
                self.model.stop_training = True
                return
            if step % save_every == 0 or step >= total_steps or step in curve_at:
                self._save(step)
            if recorder is not None and step in curve_at:
                self._score(step)
            if step >= total_steps:
                self.model.stop_training = True

        def _save(self, step):
            if recorder is not None:
                recorder.clock.save(step)
            return manager.save(checkpoint_number=step)

        def _score(self, step):
            row = recorder.record(step)
            with writer.as_default(step=step):
                tf.summary.scalar("valid/sdr", row["SDR"])
                for name in instruments:
                    if math.isfinite(row[f"SDR_{name}"]):
                        tf.summary.scalar(f"valid/sdr_{name}", row[f"SDR_{name}"])
            logger.info("step %d: validation SDR %.2f dB (%s)%s", step, row["SDR"],
                        ", ".join(f"{n} {row[f'SDR_{n}']:.2f}" for n in instruments),
                        f"; collapsed (estimate >= {-curves.COLLAPSE_DB:g} dB below the reference): "
                        f"{row['collapsed']}" if row["collapsed"] else "")

    return [Checkpointing()]


def train(params, data: str, steps: Optional[int] = None, batch_size: Optional[int] = None,
          model_dir: Optional[str] = None, seed: Optional[int] = None, csv: Optional[str] = None,
          verbose: int = 1, validate: bool = True, precision: Optional[str] = None,
          jit_compile: Optional[bool] = None) -> Path:
    """Train (or resume) the model of ``params`` on the dataset at ``data``; returns the model directory.

    Args:
        params: a config descriptor (see :func:`spleeter_ext.config.load_config`).
        data: dataset root (MUSDB18 stems or wav, a folder tree, or the root of ``csv``'s paths).
        steps: total training steps (default: the config's ``train_max_steps``).
        batch_size: global batch size (default: the config's).
        model_dir: where checkpoints go (default: the config's ``model_dir``, else ``runs/<config name>``).
        seed: overrides ``random_seed``.
        csv: a Spleeter-style training CSV (default: the config's ``train_csv`` when ``data`` has no
            train/ folder).
        verbose: Keras progress (1: a bar, 2: a line per epoch); chosen by the CLI from the terminal.
        validate: score the validation split (SDR per stem, ``curves.csv``) at the config's ``curve_steps``
            (default: 100, 200, 400, ... and the last step).
        precision: overrides ``precision``: ``float32``, ``mixed_bfloat16`` or ``mixed_float16`` (Keras
            policies; the bodies compute in the lower precision, variables, STFT, masks, losses and optimizer
            state stay float32, float16 adds dynamic loss scaling). Checkpoints load under any precision. The
            global policy is restored on return.
        jit_compile: overrides ``jit_compile``: compile the training step with XLA.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .models.precision import check_precision, policy_scope

    cfg = load_config(params)
    if steps is not None:
        cfg["train_max_steps"] = int(steps)
    if batch_size is not None:
        cfg["batch_size"] = int(batch_size)
    if seed is not None:
        cfg["random_seed"] = int(seed)
    if precision is not None:
        cfg["precision"] = check_precision(precision)
    if jit_compile is not None:
        cfg["jit_compile"] = bool(jit_compile)
    out = Path(model_dir or cfg.get("model_dir") or Path("runs") / Path(str(cfg["_source"])).stem).expanduser()
    if not out.is_absolute() and cfg.get("_root") and model_dir is None and cfg.get("model_dir"):
        out = Path(cfg["_root"]) / out if (Path(cfg["_root"]) / out).exists() else out
    total_steps = int(cfg["train_max_steps"])
    if total_steps <= 0:
        raise ConfigError(f"{cfg['_source']}: 'train_max_steps' must be positive")
    with policy_scope(cfg["precision"]):
        return _train(cfg, data, out, csv, verbose, validate)


#: config keys a checkpoint's meaning depends on: resuming under other values is refused (steps, learning
#: rate, batch size, precision and validation may change between sessions)
RESUME_KEYS = ("model", "instrument_list", "sample_rate", "n_channels", "frame_length", "frame_step", "F",
               "separation_exponent", "loss_type", "random_seed")


def _first_difference(new, old, key: str) -> Optional[str]:
    """The dotted key of the first difference between two JSON values, or None when they are equal."""
    if isinstance(new, dict) and isinstance(old, dict):
        for k in sorted(set(new) | set(old)):
            found = _first_difference(new.get(k), old.get(k), f"{key}.{k}")
            if found:
                return found
        return None
    return None if new == old else key


def check_resumable(out: Path, cfg: dict) -> None:
    """Refuse to resume the checkpoint in ``out`` with a config whose model, stems, STFT, loss or seed
    differ from those it was trained with (its ``config.json``): the run would silently continue another
    model, or under another seed than the one it is filed under."""
    import tensorflow as tf

    saved = out / "config.json"
    latest = tf.train.latest_checkpoint(str(out))
    if not latest or not saved.is_file():
        return
    try:
        before = json.loads(saved.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{saved}: unreadable ({exc}); delete {out} to start over") from exc
    now = dump_config(cfg)
    for key in RESUME_KEYS:
        if key in before:
            diff = _first_difference(now.get(key), before[key], key)
            if diff:
                raise ConfigError(
                    f"{out}: holds a checkpoint ({Path(latest).name}) trained with another '{diff}' than this "
                    f"config's ({_value_at(before, diff)!r} there, {_value_at(now, diff)!r} here); train into "
                    f"another --model-dir, or delete {out} to start over")


def _value_at(cfg: dict, dotted: str):
    value = cfg
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _train(cfg: dict, data: str, out: Path, csv: Optional[str], verbose: int, validate: bool) -> Path:
    """:func:`train` once the config is resolved, under its precision's policy."""
    import tensorflow as tf

    check_resumable(out, cfg)

    from .data.pipeline import training_dataset, validation_excerpts
    from .data.tracks import discover
    from .models.estimators import build_estimator
    from .models.precision import inner_optimizer, wrap_optimizer

    total_steps = int(cfg["train_max_steps"])
    cfg_seed = int(cfg["random_seed"])
    tf.keras.utils.set_random_seed(cfg_seed)

    strategy = strategy_from_environment()
    role = distribute.role_of(strategy)
    write_to = distribute.write_dir(out, role)  # the model directory, or this worker's temporary folder
    instruments = cfg["instrument_list"]
    train_csv = csv or (cfg.get("train_csv") if not (Path(data) / "train").is_dir() else None)
    tracks = discover(data, instruments, "train", csv=train_csv)
    valid_tracks: List = []
    if validate:
        if train_csv:
            vcsv = cfg.get("validation_csv")
            valid_tracks = discover(data, instruments, "valid", csv=vcsv) if vcsv else []
        else:
            try:
                valid_tracks = discover(data, instruments, "valid")
            except SpleeterExtError as exc:
                logger.warning("no validation split (%s); training without validation", exc)
        valid_tracks = valid_tracks[: int(cfg["validation_tracks"])]

    with strategy.scope():
        estimator = build_estimator(cfg)
        estimator.build()
        model = make_keras_model(estimator)
        optimizer = wrap_optimizer(_optimizer(cfg), cfg["precision"])
        model.compile(optimizer=optimizer, jit_compile=bool(cfg["jit_compile"]))
        # The logged metrics are already synchronised over replicas; Keras's default ("sum" across workers)
        # would report them multiplied by the number of workers.
        model.distribute_reduction_method = "first"
        # Create the optimizer's slots now so a restore fills them (not deferred to the first step); the
        # checkpoint holds the inner optimizer of a loss-scale one, so it has one structure under every policy.
        optimizer = inner_optimizer(optimizer)
        optimizer.build(estimator.body.trainable_variables)
        ckpt = tf.train.Checkpoint(model=estimator.body, optimizer=optimizer)
        manager = tf.train.CheckpointManager(ckpt, str(write_to), max_to_keep=3)
        latest = tf.train.latest_checkpoint(str(out))  # every worker resumes from the chief's checkpoint
        if latest:
            ckpt.restore(latest).assert_existing_objects_matched()
            logger.info("Resuming from %s (step %d)", latest, int(optimizer.iterations.numpy()))
        elif getattr(estimator, "stage1_source", None):
            from .separate.weights import load_weights

            loaded = load_weights(estimator.stage1, estimator.stage1.config)
            logger.info("Stage one initialised from %s (%s)", estimator.stage1_source, loaded)

    start = int(optimizer.iterations.numpy())
    distribute.agree_on_step(strategy, start, role)
    cfg_out = dump_config(cfg)
    cfg_out["model_dir"] = "."
    _write_json(write_to / "config.json", cfg_out)
    _write_json(write_to / "run.json", {
        "command": sys.argv, "data": str(data), "seed": cfg_seed, "git_commit": _git_commit(),
        "versions": _versions(), "start_step": start, "total_steps": total_steps,
        "replicas": strategy.num_replicas_in_sync, "workers": role.num_workers,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if start >= total_steps:
        logger.info("%s already trained for %d steps (train_max_steps %d); nothing to do", out, start, total_steps)
        distribute.cleanup(write_to, out)
        return out

    segment = estimator.training_segment_samples()
    dataset = distribute.sharded_input(strategy, cfg["batch_size"], lambda index, count, batch: training_dataset(
        tracks, instruments, cfg["sample_rate"], cfg["n_channels"], segment, cfg["batch_size"], cfg_seed,
        cfg["augmentation"], start_step=start, shard=(index, count), replica_batch=batch))
    recorder = None
    curve_at = set(curves.curve_steps(total_steps, cfg.get("curve_steps")))
    if valid_tracks:
        excerpts = validation_excerpts(valid_tracks, instruments, cfg["sample_rate"], cfg["n_channels"],
                                       cfg["validation_seconds"])
        recorder = curves.CurveRecorder(write_to, estimator, excerpts, cfg["batch_size"], start)
    writer = tf.summary.create_file_writer(str(write_to / "logs"))
    control = _Control()
    callbacks = _callbacks(manager, lambda: int(optimizer.iterations.numpy()), cfg, control, writer, recorder,
                           total_steps, curve_at)
    previous = {}

    def handler(signum, frame):
        control.signal = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    save_every = int(cfg["save_checkpoints_steps"])
    epoch_steps = min(save_every, total_steps)
    logger.info("Training %s: steps %d -> %d, batch %d, segment %.2f s, %d train / %d validation tracks, "
                "%d replica(s), %s%s", cfg["_source"], start, total_steps, cfg["batch_size"],
                segment / cfg["sample_rate"], len(tracks), len(valid_tracks), strategy.num_replicas_in_sync,
                cfg["precision"], ", XLA" if cfg["jit_compile"] else "")
    try:
        with distribute.worker_guard(role, lambda: tf.train.latest_checkpoint(str(out))):
            model.fit(dataset, epochs=math.ceil(total_steps / epoch_steps), initial_epoch=start // epoch_steps,
                      steps_per_epoch=epoch_steps, callbacks=callbacks, verbose=verbose)
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)
        writer.flush()
    step = int(optimizer.iterations.numpy())
    if control.signal is not None:
        raise KeyboardInterrupt(f"stopped by signal {control.signal} at step {step}")
    if not manager.latest_checkpoint or manager.checkpoint.save_counter is None or step > _ckpt_step(manager):
        manager.save(checkpoint_number=step)
    distribute.cleanup(write_to, out)
    logger.info("Trained %s to step %d; model directory %s", cfg["_source"], step, out)
    return out


def _ckpt_step(manager) -> int:
    path = manager.latest_checkpoint
    try:
        return int(path.rsplit("-", 1)[1]) if path else -1
    except (IndexError, ValueError):
        return -1


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
