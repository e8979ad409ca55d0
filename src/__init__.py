"""augsweep: measured data-augmentation ablations for Keras models."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides augsweep's own output
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
