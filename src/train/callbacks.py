"""The Keras callbacks of a fold's fit: divergence as an error, the recipe's early stopping and
learning-rate schedule, and the per-epoch curves logged to MLflow."""

from __future__ import annotations

import time

import keras
import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import progress
from src.cv import Fold


class FailOnNaN(keras.callbacks.Callback):
    """Stop a diverged fit with an error (Keras's TerminateOnNaN stops it silently).

    Checked per epoch, not per batch: a NaN or inf anywhere in an epoch makes its mean loss
    NaN or inf, and a callback with batch hooks would make Keras hand every batch's logs to
    Python, a device sync per step.
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {float(loss)} in epoch {epoch + 1}; "
                "lower train.learning_rate or the augmentation strength"
            )


def recipe_callbacks(train_cfg: DictConfig) -> list[keras.callbacks.Callback]:
    """A fold's own early stopping and learning-rate schedule (conf/train/), if any."""
    out: list[keras.callbacks.Callback] = []
    if train_cfg.get("reduce_lr"):
        out.append(keras.callbacks.ReduceLROnPlateau(**train_cfg.reduce_lr))
    if train_cfg.get("early_stopping"):
        out.append(keras.callbacks.EarlyStopping(**train_cfg.early_stopping))
    return out


class EpochLogger:
    """Per-epoch curves `fold<k>/<metric>` (step = epoch) of the folds training together.

    Every fold's epoch goes into one buffer, written in one batch at most every `flush_s`
    seconds and at the end of training, so a job killed mid-training keeps the epochs it logged,
    at one MLflow call per few seconds whatever the number of folds. With `verbose`, each
    fold's epoch is also printed as a line.
    """

    def __init__(
        self,
        run_id: str,
        folds: list[Fold],
        verbose: int = 0,
        flush_s: float = 5.0,
        display: progress.Plain | None = None,
    ):
        self.run_id, self.folds, self.verbose, self.flush_s = run_id, folds, verbose, flush_s
        self.display = display or progress.Plain()
        self.pending: list[Metric] = []
        self.flushed = time.monotonic()

    def __call__(self, epoch: int, logs: list[dict[str, float] | None]) -> None:
        now = int(time.time() * 1000)
        for fold, fold_logs in zip(self.folds, logs, strict=True):
            if fold_logs is None:  # stopped early
                continue
            self.pending += [
                Metric(f"fold{fold.index}/{key}", float(value), now, epoch)
                for key, value in fold_logs.items()
            ]
            if self.verbose:
                values = " ".join(f"{k}={v:.4f}" for k, v in fold_logs.items())
                print(f"fold {fold.index} epoch {epoch + 1}: {values}", flush=True)
        self.display.epoch(epoch, logs)
        if time.monotonic() - self.flushed >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            MlflowClient().log_batch(self.run_id, metrics=self.pending, synchronous=True)
        self.pending, self.flushed = [], time.monotonic()
