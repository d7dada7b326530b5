"""Multi-worker training made safe: who is the chief, where each worker may write, which examples each
worker reads, and a clear stop (never a hang) when a worker is missing or lost.

Follows TensorFlow's multi-worker guide: every worker runs the same program; only the chief writes to
the model directory, the others write to temporary folders that they remove; all restore from the
chief's last checkpoint.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import ConfigError, SpleeterExtError

#: Seconds every worker waits at start-up for all the workers of ``TF_CONFIG`` (default 600).
CLUSTER_TIMEOUT_ENV = "SPLEETER_EXT_CLUSTER_TIMEOUT"
DEFAULT_CLUSTER_TIMEOUT = 600.0


class ClusterError(SpleeterExtError):
    """The workers of a multi-worker run cannot go on together (one is missing, lost, or out of step)."""


@dataclass(frozen=True)
class Role:
    """This process's place in the cluster: ``task_type`` and ``task_id`` from ``TF_CONFIG``."""

    task_type: str = "chief"
    task_id: int = 0
    num_workers: int = 1
    is_chief: bool = True

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_id}"


def role_of(strategy) -> Role:
    """The role of this process under ``strategy`` (a single process is its own chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return Role()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    workers = sum(len(spec.get(job, [])) for job in ("chief", "worker"))
    return Role(task_type, task_id, workers, chief)


def cluster_timeout() -> float:
    value = os.environ.get(CLUSTER_TIMEOUT_ENV, "")
    try:
        seconds = float(value) if value else DEFAULT_CLUSTER_TIMEOUT
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ConfigError(f"{CLUSTER_TIMEOUT_ENV}={value!r}: give the seconds to wait for all workers, e.g. 600")
    return seconds


def multi_worker_strategy():
    """``MultiWorkerMirroredStrategy`` from ``TF_CONFIG`` that waits at most :func:`cluster_timeout`
    seconds for every worker to start (TensorFlow waits forever by default). Once training runs,
    TensorFlow's coordination service notices a worker that stops answering and aborts the collectives
    (see :func:`worker_guard`)."""
    import tensorflow as tf
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context
    from tensorflow.tsl.protobuf import coordination_config_pb2

    timeout = cluster_timeout()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = resolver.cluster_spec()
    # The coordination service MultiWorkerMirroredStrategy configures for itself (TensorFlow 2.12), plus a
    # bound on the wait for every worker to register.
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs, cluster_register_timeout_in_ms=int(timeout * 1000))
    message = (f"not every worker of TF_CONFIG started within {timeout:g} s ({_cluster_text()}); start each of "
               f"them (same command, its own TF_CONFIG task), or allow more time with {CLUSTER_TIMEOUT_ENV}")
    # The service's leader (the first worker) waits inside TensorFlow's runtime whatever the timeout, holding
    # the interpreter: a watchdog process ends it with the same message.
    watchdog = _start_watchdog(timeout + 15, message)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError):
        raise ClusterError(message) from None
    finally:
        watchdog.stdin.close()  # stands the watchdog down
        watchdog.wait()


_WATCHDOG = """
import os, select, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], seconds)[0]:
    sys.stderr.write("error: " + message + "\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGTERM)
    time.sleep(10)
    try:
        os.kill(parent, signal.SIGKILL)
    except ProcessLookupError:
        pass
"""


def _start_watchdog(seconds: float, message: str) -> subprocess.Popen:
    """A process that prints ``error: message`` and terminates this one unless its stdin closes within
    ``seconds``."""
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message],
                            stdin=subprocess.PIPE)


def _cluster_text() -> str:
    import json

    try:
        cfg = json.loads(os.environ.get("TF_CONFIG", "{}"))
        task = cfg.get("task", {})
        hosts = ", ".join(f"{job} {i}: {addr}" for job, addrs in cfg.get("cluster", {}).items()
                          for i, addr in enumerate(addrs))
        return f"this is {task.get('type')} {task.get('index')}; cluster: {hosts}"
    except (ValueError, AttributeError):
        return "TF_CONFIG is not valid JSON"


def write_dir(model_dir: Path, role: Role) -> Path:
    """Where this worker writes checkpoints, TensorBoard logs and run files: the model directory for the
    chief, a fresh temporary folder for every other worker (removed by :func:`cleanup`)."""
    if role.is_chief:
        model_dir.mkdir(parents=True, exist_ok=True)
        return model_dir
    folder = Path(tempfile.mkdtemp(prefix=f"spleeter-ext-{role.task_type}{role.task_id}-"))
    atexit.register(cleanup, folder, model_dir)  # also when training stops on an error
    return folder


def cleanup(folder: Path, model_dir: Path) -> None:
    if folder != model_dir:
        shutil.rmtree(folder, ignore_errors=True)


def check_batch(global_batch: int, strategy) -> None:
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ConfigError(f"batch_size {global_batch} cannot be split over {replicas} replicas (workers x devices); "
                          f"pass --batch-size with a multiple of {replicas}")


def sharded_input(strategy, global_batch: int, make: Callable[[int, int, int], object]):
    """The training input for ``model.fit``: ``make(index, count, replica_batch)`` builds input pipeline
    ``index`` of ``count`` (one per worker), batched per replica. A single replica gets the plain
    stream; several get a ``DatasetCreator``, so each worker builds and decodes only its own shard."""
    import tensorflow as tf

    check_batch(global_batch, strategy)
    if strategy.num_replicas_in_sync == 1:
        return make(0, 1, global_batch)

    def dataset_fn(context: "tf.distribute.InputContext"):
        return make(context.input_pipeline_id, context.num_input_pipelines,
                    context.get_per_replica_batch_size(global_batch))

    return tf.keras.utils.experimental.DatasetCreator(dataset_fn)


def agree_on_step(strategy, step: int, role: Role) -> None:
    """Raise :class:`ClusterError` unless every worker restored the same step (they must all see the
    chief's model directory)."""
    if role.num_workers == 1:
        return
    import tensorflow as tf

    local = tf.constant([int(step)], tf.int64)
    steps = strategy.gather(strategy.run(lambda: tf.identity(local)), axis=0).numpy().tolist()
    if min(steps) != max(steps):
        raise ClusterError(f"the workers restored different steps ({sorted(set(steps))}); every worker must read "
                           "the chief's checkpoints: put --model-dir on storage all workers share (the same path "
                           "on each), then restart every worker")


@contextlib.contextmanager
def worker_guard(role: Role, latest_checkpoint: Callable[[], Optional[str]]):
    """Turn TensorFlow's collective failures of a multi-worker run into one :class:`ClusterError`."""
    import tensorflow as tf

    if role.num_workers == 1:
        yield
        return
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.FailedPreconditionError) as exc:
        reason = (exc.message or type(exc).__name__).strip().splitlines()[0][:200]
        raise ClusterError(f"{role.name} lost contact with another worker ({type(exc).__name__}: {reason}); "
                           "the job stops. Restart every worker with the same command to resume from the chief's "
                           f"last checkpoint ({latest_checkpoint() or 'none yet'})") from None
