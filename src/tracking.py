"""The MLflow store, the config hash, and the run that records one job (with its heartbeat)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src import resume

log = logging.getLogger(__name__)

# set by the sweep callback for the jobs of a multirun, in this process or in launcher workers
# (joblib inherits it, the Ray launcher config passes it in its runtime_env): JSON
# {"parent_run_id", "size": jobs in the grid or null, "swept": [keys that vary],
#  "tracking_uri": the store the sweep records to, "cwd": where the sweep was started}
SWEEP_ENV = "AUGSWEEP_SWEEP"
DEFAULT_STORE = Path("mlruns")
# config keys that say where results go or how fast, not what is computed: left out of the hash
UNHASHED = ("tracking", "train.verbose", "sweep", "optimize_metric", "data.cache")


def tracking_uri(tracking_cfg: DictConfig) -> str:
    """`tracking.uri`, else $MLFLOW_TRACKING_URI, else the embedded SQLite store in ./mlruns.

    A job of a sweep records to the store its sweep resolved, wherever the job runs: a worker
    on another machine, or in another directory, may have neither the variable nor ./mlruns.
    """
    uri = sweep_context().get("tracking_uri")
    uri = uri or tracking_cfg.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(DEFAULT_STORE / 'mlflow.db').resolve()}"


def launch_dir() -> Path:
    """The directory the command was started in: relative paths in the config are from here."""
    return Path(sweep_context().get("cwd") or os.getcwd())


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store live beside the database; a server chooses its own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts").as_uri()


def setup(tracking_cfg: DictConfig) -> str:
    """Point MLflow at the configured store and return the experiment id (created if needed)."""
    uri = tracking_uri(tracking_cfg)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).resolve().parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    name = tracking_cfg.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = _artifact_root(uri)
    location = f"{root}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}" if root else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel worker
        return mlflow.get_experiment_by_name(name).experiment_id


def flatten(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys, lists as JSON."""
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = json.dumps(node) if isinstance(node, list) else str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


# raised when an op starts computing something else for the same config, so that resuming
# trains such configs again instead of reusing runs made the old way. 2: aug=contrast draws
# factors from [1 - m, 1 + m] (was [1, 1 + m]); jitter noises zeros inside a series; aug.strength
# is recorded as a float (1 and 1.0 were two hashes), and as 0.0 when no op applies. 3:
# magnitude_warp's curve is the cubic spline through its knots (Iwana & Uchida's reference code;
# it was a smoothstep between knots, which changed a series about 11% less at the same sigma).
SEMANTICS_VERSION = 3


def config_hash(cfg: DictConfig) -> str:
    """A short hash of what a job computes: equal hashes mean the same experiment."""
    params = {k: v for k, v in flatten(cfg).items() if not any(k.startswith(u) for u in UNHASHED)}
    if SEMANTICS_VERSION > 1:  # version 1 hashed the params alone: those hashes stay as they were
        params["augsweep.semantics_version"] = str(SEMANTICS_VERSION)
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def sweep_context() -> dict[str, Any]:
    """The multirun this job belongs to; {} outside one."""
    return json.loads(os.environ.get(SWEEP_ENV, "{}"))


def varying(overrides: list[str], swept: list[str]) -> list[str]:
    """The overrides of the keys a sweep varies; all of them when it varies none."""
    if not swept:
        return overrides
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]


def hydra_overrides() -> str:
    """The job's command-line overrides, or '' outside a Hydra app."""
    if not HydraConfig.initialized():
        return ""
    return " ".join(HydraConfig.get().overrides.task)


@contextmanager
def job_run(
    experiment_id: str, name: str, tags: dict[str, str], heartbeat_s: float
) -> Iterator[mlflow.ActiveRun]:
    """The MLflow run of one job, child of the sweep's parent run when there is one.

    It carries its host and process and a heartbeat while it runs. An exception ends it
    FAILED with the message as tag `augsweep.error` and the traceback as `error.txt`;
    Ctrl-C ends it KILLED.
    """
    active = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        parent_run_id=sweep_context().get("parent_run_id"),
        tags={**tags, **resume.identity_tags()},
    )
    status = "FINISHED"
    try:
        with resume.Heartbeat(active.info.run_id, heartbeat_s):
            yield active
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException as err:
        status = "FAILED"
        try:
            mlflow.set_tag("augsweep.error", f"{type(err).__name__}: {err}"[:5000])
            mlflow.log_text(traceback.format_exc(), "error.txt")
        except Exception as store_err:  # the original error matters more
            log.error("could not record the failure of run %s: %s", name, store_err)
        raise
    finally:
        mlflow.end_run(status)
