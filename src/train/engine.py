"""The training engine: the folds of a job trained together, as one TensorFlow program.

A `Program` holds `size` independent copies of one network, each with its own optimizer (and
so its own state and learning rate), its own augmentation seed and its own Keras callbacks. One
traced function runs a whole epoch for every copy: each step takes one training batch per copy
(zipped tf.data pipelines, each shuffled and augmented with its fold's seed), then the same
function scores every copy on its fold's validation part. Python sees one call per epoch.

Built once, used many times: a fold (or the next job of an in-process sweep with the same
architecture, augmentation and input shape) restores its seeded initial weights and a fresh
optimizer state into a slot instead of building and tracing a new model. One fold at a time is
the same program with one slot (`train.parallel_folds=false`).

Exactness: folds of unequal size get empty batches at the end of the shorter epochs, and a copy
skips its update for an empty batch (no sample dropped or counted twice, and no optimizer step:
Adam's state moves only on real batches). A copy that stopped early (its EarlyStopping set
`stop_training`) is skipped the same way while the others go on.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from src.augment.plan import Plan
from src.models import Adam, build_network

# `train.parallel_folds=auto`: the model families whose folds train faster together, as
# `python -m benchmarks.engine` measured them (benchmarks/README.md); fcn and resnet are not in
# that benchmark, so they train one fold at a time
PARALLEL_BY_DEFAULT = {"cnn": True, "lstm": True, "cnn1d": True, "fcn": False, "resnet": False}
# inference batch size: validation and the final predictions (no gradients, so larger batches)
EVAL_BATCH = 512


@dataclass(frozen=True)
class Spec:
    """What fixes a traced program: equal specs can share one (weights and seeds are reset)."""

    model: dict[str, Any]
    aug: dict[str, Any]
    modality: str
    input_shape: tuple[int, ...]
    n_classes: int
    padded: bool
    learning_rate: float
    clipnorm: float | None
    mixed_precision: bool
    jit_compile: bool

    @classmethod
    def of(cls, job: DictConfig, data: Any) -> Spec:
        return cls(
            OmegaConf.to_container(job.model, resolve=True),
            OmegaConf.to_container(job.aug, resolve=True),
            data.modality,
            tuple(data.input_shape),
            data.n_classes,
            bool(data.padded),
            float(job.train.learning_rate),
            None if job.train.get("clipnorm") is None else float(job.train.clipnorm),
            bool(job.train.mixed_precision),
            bool(job.train.jit_compile),
        )

    @property
    def key(self) -> str:
        """What the traced program depends on. The augmentation only where it is part of the
        network (in-model layers; mixing changes the loss): jobs that augment in tf.data, or
        not at all, share one program whatever their augmentation."""
        plan = self.plan(0)
        fields = dict(self.__dict__)
        if plan.in_model is None:
            fields["aug"] = {"soft_labels": plan.soft_labels}
        return json.dumps(fields, sort_keys=True, default=str)

    def plan(self, seed: int) -> Plan:
        return Plan.build(OmegaConf.create(self.aug), self.modality, self.n_classes, seed=seed)

    def network(self, seed: int) -> tuple[keras.Model, str]:
        """The fold's network and loss name: weights and augmentation seeds from `seed`.

        Built as serial training builds it (the same draws in the same order), uncompiled:
        the engine trains it. Its `optimizer` is the fold's own Adam, for Keras callbacks.
        """
        keras.utils.set_random_seed(seed)
        plan = self.plan(seed)
        net, loss = build_network(
            OmegaConf.create(self.model),
            self.input_shape,
            self.n_classes,
            augmentation=plan.in_model,
            padded=self.padded,
            soft_labels=plan.soft_labels,
            mixed_precision=self.mixed_precision,
        )
        net.optimizer = Adam(self.learning_rate, clipnorm=self.clipnorm)
        net.stop_training = False
        return net, loss


# the loss names `models.head` compiles with, as the Loss objects that Keras's `compile` makes
LOSSES = {
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
}


def _mean_loss(loss: Any) -> keras.losses.Loss:
    """The loss as Keras's `compile` makes it and `fit` reduces it: the mean over the batch."""
    if isinstance(loss, keras.losses.Loss):
        return loss
    return LOSSES[loss]()


