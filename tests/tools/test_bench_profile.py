"""The profiler report: self time per op type from TensorFlow's `tensorflow_stats` records, host rows only,
top types kept, the rest summed; and a real trace of a small traced function."""
import numpy as np
import pytest
import tensorflow as tf
from tensorboard_plugin_profile.protobuf import tf_stats_pb2

from tools.bench import profile


def test_self_time_is_summed_per_op_type_on_the_host():
    rows = [("Host", "_MklConv2D", 600.0), ("Host", "_MklConv2D", 400.0), ("Host", "Mul", 250.0),
            ("Device", "Mul", 999.0)]
    records = [tf_stats_pb2.TfStatsRecord(host_or_device=h, op_type=t, total_self_time_in_us=us) for h, t, us in rows]
    assert profile.by_type(records) == pytest.approx({"_MklConv2D": 1e-3, "Mul": 2.5e-4})


def test_a_real_trace_names_the_ops_that_ran(tmp_path):
    x = tf.constant(np.random.default_rng(0).normal(size=(128, 128)).astype(np.float32))
    f = tf.function(lambda x: tf.nn.relu(x @ x))
    f(x)
    stats, wall = profile.op_stats(lambda: [f(x).numpy() for _ in range(3)], str(tmp_path))
    assert wall > 0 and any("MatMul" in op for op in stats) and "Relu" in stats
    assert all(v >= 0 for v in stats.values())


def test_report_ranks_types_and_sums_the_rest():
    many = {f"Op{k}": float(k) for k in range(1, profile.TOP + 3)}
    text = profile.report({"float32": (many, 10.0), "bf16": ({"Op1": 4.0}, 5.0)}, per=2.0, unit="step")
    lines = text.splitlines()
    assert lines[0] == "| op type (per step) | float32 | bf16 |"
    biggest = f"Op{profile.TOP + 2}"
    assert lines[2].startswith(f"| `{biggest}` |")
    # the two smallest of float32 (1 + 2 s over 2 steps) are summed; bf16 has Op1 among them
    assert "| other | 1500.0 ms | 2000.0 ms |" in text
    assert f"| **all ops (self time)** | {1e3 * sum(many.values()) / 2:.1f} ms | 2000.0 ms |" in text
    assert "| wall time | 5000.0 ms | 2500.0 ms |" in text
