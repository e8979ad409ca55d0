"""Keras Sequential builders, one per `model=<name>` choice, built from config in one place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError

MODEL_CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "model"
# `model=auto` picks the model that fits the data's modality
AUTO_MODEL = {"image": "cnn", "series": "lstm"}
MODALITY = {"cnn": "image", "lstm": "series", "cnn1d": "series"}


def resolve_model_cfg(model_cfg: DictConfig, modality: str) -> DictConfig:
    """The concrete model config: `auto` becomes conf/model/<cnn|lstm>.yaml for this modality."""
    name = model_cfg.name
    if name == "auto":
        return OmegaConf.load(MODEL_CONF_DIR / f"{AUTO_MODEL[modality]}.yaml")
    if name not in BUILDERS:
        raise ConfigError(
            f"unknown model model.name={name!r}; accepted: auto, {', '.join(sorted(BUILDERS))}"
        )
    if MODALITY[name] != modality:
        raise ConfigError(
            f"model {name!r} needs {MODALITY[name]} data, but the dataset is {modality}; "
            f"accepted for {modality}: auto, "
            + ", ".join(sorted(n for n, m in MODALITY.items() if m == modality))
        )
    return model_cfg


def _cnn(cfg: DictConfig, padded: bool) -> list[keras.Layer]:
    layers: list[keras.Layer] = []
    for filters in cfg.filters:
        layers += [
            keras.layers.Conv2D(filters, cfg.kernel_size, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.Flatten(), keras.layers.Dense(cfg.dense_units, activation="relu")]
    if cfg.dropout:
        layers.append(keras.layers.Dropout(cfg.dropout))
    return layers


def _lstm(cfg: DictConfig, padded: bool) -> list[keras.Layer]:
    # zero-padded time steps are skipped; augmentation keeps them exactly zero
    layers: list[keras.Layer] = [keras.layers.Masking(0.0)] if padded else []
    layers.append(keras.layers.LSTM(cfg.units, dropout=cfg.dropout))
    return layers


def _cnn1d(cfg: DictConfig, padded: bool) -> list[keras.Layer]:
    # Conv1D cannot take a mask: padded steps are zeros the convolutions see like any other value
    layers: list[keras.Layer] = []
    for filters in cfg.filters:
        layers += [
            keras.layers.Conv1D(filters, cfg.kernel_size, padding="same"),
            keras.layers.BatchNormalization(momentum=cfg.batchnorm_momentum),
            keras.layers.Activation("relu"),
        ]
    layers.append(keras.layers.GlobalAveragePooling1D())
    if cfg.dropout:
        layers.append(keras.layers.Dropout(cfg.dropout))
    return layers


BUILDERS: dict[str, Callable[[DictConfig, bool], list[keras.Layer]]] = {
    "cnn": _cnn,
    "lstm": _lstm,
    "cnn1d": _cnn1d,
}


def head(n_classes: int, soft_labels: bool = False) -> tuple[keras.Layer, str]:
    """Output layer and loss: one sigmoid unit for two classes, else a softmax over the classes.

    Soft labels (mixup, cutmix) come one-hot, hence the non-sparse loss.
    """
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid"), "binary_crossentropy"
    loss = "categorical_crossentropy" if soft_labels else "sparse_categorical_crossentropy"
    return keras.layers.Dense(n_classes, activation="softmax"), loss


@keras.saving.register_keras_serializable(package="augsweep")
class Adam(keras.optimizers.Adam):
    """Keras's Adam, minus a leak of a few MB per trained model in long in-process sweeps.

    With TensorFlow and no distribution strategy, Keras routes every update through the default
    strategy's `extended.update` inside the traced train step, and TensorFlow keeps memory for
    each traced step alive after `keras.backend.clear_session()` (keras-team/keras#17458, #20552).
    Without a strategy that routing is a plain call, so this makes the call directly: the same
    arithmetic in the same order (identical losses), and flat memory
    (`python -m benchmarks.sweep_memory`).
    """

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate) -> None:
        if keras.backend.backend() != "tensorflow" or tf.distribute.has_strategy():
            super()._backend_update_step(grads, trainable_variables, learning_rate)
            return
        for grad, variable in zip(grads, trainable_variables, strict=True):
            self.update_step(grad, variable, learning_rate)


def build_model(
    model_cfg: DictConfig,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    learning_rate: float,
    augmentation: keras.Layer | None = None,
    padded: bool = False,
    soft_labels: bool = False,
    mixed_precision: bool = False,
    jit_compile: bool = False,
) -> keras.Sequential:
    """A compiled Sequential: [augmentation] + the model's layers + a head sized to the classes.

    Augmentation sits at the front of the model, so it runs only when `training=True`.
    `mixed_precision` computes the model's layers in float16 with float32 weights (the head
    stays float32, so the softmax and the loss are exact); `jit_compile` XLA-compiles the
    train, test and predict steps. Both are for accelerators.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        output, loss = head(n_classes, soft_labels)
        layers = BUILDERS[model_cfg.name](model_cfg, padded)
    finally:
        keras.config.set_dtype_policy(previous)
    if mixed_precision:  # the head in float32, as Keras's mixed precision guide does
        output = type(output).from_config({**output.get_config(), "dtype": "float32"})
    front = [augmentation] if augmentation is not None else []
    model = keras.Sequential(
        [keras.Input(shape=input_shape), *front, *layers, output], name=model_cfg.name
    )
    model.compile(
        optimizer=Adam(learning_rate), loss=loss, metrics=["accuracy"], jit_compile=jit_compile
    )
    return model


def predict_labels(model: keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    """Class indices predicted for a dataset of batches (inference mode: no augmentation)."""
    probs = model.predict(batches, verbose=0)
    if probs.shape[-1] == 1:
        return (probs[:, 0] > 0.5).astype(np.int64)
    return probs.argmax(axis=-1).astype(np.int64)
