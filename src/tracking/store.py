"""The MLflow store: which one (its URI), checked writable before anything trains, and set up
with the experiment; and run listings read through all their pages."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue
from sqlalchemy.exc import SQLAlchemyError

from src.errors import ConfigError, why
from src.tracking import resume
from src.tracking.context import SweepContext

DEFAULT_STORE = Path("mlruns")


def _given(tracking_cfg: Any) -> str | None:
    """`tracking.uri` as given; None when it is not (also tracking=server's
    ${oc.env:MLFLOW_TRACKING_URI,???} where the variable is unset)."""
    try:
        uri = tracking_cfg.get("uri")
    except MissingMandatoryValue:
        return None
    return None if uri in (None, "", "???") else str(uri)


def tracking_uri(tracking_cfg: Any, context: SweepContext | None = None) -> str:
    """`tracking.uri`, else the store of the sweep `context` (a job of a multirun), else
    $MLFLOW_TRACKING_URI, else the embedded SQLite store in ./mlruns.

    A job of a sweep records to the store its sweep resolved, wherever the job runs: a worker
    on another machine, or in another directory, may have neither the variable nor ./mlruns.
    An explicit `tracking.uri` (`report --tracking-uri`) always wins.
    """
    uri = _given(tracking_cfg) or (context.tracking_uri if context is not None else None)
    if uri is None and context is None:
        uri = tracking_cfg.get("uri")  # raises for a tracking.uri that must be given
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(DEFAULT_STORE / 'mlflow.db').resolve()}"


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


def setup(tracking_cfg: DictConfig, context: SweepContext | None = None) -> str:
    """Point MLflow at the configured store and return the experiment id (created if needed).

    `context`: the sweep of a job, whose store it records to unless tracking.uri is given. A
    store that cannot be written is a ConfigError here, before anything trains.
    """
    uri = tracking_uri(tracking_cfg, context)
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


PAGE_SIZE = 1000  # MLflow's default page of search_runs


def search_all(
    experiment_ids: list[str],
    filter_string: str = "",
    order_by: list[str] | None = None,
    page_size: int | None = None,
    client: MlflowClient | None = None,
) -> list[Run]:
    """Every run `MlflowClient.search_runs` finds, through all its pages: one call returns a
    page of at most `page_size` (PAGE_SIZE) runs, and a sweep may have more jobs than that.
    `client`: the current tracking URI's by default."""
    client, found, token = client or MlflowClient(), [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=page_size or PAGE_SIZE,
                                  order_by=order_by, page_token=token)  # fmt: skip
        found.extend(page)
        token = page.token
        if not token:
            return found
