"""The label-safety audit: does an augmentation change what a sample is?

A flipped 6 reads as a 9; a negated series of a sign-coded class is the other class. For every
fold of a job with augmentation, a reference network trained WITHOUT augmentation on the fold's
training part scores that training part twice: as it is (`audit/clean_accuracy`) and augmented
as training augments it, against the labels (`audit/augmented_accuracy`; for mixup and cutmix
the label that dominates the mix). `audit/label_drop` is the first minus the second, also per
class (`audit/label_drop/class_<name>`); the augmented samples the reference gets wrong are
drawn in the artifact `audit_mistakes.png`. A drop near 0 says the augmentation keeps samples
recognisable to a model that never saw it; a large drop for some classes says it turns them into
something else, before any ablation result comes in.

The reference is trained for the audit, through the engine (`src.train.engine`) exactly as the job's
own folds are trained (same network, seeds, batches, recipe, and inputs as the model sees them:
`model.standardize` scales with the fold's training part), but with no augmentation and no
validation data: it sees the fold's training part only, never its validation part or the test
split. A recipe callback that monitors a validation score (EarlyStopping on `val_loss`) monitors
the training score instead. The baseline job's fold models are not reused, since their early
stopping may have read the validation part. Reference weights are kept in this process, keyed by
the baseline's config hash (the job's config with no augmentation) and fold, so an in-process
sweep over augmentations trains each fold's reference once.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf, open_dict

from src import tracking
from src.augment.image import mix_batch
from src.cv import Fold
from src.data import Dataset
from src.train import engine
from src.train.callbacks import FailOnNaN, recipe_callbacks
from src.train.folds import fold_inputs, fold_seed
from src.train.scoring import labels as predicted_labels

# the training score a recipe's callback monitors in place of a validation score
TRAINING_MONITOR = {"val_loss": "loss", "val_accuracy": "accuracy"}
# augmented samples the reference got wrong, kept per fold for the artifact
MISTAKES_PER_FOLD = 16
# reference weights kept per process (one entry per fold)
CACHED_FOLDS = 40
NO_AUGMENTATION = {"name": "none", "strength": 0.0, "ops": [], "placement": "model", "fused": True}

_WEIGHTS: OrderedDict[tuple[str, int], list[np.ndarray]] = OrderedDict()


def enabled(job: DictConfig, has_augmentation: bool) -> bool:
    """`sweep.audit` (default true), for a job that augments."""
    return bool(OmegaConf.select(job, "sweep.audit", default=True)) and has_augmentation


def reference_job(job: DictConfig) -> DictConfig:
    """The job's config without augmentation and without validation-monitoring callbacks."""
    ref = job.copy()
    with open_dict(ref):
        ref.aug = dict(NO_AUGMENTATION)
        for key in ("early_stopping", "reduce_lr"):
            callback = ref.train.get(key)
            if callback and callback.get("monitor") in TRAINING_MONITOR:
                callback.monitor = TRAINING_MONITOR[callback.monitor]
    return ref


def class_key(name: str) -> str:
    """A class name as part of an MLflow metric key."""
    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", str(name))


@dataclass
class FoldAudit:
    fold: Fold
    metrics: dict[str, float]  # clean_accuracy, augmented_accuracy, label_drop, per class
    # augmented samples the reference got wrong: originals, augmented, label, predicted
    mistakes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)


def _program(ref_spec: engine.Spec, seeds: list[int]) -> engine.Program:
    """A program for the reference networks: the job's own when it has the same key (a job
    that augments in tf.data: its folds have been scored by now), else one of its own."""
    jobs = engine.PROGRAMS
    if jobs.program is not None and jobs.key == ref_spec.key and jobs.program.size == len(seeds):
        return jobs.program
    return engine.REFERENCES.get(ref_spec, seeds)


