"""Keras model builders, one per `model=<name>` choice, built from config in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import keras
import tensorflow as tf
from keras.src.backend.common.stateless_scope import in_stateless_scope
from keras.src.optimizers.base_optimizer import BaseOptimizer
from omegaconf import DictConfig, open_dict

from src.errors import ConfigError
from src.schema import load_choice

MODEL_CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "model"
# `model=auto` picks the model that fits the data's modality
AUTO_MODEL = {"image": "cnn", "series": "lstm"}
MODALITY = {
    "cnn": "image",
    "lstm": "series",
    "cnn1d": "series",
    "fcn": "series",
    "resnet": "series",
}


def resolve_model_cfg(model_cfg: DictConfig, modality: str) -> DictConfig:
    """The concrete model config: `auto` becomes conf/model/<cnn|lstm>.yaml for this modality."""
    name = model_cfg.name
    if name == "auto":  # the modality's model, with any key the user set on top
        chosen = load_choice(MODEL_CONF_DIR / f"{AUTO_MODEL[modality]}.yaml")
        for key, value in model_cfg.items():
            # model.standardize: any model's, checked against the data in src/train/job.py
            if key not in ("name", "standardize") and key not in chosen:
                raise ConfigError(
                    f"model.{key}={value!r} is not a key of model {chosen.name!r} (what "
                    f"model=auto picks for {modality} data); accepted: "
                    + ", ".join(k for k in chosen if k != "name")
                )
        with open_dict(chosen):  # a standardize the chosen model's schema does not name
            chosen.merge_with({k: v for k, v in model_cfg.items() if k != "name"})
        return chosen
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


def _conv_bn(filters: int, kernel_size: int, momentum: float) -> list[keras.Layer]:
    # Conv1D cannot take a mask: padded steps are zeros the convolutions see like any other value
    return [
        keras.layers.Conv1D(filters, kernel_size, padding="same"),
        keras.layers.BatchNormalization(momentum=momentum),
    ]


def _conv_blocks(
    filters: Sequence[int], kernel_sizes: Sequence[int], momentum: float
) -> list[keras.Layer]:
    """[Conv1D-BatchNorm-ReLU] per (filters, kernel size) pair."""
    layers: list[keras.Layer] = []
    for n, k in zip(filters, kernel_sizes, strict=True):
        layers += [*_conv_bn(n, k, momentum), keras.layers.Activation("relu")]
    return layers


def _cnn1d(cfg: DictConfig, padded: bool) -> list[keras.Layer]:
    kernel_sizes = [cfg.kernel_size] * len(cfg.filters)
    layers = _conv_blocks(cfg.filters, kernel_sizes, cfg.batchnorm_momentum)
    layers.append(keras.layers.GlobalAveragePooling1D())
    if cfg.dropout:
        layers.append(keras.layers.Dropout(cfg.dropout))
    return layers


def _fcn(cfg: DictConfig, padded: bool) -> list[keras.Layer]:
    """Wang et al. 2017's FCN as hfawaz/dl-4-tsc classifiers/fcn.py builds it."""
    layers = _conv_blocks(cfg.filters, cfg.kernel_sizes, cfg.batchnorm_momentum)
    return [*layers, keras.layers.GlobalAveragePooling1D()]


# a Functional body: a tensor in, a tensor out (for what a Sequential cannot say, e.g. shortcuts)
Body = Callable[[keras.KerasTensor], keras.KerasTensor]


def _resnet(cfg: DictConfig, padded: bool) -> Body:
    """Wang et al. 2017's ResNet as hfawaz/dl-4-tsc classifiers/resnet.py builds it.

    Per block: Conv1D-BatchNorm-ReLU per entry of `kernel_sizes`, without the last ReLU, plus a
    shortcut, then ReLU. The shortcut is a 1x1 Conv1D + BatchNorm in the first block (their code
    projects the input series there whatever its channel count) and wherever the channel count
    changes, BatchNorm alone otherwise.
    """
    momentum = cfg.batchnorm_momentum

    def body(x: keras.KerasTensor) -> keras.KerasTensor:
        for i, filters in enumerate(cfg.filters):
            *first, last = cfg.kernel_sizes
            stack = _conv_blocks([filters] * len(first), first, momentum)
            y = _apply([*stack, *_conv_bn(filters, last, momentum)], x)
            if i == 0 or x.shape[-1] != filters:
                x = _apply(_conv_bn(filters, 1, momentum), x)
            else:
                x = keras.layers.BatchNormalization(momentum=momentum)(x)
            x = keras.layers.Activation("relu")(keras.layers.Add()([x, y]))
        return keras.layers.GlobalAveragePooling1D()(x)

    return body


