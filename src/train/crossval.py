"""A job's cross-validation: its folds trained in groups through the engine, scored, logged to
MLflow with the job's figures, and audited (`src.train.audit`) when the job augments."""

from __future__ import annotations

import logging
import time

import keras
import mlflow
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig
from sklearn.metrics import accuracy_score

from src import plots, progress
from src.augment import aug_label, resolve_ops
from src.augment.plan import Plan
from src.augment.preview import mistakes_figure, preview_figure
from src.cv import Fold, split
from src.data import Dataset
from src.data.scaling import Standardizer
from src.train import audit, engine, fold_models
from src.train.callbacks import EpochLogger, FailOnNaN, recipe_callbacks
from src.train.folds import fold_inputs, fold_pipelines, fold_seed, group_size
from src.train.job import run_name
from src.train.scoring import FoldResult, aggregate, labels, scores

log = logging.getLogger(__name__)


def log_preview(job: DictConfig, data: Dataset, plan: Plan, n: int = 8) -> None:
    """Originals next to their augmented versions, drawn as training draws them (same seed)."""
    x = data.x_train[:n]
    if job.model.get("standardize", False):  # as the model sees them (whole training portion)
        x = Standardizer.fit(data.x_train, data.padded)(x)
    x, _ = next(iter(data.pipeline(x, data.y_train[:n], batch_size=n)))
    title = f"{data.name} / {aug_label(job.aug)} / strength {job.aug.strength:g}"
    plots.log(
        preview_figure(x.numpy(), plan.preview, data.modality, title), "augmentation_preview.png"
    )


def model_summary(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines)


def example_inputs(data: Dataset, n: int = fold_models.EXAMPLE_ROWS) -> np.ndarray:
    """The first training inputs as the model takes them (image files decoded)."""
    if not data.files:
        return np.asarray(data.x_train[:n], dtype=np.float32)
    x, _ = next(iter(data.pipeline(data.x_train[:n], data.y_train[:n], batch_size=n)))
    return x.numpy()


def train_group(
    job: DictConfig,
    data: Dataset,
    folds: list[Fold],
    spec: engine.Spec,
    program: engine.Program,
    run_id: str,
    display: progress.Plain | None = None,
    n_folds: int | None = None,
) -> list[FoldResult]:
    """Train `folds` together in `program` (one slot each) and score each fold's model.

    `spec` is this job's: a program shared with an earlier job may have been built for another
    augmentation in tf.data, which the pipelines made here apply.
    """
    for slot, fold in enumerate(folds):
        program.reset(slot, fold_seed(job, fold))
    pipelines = [fold_pipelines(job, data, fold, spec) for fold in folds]
    # the recipe's callbacks run before the curves are logged: ReduceLROnPlateau adds the rate
    callbacks = [[FailOnNaN(), *recipe_callbacks(job.train)] for _ in folds]
    curves = EpochLogger(run_id, folds, job.train.verbose, display=display)
    if display is not None:
        display.folds([f.index for f in folds], n_folds or len(folds), job.train.epochs)
    start = time.perf_counter()
    try:
        histories = program.fit(
            [train for train, _ in pipelines],
            [val for _, val in pipelines],
            job.train.epochs,
            callbacks,
            on_epoch=curves,
        )
    finally:  # a failed fit (a NaN loss) keeps the curves up to the failure
        curves.flush()
    group_time = time.perf_counter() - start
    fit_time = group_time / len(folds)  # each fold's share of the program's time in its epochs
    y = data.y_train
    xs = [fold_inputs(job, data, f) for f in folds]

    def inputs(x: np.ndarray, ys: np.ndarray) -> np.ndarray | tf.data.Dataset:
        if data.files:  # image files: decoded batch by batch
            return data.pipeline(x, ys, batch_size=engine.EVAL_BATCH)
        return x

    parts = list(zip(xs, folds, strict=True))
    # the training part again, without augmentation: the generalisation gap
    train_pred = [
        labels(p) for p in program.predict([inputs(x.train, y[f.train]) for x, f in parts])
    ]
    val_pred = [labels(p) for p in program.predict([inputs(x.val, y[f.val]) for x, f in parts])]
    test_pred = [None] * len(folds)
    if data.x_test is not None:
        test = [inputs(x.test, data.y_test) for x in xs]
        test_pred = [labels(p) for p in program.predict(test)]
    results = []
    for fold, history, train_p, val_p, test_p in zip(
        folds, histories, train_pred, val_pred, test_pred, strict=True
    ):
        train_acc = accuracy_score(y[fold.train], train_p)
        metrics = {"train_accuracy": train_acc, **scores(y[fold.val], val_p, "val_")}
        metrics["gap"] = train_acc - metrics["val_accuracy"]
        if test_p is not None:
            metrics |= scores(data.y_test, test_p, "test_")
        metrics["fit_time_s"] = fit_time
        metrics["first_epoch_time_s"] = program.epoch_seconds[0] if program.epoch_seconds else 0.0
        metrics["epochs_trained"] = float(len(history.get("loss", [])))
        results.append(FoldResult(fold, history, metrics, val_p))
    return results


