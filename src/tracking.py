"""The MLflow store (checked writable before anything trains), the config hash, and the run
that records one job (with its heartbeat; ended KILLED by Ctrl-C or SIGTERM)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from hydra.core.hydra_config import HydraConfig
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from sqlalchemy.exc import SQLAlchemyError

from src import resume
from src.errors import ConfigError, Terminated, stop_reason, why

log = logging.getLogger(__name__)

# set by the sweep callback for the jobs of a multirun, in this process or in launcher workers
# (joblib inherits it, the Ray launcher config passes it in its runtime_env): JSON
# {"parent_run_id", "size": jobs in the grid or null, "swept": [keys that vary],
#  "tracking_uri": the store the sweep records to, "cwd": where the sweep was started}
SWEEP_ENV = "AUGSWEEP_SWEEP"
DEFAULT_STORE = Path("mlruns")
# config keys that say where results go or how fast, not what is computed: left out of the hash
UNHASHED = (
    "tracking",
    "train.verbose",
    "train.parallel_folds",
    "sweep",
    "optimize_metric",
    "data.cache",
)


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


STORE_ACCEPTED = (
    "a SQLite store (tracking.uri=sqlite:///PATH) in a directory this user can write, on a disk "
    "with room, or a tracking server (tracking=server)"
)
MIN_FREE_BYTES = 16 * 2**20  # a job's curves, plots and summary take about 1 MiB
# what the store itself raises when it cannot be opened, read or written
STORE_ERRORS = (MlflowException, SQLAlchemyError, OSError)


def _not_writable(folder: Path, db: Path | None = None) -> str | None:
    """Why files cannot be written in `folder` (and `db`, when it exists, rewritten), or None.

    Tried, not inferred from permission bits: root writes anywhere the file system lets it.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a regular file where a folder should be, a read-only file system
        return f"its directory '{folder}' cannot be created ({why(err, folder)})"
    probe = folder / f".augsweep-probe-{os.getpid()}"  # SQLite writes its journal beside the db
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink()
    except OSError as err:
        return f"no file can be written in its directory '{folder}' ({why(err, probe)})"
    if db is not None and db.exists():
        try:
            with open(db, "r+b"):
                pass
        except OSError as err:  # a directory in its place, an immutable file (chattr +i)
            return f"'{db}' cannot be opened for writing ({why(err, db)})"
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        return f"its disk has {free / 2**20:.1f} MiB free, under {MIN_FREE_BYTES // 2**20} MiB"
    return None


def check_store(uri: str) -> None:
    """A SQLite store (and the artifact folder beside it) that cannot be written is an error
    now: MLflow would retry a database it cannot open for about a minute, or fail in the middle
    of a run."""
    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri.removeprefix("sqlite:///")).resolve()
    problem = _not_writable(db.parent, db)
    artifacts = db.parent / "artifacts"  # as _artifact_root puts them
    if problem is None and artifacts.exists():
        problem = _not_writable(artifacts)
    if problem is not None:
        raise ConfigError(f"MLflow store '{uri}' cannot be written: {problem}; "
                          f"accepted: {STORE_ACCEPTED}")  # fmt: skip


@contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """An error of the store itself (read-only, full, corrupt, unreachable) as one ConfigError."""
    try:
        yield
    except STORE_ERRORS as err:
        raise ConfigError(
            f"MLflow store '{uri}' cannot be used ({why(err, limit=200)}); accepted: "
            f"{STORE_ACCEPTED}"
        ) from None


def setup(tracking_cfg: DictConfig) -> str:
    """Point MLflow at the configured store and return the experiment id (created if needed).

    A store that cannot be written is a ConfigError here, before anything trains.
    """
    uri = tracking_uri(tracking_cfg)
    check_store(uri)
    mlflow.set_tracking_uri(uri)
    # the first process to open a new SQLite store creates its tables: one at a time
    with store_errors(uri), resume.store_lock(uri):
        name = tracking_cfg.experiment
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        root = _artifact_root(uri)
        location = f"{root}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}" if root else None
        try:
            return mlflow.create_experiment(name, artifact_location=location)
        except MlflowException:  # created meanwhile by a sweep on another machine
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
    experiment_id: str, name: str, tags: dict[str, str], heartbeat_s: float
) -> Iterator[mlflow.ActiveRun]:
    """The MLflow run of one job, child of the sweep's parent run when there is one.

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
                parent_run_id=sweep_context().get("parent_run_id"),
                tags={**tags, **resume.identity_tags()},
            )
    finally:
        resume.release_claim()  # the run that claims this config exists now (or never will)
    status = "FINISHED"
    try:
        with _sigterm_raises(), resume.Heartbeat(active.info.run_id, heartbeat_s):
            yield active
    except KeyboardInterrupt as stop:
        status = "KILLED"
        _record(name, {"augsweep.killed": stop_reason(stop)})
        raise
    except BaseException as err:
        status = "FAILED"
        _record(name, {"augsweep.error": f"{type(err).__name__}: {err}"[:5000]},
                traceback.format_exc())  # fmt: skip
        raise
    finally:
        mlflow.end_run(status)


def _record(name: str, tags: dict[str, str], trace: str | None = None) -> None:
    """Write why a run ended; the error that ended it matters more than one of the store's."""
    try:
        mlflow.set_tags(tags)
        if trace is not None:
            mlflow.log_text(trace, "error.txt")
    except Exception as store_err:
        log.error("could not record how run %s ended: %s", name, store_err)