def _apply(layers: list[keras.Layer], x: keras.KerasTensor) -> keras.KerasTensor:
    for layer in layers:
        x = layer(x)
    return x


BUILDERS: dict[str, Callable[[DictConfig, bool], list[keras.Layer] | Body]] = {
    "cnn": _cnn,
    "lstm": _lstm,
    "cnn1d": _cnn1d,
    "fcn": _fcn,
    "resnet": _resnet,
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

    # Keras's `stateless_apply`, which Keras refuses on TensorFlow: its TensorFlow optimizer
    # assigns to the tf.Variables under the Keras variables, past Keras's StatelessScope,
    # because tf.distribute needs that. Without a strategy the base optimizer's assignments
    # through the Keras variables are the same arithmetic and respect the scope, so the training
    # engine can trace one copy's Adam step as a function of its state (src/train/engine.py).
    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        if tf.distribute.has_strategy():
            return super().stateless_apply(optimizer_variables, grads, trainable_variables)
        return BaseOptimizer.stateless_apply(self, optimizer_variables, grads, trainable_variables)

    def _var_key(self, variable):  # the Keras variable itself, read in or out of the scope
        if tf.distribute.has_strategy():
            return super()._var_key(variable)
        return BaseOptimizer._var_key(self, variable)

    def assign(self, variable, value):
        if in_stateless_scope():
            return variable.assign(value)
        return super().assign(variable, value)

    def assign_add(self, variable, value):
        if in_stateless_scope():
            return variable.assign_add(value)
        return super().assign_add(variable, value)

    def assign_sub(self, variable, value):
        if in_stateless_scope():
            return variable.assign_sub(value)
        return super().assign_sub(variable, value)


@contextmanager
def _dtype_policy(mixed_precision: bool) -> Iterator[None]:
    """Layers made inside compute in float16 when asked; the global policy is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed_precision else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_network(
    model_cfg: DictConfig,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    augmentation: keras.Layer | None = None,
    padded: bool = False,
    soft_labels: bool = False,
    mixed_precision: bool = False,
) -> tuple[keras.Model, str]:
    """The uncompiled network, [augmentation] + the model's body + a head, and its loss name.

    Augmentation sits at the front of the model, so it runs only when `training=True`. A body
    given as layers makes a Sequential, one given as a function a Functional model.
    `mixed_precision` computes the body in float16 with float32 weights (the head stays
    float32, so the softmax and the loss are exact); it is for accelerators.
    """
    with _dtype_policy(mixed_precision):
        output, loss = head(n_classes, soft_labels)
        body = BUILDERS[model_cfg.name](model_cfg, padded)
        if not isinstance(body, list):  # the layers are made as the body is called
            inputs = keras.Input(shape=input_shape)
            features = body(augmentation(inputs) if augmentation is not None else inputs)
    if mixed_precision:  # the head in float32, as Keras's mixed precision guide does
        output = type(output).from_config({**output.get_config(), "dtype": "float32"})
    if not isinstance(body, list):
        return keras.Model(inputs, output(features), name=model_cfg.name), loss
    front = [augmentation] if augmentation is not None else []
    layers = [keras.Input(shape=input_shape), *front, *body, output]
    return keras.Sequential(layers, name=model_cfg.name), loss


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
) -> keras.Model:
    """`build_network`'s model compiled with augsweep's Adam and accuracy.

    `jit_compile` XLA-compiles the train, test and predict steps (for accelerators).
    """
    model, loss = build_network(
        model_cfg,
        input_shape,
        n_classes,
        augmentation=augmentation,
        padded=padded,
        soft_labels=soft_labels,
        mixed_precision=mixed_precision,
    )
    model.compile(
        optimizer=Adam(learning_rate), loss=loss, metrics=["accuracy"], jit_compile=jit_compile
    )
    return model
