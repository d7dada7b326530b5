"""Checkpoints written by older code load into today's bodies and give the same outputs.

The fixtures (``fixtures/<case>/``) were saved by commit 78cebf2 with ``fixtures/make_fixtures.py``:
tiny bodies of every trainable family, a fixed input and the outputs the old code computed on it
(with the initial weights of seed 0, and with the saved weights).
"""
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from spleeter_ext.models import registry

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES = sorted(MANIFEST["cases"])
# Same computation, same weights: only the summation order inside TensorFlow kernels may differ.
RTOL, ATOL = 1e-6, 1e-6


def _variable_keys(path: str) -> set:
    """Object-graph paths of the variables in a checkpoint (``model/down_convs/0/kernel/...``)."""
    return {name for name, _ in tf.train.list_variables(path)
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH" and not name.startswith("save_counter")}


def _build(case: str):
    spec = MANIFEST["cases"][case]
    return registry.get(spec["type"]).build(spec["params"], n_sources=spec["n_sources"],
                                            n_channels=spec["n_channels"])


def test_every_trainable_family_has_a_fixture():
    types = {spec["type"] for spec in MANIFEST["cases"].values()}
    trainable = {s.name for s in registry.list_models() if s.domain != "stack" and not s.name.startswith("passthrough")}
    assert types == trainable


@pytest.mark.parametrize("case", CASES)
def test_same_seed_same_initial_weights(case):
    """Under the same seed the body starts from the old code's initial weights (training runs repeat)."""
    io = np.load(FIXTURES / case / "io.npz")
    tf.keras.utils.set_random_seed(0)
    body = _build(case)
    np.testing.assert_allclose(body(io["x"], training=False).numpy(), io["y_init"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_old_checkpoint_loads_and_gives_the_old_outputs(case, tmp_path):
    folder = FIXTURES / case
    io = np.load(folder / "io.npz")
    old_checkpoint = tf.train.latest_checkpoint(str(folder))
    assert old_checkpoint is not None

    tf.keras.utils.set_random_seed(1)  # another initialisation than the fixture's
    body = _build(case)
    fresh = body(io["x"], training=False).numpy()
    assert fresh.shape == io["y"].shape
    assert not np.allclose(fresh, io["y"], rtol=RTOL, atol=ATOL)  # only the checkpoint can make them equal

    # the way separate.weights.load_weights restores a trained model directory
    status = tf.train.Checkpoint(model=body).restore(old_checkpoint)
    status.expect_partial().assert_existing_objects_matched()
    np.testing.assert_allclose(body(io["x"], training=False).numpy(), io["y"], rtol=RTOL, atol=ATOL)

    # the same variables under the same attribute paths: today's body saves exactly the old keys
    new_checkpoint = tf.train.Checkpoint(model=body).write(str(tmp_path / "new"))
    assert _variable_keys(new_checkpoint) == _variable_keys(old_checkpoint)
