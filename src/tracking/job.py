"""The run that records one job: its params and config hash, and the run itself (with its
heartbeat; ended FAILED by an error, KILLED by Ctrl-C or SIGTERM)."""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.errors import Terminated, stop_reason
from src.tracking import resume, tags
from src.tracking.store import store_errors

log = logging.getLogger(__name__)

# config keys that say where results go or how fast, not what is computed: left out of the hash
UNHASHED = (
    "tracking",
    "train.verbose",
    "train.parallel_folds",
    "sweep",
    "optimize_metric",
    "data.cache",
)


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


def hydra_overrides() -> str:
    """The job's command-line overrides, or '' outside a Hydra app."""
    if not HydraConfig.initialized():
        return ""
    return " ".join(HydraConfig.get().overrides.task)


def _raise_terminated(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)  # one stop is enough: what follows it must finish
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def stop_on_sigterm() -> None:
    """SIGTERM raises `Terminated` in the main thread, which ends runs KILLED as Ctrl-C does,
    instead of killing the process with its runs left RUNNING."""
    signal.signal(signal.SIGTERM, _raise_terminated)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """`stop_on_sigterm` for the length of a job, in a process that has no SIGTERM handler of
    its own (a launcher's worker); one that has (the sweep, submitit) keeps it."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    stop_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def job_run(
    experiment_id: str,
    name: str,
    run_tags: dict[str, str],
    heartbeat_s: float,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """The MLflow run of one job, child of the sweep's parent run `parent_run_id` if given.

    It carries its host and process and a heartbeat while it runs. An exception ends it
    FAILED with the message as tag `augsweep.error` and the traceback as `error.txt`;
    Ctrl-C and SIGTERM end it KILLED with the reason as tag `augsweep.killed`. A store that
    refuses the new run is a ConfigError.
    """
    try:
        with store_errors(mlflow.get_tracking_uri()):
            active = mlflow.start_run(
                experiment_id=experiment_id,
                run_name=name,
                parent_run_id=parent_run_id,
                tags={**run_tags, **resume.identity_tags()},
            )
    finally:
        resume.release_claim()  # the run that claims this config exists now (or never will)
    status = "FINISHED"
    try:
        with _sigterm_raises(), resume.Heartbeat(active.info.run_id, heartbeat_s):
            yield active
    except KeyboardInterrupt as stop:
        status = "KILLED"
        _record(name, {tags.KILLED: stop_reason(stop)})
        raise
    except BaseException as err:
        status = "FAILED"
        _record(name, {tags.ERROR: f"{type(err).__name__}: {err}"[:5000]},
                traceback.format_exc())  # fmt: skip
        raise
    finally:
        mlflow.end_run(status)


def _record(name: str, ended: dict[str, str], trace: str | None = None) -> None:
    """Write why a run ended; the error that ended it matters more than one of the store's."""
    try:
        mlflow.set_tags(ended)
        if trace is not None:
            mlflow.log_text(trace, "error.txt")
    except Exception as store_err:
        log.error("could not record how run %s ended: %s", name, store_err)
