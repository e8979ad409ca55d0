"""MLflow store, run naming, params/tags, and the parent run that groups a multirun."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# how a multirun's jobs find their parent run (read by jobs in this or in worker processes)
PARENT_ENV = "AUGSWEEP_PARENT_RUN_ID"
DEFAULT_STORE = Path("mlruns")
# config keys that say where results go, not what is computed: left out of the config hash
UNHASHED = ("tracking", "train.verbose")


def tracking_uri(tracking_cfg: DictConfig) -> str:
    """`tracking.uri`, else $MLFLOW_TRACKING_URI, else the embedded SQLite store in ./mlruns."""
    uri = tracking_cfg.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(DEFAULT_STORE / 'mlflow.db').resolve()}"


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


def config_hash(cfg: DictConfig) -> str:
    """A short hash of what a job computes: equal hashes mean the same experiment."""
    params = {k: v for k, v in flatten(cfg).items() if not any(k.startswith(u) for u in UNHASHED)}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def hydra_overrides() -> str:
    """The job's command-line overrides, or '' outside a Hydra app."""
    if not HydraConfig.initialized():
        return ""
    return " ".join(HydraConfig.get().overrides.task)


def log_curves(run_id: str, prefix: str, history: dict[str, list[float]]) -> None:
    """Per-epoch curves in one batched call: `<prefix>/<metric>` with step = epoch."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(f"{prefix}/{key}", float(value), now, step)
        for key, values in history.items()
        for step, value in enumerate(values)
    ]
    MlflowClient().log_batch(run_id, metrics=metrics, synchronous=True)


class SweepCallback(Callback):
    """One parent MLflow run per Hydra multirun; every job becomes its child run."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        experiment_id = setup(config.tracking)
        overrides = list(config.hydra.overrides.task)
        run = MlflowClient().create_run(
            experiment_id,
            run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={
                "augsweep.role": "sweep",
                "augsweep.command": " ".join(["python", "-m", "src.sweep", *sys.argv[1:]]),
                "augsweep.overrides": " ".join(overrides),
                "augsweep.sweep_dir": str(config.hydra.sweep.dir),
            },
        )
        os.environ[PARENT_ENV] = run.info.run_id
        log.info("sweep parent run %s in %s", run.info.run_id, tracking_uri(config.tracking))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        parent = os.environ.pop(PARENT_ENV, None)
        if parent is None:
            return
        client = MlflowClient()
        experiment_id = client.get_run(parent).info.experiment_id
        children = client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
        )
        statuses = [child.info.status for child in children]
        counts = {s.lower(): statuses.count(s) for s in ("FINISHED", "FAILED")}
        client.log_batch(
            parent,
            metrics=[Metric(f"jobs_{k}", v, int(time.time() * 1000), 0) for k, v in counts.items()],
        )
        failed = [
            c.data.tags.get("augsweep.overrides", "") for c in children if c.info.status == "FAILED"
        ]
        client.set_terminated(parent, "FAILED" if failed else "FINISHED")
        log.info("sweep done: %d finished, %d failed", counts["finished"], counts["failed"])
        for overrides in failed:
            log.error("failed job: %s", overrides)
        if failed:
            raise SystemExit(1)
