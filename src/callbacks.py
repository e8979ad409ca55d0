"""Hydra callback: one parent MLflow run per multirun, with its grid, counts and summary."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow.entities import Metric, Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from src import resume
from src.errors import ConfigError, stop_reason
from src.study import study_tags, with_grid
from src.tracking import SWEEP_ENV, setup, store_errors, tracking_uri, varying

log = logging.getLogger(__name__)
COUNTED = ("FINISHED", "FAILED", "KILLED")
# the parent runs' heartbeats, kept out of the callback: launchers pickle it to their workers
_HEARTBEATS: dict[str, resume.Heartbeat] = {}


def grid(overrides: list[str]) -> tuple[int | None, list[str]]:
    """Jobs in the basic sweeper's grid (None if it cannot expand it), and the swept keys."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None, []
    swept = [o.get_key_element() for o in parsed if o.is_sweep_override()]
    try:
        (batch,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except Exception:  # e.g. interval sweeps of the optuna sweeper
        return None, swept
    return len(batch), swept


def with_sweeper_params(config: DictConfig) -> list[str]:
    """The command line's overrides plus the grid a config (an experiment preset) gives in
    `hydra.sweeper.params`, as the basic sweeper combines them: the command line wins."""
    return with_grid(list(config.hydra.overrides.task), config.hydra.sweeper.get("params") or {})


def summary(
    children: list[Run], skipped: dict[str, str], swept: list[str]
) -> tuple[dict[str, int], list[str]]:
    """Counts of the sweep's jobs by outcome, and a line per failed job (its swept values)."""
    statuses = [child.info.status for child in children]
    counts = {status.lower(): statuses.count(status) for status in COUNTED}
    counts["skipped"] = len(skipped)
    failed = []
    for child in sorted(children, key=lambda c: c.info.start_time):
        if child.info.status == "FAILED":
            tags = child.data.tags
            what = " ".join(varying(tags.get("augsweep.overrides", "").split(), swept))
            failed.append(f"{what or child.info.run_name}: {tags.get('augsweep.error', '?')}")
    return counts, failed


def to_ray_workers(config: DictConfig, name: str, value: str) -> None:
    """Under hydra/launcher=ray, an environment variable for the jobs, set in ray.init's
    runtime_env: workers of a cluster started beforehand do not inherit the sweep's environment.

    The launcher is made from this config after the callback's on_multirun_start. Also sets
    `init.object_store_memory: null` unless given: hydra-ray-launcher 1.2.2 otherwise passes
    78,643,200 to ray.init, which Ray refuses when joining an existing cluster
    (facebookresearch/hydra#2893).
    """
    launcher = config.hydra.get("launcher") or {}
    if not str(launcher.get("_target_", "")).endswith(".RayLauncher"):
        return
    init = "hydra.launcher.ray.init"
    with read_write(config.hydra), open_dict(config.hydra):
        OmegaConf.update(config, f"{init}.runtime_env.env_vars.{name}", value, force_add=True)
        if OmegaConf.select(config, f"{init}.object_store_memory", default="absent") == "absent":
            OmegaConf.update(config, f"{init}.object_store_memory", None, force_add=True)


class SweepCallback(Callback):
    """One parent MLflow run per Hydra multirun; every job becomes its child run.

    Jobs find the parent, the store and the directory the sweep started in through an
    environment variable, which launchers that run jobs in worker processes pass on (joblib and
    submitit inherit it, `to_ray_workers` hands it to Ray's workers). Dead runs
    left RUNNING by an earlier, killed sweep are marked KILLED before the new one starts.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ.pop(SWEEP_ENV, None)  # an earlier sweep's, in this process, is not this one's
        uri = tracking_uri(config.tracking)
        try:  # a store that cannot be written stops the sweep here, before any job
            experiment_id = setup(config.tracking)
            with store_errors(uri):
                run_id, size, swept = self._start_parent(config, experiment_id)
        except ConfigError as err:
            print(f"augsweep: error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        context = {
            "parent_run_id": run_id,
            "size": size,
            "swept": swept,
            "tracking_uri": uri,
            "cwd": os.getcwd(),
        }
        os.environ[SWEEP_ENV] = json.dumps(context)
        to_ray_workers(config, SWEEP_ENV, os.environ[SWEEP_ENV])
        heartbeat = resume.Heartbeat(run_id, config.sweep.heartbeat_s)
        _HEARTBEATS[run_id] = heartbeat.__enter__()
        log.info("sweep parent run %s in %s", run_id, uri)

    @staticmethod
    def _start_parent(config: DictConfig, experiment_id: str) -> tuple[str, int | None, list[str]]:
        """Mark the dead runs of earlier sweeps KILLED, then create this sweep's parent run."""
        resume.reap(experiment_id, config.sweep.dead_after_s)
        overrides = with_sweeper_params(config)
        size, swept = grid(overrides)
        client = MlflowClient()
        run = client.create_run(
            experiment_id,
            run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={
                "augsweep.role": "sweep",
                "augsweep.command": " ".join(["python", "-m", "src.sweep", *sys.argv[1:]]),
                "augsweep.overrides": " ".join(overrides),
                "augsweep.sweep_dir": str(config.hydra.sweep.dir),
                **study_tags(),
                **resume.identity_tags(),
            },
        )
        if size is not None:
            client.log_metric(run.info.run_id, "jobs_total", size)
        return run.info.run_id, size, swept

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        counts, failed, parent = end_sweep()
        if parent is None:
            return
        print(
            f"augsweep: sweep done: {counts['finished']} finished, {counts['failed']} failed, "
            f"{counts['skipped']} skipped (already in the store); parent run {parent}",
            flush=True,
        )
        for line in failed:
            print(f"augsweep: failed: {line}", flush=True)
        if failed:
            raise SystemExit(1)


def end_sweep(
    stop: KeyboardInterrupt | None = None,
) -> tuple[dict[str, int], list[str], str | None]:
    """End the running sweep's parent run with its counts: FINISHED, FAILED when a job failed,
    KILLED with the reason when `stop` (Ctrl-C, SIGTERM) ended the sweep. Returns the counts,
    a line per failed job and the parent's id (None outside a sweep)."""
    context = json.loads(os.environ.pop(SWEEP_ENV, "{}"))
    parent = context.get("parent_run_id")
    beating = _HEARTBEATS.pop(parent, None)
    if beating is not None:
        beating.__exit__()
    if parent is None:
        return {}, [], None
    client = MlflowClient()
    run = client.get_run(parent)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    skipped = {k: v for k, v in run.data.tags.items() if k.startswith(resume.SKIPPED_PREFIX)}
    counts, failed = summary(children, skipped, context["swept"])
    now = int(time.time() * 1000)
    client.log_batch(parent, metrics=[Metric(f"jobs_{k}", v, now, 0) for k, v in counts.items()])
    if stop is not None:
        client.set_tag(parent, "augsweep.killed", stop_reason(stop))
    client.set_terminated(parent, "KILLED" if stop else "FAILED" if failed else "FINISHED")
    return counts, failed, parent
