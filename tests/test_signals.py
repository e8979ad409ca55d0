"""What clusters do to jobs, done for real to `python -m src.sweep` processes: SIGTERM, and
several sweeps on one SQLite store at once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src import tracking
from src.tracking import resume
from tests.conftest import ROOT
from tests.test_sweep import command, jobs_by_hash, runs_by_role, sweep


def running_job(client: MlflowClient, aug: str, experiment_name: str = "augsweep"):
    """The RUNNING run of `aug` once it has logged curves, else None."""
    experiment = client.get_experiment_by_name(experiment_name)
    running = experiment and client.search_runs(
        [experiment.experiment_id], f"tags.aug = '{aug}' AND attributes.status = 'RUNNING'"
    )
    if running and client.get_metric_history(running[0].info.run_id, "fold0/loss"):
        return running[0]
    return None


def waits_on(process: subprocess.Popen, lock: Path, timeout_s: float = 120) -> bool:
    """True once `process` has `lock` open while still running (it is waiting for the lock);
    False when it ends first, or after `timeout_s`."""
    lock = str(lock.resolve())
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):  # a descriptor closed while listed
            fds = list(Path(f"/proc/{process.pid}/fd").iterdir())
            if any(os.path.realpath(fd) == lock for fd in fds):
                return process.poll() is None
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "reason"),
    [(signal.SIGTERM, "stopped by SIGTERM"), (signal.SIGINT, "stopped by Ctrl-C (SIGINT)")],
)
def test_a_stopped_sweep_ends_its_runs_killed_and_the_same_command_resumes(tmp_path, stop, reason):
    """SIGTERM is what SLURM sends at a time limit or scancel, SIGINT what Ctrl-C sends: the
    running job's run and the sweep's parent end KILLED with the reason, the sweep exits
    128 + the signal without a traceback, and the same command trains only the jobs that are
    not FINISHED."""
    args = ["data=gunpoint", "train.epochs=100", "-m", "aug=none,light,medium"]
    client = MlflowClient()
    with open(tmp_path / "first.log", "w") as out:
        first = subprocess.Popen(command(tmp_path, *args), cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline, victim = time.monotonic() + 300, None
        while victim is None and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
            victim = running_job(client, "light")
        first.send_signal(stop)  # to the sweep's process, mid-job
        code = first.wait(timeout=120)
    text = (tmp_path / "first.log").read_text()
    assert victim is not None, text[-3000:]
    assert code == 128 + stop, text[-3000:]
    assert "Traceback" not in text
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "KILLED"
    assert killed.data.tags["augsweep.killed"] == reason
    assert killed.data.metrics["fold0/loss"] > 0  # the curves it logged stay
    (parent,), children = runs_by_role(client)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["augsweep.killed"] == reason
    assert {k: parent.data.metrics[f"jobs_{k}"] for k in ("finished", "killed", "skipped")} == {
        "finished": 1, "killed": 1, "skipped": 0}  # fmt: skip
    assert sorted((c.data.tags["aug"], c.info.status) for c in children) == [
        ("light", "KILLED"), ("none", "FINISHED")]  # fmt: skip
    assert (
        f"augsweep: {reason}: the running job's run and the sweep's parent run "
        f"{parent.info.run_id} ended KILLED; the same command resumes" in text
    )

    second = sweep(tmp_path, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    parents, children = runs_by_role(client)
    new = max(parents, key=lambda p: p.info.start_time)
    assert new.info.status == "FINISHED"
    assert {k: new.data.metrics[f"jobs_{k}"] for k in ("finished", "failed", "skipped")} == {
        "finished": 2, "failed": 0, "skipped": 1}  # fmt: skip
    assert "[1/3] aug=none: skipped, already FINISHED as run" in second.stdout
    for runs in jobs_by_hash(children).values():  # every config FINISHED once
        assert [r.info.status for r in runs].count("FINISHED") == 1
    assert len(jobs_by_hash(children)) == 3
    assert client.get_run(victim.info.run_id).info.status == "KILLED"  # left as it was


GRIDS = {  # three shared settings in another order each, and one of each sweep's own
    "a": "aug=none,light,jitter,scaling",
    "b": "aug=light,jitter,none,magnitude_warp",
    "c": "aug=jitter,none,light,time_warp",
}


@pytest.mark.slow
def test_three_sweeps_on_one_sqlite_store_at_once_lose_and_duplicate_nothing(tmp_path):
    """Three commands started together on a new store: it is created once, every config is
    trained exactly once (a sweep that finds one FINISHED or being trained by another skips
    it), and every run ends FINISHED."""
    with contextlib.ExitStack() as files:
        procs = {}
        for name, grid in GRIDS.items():
            (tmp_path / name).mkdir()
            out = files.enter_context(open(tmp_path / name / "log", "w"))
            args = command(tmp_path / name, "data=gunpoint", "-m", grid)
            procs[name] = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        codes = {name: proc.wait(timeout=600) for name, proc in procs.items()}
    for name, code in codes.items():
        assert code == 0, (tmp_path / name / "log").read_text()[-3000:]
    parents, children = runs_by_role(MlflowClient())
    assert sorted(c.data.tags["aug"] for c in children) == [
        "jitter", "light", "magnitude_warp", "none", "scaling", "time_warp"]  # fmt: skip
    assert all(c.info.status == "FINISHED" for c in children)
    assert len(jobs_by_hash(children)) == 6  # one run per config: none lost, none twice
    assert len(parents) == 3 and all(p.info.status == "FINISHED" for p in parents)
    assert all(p.data.metrics["jobs_total"] == 4 for p in parents)
    assert sum(p.data.metrics["jobs_finished"] for p in parents) == 6
    assert sum(p.data.metrics["jobs_skipped"] for p in parents) == 6
    trained = {c.info.run_id for c in children}
    for parent in parents:  # what a sweep skipped is a run another sweep trained
        reused = {v for k, v in parent.data.tags.items() if k.startswith("augsweep.skipped.")}
        assert reused <= trained
        own = {c.info.run_id for c in children
               if c.data.tags["mlflow.parentRunId"] == parent.info.run_id}  # fmt: skip
        assert len(own | reused) == 4 and not own & reused


CLAIMANT = """
import sys
from omegaconf import OmegaConf
from src import tracking
from src.tracking import resume
experiment_id = tracking.setup(OmegaConf.create({"uri": None, "experiment": "augsweep"}))
print("deciding", flush=True)
found = resume.earlier_run(experiment_id, sys.argv[1], 600)
print(found.info.status if found else "nothing: would train it too", flush=True)
"""


def test_a_sweep_deciding_about_a_config_waits_for_the_run_that_claims_it(tmp_path):
    """This process finds no run of a config and so will train it; another sweep that asks
    meanwhile waits until this one's run exists, finds it RUNNING and skips the config."""
    experiment_id = tracking.setup(OmegaConf.create({"uri": None, "experiment": "augsweep"}))
    assert resume.earlier_run(experiment_id, "0123abcd", 600) is None  # ours to train
    other = subprocess.Popen([sys.executable, "-c", CLAIMANT, "0123abcd"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert other.stdout.readline() == "deciding\n", other.stderr.read()[-3000:]
        # the other sweep has opened the claim lock this process holds, and waits on it: without
        # the lock it would decide now, finding nothing
        assert waits_on(other, resume.lock_file("claim")), other.stderr.read()[-3000:]
        with tracking.job_run(experiment_id, "claimant", {"config_hash": "0123abcd"}, 30):
            answer, errors = other.communicate(timeout=120)
    finally:
        other.kill()
    assert answer == "RUNNING\n", errors[-3000:]


@pytest.mark.slow
def test_sigterm_to_a_study_stops_its_grid_sweep_and_leaves_no_process(tmp_path):
    """A study runs each grid as a `python -m src.sweep` of its own: SIGTERM to the study (a
    scheduler's stop) reaches that sweep, whose running job ends KILLED, and the study exits
    143 with nothing left running."""
    args = ["-m", "experiment=digits_image_ops", "aug=none,light", "aug.strength=0.25",
            "seed=0", "train.epochs=100", "data.subset=300"]  # fmt: skip
    client = MlflowClient()
    with open(tmp_path / "study.log", "w") as out:
        study = subprocess.Popen(command(tmp_path, *args), cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline, victim = time.monotonic() + 300, None
        while victim is None and time.monotonic() < deadline and study.poll() is None:
            time.sleep(0.5)
            victim = running_job(client, "light", "study_digits")
        study.send_signal(signal.SIGTERM)  # to the study's process only, not its group
        code = study.wait(timeout=120)
    text = (tmp_path / "study.log").read_text()
    assert victim is not None, text[-3000:]
    assert code == 128 + signal.SIGTERM, text[-3000:]
    assert "augsweep: study digits_image_ops stopped by SIGTERM; the same command resumes" in text
    killed = client.get_run(victim.info.run_id)
    assert (killed.info.status, killed.data.tags["augsweep.killed"]) == (
        "KILLED", "stopped by SIGTERM")  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the grid's sweep was waited for: the group is empty
        try:
            os.killpg(study.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        pytest.fail("a process of the study's group is still running")