def _correct(y: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Samples predicted right, as Keras's "accuracy" counts them for this head and labels."""
    y_pred = tf.cast(y_pred, "float32")
    if y_pred.shape[-1] == 1:  # binary_accuracy: labels (hard or soft) against p > 0.5
        y = tf.reshape(tf.cast(y, "float32"), (-1,))
        hit = tf.equal(y, tf.cast(y_pred[:, 0] > 0.5, "float32"))
    elif y.shape.rank == 2:  # categorical_accuracy on one-hot or soft labels
        hit = tf.equal(tf.argmax(y, -1), tf.argmax(y_pred, -1))
    else:  # sparse_categorical_accuracy
        hit = tf.equal(tf.cast(y, "int64"), tf.argmax(y_pred, -1))
    return tf.reduce_sum(tf.cast(hit, "float32"))


class Program:
    """`size` copies of one network, trained and scored together (see the module docstring).

    Tracing is paid once, not once per copy: the step of one copy is traced as a stateless
    function of its state (Keras's `stateless_call` and `stateless_apply`: weights, batch-norm
    statistics, augmentation seeds and optimizer state in, their new values out), and each
    slot's step calls that one traced function on its own variables.
    """

    def __init__(self, spec: Spec, seeds: Sequence[int]) -> None:
        self.spec = spec
        self.size = len(seeds)
        self.networks, losses = zip(*(spec.network(seed) for seed in seeds), strict=True)
        self.optimizers = [net.optimizer for net in self.networks]
        for net, optimizer in zip(self.networks, self.optimizers, strict=True):
            optimizer.build(net.trainable_variables)
        self._fresh_optimizer = [[v.numpy() for v in o.variables] for o in self.optimizers]
        # slot -> the seed its weights came from, while they are still untouched
        self._pristine: dict[int, int] = dict(enumerate(seeds))
        self._loss = _mean_loss(losses[0])
        self._outputs = int(self.networks[0].outputs[0].shape[-1])
        # per-slot sums of (loss x n, correct, n) over an epoch's training and validation batches
        self._totals = tf.Variable(tf.zeros((self.size, 6)), trainable=False)
        state = [
            [tf.TensorSpec(v.shape, v.dtype) for v in variables] for variables in self._state(0)
        ]
        x_spec = tf.TensorSpec((None, *spec.input_shape), "float32")
        self._state_spec, self._x_spec = state, x_spec
        self._copy_infer = tf.function(
            self._copy_infer_fn, input_signature=[state[0], state[1], x_spec], autograph=False
        )
        self._infer = tf.function(
            self._infer_fn, input_signature=[x_spec] * self.size, autograph=False
        )
        self._copy_step = self._step = self._val = None  # traced at the first fit
        self.epoch_seconds: list[float] = []

    def _state(self, slot: int) -> tuple[list, list, list]:
        net = self.networks[slot]
        return net.trainable_variables, net.non_trainable_variables, self.optimizers[slot].variables

    # -- state ------------------------------------------------------------------------------
    def reset(self, slot: int, seed: int) -> None:
        """Slot `slot` as fold `seed` starts: seeded initial weights, fresh optimizer state."""
        if self._pristine.get(slot) != seed:
            template, _ = self.spec.network(seed)
            for target, source in zip(
                self.networks[slot].variables, template.variables, strict=True
            ):
                target.assign(source)
            del template
        for variable, value in zip(
            self.optimizers[slot].variables, self._fresh_optimizer[slot], strict=True
        ):
            variable.assign(value)
        self.networks[slot].stop_training = False
        self._pristine.pop(slot, None)

    def weights(self, slot: int) -> list[np.ndarray]:
        """Slot `slot`'s network variables (weights and batch-norm statistics), as arrays."""
        return [v.numpy() for v in self.networks[slot].variables]

    def load(self, slot: int, weights: list[np.ndarray]) -> None:
        """Slot `slot`'s network set to `weights` (from `weights`); its next `reset` re-seeds it."""
        for variable, value in zip(self.networks[slot].variables, weights, strict=True):
            variable.assign(value)
        self._pristine.pop(slot, None)

    # -- one copy, stateless: traced once ----------------------------------------------------
    def _copy_step_fn(self, trainable, non_trainable, opt_state, x, y):
        """One optimizer step of one copy: its new state and (loss x n, correct, n)."""
        net, optimizer = self.networks[0], self.optimizers[0]
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            y_pred, non_trainable = net.stateless_call(trainable, non_trainable, x, training=True)
            loss = self._loss(y, y_pred)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, trainable)
        trainable, opt_state = optimizer.stateless_apply(opt_state, grads, trainable)
        n = tf.cast(tf.shape(x)[0], "float32")
        stats = tf.stack([tf.cast(loss, "float32") * n, _correct(y, y_pred), n])
        return trainable, non_trainable, opt_state, stats

    def _copy_infer_fn(self, trainable, non_trainable, x):
        y_pred, _ = self.networks[0].stateless_call(trainable, non_trainable, x, training=False)
        return tf.cast(y_pred, "float32")

    # -- every slot: traced once per program -------------------------------------------------
    def _step_fn(self, batches: tuple, active: tf.Tensor) -> None:
        """One step of every active slot with a non-empty batch; its stats into `_totals`."""
        stats = []
        for slot, (x, y) in enumerate(batches):
            variables = self._state(slot)
            old = [[v.value for v in group] for group in variables]

            def update(old=old, x=x, y=y):
                return self._copy_step(*old, x, y)

            def skip(old=old):
                return (*old, tf.zeros(3))

            *new, slot_stats = tf.cond(
                tf.logical_and(active[slot], tf.shape(x)[0] > 0), update, skip
            )
            for group, values in zip(variables, new, strict=True):
                for variable, value in zip(group, values, strict=True):
                    variable.assign(value)
            stats.append(tf.concat([slot_stats, tf.zeros(3)], 0))
        self._totals.assign_add(tf.stack(stats))

    def _val_fn(self, batches: tuple) -> None:
        """Validation sums of one batch per slot (loss x n, correct, n) into `_totals`."""
        stats = []
        for slot, (x, y) in enumerate(batches):
            y_pred = self._forward(slot, x)
            n = tf.cast(tf.shape(x)[0], "float32")
            loss = tf.where(n > 0, tf.cast(self._loss(y, y_pred), "float32"), 0.0)
            stats.append(tf.concat([tf.zeros(3), [loss * n, _correct(y, y_pred), n]], 0))
        self._totals.assign_add(tf.stack(stats))

    def _trace(self, train_spec: Any) -> None:
        """The traced training step, for the element structure of the zipped pipelines."""
        x_spec, state = self._x_spec, self._state_spec
        y_spec = train_spec[0][1]
        self._copy_step = tf.function(
            self._copy_step_fn,
            input_signature=[*state, x_spec, y_spec],
            jit_compile=self.spec.jit_compile,
            autograph=False,
        )
        active = tf.TensorSpec((self.size,), tf.bool)
        self._step = tf.function(self._step_fn, input_signature=[train_spec, active],
                                 autograph=False)  # fmt: skip

    # -- driving ----------------------------------------------------------------------------
    def fit(
        self,
        train: Sequence[tf.data.Dataset],
        val: Sequence[tf.data.Dataset] | None,
        epochs: int,
        callbacks: Sequence[Sequence[keras.callbacks.Callback]],
        on_epoch: Callable[[int, list[dict[str, float] | None]], None] | None = None,
    ) -> list[dict[str, list[float]]]:
        """Train every slot for up to `epochs` epochs; per slot, Keras-style history.

        `train[i]`: slot i's training batches (shuffled, augmented); `val[i]`: its validation
        batches (`val=None`: none, and the logs have no `val_*` keys). `callbacks[i]` are Keras
        callbacks of slot i (epoch hooks only), attached to its network, whose `optimizer` they
        may change (ReduceLROnPlateau) and whose `stop_training` ends that slot's training
        (EarlyStopping). `on_epoch(epoch, logs)` sees every slot's
        logs of the epoch (None for a slot that has stopped).
        """
        used = len(train)  # a smaller last group leaves slots idle: never active, empty data
        zipped = _zip_padded(self._fill(train)).prefetch(tf.data.AUTOTUNE)
        val_zipped = None if val is None else _zip_padded(self._fill(val))
        if self._step is None:
            self._trace(zipped.element_spec)
        if val_zipped is not None and self._val is None:
            self._val = tf.function(
                self._val_fn, input_signature=[val_zipped.element_spec], autograph=False
            )
        histories: list[dict[str, list[float]]] = [{} for _ in range(used)]
        for slot, slot_callbacks in enumerate(callbacks):
            for callback in slot_callbacks:
                callback.set_model(self.networks[slot])
                callback.on_train_begin()
        self.epoch_seconds: list[float] = []  # wall time of each epoch, for the benchmarks
        for epoch in range(epochs):
            active = [s < used and not net.stop_training for s, net in enumerate(self.networks)]
            if not any(active):
                break
            started = time.perf_counter()
            self._totals.assign(tf.zeros_like(self._totals))
            active_t = tf.constant(active)
            for batches in zipped:
                self._step(batches, active_t)
            for batches in val_zipped if val_zipped is not None else ():
                self._val(batches)
            sums = self._totals.numpy()  # the epoch's one wait for the device
            self.epoch_seconds.append(time.perf_counter() - started)
            epoch_logs: list[dict[str, float] | None] = []
            for slot in range(used):
                if not active[slot]:
                    epoch_logs.append(None)
                    continue
                loss, correct, n, val_loss, val_correct, val_n = sums[slot]
                logs = {"loss": loss / n, "accuracy": correct / n}
                if val_zipped is not None:
                    logs |= {"val_loss": val_loss / val_n, "val_accuracy": val_correct / val_n}
                for key, value in logs.items():
                    histories[slot].setdefault(key, []).append(float(value))
                for callback in callbacks[slot]:
                    callback.on_epoch_end(epoch, logs)
                epoch_logs.append(logs)
            if on_epoch is not None:
                on_epoch(epoch, epoch_logs)
        for slot_callbacks in callbacks:
            for callback in slot_callbacks:
                callback.on_train_end()
        return histories

    def predict(self, inputs: Sequence[np.ndarray | tf.data.Dataset]) -> list[np.ndarray]:
        """Each slot's predicted probabilities for its own inputs (no augmentation).

        `inputs[i]`: slot i's inputs, an array (cut into batches here, no tf.data pipeline to
        build) or a dataset of (x, y) batches (image files decoded on the fly).
        """
        batched = [
            _batches(item) if isinstance(item, np.ndarray) else [x for x, _ in item]
            for item in inputs
        ]
        empty = np.zeros((0, *self.spec.input_shape), np.float32)
        steps = max(len(b) for b in batched)
        outs: list[list[np.ndarray]] = [[] for _ in inputs]
        for step in range(steps):
            xs = [b[step] if step < len(b) else empty for b in batched]
            xs += [empty] * (self.size - len(xs))
            for slot, probs in enumerate(self._infer(*xs)[: len(inputs)]):
                outs[slot].append(probs.numpy())
        return [np.concatenate(o) for o in outs]

    def _infer_fn(self, *xs: tf.Tensor) -> tuple:
        """Every slot's probabilities for its own batch."""
        return tuple(self._forward(slot, x) for slot, x in enumerate(xs))

    def _forward(self, slot: int, x: tf.Tensor) -> tf.Tensor:
        """Slot `slot`'s probabilities for `x`, inference mode, through the one traced copy."""
        trainable, non_trainable, _ = self._state(slot)

        def forward() -> tf.Tensor:
            return self._copy_infer([v.value for v in trainable], [v.value for v in non_trainable],
                                    x)  # fmt: skip

        def idle() -> tf.Tensor:
            return tf.zeros((0, self._outputs), "float32")

        # a batch of no rows (an idle slot, a fold with fewer batches) is never run: oneDNN's
        # convolutions fail on it (TF 2.21 on AVX-512/AMX CPUs: "input depth must be evenly
        # divisible by filter depth")
        return tf.cond(tf.shape(x)[0] > 0, forward, idle)

    def _fill(self, datasets: Sequence[tf.data.Dataset]) -> list[tf.data.Dataset]:
        """One dataset per slot: idle slots get a single empty batch of the same structure."""
        idle = tf.data.Dataset.from_tensors(_empty_like(datasets[0].element_spec))
        return [*datasets, *[idle] * (self.size - len(datasets))]


