"""Streaming training / validation pipelines (spleeter_ext.data.pipeline).

The data set is planted so that every property can be checked against the raw audio: each source of
each track is a sine of its own frequency, louder on the left than on the right (so a channel swap is
visible), and one track is silent in its first half (for the silent-segment skip).
"""
import functools
import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from spleeter_ext.data.pipeline import (
    Augmentation,
    DecodedCache,
    ExampleSampler,
    pipeline_throughput,
    training_dataset,
    validation_dataset,
)
from spleeter_ext.data.tracks import discover
from spleeter_ext.errors import DatasetError, ParameterError

SR = 8000
SECONDS = 4.0
SEG = 2000  # 0.25 s
STEMS = ["vocals", "drums", "bass", "other"]
NAMES = ["t0", "t1", "t2", "t3_silent_start"]
FULL_AUG = {"remix": True, "gain": [0.25, 1.25], "channel_swap": True, "skip_silent": True}


def planted_source(track: int, stem: int) -> np.ndarray:
    """(samples, 2) float32: a sine of a frequency unique to (track, stem); left 0.5, right 0.25."""
    n = int(SECONDS * SR)
    t = np.arange(n) / SR
    x = np.sin(2 * np.pi * (150 + 90 * (4 * track + stem)) * t)
    out = np.stack([0.5 * x, 0.25 * x], axis=1).astype(np.float32)
    if NAMES[track].endswith("silent_start"):
        out[: n // 2] = 0
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """``(root, raw)``: the 4 planted tracks as ``root/train`` (meta.json holds none out for validation)
    and their audio, ``raw[name][stem]`` ``(samples, channels)``."""
    root = tmp_path_factory.mktemp("planted")
    raw = {}
    for ti, name in enumerate(NAMES):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        raw[name] = {stem: planted_source(ti, si) for si, stem in enumerate(STEMS)}
        for stem, x in raw[name].items():
            sf.write(folder / f"{stem}.wav", x, SR, subtype="FLOAT")
    (root / "meta.json").write_text(json.dumps({"validation": []}))
    return root, raw


@pytest.fixture(scope="module")
def tracks(dataset):
    return discover(dataset[0], STEMS, "train")


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def expected_source(raw, tracks, plan, i, instrument):
    """Source ``i`` of ``plan`` rebuilt from the raw arrays: segment x gain, channels reversed if swapped."""
    segment = raw[tracks[plan.tracks[i]].name][instrument][plan.starts[i]:plan.starts[i] + SEG]
    segment = np.pad(segment, ((0, SEG - len(segment)), (0, 0)))
    segment = segment * np.float32(plan.gains[i])
    return segment[:, ::-1] if plan.swaps[i] else segment


def batches(dataset, n):
    return [tuple(t.numpy() for t in batch) for batch in dataset.take(n)]


def test_shapes_dtypes_and_mixture_is_exact_sum(tracks):
    ds = training_dataset(tracks, STEMS, SR, 2, SEG, batch_size=3, seed=1, augmentation=FULL_AUG)
    assert ds.element_spec[0].shape == (3, SEG, 2) and ds.element_spec[1].shape == (3, SEG, 2, 4)
    assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.float32
    assert ds.cardinality() == tf.data.INFINITE_CARDINALITY
    for mixture, sources in batches(ds, 3):
        assert mixture.shape == (3, SEG, 2) and sources.shape == (3, SEG, 2, 4)
        # the mixture is the float32 sum of the augmented sources, bit for bit
        np.testing.assert_array_equal(mixture, functools.reduce(np.add, [sources[..., i] for i in range(4)]))
        assert np.all(np.isfinite(sources))


def test_augmentation_matches_plan_gain_swap_and_remix(dataset, tracks):
    _, raw = dataset
    sampler = ExampleSampler(tracks, STEMS, SR, 2, SEG, seed=3, augmentation=FULL_AUG)
    n_remixed = n_swapped = 0
    for k in range(40):
        ex = sampler.example(k)
        for i, inst in enumerate(STEMS):
            source = ex.sources[..., i]
            np.testing.assert_allclose(source, expected_source(raw, tracks, ex.plan, i, inst), atol=1e-6)
            unaugmented = raw[tracks[ex.plan.tracks[i]].name][inst][ex.plan.starts[i]:ex.plan.starts[i] + SEG]
            if rms(unaugmented) > 1e-3:
                ratio = rms(source) / rms(unaugmented)
                assert 0.25 - 1e-6 <= ratio <= 1.25 + 1e-6
                assert ratio == pytest.approx(ex.plan.gains[i], rel=1e-5)
                # left is louder than right in every file: a swap shows as a quieter left channel
                assert (rms(source[:, 0]) < rms(source[:, 1])) == ex.plan.swaps[i]
        n_remixed += len(set(ex.plan.tracks)) > 1
        n_swapped += sum(ex.plan.swaps)
    assert n_remixed > 20 and 0 < n_swapped < 40 * 4


def test_no_augmentation_is_one_track_one_position(dataset, tracks):
    _, raw = dataset
    sampler = ExampleSampler(tracks, STEMS, SR, 2, SEG, seed=0, augmentation=None)
    for k in range(10):
        ex = sampler.example(k)
        assert len(set(ex.plan.tracks)) == 1 and len(set(ex.plan.starts)) == 1
        assert ex.plan.gains == (1.0,) * 4 and ex.plan.swaps == (False,) * 4
        name, start = tracks[ex.plan.tracks[0]].name, ex.plan.starts[0]
        for i, inst in enumerate(STEMS):
            np.testing.assert_array_equal(ex.sources[..., i], raw[name][inst][start:start + SEG])


def test_partial_augmentation_dict_takes_config_defaults():
    assert Augmentation.from_config({"remix": False}) == Augmentation(False, (0.25, 1.25), True, True)
    assert Augmentation.from_config(None) == Augmentation()
    with pytest.raises(ParameterError, match="unknown augmentation key"):
        Augmentation.from_config({"pitch": 1})
    with pytest.raises(ParameterError, match="gain"):
        Augmentation.from_config({"gain": [2, 1]})


def test_determinism_seed_and_parallelism(tracks):
    def stream(seed, parallel):
        return batches(training_dataset(tracks, STEMS, SR, 2, SEG, 4, seed, FULL_AUG,
                                        num_parallel_calls=parallel), 3)

    first, again, serial, other = stream(7, tf.data.AUTOTUNE), stream(7, 4), stream(7, 1), stream(8, tf.data.AUTOTUNE)
    for a, b, c in zip(first, again, serial):
        for x, y, z in zip(a, b, c):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
    assert not np.array_equal(first[0][0], other[0][0])


def test_resume_from_start_step(tracks):
    full = batches(training_dataset(tracks, STEMS, SR, 2, SEG, 2, 5, FULL_AUG), 5)
    resumed = batches(training_dataset(tracks, STEMS, SR, 2, SEG, 2, 5, FULL_AUG, start_step=3), 2)
    for step in (3, 4):
        for x, y in zip(full[step], resumed[step - 3]):
            np.testing.assert_array_equal(x, y)


def test_offset_reads_equal_cached_reads(tracks):
    cached = ExampleSampler(tracks, STEMS, SR, 2, SEG, seed=2, augmentation=FULL_AUG)
    streamed = ExampleSampler(tracks, STEMS, SR, 2, SEG, seed=2, augmentation=FULL_AUG, cache_bytes=0)
    assert cached.reader.cache is not None and streamed.reader.cache is None
    for k in range(8):
        a, b = cached.example(k), streamed.example(k)
        assert a.plan == b.plan
        np.testing.assert_allclose(a.sources, b.sources, atol=1e-6)
    stream_bytes = int(SECONDS * SR) * 2 * 4  # a whole decoded float32 stereo stream
    assert 0 < cached.reader.cache.nbytes <= 16 * stream_bytes and cached.reader.cache.nbytes % stream_bytes == 0


def test_decoded_cache_is_lru_by_bytes_and_loads_once():
    cache = DecodedCache(max_bytes=3000)
    calls = []

    def loader(key, n_bytes):
        def load():
            calls.append(key)
            time.sleep(0.01)
            return np.zeros(n_bytes // 4, np.float32)
        return load

    with ThreadPoolExecutor(4) as pool:  # concurrent misses of one key decode it once
        list(pool.map(lambda _: cache.get("a", loader("a", 1000)), range(8)))
    assert calls == ["a"]
    cache.get("b", loader("b", 1000))
    cache.get("a", loader("a", 1000))  # hit: "a" becomes the most recent
    cache.get("c", loader("c", 2000))  # evicts the least recent, "b"
    assert cache.nbytes == 3000 and calls == ["a", "b", "c"]
    cache.get("a", loader("a", 1000))
    cache.get("b", loader("b", 1000))
    assert calls == ["a", "b", "c", "b"]
    assert cache.get("huge", loader("huge", 4000)).nbytes == 4000 and cache.nbytes <= 3000  # too big: not kept


def test_stem_file_sources_are_decoded_in_one_pass(tmp_path, monkeypatch):
    """MUSDB stems release, read by offset: the streams of one example are decoded by one read_streams
    call (one open of the file), and give the same samples as one read per stream."""
    from spleeter_ext.audio import io as audio_io

    from .test_tracks import write_stem_mp4

    (tmp_path / "train").mkdir()
    for seed, name in enumerate(("A", "B")):
        write_stem_mp4(tmp_path / "train" / f"{name}.stem.mp4", 2.0, seed=seed)
    (tmp_path / "meta.json").write_text(json.dumps({"validation": []}))
    instruments = ["vocals", "drums", "accompaniment"]  # accompaniment = bass + drums + other
    tracks = discover(tmp_path, instruments, "train")
    calls = []
    original = audio_io.read_streams

    def spy(path, streams, **kwargs):
        calls.append(list(streams))
        return original(path, streams, **kwargs)

    monkeypatch.setattr(audio_io, "read_streams", spy)
    sampler = ExampleSampler(tracks, instruments, 44100, 2, 22050, seed=0, cache_bytes=0)
    for k in range(3):
        del calls[:]
        ex = sampler.example(k)
        assert len(calls) == 1 and sorted(calls[0]) == [1, 2, 3, 4]  # drums, bass, other, vocals: each once
        track, start = tracks[ex.plan.tracks[0]], ex.plan.starts[0]
        for i, instrument in enumerate(instruments):
            expected = np.zeros((22050, 2), np.float32)
            for ref in track.refs(instrument):
                x, _ = audio_io.read(ref.path, offset=start / 44100, duration=0.5, sample_rate=44100, stream=ref.stream)
                expected += x
            np.testing.assert_array_equal(ex.sources[..., i], expected)


def test_silent_segments_are_redrawn(tracks):
    aug = {"remix": False, "gain": [1, 1], "channel_swap": False, "skip_silent": False}
    plain = ExampleSampler(tracks, STEMS, SR, 2, SEG, seed=11, augmentation=aug)
    skipping = ExampleSampler(tracks, STEMS, SR, 2, SEG, seed=11, augmentation=dict(aug, skip_silent=True))
    silent = [k for k in range(200) if plain.is_silent(*plain.example(k)[:2])]
    assert silent, "the planted silent half should give silent segments without the skip"
    for k in range(200):
        ex = skipping.example(k)
        assert not skipping.is_silent(ex.mixture, ex.sources)
        assert ex.plan == skipping.plan(k, ex.plan.attempt)  # a pure function of (seed, k, attempt)
        assert (ex.plan.attempt > 0) == (k in silent)


def test_derived_accompaniment_is_sum_of_stems(dataset):
    root, raw = dataset
    tracks = discover(root, ["vocals", "accompaniment"], "train")
    ex = ExampleSampler(tracks, ["vocals", "accompaniment"], SR, 2, SEG, seed=0).example(0)
    name, start = tracks[ex.plan.tracks[0]].name, ex.plan.starts[0]
    expected = sum(raw[name][s][start:start + SEG] for s in ("bass", "drums", "other"))
    np.testing.assert_allclose(ex.sources[..., 1], expected, atol=1e-6)


def test_mono_and_short_tracks(tracks):
    long_segment = int(SECONDS * SR) + 500  # longer than every track: zero-padded
    mixture, sources = batches(training_dataset(tracks, STEMS, SR, 1, long_segment, 2, 0, None), 1)[0]
    assert mixture.shape == (2, long_segment, 1) and sources.shape == (2, long_segment, 1, 4)
    assert np.all(sources[:, -500:] == 0)


def test_validation_dataset_is_central_and_deterministic(dataset, tracks):
    _, raw = dataset
    ds = validation_dataset(tracks, STEMS, SR, 2, seconds=1.0, batch_size=3)
    first, second = batches(ds, 10), batches(validation_dataset(tracks, STEMS, SR, 2, 1.0, 3, cache=False), 10)
    assert [b[0].shape for b in first] == [(3, SR, 2), (1, SR, 2)]
    start = (int(SECONDS * SR) - SR) // 2
    for (mix_a, src_a), (mix_b, src_b) in zip(first, second):
        np.testing.assert_array_equal(mix_a, mix_b)
        np.testing.assert_array_equal(src_a, src_b)
    sources = np.concatenate([b[1] for b in first])
    for ti, track in enumerate(tracks):
        for si, inst in enumerate(STEMS):
            np.testing.assert_array_equal(sources[ti, ..., si], raw[track.name][inst][start:start + SR])
    mixture = np.concatenate([b[0] for b in first])
    np.testing.assert_array_equal(mixture, functools.reduce(np.add, [sources[..., i] for i in range(4)]))
    assert len(batches(ds, 10)) == 2  # finite, and the in-RAM cache gives the same again


def test_errors(dataset, tmp_path):
    root, _ = dataset
    with pytest.raises(DatasetError, match="no tracks"):
        training_dataset([], STEMS, SR, 2, SEG, 2, 0)
    with pytest.raises(DatasetError, match="no stem 'piano'"):
        training_dataset(discover(root, STEMS, "train"), ["piano"], SR, 2, SEG, 2, 0)
    with pytest.raises(ParameterError):
        training_dataset(discover(root, STEMS, "train"), STEMS, SR, 2, 0, 2, 0)
    # a file that breaks after discovery: the stream fails naming it
    copy = tmp_path / "copy"
    for name in NAMES[:2]:
        (copy / "train" / name).mkdir(parents=True)
        for stem in STEMS:
            (copy / "train" / name / f"{stem}.wav").write_bytes((root / "train" / name / f"{stem}.wav").read_bytes())
    (copy / "meta.json").write_text(json.dumps({"validation": []}))
    tracks = discover(copy, STEMS, "train")
    (copy / "train" / "t1" / "bass.wav").write_bytes(b"not audio at all")
    with pytest.raises(DatasetError, match=r"t1/bass.wav"):  # probed again: unreadable before tf.data starts
        training_dataset(discover(copy, STEMS, "train", probe=False), STEMS, SR, 2, SEG, 2, 0)
    ds = training_dataset(tracks, STEMS, SR, 2, SEG, 2, 0, cache_bytes=0)
    with pytest.raises(tf.errors.OpError, match=r"DatasetError: track 't1': cannot decode .*t1/bass.wav"):
        batches(ds, 20)


def test_throughput_helper(tracks):
    rate = pipeline_throughput(tracks, STEMS, SR, 2, SEG, batch_size=4, n_batches=3, warmup_batches=1)
    assert rate > 0


DISTRIBUTED = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from spleeter_ext.data.pipeline import training_dataset
    from spleeter_ext.data.tracks import discover

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    tracks = discover(sys.argv[1], ["vocals", "drums", "bass", "other"], "train")
    dataset = training_dataset(tracks, ["vocals", "drums", "bass", "other"], 8000, 2, 2000, batch_size=4, seed=0,
                               augmentation={"remix": True})
    mixture, sources = next(iter(strategy.experimental_distribute_dataset(dataset)))
    local = strategy.experimental_local_results(mixture)
    assert [tuple(m.shape) for m in local] == [(2, 2000, 2)] * 2, [m.shape for m in local]
    reference = next(iter(dataset))
    np.testing.assert_array_equal(np.concatenate([m.numpy() for m in local]), reference[0].numpy())

    @tf.function
    def residual(mixture, sources):
        return tf.reduce_max(tf.abs(tf.reduce_sum(sources, axis=-1) - mixture))

    worst = strategy.experimental_local_results(strategy.run(residual, args=(mixture, sources)))
    assert len(worst) == 2 and max(float(w) for w in worst) < 1e-5
    print("OK")
""")


def test_mirrored_strategy_two_cpus(dataset):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(dataset[0])], capture_output=True, text=True,
                         timeout=300, env=env, cwd=str(Path(__file__).resolve().parents[2]))
    assert run.returncode == 0 and "OK" in run.stdout, run.stderr[-3000:]
