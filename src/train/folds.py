"""What a fold trains on: its seed, its inputs as the model sees them and its tf.data pipelines,
and how many folds train together."""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from src.cv import Fold
from src.data import Dataset
from src.data.scaling import Standardizer
from src.train import engine


def fold_seed(job: DictConfig, fold: Fold) -> int:
    """The seed of a fold's initial weights, shuffling and augmentation draws."""
    return job.seed * 1000 + fold.index


def group_size(train_cfg: DictConfig, model: str, n_folds: int) -> int:
    """How many folds train together: `train.parallel_folds` (auto: where the benchmark found
    it faster, `engine.PARALLEL_BY_DEFAULT`)."""
    setting = train_cfg.parallel_folds
    if setting == "auto":
        setting = engine.PARALLEL_BY_DEFAULT.get(model, False)
    if setting is True:
        return n_folds
    if setting is False:
        return 1
    return min(int(setting), n_folds)


@dataclass(frozen=True)
class FoldInputs:
    """A fold's inputs as its model sees them: scaled with statistics of its training part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None


def fold_inputs(job: DictConfig, data: Dataset, fold: Fold) -> FoldInputs:
    """The fold's training part, validation part and test split; `model.standardize`: each
    series channel standardised with the mean and std of the fold's training part."""
    x = data.x_train
    parts = FoldInputs(x[fold.train], x[fold.val], data.x_test)
    if not job.model.get("standardize", False):
        return parts
    scale = Standardizer.fit(parts.train, data.padded)
    return FoldInputs(*(None if p is None else scale(p) for p in astuple(parts)))


def fold_pipelines(
    job: DictConfig, data: Dataset, fold: Fold, spec: engine.Spec
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """A fold's training batches (shuffled, augmented with its seed) and validation batches."""
    seed = fold_seed(job, fold)
    # tf.data's seeded shuffle also reads TensorFlow's global seed: the fold's, whatever other
    # folds were set up before it
    tf.random.set_seed(seed)
    plan = spec.plan(seed)  # in-model layers live in the network; this plan's maps the pipeline
    x, y = fold_inputs(job, data, fold), data.y_train
    batch = job.train.batch_size
    train = plan.training(
        data.pipeline(x.train, y[fold.train], batch_size=batch, shuffle=True, seed=seed)
    )
    val = plan.encode(data.pipeline(x.val, y[fold.val], batch_size=engine.EVAL_BATCH))
    return train, val