def _empty_like(spec: Any) -> Any:
    """A zero-row batch of a tf.data element spec (a tensor spec or a tuple of them)."""
    if isinstance(spec, tuple):
        return tuple(_empty_like(s) for s in spec)
    return tf.zeros([0, *spec.shape[1:]], spec.dtype)


def _zip_padded(datasets: Sequence[tf.data.Dataset]) -> tf.data.Dataset:
    """The datasets zipped step by step; shorter ones end in empty batches, so none is cut."""
    steps = [int(ds.cardinality()) for ds in datasets]
    if min(steps) < 0:
        raise ValueError(f"pipelines of unknown length cannot be zipped: {steps}")
    longest = max(steps)
    padded = [
        ds.concatenate(
            tf.data.Dataset.from_tensors(_empty_like(ds.element_spec)).repeat(longest - n)
        )
        if n < longest
        else ds
        for ds, n in zip(datasets, steps, strict=True)
    ]
    return tf.data.Dataset.zip(tuple(padded))


def _batches(x: np.ndarray) -> list[np.ndarray]:
    """An array cut into inference batches (at least one, maybe empty)."""
    x = np.asarray(x, np.float32)
    return [x[i : i + EVAL_BATCH] for i in range(0, max(len(x), 1), EVAL_BATCH)]


class Cache:
    """The traced program of the last spec, kept for the next job of an in-process sweep.

    `clear`: replacing the program also clears Keras's session (the program of the jobs); a
    second cache (the audit's reference networks, `src.train.audit`) only drops its own.
    """

    def __init__(self, clear: bool = True) -> None:
        self.key: str | None = None
        self.program: Program | None = None
        self.clear = clear

    def get(self, spec: Spec, seeds: Sequence[int]) -> Program:
        key = spec.key
        if self.program is not None and self.key == key and self.program.size == len(seeds):
            return self.program
        self.key = self.program = None
        if self.clear:  # the previous program's graphs and variables go; one full collection
            keras.backend.clear_session(free_memory=True)  # bounds memory
        else:
            gc.collect()
        self.program, self.key = Program(spec, seeds), key
        return self.program


PROGRAMS = Cache()
# the audit's reference networks (trained without augmentation), beside the jobs' programs
REFERENCES = Cache(clear=False)
