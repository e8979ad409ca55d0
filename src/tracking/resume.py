"""What a sweep finds already in the store: finished jobs to skip, dead runs to mark KILLED.

Every run this package starts carries the host and the process (PID and its start time) that
runs it, and a heartbeat tag refreshed while it runs. A run left RUNNING is dead when its
process is gone from this host, or, for a run on another host, when its heartbeat is older
than `sweep.dead_after_s`.

Sweeps that share a SQLite store take turns, through lock files beside the database, for what
must not interleave: creating the store (MLflow's table creation races), and deciding to train
a config (no FINISHED or live run of it yet) until the run that claims it exists, so two
sweeps never both train it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import psutil
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from src.tracking import store  # a module: store also imports this one
from src.tracking.tags import CONFIG_HASH, HEARTBEAT, HOST, KILLED, PID, PID_STARTED

log = logging.getLogger(__name__)
LOCKS = {"store": ".augsweep-store.lock", "claim": ".augsweep-claim.lock"}  # beside mlflow.db
LOCK_WAIT_S = 120.0  # then go on without it (a warning): a hung process must not stall every sweep
_CLAIM: list[int] = []  # the lock file this process holds between earlier_run and release_claim


def _process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:  # gone, or not ours to see
        return None


def identity_tags() -> dict[str, str]:
    """Who runs this run: host, PID, and the PID's start time (PIDs are reused)."""
    pid = os.getpid()
    return {
        HOST: socket.gethostname(),
        PID: str(pid),
        PID_STARTED: f"{_process_started(pid):.3f}",
        HEARTBEAT: f"{time.time():.3f}",
    }


class Heartbeat:
    """Refresh a run's heartbeat tag every `interval_s` seconds from a daemon thread."""

    def __init__(self, run_id: str, interval_s: float) -> None:
        self.run_id, self.interval_s = run_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="augsweep-heartbeat", daemon=True)

    def _beat(self) -> None:
        client = MlflowClient()
        while not self._stop.wait(self.interval_s):
            try:
                client.set_tag(self.run_id, HEARTBEAT, f"{time.time():.3f}")
            except Exception as err:  # a busy store must not kill the job
                log.warning("heartbeat of run %s not written: %s", self.run_id, err)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def lock_file(kind: str, uri: str | None = None) -> Path | None:
    """A lock file (LOCKS) of a SQLite store (the current tracking URI by default); None for
    other stores.

    A server's store is shared by machines that share no file to lock: no lock there.
    """
    uri = uri or mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///") + LOCKS[kind])


def _acquire(path: Path | None, wait_s: float = LOCK_WAIT_S) -> int | None:
    """An exclusive lock on `path` (an open file descriptor), or None without one."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:  # setup has checked the directory; a lock is not worth failing for
        log.warning("store lock %s cannot be opened (%s): going on without it", path, err)
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                log.warning("store lock %s still held after %.0f s: going on without it",
                            path, wait_s)  # fmt: skip
                return None
            time.sleep(0.05)


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the last descriptor of the file releases its flock


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold the store's lock (SQLite only) while the first process creates the store."""
    fd = _acquire(lock_file("store", uri))
    try:
        yield
    finally:
        _release(fd)


def release_claim() -> None:
    """Let other sweeps decide again: the run that claims this process's config exists now (or
    the job will not start one)."""
    while _CLAIM:
        _release(_CLAIM.pop())


def is_dead(run: Run, dead_after_s: float, now: float | None = None) -> bool:
    """A RUNNING run whose process is gone (same host) or whose heartbeat stopped (any host)."""
    if run.info.status != "RUNNING":
        return False
    tags = run.data.tags
    if HOST not in tags:  # not started by augsweep: never judged
        return False
    if tags[HOST] == socket.gethostname():
        started = _process_started(int(tags[PID]))
        return started is None or abs(started - float(tags[PID_STARTED])) > 1.0
    beat = float(tags.get(HEARTBEAT, run.info.start_time / 1000))
    return (now or time.time()) - beat > dead_after_s


def reap(experiment_id: str, dead_after_s: float, filter_string: str = "") -> list[Run]:
    """Mark every dead RUNNING run KILLED (its logged metrics stay); return them."""
    client = MlflowClient()
    running = f"attributes.status = '{RunStatus.to_string(RunStatus.RUNNING)}'"
    query = f"{running} AND {filter_string}" if filter_string else running
    dead = [r for r in store.search_all([experiment_id], query) if is_dead(r, dead_after_s)]
    for run in dead:
        client.set_tag(run.info.run_id, KILLED, "its process died while it ran")
        client.set_terminated(run.info.run_id, "KILLED")
        log.warning("run %s (%s) was left RUNNING by a dead process: marked KILLED",
                    run.info.run_id, run.info.run_name)  # fmt: skip
    return dead


def earlier_run(experiment_id: str, digest: str, dead_after_s: float) -> Run | None:
    """A FINISHED run of this config, else one still running elsewhere, else None.

    Dead runs of the config are marked KILLED first, so the job trains again. When it returns
    None this process keeps the store's lock: the job is about to start the run that claims
    the config, and `job.job_run` calls `release_claim` once that run exists, so another
    sweep deciding about the same config at the same moment finds that run.
    """
    release_claim()  # a claim left by a job that never started its run
    _CLAIM.extend(fd for fd in [_acquire(lock_file("claim"))] if fd is not None)
    same = f"tags.{CONFIG_HASH} = '{digest}'"
    try:
        reap(experiment_id, dead_after_s, same)
        for status in ("FINISHED", "RUNNING"):
            found = MlflowClient().search_runs(
                [experiment_id],
                f"{same} AND attributes.status = '{status}'",
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )
            if found:
                release_claim()
                return found[0]
    except BaseException:
        release_claim()
        raise
    return None
