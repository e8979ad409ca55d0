"""A fold's scores: class labels from a head's output, accuracy, balanced accuracy and macro F1,
and their mean and standard deviation over folds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from src.cv import Fold


@dataclass
class FoldResult:
    fold: Fold
    history: dict[str, list[float]]  # Keras's per-epoch loss, accuracy, val_loss, val_accuracy
    metrics: dict[str, float]  # final scores of this fold's model
    val_pred: np.ndarray


def scores(y_true: np.ndarray, y_pred: np.ndarray, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}accuracy": accuracy_score(y_true, y_pred),
        f"{prefix}balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        f"{prefix}f1_macro": f1_score(y_true, y_pred, average="macro"),
    }


def labels(probs: np.ndarray) -> np.ndarray:
    """Class indices from a head's output: p > 0.5 for one sigmoid unit, else the argmax."""
    if probs.shape[-1] == 1:
        return (probs[:, 0] > 0.5).astype(np.int64)
    return probs.argmax(axis=-1).astype(np.int64)


def aggregate(results: list[FoldResult]) -> dict[str, float]:
    """Mean and standard deviation over folds of every per-fold score."""
    out = {}
    for key in results[0].metrics:
        values = np.array([r.metrics[key] for r in results])
        out[f"{key}_mean"] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out
