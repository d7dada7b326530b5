"""Packaging for spleeter-ext."""
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).parent
version = {}
exec((ROOT / "spleeter_ext" / "_version.py").read_text(), version)

BENCH = ["tensorboard-plugin-profile>=2.13,<2.14"]

setup(
    name="spleeter-ext",
    version=version["__version__"],
    description=(
        "Music source separation on top of Deezer's Spleeter: streaming separation, "
        "a model zoo (U-Net, Wave-U-Net, Demucs in 1D and 2D, stacked U-Net), "
        "Keras training and museval evaluation."
    ),
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # Namespace discovery also finds the data-only folders under resources/ (presets, the demo model).
    # The repository's model_configs/ ships inside the package as spleeter_ext.model_configs, so preset
    # names such as ``spleeter_2d_small`` resolve in a regular (non-editable) install too.
    packages=find_namespace_packages(include=["spleeter_ext", "spleeter_ext.*"]) + ["spleeter_ext.model_configs"],
    package_dir={"spleeter_ext.model_configs": "model_configs"},
    include_package_data=True,
    package_data={"spleeter_ext": ["resources/**/*"], "spleeter_ext.model_configs": ["*.json"]},
    install_requires=[
        "spleeter[evaluation]==2.4.2",
        # spleeter pins tensorflow 2.12.1, numpy<2, pandas<2; we live within them.
        "librosa>=0.10",
        "musdb>=0.4.0",
        "museval>=0.4.0",
        "pandas<2",
        "matplotlib>=3.7",
        # PyAV bundles FFmpeg's libraries: decode/encode every format with no system ffmpeg.
        "av>=11",
        # soxr: a high-quality, fast streaming resampler (also what librosa uses by default).
        "soxr>=0.3",
        "tqdm>=4.60",
        "norbert>=0.2.1",
    ],
    extras_require={
        # tools/bench: TensorFlow's profiler tables are protobufs whose Python module ships with TensorBoard's
        # profile plugin (`python -m tools.bench.profile`); the 2.13 plugin reads TensorFlow 2.12's traces.
        "bench": BENCH,
        # ruff: `make lint` (its rules are in pyproject.toml); pinned so that a new release cannot fail CI by itself.
        "test": ["pytest>=7", "ruff==0.17.6", *BENCH],
        # `spleeter-ext catalog`. Beam 2.78 needs a newer typing-extensions than TensorFlow 2.12 allows;
        # with TensorFlow 2.12.1 this resolves to 2.77, and the [gcp] extra (Dataflow) to 2.72.
        "catalog": ["apache-beam>=2.72,<2.78"],
        "dataflow": ["apache-beam[gcp]>=2.72,<2.78"],
    },
    entry_points={"console_scripts": ["spleeter-ext=spleeter_ext.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
    ],
)
