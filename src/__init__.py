"""augsweep: measured data-augmentation ablations for Keras models."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides augsweep's own output
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# the config schema (src/schema.py) is in Hydra's ConfigStore before any config is composed:
# by `python -m src.sweep`, by the sweeps that compose in-process, and by tests
from src.schema import register as _register_schema  # noqa: E402

_register_schema()
