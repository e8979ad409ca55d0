"""Input scaling a model needs, fitted on a fold's training part only.

A recurrent network saturates its gates on inputs far from unit scale (BasicMotions'
accelerometer channels have standard deviations up to 7); convolutional networks with batch
normalisation do not need it. The statistics come from the fold's training part, never from its
validation part or the test split, and every part of the fold is scaled with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """Per-channel standardisation of series `(n, time, channels)`; padding stays exactly zero.

    `padded`: series are zero-padded at the end, and a time step whose channels are all zero is
    padding: it counts in neither statistic and is zero after scaling (a model's Masking layer
    still finds it).
    """

    mean: np.ndarray  # (channels,)
    std: np.ndarray  # (channels,), 1 where a channel is constant
    padded: bool

    @classmethod
    def fit(cls, x: np.ndarray, padded: bool) -> Standardizer:
        x = np.asarray(x, np.float64)
        steps = x[_real(x, padded)]  # (real steps, channels)
        mean, std = steps.mean(axis=0), steps.std(axis=0)
        std[std < 1e-8] = 1.0
        return cls(mean, std, padded)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        out = ((x - self.mean) / self.std).astype(np.float32)
        out[~_real(x, self.padded)] = 0.0
        return out


def _real(x: np.ndarray, padded: bool) -> np.ndarray:
    """(n, time) True for the steps that are data, False for the padding."""
    if not padded:
        return np.ones(x.shape[:2], bool)
    return np.any(x != 0, axis=-1)
