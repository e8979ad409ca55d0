"""One job: cross-validate one (data, model, aug, seed) setting and record it in MLflow."""

from __future__ import annotations

import logging
import time
from dataclasses import astuple, dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from tensorflow.python.framework.config import disable_op_determinism

from src import audit, engine, fold_models, inputs, plots, progress, tracking
from src.augment import aug_label, placement, resolve_ops
from src.augment.plan import Plan
from src.augment.preview import mistakes_figure, preview_figure
from src.config import check_job
from src.cv import Fold, check_cv, split
from src.data import Dataset, load_dataset
from src.data.scaling import Standardizer
from src.errors import ConfigError
from src.models import AUTO_MODEL, resolve_model_cfg
from src.tracking import context, resume, tags
from src.tracking.context import SweepContext

log = logging.getLogger(__name__)
# a new model per fold retraces its tf.functions by design: TF's retracing warning is noise here
logging.getLogger("tensorflow").setLevel(logging.ERROR)


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


@dataclass
class JobResult:
    """What a job gives back: its run, its aggregate metrics, and why it skipped training."""

    run_id: str
    metrics: dict[str, float]
    skipped: str | None = None  # None when it trained


def run_name(cfg: DictConfig) -> str:
    """Readable run name, e.g. digits/cnn/heavy/s0.8/seed0."""
    model = cfg.model.name
    if model == "auto":
        model = AUTO_MODEL.get(cfg.data.get("modality"), model)
    strength = cfg.aug.strength
    strength = f"{strength:g}" if isinstance(strength, int | float) else strength
    return f"{cfg.data.name}/{model}/{aug_label(cfg.aug)}/s{strength}/seed{cfg.seed}"


def absolute_data_paths(cfg: DictConfig, sweep: SweepContext | None = None) -> DictConfig:
    """`data.path` and `data.test_path` made absolute from the directory the command started in
    (the `sweep`'s, for a job of a multirun).

    A launcher worker (Ray, SLURM) runs the job in a directory of its own; a relative path
    means the launching directory. On other machines that path must be on a shared filesystem.
    """
    relative = {
        key: cfg.data[key]
        for key in ("path", "test_path")
        if key in cfg.data
        and not OmegaConf.is_missing(cfg.data, key)
        and isinstance(cfg.data[key], str)
        and cfg.data[key]
        and not Path(cfg.data[key]).is_absolute()
    }
    if not relative:
        return cfg
    cfg = cfg.copy()
    with open_dict(cfg):
        for key, value in relative.items():
            cfg.data[key] = str(context.launch_dir(sweep) / value)
    return cfg


def prepare(cfg: DictConfig, sweep: SweepContext | None = None) -> tuple[DictConfig, Dataset]:
    """Check everything and load the data, before any training: the job's resolved config."""
    check_job(cfg)
    cfg = absolute_data_paths(cfg, sweep)
    data = load_dataset(cfg.data)
    ops = resolve_ops(cfg.aug, data.modality)
    if cfg.train.jit_compile and cfg.train.deterministic:
        raise ConfigError(
            "train.jit_compile=true has no effect with train.deterministic=true (Keras turns XLA "
            "off under op determinism); accepted: train.deterministic=false with it"
        )
    if cfg.train.jit_compile and ops and placement(cfg.aug) == "model":
        raise ConfigError(
            "train.jit_compile=true is not supported with aug.placement=model: TensorFlow cannot "
            "XLA-compile the augmentation layers; accepted: aug.placement=dataset (augmentation "
            "in tf.data, the model compiled)"
        )
    job = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    job.model = resolve_model_cfg(cfg.model, data.modality)
    standardize = job.model.get("standardize", False)
    if not isinstance(standardize, bool) or (standardize and data.modality != "series"):
        accepted = "true, false" if data.modality == "series" else "false (series only)"
        raise ConfigError(f"model.standardize={standardize!r} is not allowed for "
                          f"{data.modality} data; accepted: {accepted}")  # fmt: skip
    # one spelling per experiment: aug.strength=1 and =1.0 are the same job, and so is every
    # strength of a config that applies nothing (aug=none, or strength 0)
    job.aug.strength = float(job.aug.strength) if ops else 0.0
    check_cv(cfg.cv, data.y_train, data.classes)
    return job, data


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


def aggregate(results: list[FoldResult]) -> dict[str, float]:
    """Mean and standard deviation over folds of every per-fold score."""
    out = {}
    for key in results[0].metrics:
        values = np.array([r.metrics[key] for r in results])
        out[f"{key}_mean"] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


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


