"""Export a model as a TensorFlow SavedModel (and TFLite) that separates a whole waveform in one call,
with the Separator's segments and overlap inside the graph: ``export("spleeter:4stems", "exported/4stems")``.
"""
from ..errors import ExportError
from .graph import SeparationGraph, SeparatorModule
from .tflite import TFLiteResult, convert_tflite, run_tflite
from .writer import FORMATS, export

__all__ = ["export", "ExportError", "FORMATS", "SeparationGraph", "SeparatorModule", "TFLiteResult", "convert_tflite",
           "run_tflite"]