def cross_validate(
    job: DictConfig, data: Dataset, run_id: str, display: progress.Plain | None = None
) -> dict[str, float]:
    """Train every fold (several at a time in one program), logging each group as it ends;
    `display` is told each group's folds and epochs. Then, for a job with augmentation, its
    label-safety audit (`src.train.audit`, `sweep.audit`)."""
    folds = list(split(job.cv, data.y_train, job.seed))
    spec = engine.Spec.of(job, data)
    size = group_size(job.train, job.model.name, len(folds))
    auditing = audit.enabled(job, bool(resolve_ops(job.aug, data.modality)))
    auditor = audit.Auditor(job, data, spec, size, fold_seed(job, folds[0])) if auditing else None
    results: list[FoldResult] = []
    audits: list[audit.FoldAudit] = []
    models = fold_models.FoldModels(job, example_inputs(data))
    for start in range(0, len(folds), size):
        group = folds[start : start + size]
        seeds = [fold_seed(job, fold) for fold in group]
        program = engine.PROGRAMS.get(spec, seeds + seeds[-1:] * (size - len(group)))
        if start == 0:
            mlflow.log_text(model_summary(program.networks[0]), "model_summary.txt")
            # a plan of its own, so the preview draws no random numbers from training's layers
            log_preview(job, data, spec.plan(seeds[0]))
        # a last, smaller group leaves the spare slots idle
        group_results = train_group(job, data, group, spec, program, run_id, display, len(folds))
        mlflow.log_metrics(  # the group's final scores in one call
            {
                f"fold{r.fold.index}/final_{k}": v
                for r in group_results
                for k, v in r.metrics.items()
            }
        )
        for result in group_results:
            log.debug(
                "%s fold %d/%d val_accuracy=%.4f",
                run_name(job),
                result.fold.index + 1,
                len(folds),
                result.metrics["val_accuracy"],
            )
        models.after_group(program, group_results)  # before the next group resets the slots
        results += group_results
        if auditor is not None:  # after the group's scores: the reference may reuse its program
            group_audits = auditor.group(group)
            mlflow.log_metrics(audit.fold_metrics(group_audits))
            audits += group_audits
    models.finish()

    y_val = np.concatenate([data.y_train[r.fold.val] for r in results])
    val_pred = np.concatenate([r.val_pred for r in results])
    name = run_name(job)
    plots.log(plots.learning_curves([r.history for r in results], name), "learning_curves.png")
    title = f"{name}: validation, all folds"
    plots.log(plots.confusion_matrix(y_val, val_pred, data.classes, title), "confusion_matrix.png")
    if not audits:
        return aggregate(results)
    wrong = audit.mistakes(audits)
    if wrong is not None:
        title = f"{name}: augmented training samples the reference model gets wrong"
        figure = mistakes_figure(*wrong, data.classes, data.modality, title)
        plots.log(figure, "audit_mistakes.png")
    return aggregate(results) | audit.aggregate(audits)
