"""`tracking.log_model`: the trained Keras model of a job's best fold, or of every fold, in MLflow.

The engine trains a job's folds as slots of one program (`src.train.engine`); after a group of
folds has trained, each slot's network holds that fold's weights. A logged model is that network
without its augmentation layers (they only act in training, and a model for inference should not
need augsweep's layers to load): the same body and head, built again and given the slot's
weights, logged with the mlflow.keras flavor (as `mlflow.keras.log_model` logs it) with a
signature and an input example. It predicts what the engine predicted for that fold
(tests/test_fold_models.py holds them equal).

- `none` (the default): no model.
- `best_fold`: one model, `model`, of the fold with the best validation score (the per-fold
  score of `optimize_metric`, else val_accuracy; the lowest fold index on a tie).
- `all`: one model per fold, `fold<k>`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from types import SimpleNamespace
from typing import Any

import keras
import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.config import check_log_model
from src.models import build_network
from src.tracking import tags

EXAMPLE_ROWS = 2  # rows of the input example stored with a model


def fold_score(optimize_metric: str, available: Sequence[str]) -> str:
    """The per-fold score that picks the best fold: `val_f1_macro` for `val_f1_macro_mean`."""
    score = optimize_metric.removesuffix("_mean")
    return score if score.startswith("val_") and score in available else "val_accuracy"


def requirements() -> list[str]:
    """What loading the model needs: Keras and its TensorFlow backend, pinned as installed
    (given here: MLflow would otherwise load the model in a subprocess to find out)."""
    pins = [f"keras=={version('keras')}"]
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            pins.append(f"{name}=={version(name)}")
            break
        except PackageNotFoundError:
            continue
    return pins


def _save_keras(path: str, validate_serving_input: bool = True, **kwargs: Any) -> None:
    os.makedirs(path, exist_ok=True)
    mlflow.keras.save_model(path=path, **kwargs)


# mlflow.keras as the flavor `Model.log` saves with (what `mlflow.keras.log_model` does), except
# that the model's folder exists before the input example is written into it: MLflow 3.17's
# `mlflow.keras.save_model` writes the example first and fails with FileNotFoundError
# (mlflow/mlflow#16183, open). `Model.log` hands its keyword arguments to the flavor too: the
# one meant for `Model.log` only is dropped here.
KERAS_FLAVOR = SimpleNamespace(__name__="mlflow.keras", save_model=_save_keras)


def inference_network(program: Any, slot: int) -> keras.Model:
    """Slot `slot`'s trained network without augmentation layers (they hold no weights:
    Keras keeps random-seed state out of `weights`)."""
    spec = program.spec
    network, _ = build_network(
        OmegaConf.create(spec.model),
        spec.input_shape,
        spec.n_classes,
        augmentation=None,
        padded=spec.padded,
        soft_labels=spec.plan(0).soft_labels,
        mixed_precision=spec.mixed_precision,
    )
    weights = program.networks[slot].get_weights()
    shapes = ([w.shape for w in weights], [tuple(w.shape) for w in network.weights])
    if shapes[0] != shapes[1]:  # an augmentation layer with weights of its own: not expected
        raise RuntimeError(f"the trained network's weights do not match the inference network's: "
                           f"{shapes[0]} != {shapes[1]}")  # fmt: skip
    network.set_weights(weights)
    return network


class FoldModels:
    """Collects a job's fold models as the groups of folds finish, and logs them."""

    def __init__(self, job: DictConfig, example: np.ndarray) -> None:
        self.mode = check_log_model(job.tracking.log_model)
        self.optimize_metric = str(job.optimize_metric)
        self.example = np.asarray(example[:EXAMPLE_ROWS], dtype=np.float32)
        # the best fold so far: its score, index, inference weights and the score's name
        self.best: tuple[float, int, list[np.ndarray], str] | None = None
        self.program: Any = None
        self.logged: dict[int, str] = {}  # fold -> model URI

    def after_group(self, program: Any, results: Sequence[Any]) -> None:
        """A group of folds has trained in `program`: log them (`all`) or keep the best."""
        if self.mode == "none":
            return
        self.program = program
        for slot, result in enumerate(results):
            if self.mode == "all":
                self._log(inference_network(program, slot), result.fold.index)
                continue
            score_key = fold_score(self.optimize_metric, list(result.metrics))
            score = float(result.metrics[score_key])
            if self.best is None or score > self.best[0]:
                weights = inference_network(program, slot).get_weights()
                self.best = (score, result.fold.index, weights, score_key)

    def finish(self) -> dict[int, str]:
        """Log the best fold's model (`best_fold`); the logged models' URIs by fold."""
        if self.mode == "best_fold" and self.best is not None:
            _, fold, weights, score_key = self.best
            network = inference_network(self.program, 0)
            network.set_weights(weights)
            self._log(network, fold, name="model", chosen_by=score_key)
        return self.logged

    def _log(
        self, network: keras.Model, fold: int, name: str | None = None, chosen_by: str | None = None
    ) -> None:
        output = np.asarray(network(self.example, training=False))
        signature = mlflow.models.infer_signature(self.example, output)
        params = {"fold": str(fold), **({"chosen_by": chosen_by} if chosen_by else {})}
        info = mlflow.models.Model.log(
            artifact_path=None,  # deprecated in MLflow 3 for `name`, but still positional
            name=name or f"fold{fold}",
            flavor=KERAS_FLAVOR,
            model=network,
            signature=signature,
            input_example=self.example,
            pip_requirements=requirements(),
            params=params,
            tags={tags.FOLD: str(fold), tags.LOG_MODEL: self.mode},
            # MLflow's check of the input example loads the model again and predicts through
            # Keras's verbose predict, a progress bar per model in every job's output; the
            # test suite loads and checks the logged models instead
            validate_serving_input=False,
        )
        self.logged[fold] = info.model_uri