def _references(
    job: DictConfig, data: Dataset, folds: list[Fold], size: int
) -> tuple[engine.Program, float]:
    """A program whose slot i holds fold i's reference network (trained now, or cached), and
    the seconds spent training."""
    ref = reference_job(job)
    ref_spec = engine.Spec.of(ref, data)
    digest = tracking.config_hash(ref)
    seeds = [fold_seed(ref, fold) for fold in folds]
    program = _program(ref_spec, seeds + seeds[-1:] * (size - len(folds)))
    missing = [i for i, fold in enumerate(folds) if (digest, fold.index) not in _WEIGHTS]
    started = time.perf_counter()
    if missing:
        for slot in range(len(folds)):
            program.reset(slot, seeds[slot])
        y = data.y_train
        train = []
        for fold, seed in zip(folds, seeds, strict=True):
            tf.random.set_seed(seed)  # the fold's shuffle, as the job's fold_pipelines draws it
            x = fold_inputs(ref, data, fold).train  # as the model sees them (model.standardize)
            batches = data.pipeline(x, y[fold.train], batch_size=ref.train.batch_size,
                                    shuffle=True, seed=seed)  # fmt: skip
            train.append(ref_spec.plan(seed).training(batches))
        callbacks = [[FailOnNaN(), *recipe_callbacks(ref.train)] for _ in folds]
        program.fit(train, None, ref.train.epochs, callbacks)
        for slot, fold in enumerate(folds):
            _WEIGHTS[(digest, fold.index)] = program.weights(slot)
            while len(_WEIGHTS) > CACHED_FOLDS:
                _WEIGHTS.popitem(last=False)
    else:
        for slot, fold in enumerate(folds):
            _WEIGHTS.move_to_end((digest, fold.index))
            program.load(slot, _WEIGHTS[(digest, fold.index)])
    return program, (time.perf_counter() - started) if missing else 0.0


def _targets(y: np.ndarray) -> np.ndarray:
    """Class labels of a batch: as they are, or the dominant class of soft (mixed) labels."""
    if y.ndim == 1:
        return y.astype(np.int64)
    if y.shape[-1] == 1:
        return (y[:, 0] > 0.5).astype(np.int64)
    return y.argmax(axis=-1).astype(np.int64)


