"""Training: one job cross-validates one (data, model, aug, seed) setting and records it in MLflow.

- `job`: the job's checked, resolved config and its run name (`prepare`, `run_name`);
- `crossval`: the folds trained in groups, scored and logged (`cross_validate`);
- `engine`: the fold-parallel training engine, a job's folds as one TensorFlow program;
- `folds`: a fold's seed, inputs and tf.data pipelines; `callbacks`: the Keras callbacks of
  a fold's fit; `scoring`: a fold's scores and their aggregate over folds;
- `audit`: the label-safety audit; `fold_models`: the trained fold models logged to MLflow.

`run` (here) is the job: checks, skips a config that has a run already, trains, records.
"""

from __future__ import annotations

import logging
import time

import mlflow
import tensorflow as tf
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from tensorflow.python.framework.config import disable_op_determinism

from src import inputs, progress, tracking
from src.augment import aug_label
from src.tracking import resume, tags
from src.tracking.context import SweepContext
from src.train.callbacks import EpochLogger, FailOnNaN, recipe_callbacks
from src.train.crossval import cross_validate, log_preview, train_group
from src.train.folds import FoldInputs, fold_inputs, fold_pipelines, fold_seed, group_size
from src.train.job import JobResult, absolute_data_paths, prepare, run_name
from src.train.scoring import FoldResult, aggregate, labels, scores

__all__ = [
    "EpochLogger",
    "FailOnNaN",
    "FoldInputs",
    "FoldResult",
    "JobResult",
    "absolute_data_paths",
    "aggregate",
    "cross_validate",
    "fold_inputs",
    "fold_pipelines",
    "fold_seed",
    "group_size",
    "labels",
    "log_preview",
    "prepare",
    "recipe_callbacks",
    "run",
    "run_name",
    "scores",
    "skip_earlier",
    "train_group",
]

log = logging.getLogger(__name__)
# a new model per fold retraces its tf.functions by design: TF's retracing warning is noise here
logging.getLogger("tensorflow").setLevel(logging.ERROR)


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
