"""Audio files made for the tests: multichannel signals, MUSDB-like .stem.mp4 files, damaged files."""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from .signals import sine

SR = 44100


def six_channels(n_samples: int) -> np.ndarray:
    """FL FR FC LFE BL BR, each a distinct sine so the mix is traceable."""
    t = np.arange(n_samples) / SR
    freqs = [200, 300, 500, 60, 700, 1100]
    return np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in freqs], axis=1).astype(np.float32)


def write_stem_mp4(path: Path, frequencies, seconds: float = 1.0, faststart: bool = False) -> None:
    """An MP4 with one AAC stereo stream per frequency (a MUSDB-like .stem.mp4); ``faststart`` puts
    the moov box (the index) before the audio data."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        streams = []
        for _ in frequencies:
            stream = container.add_stream("aac", rate=SR)
            stream.layout, stream.format, stream.bit_rate = "stereo", "fltp", 128000
            streams.append(stream)
        signals = [np.repeat(sine(seconds, f, SR, 0.3), 2, axis=1) for f in frequencies]
        step = 4096
        for begin in range(0, len(signals[0]), step):
            for stream, signal in zip(streams, signals):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal[begin:begin + step].T),
                                                   format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = SR, begin
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                container.mux(packet)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def one_line_naming(error: Exception, path: Path) -> str:
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: ") and "; " in message
    return message


def truncate_half(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
