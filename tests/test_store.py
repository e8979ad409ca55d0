"""A store that cannot be written stops a job or a sweep before anything trains, with one line
naming the store and why; nothing is half recorded.

Root writes through permission bits, so the stores here are made unwritable the ways root
cannot write either: a regular file where the store's directory should be, a directory where
its database should be, an immutable database (`chattr +i`), and a small tmpfs mounted
read-only or filled up (skipped where this machine does not allow mounting or chattr).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src import tracking
from src.errors import ConfigError
from tests.conftest import ROOT
from tests.test_sweep import command

ACCEPTED = (
    "; accepted: a SQLite store (tracking.uri=sqlite:///PATH) in a directory this user can "
    "write, on a disk with room, or a tracking server (tracking=server)"
)


def store_at(db: Path) -> str:
    return f"sqlite:///{db}"


def setup_fails(uri: str) -> str:
    """tracking.setup's one-line ConfigError for the store at `uri`."""
    with pytest.raises(ConfigError) as err:
        tracking.setup(OmegaConf.create({"uri": uri, "experiment": "augsweep"}))
    message = str(err.value)
    assert "\n" not in message and message.endswith(ACCEPTED), message
    return message


CREATE = """
import sys
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from src import tracking
uri = sys.argv[1]
experiment_id = tracking.setup(OmegaConf.create({"uri": uri, "experiment": "augsweep"}))
client = MlflowClient(uri)
client.set_terminated(client.create_run(experiment_id).info.run_id, "FINISHED")
"""


def create_store(db: Path) -> None:
    """A store with one finished run, as an earlier sweep leaves it; made by another process,
    so that this one holds no file of it open (a file system with open files stays writable)."""
    done = subprocess.run([sys.executable, "-c", CREATE, store_at(db)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def runs_in(db: Path) -> list[str]:
    client = MlflowClient(store_at(db))
    experiment = client.get_experiment_by_name("augsweep")
    return [r.info.status for r in client.search_runs([experiment.experiment_id])]


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size) -> a fresh tmpfs under tmp_path; unmounted at the end."""
    mounted = []

    def mount(name: str, size: str = "32m") -> Path:
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"no tmpfs can be mounted here: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(path)], check=True)  # this process may read it


def read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def test_a_regular_file_where_the_store_directory_should_be(tmp_path):
    (tmp_path / "results").write_text("not a directory")
    uri = store_at(tmp_path / "results" / "mlflow.db")
    assert setup_fails(uri) == (
        f"MLflow store '{uri}' cannot be written: its directory '{tmp_path / 'results'}' "
        f"cannot be created (FileExistsError: [Errno 17] File exists){ACCEPTED}"
    )


def test_a_directory_where_the_database_should_be(tmp_path):
    (tmp_path / "mlflow.db").mkdir()
    uri = store_at(tmp_path / "mlflow.db")
    assert setup_fails(uri) == (
        f"MLflow store '{uri}' cannot be written: '{tmp_path / 'mlflow.db'}' cannot be opened "
        f"for writing (IsADirectoryError: [Errno 21] Is a directory){ACCEPTED}"
    )


def test_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / "mlflow.db").write_text("id,name\n1,not sqlite\n")
    message = setup_fails(store_at(tmp_path / "mlflow.db"))
    assert message.startswith(f"MLflow store '{store_at(tmp_path / 'mlflow.db')}' cannot be used (")
    assert "file is not a database" in message


def test_an_immutable_database(tmp_path):
    db = tmp_path / "mlflow.db"
    create_store(db)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        message = setup_fails(store_at(db))
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert message == (
        f"MLflow store '{store_at(db)}' cannot be written: '{db}' cannot be opened for writing "
        f"(PermissionError: [Errno 1] Operation not permitted){ACCEPTED}"
    )


@pytest.mark.parametrize("with_store", [False, True])
def test_a_read_only_file_system(tmpfs, with_store):
    folder = tmpfs("ro")
    if with_store:
        create_store(folder / "mlflow.db")
    read_only(folder)
    uri = store_at(folder / "mlflow.db")
    assert setup_fails(uri) == (
        f"MLflow store '{uri}' cannot be written: no file can be written in its directory "
        f"'{folder}' (OSError: [Errno 30] Read-only file system){ACCEPTED}"
    )


def test_a_full_disk(tmpfs):
    folder = tmpfs("full", "24m")
    create_store(folder / "mlflow.db")  # 1 MiB of 24: room enough
    with open(folder / "filler", "wb") as filler:  # then someone else's files fill the disk
        chunk = b"\0" * 2**20
        try:
            while True:
                filler.write(chunk)
                filler.flush()
        except OSError:
            pass
    uri = store_at(folder / "mlflow.db")
    assert setup_fails(uri).startswith(
        f"MLflow store '{uri}' cannot be written: its disk has 0.0 MiB free, under 16 MiB; "
    )
    assert runs_in(folder / "mlflow.db") == ["FINISHED"]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(tmp_path, *args), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("augsweep:")]
    return line


@pytest.mark.slow
def test_the_cli_refuses_an_unwritable_store_before_any_job(tmp_path, tmpfs):
    """A single run and a sweep, each on a read-only store with a finished run, and a sweep on
    a full disk: exit status 2, one line, and the store as it was."""
    ro = tmpfs("ro")
    create_store(ro / "mlflow.db")
    read_only(ro)
    uri = store_at(ro / "mlflow.db")
    for args in (["data=gunpoint"], ["data=gunpoint", "-m", "aug=none,light"]):
        line = one_error_line(cli(tmp_path, f"tracking.uri={uri}", *args))
        assert line.startswith(f"augsweep: error: MLflow store '{uri}' cannot be written: no file")
    assert runs_in(ro / "mlflow.db") == ["FINISHED"]

    full = tmpfs("full", "24m")
    create_store(full / "mlflow.db")
    subprocess.run(["dd", "if=/dev/zero", f"of={full / 'filler'}", "bs=1M"], capture_output=True)
    uri = store_at(full / "mlflow.db")
    line = one_error_line(cli(tmp_path, f"tracking.uri={uri}", "data=gunpoint", "-m", "aug=none"))
    assert line.startswith(f"augsweep: error: MLflow store '{uri}' cannot be written: its disk")
    assert runs_in(full / "mlflow.db") == ["FINISHED"]  # no parent run, no job run