class Auditor:
    """The audit of one job: one augmentation plan for all its folds (seeded with `seed`, the
    first fold's), drawn fold by fold in fold order, so the augmented samples are the same
    whether folds train together or one at a time. Its augmentation is traced once per job (a
    plan of its own: no draws are taken from the training layers). `spec`: the job's; `size`:
    its programs' number of slots."""

    def __init__(
        self, job: DictConfig, data: Dataset, spec: engine.Spec, size: int, seed: int
    ) -> None:
        self.job, self.data, self.spec, self.size = job, data, spec, size
        plan = spec.plan(seed)
        layers, mixing, n = plan.layers, plan.mixing, plan.n_classes
        x_spec = tf.TensorSpec((None, *data.input_shape), "float32")
        self._augment = None
        if layers is not None:
            self._augment = tf.function(
                lambda x: layers(x, training=True), input_signature=[x_spec], autograph=False
            )
        self._mix = None
        if mixing is not None:
            y_spec = tf.TensorSpec((None,), "int64")
            self._mix = tf.function(lambda x, y: mix_batch(mixing, x, y, n),
                                    input_signature=[x_spec, y_spec], autograph=False)  # fmt: skip

    def augmented(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fold's training part `x` (as the model sees it), `y`, in order, augmented as
        training augments it, and each sample's label (the dominant one for mixed samples)."""
        images, targets = [], []
        batches = self.data.pipeline(x, y, batch_size=self.job.train.batch_size)
        for xb, yb in batches:
            labels = yb
            if self._augment is not None:
                xb = self._augment(xb)
            if self._mix is not None:
                xb, labels = self._mix(xb, yb)
            images.append(xb.numpy())
            targets.append(_targets(labels.numpy()))
        return np.concatenate(images), np.concatenate(targets)

    def group(self, folds: list[Fold]) -> list[FoldAudit]:
        """The audit of the folds of one group (after they trained), one `FoldAudit` each."""
        data = self.data
        program, fit_seconds = _references(self.job, data, folds, self.size)
        y = data.y_train
        empty = np.zeros((0, *data.input_shape), np.float32)
        out = []
        for slot, fold in enumerate(folds):
            started = time.perf_counter()

            def on_slot(inputs: Any, slot: int = slot) -> np.ndarray:
                return predicted_labels(program.predict([empty] * slot + [inputs])[slot])

            x = fold_inputs(self.job, data, fold).train  # as the model sees them
            clean_inputs = (
                data.pipeline(x, y[fold.train], batch_size=engine.EVAL_BATCH)
                if data.files
                else np.asarray(x)
            )
            clean = on_slot(clean_inputs)
            augmented_x, target = self.augmented(x, y[fold.train])
            predicted = on_slot(augmented_x)
            labels = y[fold.train]
            metrics = {
                "clean_accuracy": float(np.mean(clean == labels)),
                "augmented_accuracy": float(np.mean(predicted == target)),
            }
            metrics["label_drop"] = metrics["clean_accuracy"] - metrics["augmented_accuracy"]
            for c, name in enumerate(data.classes):
                clean_c = np.mean(clean[labels == c] == c)  # every class is in every fold
                # mixing can leave a class dominant in no sample: then nothing was lost
                chosen = target == c
                augmented_c = np.mean(predicted[chosen] == c) if chosen.any() else clean_c
                metrics[f"label_drop/class_{class_key(name)}"] = float(clean_c - augmented_c)
            wrong = np.flatnonzero(predicted != target)[:MISTAKES_PER_FOLD]
            originals = _originals(data, x[wrong], y[fold.train][wrong])
            mistakes = (originals, augmented_x[wrong], target[wrong], predicted[wrong])
            seconds = {
                "score": time.perf_counter() - started,
                "reference": fit_seconds / len(folds),
            }
            out.append(FoldAudit(fold, metrics, mistakes, seconds))
        return out


def audit_group(
    job: DictConfig, data: Dataset, folds: list[Fold], spec: engine.Spec, size: int
) -> list[FoldAudit]:
    """The audit of `folds` alone, by an `Auditor` of its own (`spec`: the job's)."""
    return Auditor(job, data, spec, size, fold_seed(job, folds[0])).group(folds)


def _originals(data: Dataset, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The samples as arrays (image files decoded)."""
    if not data.files:
        return np.asarray(x, np.float32)
    if not len(x):
        return np.zeros((0, *data.input_shape), np.float32)
    return np.concatenate([b.numpy() for b, _ in data.pipeline(x, y, batch_size=len(x))])


def fold_metrics(audits: list[FoldAudit]) -> dict[str, float]:
    """`fold<k>/audit/<score>` of each fold."""
    return {
        f"fold{a.fold.index}/audit/{key}": value for a in audits for key, value in a.metrics.items()
    }


def aggregate(audits: list[FoldAudit]) -> dict[str, float]:
    """`audit/<score>`: the mean over folds, `audit/label_drop_std` its spread, and what the
    audit cost (`audit/reference_time_s`: training references, 0 when cached; `score_time_s`)."""
    out = {
        f"audit/{key}": float(np.mean([a.metrics[key] for a in audits]))
        for key in audits[0].metrics
    }
    drops = [a.metrics["label_drop"] for a in audits]
    out["audit/label_drop_std"] = float(np.std(drops, ddof=1)) if len(drops) > 1 else 0.0
    out["audit/reference_time_s"] = float(sum(a.seconds["reference"] for a in audits))
    out["audit/score_time_s"] = float(sum(a.seconds["score"] for a in audits))
    return out


def mistakes(audits: list[FoldAudit]) -> tuple[np.ndarray, ...] | None:
    """The folds' wrongly scored samples together, or None when there are none."""
    parts = [a.mistakes for a in audits if len(a.mistakes[0])]
    if not parts:
        return None
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
