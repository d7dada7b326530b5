"""The scoring worker plan: a memory bound above museval's measured peaks caps the workers."""
from spleeter_ext.evaluation.memory import plan_workers, task_peak_bytes

SR = 44100


def test_memory_bound_caps_workers():
    gib = 2 ** 30
    # above museval's measured peaks for 4 stereo stems (30/120/300/430 s)
    for seconds, measured in ((30, 1.37), (120, 3.56), (300, 7.32), (430, 12.3)):
        assert task_peak_bytes(seconds * SR, 4, 2, "all") > measured * gib
    workers, text = plan_workers(4, 430 * SR, 4, 2, "all", n_tasks=50, memory=16 * gib)
    assert workers == 1 and "16.0 GiB available" in text
    assert plan_workers(4, 430 * SR, 4, 2, "all", n_tasks=50, memory=64 * gib)[0] == 3
    assert plan_workers(4, 430 * SR, 4, 2, "sdr", n_tasks=50, memory=64 * gib)[0] == 4
    assert plan_workers(4, 30 * SR, 4, 2, "all", n_tasks=2, memory=64 * gib)[0] == 2
