"""Multi-worker training: the chief alone writes, every worker reads its own shard of the example stream,
one global step equals a single-worker step on the same global batch, and a missing or lost worker
stops the job with one error line instead of a hang."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext import distribute
from spleeter_ext.config import load_config
from spleeter_ext.data.pipeline import training_dataset
from spleeter_ext.data.tracks import discover
from spleeter_ext.errors import ConfigError, ParameterError

# A worker process: `spleeter-ext train ...`, logging every example index it decodes to $INDEX_LOG.
WORKER = """
import os, sys
from spleeter_ext.data import pipeline

real = pipeline.ExampleSampler.arrays

def arrays(self, k):
    with open(os.environ["INDEX_LOG"], "a") as log:
        log.write(f"{int(k)}\\n")
    return real(self, k)

pipeline.ExampleSampler.arrays = arrays
from spleeter_ext.cli import main

sys.argv = ["spleeter-ext", "train", *sys.argv[1:]]
main()
"""


# ------------------------------------------------------------------ fast: the logic, in this process
def test_shards_are_disjoint_and_together_make_the_global_batches(synth_data):
    tracks = discover(synth_data, ["vocals", "drums", "bass", "other"], "train")
    common = dict(tracks=tracks, instruments=["vocals", "drums", "bass", "other"], sample_rate=44100, n_channels=2,
                  segment_samples=2048, batch_size=4, seed=7, augmentation={"remix": True}, start_step=3,
                  num_parallel_calls=1)
    whole = [m.numpy() for m, _ in training_dataset(**common).take(2)]  # global batches of steps 3 and 4
    parts = [[m.numpy() for m, _ in training_dataset(**common, shard=(w, 2)).take(2)] for w in range(2)]
    for step in range(2):
        joined = np.concatenate([parts[0][step], parts[1][step]])
        np.testing.assert_array_equal(joined, whole[step])  # worker 0 holds rows 0-1, worker 1 rows 2-3
    assert not np.array_equal(parts[0][0], parts[1][0])
    per_replica = [m.numpy() for m, _ in training_dataset(**common, shard=(1, 2), replica_batch=1).take(4)]
    np.testing.assert_array_equal(np.concatenate(per_replica[:2]), parts[1][0])
    with pytest.raises(ParameterError, match="multiple"):
        training_dataset(**dict(common, batch_size=3), shard=(0, 2))
    with pytest.raises(ParameterError, match="divide"):
        training_dataset(**common, shard=(0, 2), replica_batch=3)


class _Resolver:
    def __init__(self, spec, task_type, task_id):
        self.spec, self.task_type, self.task_id = spec, task_type, task_id

    def cluster_spec(self):
        return tf.train.ClusterSpec(self.spec)


class _Strategy:
    def __init__(self, spec=None, task=("worker", 0), replicas=1):
        self.cluster_resolver = _Resolver(spec or {}, *task)
        self.num_replicas_in_sync = replicas


def test_roles_and_where_each_worker_writes(tmp_path):
    assert distribute.role_of(tf.distribute.get_strategy()) == distribute.Role()
    workers = {"worker": ["a:1", "b:2", "c:3"]}
    assert distribute.role_of(_Strategy(workers, ("worker", 0))).is_chief
    second = distribute.role_of(_Strategy(workers, ("worker", 1)))
    assert not second.is_chief and second.num_workers == 3 and second.name == "worker 1"
    with_chief = {"chief": ["a:1"], "worker": ["b:2"]}
    assert distribute.role_of(_Strategy(with_chief, ("chief", 0))).is_chief
    assert not distribute.role_of(_Strategy(with_chief, ("worker", 0))).is_chief

    model_dir = tmp_path / "model"
    assert distribute.write_dir(model_dir, distribute.Role()) == model_dir and model_dir.is_dir()
    temp = distribute.write_dir(tmp_path / "elsewhere", second)
    assert temp.is_dir() and tmp_path not in temp.parents and not (tmp_path / "elsewhere").exists()
    (temp / "ckpt-1.index").write_bytes(b"x")
    distribute.cleanup(temp, tmp_path / "elsewhere")
    assert not temp.exists()
    distribute.cleanup(model_dir, model_dir)
    assert model_dir.is_dir()  # the chief's folder is never removed


def test_batch_split_timeout_and_lost_worker_errors(monkeypatch):
    with pytest.raises(ConfigError, match="multiple of 4"):
        distribute.check_batch(6, _Strategy(replicas=4))
    monkeypatch.setenv(distribute.CLUSTER_TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match=distribute.CLUSTER_TIMEOUT_ENV):
        distribute.cluster_timeout()
    monkeypatch.setenv(distribute.CLUSTER_TIMEOUT_ENV, "45")
    assert distribute.cluster_timeout() == 45.0
    role = distribute.Role("worker", 1, 2, False)
    with pytest.raises(distribute.ClusterError, match="worker 1 lost contact.*resume.*ckpt-7"):
        with distribute.worker_guard(role, lambda: "/m/ckpt-7"):
            raise tf.errors.UnavailableError(None, None, "cluster check alive failed, /job:worker/task:0 is down")
    with pytest.raises(tf.errors.UnavailableError):  # a single process keeps TensorFlow's own error
        with distribute.worker_guard(distribute.Role(), lambda: None):
            raise tf.errors.UnavailableError(None, None, "x")


# ------------------------------------------------------------------ two worker processes on 127.0.0.1
def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def small_config(path, steps):
    """``demucs_1d_small`` (no batch normalisation or dropout, so a step does not depend on how the batch
    is split), logging the loss at every step."""
    cfg = {k: v for k, v in load_config("demucs_1d_small").items() if not k.startswith("_")}
    cfg.update(train_max_steps=steps, save_checkpoints_steps=steps, save_summary_steps=1, batch_size=4,
               segment_seconds=1.0, validation_tracks=1, validation_seconds=2.0, curve_steps=[steps])
    cfg.pop("model_dir")
    Path(path).write_text(json.dumps(cfg))
    return Path(path)


def start_worker(workdir, config, data, model_dir, steps, tf_config=None, name="single", wait=120):
    log = workdir / f"{name}.indices"
    env = dict(os.environ, INDEX_LOG=str(log), TMPDIR=str(workdir / f"{name}.tmp"),
               SPLEETER_EXT_CLUSTER_TIMEOUT=str(wait))
    (workdir / f"{name}.tmp").mkdir(parents=True, exist_ok=True)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    cmd = [sys.executable, "-c", WORKER, "-p", str(config), "-d", str(data), "--model-dir", str(model_dir),
           "--steps", str(steps)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def start_cluster(workdir, config, data, model_dir, steps, n=2):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(n)]}
    return [start_worker(workdir, config, data, model_dir, steps, {"cluster": cluster,
                                                                  "task": {"type": "worker", "index": i}},
                         name=f"worker{i}") for i in range(n)]


def finish(procs, timeout=600):
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        outs.append((p.returncode, err))
    return outs


def indices(workdir, name):
    return [int(line) for line in (workdir / f"{name}.indices").read_text().split()]


def losses(model_dir):
    """``{step: train/loss}`` from the TensorBoard events of ``model_dir/logs``."""
    out = {}
    for events in sorted((model_dir / "logs").glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.tag == "train/loss":
                    out[event.step] = float(tf.make_ndarray(value.tensor))
    return out


def test_two_workers_train_like_one_on_the_same_global_batches(synth_data, tmp_path):
    config = small_config(tmp_path / "small.json", steps=2)
    procs = start_cluster(tmp_path, config, synth_data, tmp_path / "model", 2)
    single = start_worker(tmp_path, config, synth_data, tmp_path / "single_model", 2)
    for code, err in finish(procs + [single]):
        assert code == 0, err[-3000:]

    model = tmp_path / "model"  # one checkpoint, config, run card, log and curve, all by the chief
    assert tf.train.latest_checkpoint(str(model)).endswith("ckpt-2")
    assert sorted(p.name for p in model.iterdir()) == sorted(
        ["checkpoint", "ckpt-2.index", "ckpt-2.data-00000-of-00001", "config.json", "run.json", "logs",
         "curves.csv", "clock.json"])
    assert len(list((model / "logs").glob("events.*"))) == 1
    run = json.loads((model / "run.json").read_text())
    assert run["workers"] == 2 and run["replicas"] == 2
    for name in ("worker0", "worker1"):  # the second worker's temporary folder is gone
        assert list((tmp_path / f"{name}.tmp").iterdir()) == []

    # Each worker decoded only its own half of every global batch of 4 (prefetching reads a few ahead).
    first, second = set(indices(tmp_path, "worker0")), set(indices(tmp_path, "worker1"))
    assert not first & second
    assert {k % 4 for k in first} == {0, 1} and {k % 4 for k in second} == {2, 3}
    assert set(range(8)) <= first | second and set(range(8)) <= set(indices(tmp_path, "single"))

    # The global step is the single-worker step on the same 4 examples.
    two, one = losses(model), losses(tmp_path / "single_model")
    assert sorted(two) == sorted(one) == [1, 2]
    for step in (1, 2):
        assert two[step] == pytest.approx(one[step], rel=1e-5), (step, two, one)
    a = tf.train.load_checkpoint(str(model / "ckpt-2"))
    b = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "single_model")))
    names = [n for n in a.get_variable_to_shape_map() if n.startswith("model/")]
    assert names
    for name in names:
        np.testing.assert_allclose(a.get_tensor(name), b.get_tensor(name), rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_rerunning_the_workers_resumes_from_the_chiefs_checkpoint(synth_data, tmp_path):
    config = small_config(tmp_path / "small.json", steps=1)
    model = tmp_path / "model"
    for code, err in finish(start_cluster(tmp_path, config, synth_data, model, 1)):
        assert code == 0, err[-3000:]
    for name in ("worker0", "worker1"):
        (tmp_path / f"{name}.indices").unlink()
    for code, err in finish(start_cluster(tmp_path, config, synth_data, model, 2)):
        assert code == 0, err[-3000:]
    assert tf.train.latest_checkpoint(str(model)).endswith("ckpt-2")
    assert json.loads((model / "run.json").read_text())["start_step"] == 1
    # both workers go on at step 1 of the stream: examples 4-5 and 6-7
    assert min(indices(tmp_path, "worker0")) == 4 and min(indices(tmp_path, "worker1")) == 6


@pytest.mark.slow
def test_a_lost_worker_stops_the_job_with_one_error(synth_data, tmp_path):
    config = small_config(tmp_path / "small.json", steps=10_000)
    procs = start_cluster(tmp_path, config, synth_data, tmp_path / "model", 10_000)
    deadline = time.time() + 600
    while time.time() < deadline and not (tmp_path / "worker1.indices").exists():
        time.sleep(0.5)
    time.sleep(5)  # a few steps in
    procs[1].kill()
    t0 = time.time()
    code, err = finish(procs[:1], timeout=300)[0]
    procs[1].wait()
    assert code == 1 and time.time() - t0 < 240
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: worker 0 lost contact with another worker") and "Restart every worker" in last


@pytest.mark.slow
def test_a_worker_that_never_starts_is_an_error_not_a_hang(synth_data, tmp_path):
    config = small_config(tmp_path / "small.json", steps=2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    proc = start_worker(tmp_path, config, synth_data, tmp_path / "model", 2,
                        {"cluster": cluster, "task": {"type": "worker", "index": 0}}, name="alone", wait=20)
    t0 = time.time()
    code, err = finish([proc], timeout=300)[0]
    assert code != 0 and time.time() - t0 < 120
    assert "error: not every worker of TF_CONFIG started within 20 s" in err
