"""Datasets: discovery of MUSDB18 / folder / CSV tracks and the streaming tf.data pipelines.

``spleeter_ext.data.tracks`` needs no TensorFlow; the pipeline names load TensorFlow on first use.
"""
from .tracks import SourceRef, Track, discover, validation_names

__all__ = [
    "SourceRef", "Track", "discover", "validation_names",
    "Augmentation", "ExampleSampler", "training_dataset", "validation_dataset", "pipeline_throughput",
]

_PIPELINE_NAMES = {"Augmentation", "ExampleSampler", "training_dataset", "validation_dataset", "pipeline_throughput"}


def __getattr__(name):
    if name in _PIPELINE_NAMES:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'spleeter_ext.data' has no attribute {name!r}")