def labels(probs: np.ndarray) -> np.ndarray:
    """Class indices from a head's output: p > 0.5 for one sigmoid unit, else the argmax."""
    if probs.shape[-1] == 1:
        return (probs[:, 0] > 0.5).astype(np.int64)
    return probs.argmax(axis=-1).astype(np.int64)


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


def example_inputs(data: Dataset, n: int = fold_models.EXAMPLE_ROWS) -> np.ndarray:
    """The first training inputs as the model takes them (image files decoded)."""
    if not data.files:
        return np.asarray(data.x_train[:n], dtype=np.float32)
    x, _ = next(iter(data.pipeline(data.x_train[:n], data.y_train[:n], batch_size=n)))
    return x.numpy()


def recipe_callbacks(train_cfg: DictConfig) -> list[keras.callbacks.Callback]:
    """A fold's own early stopping and learning-rate schedule (conf/train/), if any."""
    out: list[keras.callbacks.Callback] = []
    if train_cfg.get("reduce_lr"):
        out.append(keras.callbacks.ReduceLROnPlateau(**train_cfg.reduce_lr))
    if train_cfg.get("early_stopping"):
        out.append(keras.callbacks.EarlyStopping(**train_cfg.early_stopping))
    return out


def cross_validate(
    job: DictConfig, data: Dataset, run_id: str, display: progress.Plain | None = None
) -> dict[str, float]:
    """Train every fold (several at a time in one program), logging each group as it ends;
    `display` is told each group's folds and epochs. Then, for a job with augmentation, its
    label-safety audit (`src.audit`, `sweep.audit`)."""
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


def skip_earlier(
    experiment_id: str, job: DictConfig, digest: str, parent: str | None = None
) -> JobResult | None:
    """The earlier run of this config that makes training it again unnecessary, if any; the
    sweep's parent run `parent` records it as skipped."""
    if job.sweep.rerun:
        return None
    earlier = resume.earlier_run(experiment_id, digest, job.sweep.dead_after_s)
    if earlier is None:
        return None
    run_id, status = earlier.info.run_id, earlier.info.status
    if parent:
        MlflowClient().set_tag(parent, f"{tags.SKIPPED_PREFIX}{digest}", run_id)
    why = "already FINISHED" if status == "FINISHED" else "RUNNING in another process"
    log.debug("%s: %s as run %s; sweep.rerun=true trains it again", run_name(job), why, run_id)
    return JobResult(run_id, dict(earlier.data.metrics), skipped=f"{why} as run {run_id}")


def run(
    cfg: DictConfig, display: progress.Plain | None = None, sweep: SweepContext | None = None
) -> JobResult:
    """Cross-validate one setting, record it as an MLflow run and return its aggregate metrics.

    In a multirun (`sweep`) the run is a child of the sweep's parent run. A config that already
    has a FINISHED run in the experiment is not trained again (unless `sweep.rerun=true`). Bad
    input raises ConfigError before any training; the run is then ended FAILED with the error.
    """
    started = time.perf_counter()
    experiment_id = tracking.setup(cfg.tracking, sweep)
    parent = sweep.parent_run_id if sweep is not None else None
    run_tags = {tags.ROLE: tags.ROLE_JOB, tags.OVERRIDES: tracking.hydra_overrides()}
    heartbeat_s = cfg.sweep.heartbeat_s
    try:
        job, data = prepare(cfg, sweep)
    except Exception:
        with tracking.job_run(experiment_id, run_name(cfg), run_tags, heartbeat_s, parent):
            raise  # recorded as a FAILED run
    digest = tracking.config_hash(job)
    skipped = skip_earlier(experiment_id, job, digest, parent)
    if skipped is not None:
        return skipped
    # process-wide: set for every job, so one job's choice never leaks into the next
    if job.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        disable_op_determinism()
    run_tags |= {
        "dataset": data.name,
        "modality": data.modality,
        "model": job.model.name,
        "aug": aug_label(job.aug),
        "strength": str(job.aug.strength),
        "seed": str(job.seed),
        tags.CONFIG_HASH: digest,
    }
    with tracking.job_run(experiment_id, run_name(job), run_tags, heartbeat_s, parent) as active:
        mlflow.log_params(tracking.flatten(job))
        mlflow.log_text(OmegaConf.to_yaml(job), "config.yaml")
        inputs.log_datasets(job, data)
        metrics = cross_validate(job, data, active.info.run_id, display)
        metrics["wall_time_s"] = time.perf_counter() - started
        mlflow.log_metrics(metrics)
    return JobResult(active.info.run_id, metrics)
