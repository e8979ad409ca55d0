"""Stratified cross-validation splits over the training portion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig
from sklearn.model_selection import RepeatedStratifiedKFold

from src.checks import check_int
from src.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    index: int  # 0 .. folds*repeats-1
    repeat: int
    train: np.ndarray  # indices into the training portion
    val: np.ndarray


def check_cv(cv_cfg: DictConfig, y: np.ndarray, classes: tuple[str, ...]) -> None:
    """Fail before training when the folds cannot be stratified."""
    folds = check_int("cv.folds", cv_cfg.folds, 2)
    check_int("cv.repeats", cv_cfg.repeats, 1)
    counts = np.bincount(y, minlength=len(classes))
    smallest = int(counts.argmin())
    if counts[smallest] < folds:
        raise ConfigError(
            f"class {classes[smallest]!r} has {counts[smallest]} training samples, fewer than "
            f"cv.folds={folds}; accepted: cv.folds <= {counts[smallest]} (the smallest class)"
        )


def split(cv_cfg: DictConfig, y: np.ndarray, seed: int) -> Iterator[Fold]:
    """`cv.repeats` x StratifiedKFold(`cv.folds`): the same folds for every setting of one seed."""
    splitter = RepeatedStratifiedKFold(
        n_splits=cv_cfg.folds, n_repeats=cv_cfg.repeats, random_state=seed
    )
    for index, (train, val) in enumerate(splitter.split(np.zeros(len(y)), y)):
        yield Fold(index, index // cv_cfg.folds, train, val)
