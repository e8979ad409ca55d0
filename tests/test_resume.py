"""Failures, resume and dead runs, in-process against a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from src import tracking
from src.hydra_callbacks import grid, summary
from src.sweep import multirun_first, progress_line
from src.tracking import resume
from src.train import JobResult, run

SMALL_DIGITS = ("data.subset=200", "train.epochs=1")


def job_runs(client: MlflowClient):
    experiment = client.get_experiment_by_name("augsweep")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_second_run_of_a_finished_config_trains_nothing(make_cfg):
    first = run(make_cfg(*SMALL_DIGITS))
    again = run(make_cfg(*SMALL_DIGITS, "train.verbose=1", "optimize_metric=val_f1_macro_mean"))
    assert first.skipped is None and again.skipped == f"already FINISHED as run {first.run_id}"
    assert again.run_id == first.run_id
    assert again.metrics["val_accuracy_mean"] == first.metrics["val_accuracy_mean"]
    (only,) = job_runs(MlflowClient())  # verbosity and the optimised metric change no result
    assert only.info.run_id == first.run_id


def test_rerun_or_a_different_config_trains_again(make_cfg):
    first = run(make_cfg(*SMALL_DIGITS))
    forced = run(make_cfg(*SMALL_DIGITS, "sweep.rerun=true"))
    other = run(make_cfg(*SMALL_DIGITS, "seed=1"))
    assert forced.skipped is None and other.skipped is None
    runs = job_runs(MlflowClient())
    assert [r.info.run_id for r in runs] == [first.run_id, forced.run_id, other.run_id]
    hashes = [r.data.tags["config_hash"] for r in runs]
    assert hashes[0] == hashes[1] != hashes[2]
    # op determinism: the forced re-run of the same config gives the same numbers
    assert forced.metrics["val_accuracy_mean"] == first.metrics["val_accuracy_mean"]
    assert forced.metrics["train_accuracy_mean"] == first.metrics["train_accuracy_mean"]


def test_failed_job_records_message_and_traceback_and_is_run_again(make_cfg, tmp_path):
    cfg = make_cfg("data=series_file", f"data.path={tmp_path}/missing.npz")
    with pytest.raises(Exception, match="missing.npz"):
        run(cfg)
    with pytest.raises(Exception, match="missing.npz"):
        run(cfg)  # a FAILED run is no reason to skip
    client = MlflowClient()
    runs = job_runs(client)
    assert [r.info.status for r in runs] == ["FAILED", "FAILED"]
    error = runs[0].data.tags["augsweep.error"]
    assert error.startswith("ConfigError: series file") and "missing.npz" in error
    text = mlflow.artifacts.load_text(f"runs:/{runs[0].info.run_id}/error.txt")
    assert text.startswith("Traceback (most recent call last):")
    assert "src/data/series.py" in text and text.rstrip().endswith(error)


def test_nan_loss_fails_the_run(make_cfg):
    cfg = make_cfg("data=gunpoint", "aug=custom",
                   "aug.target=tests.user_augment.standardise_channels")  # fmt: skip
    with pytest.raises(FloatingPointError, match="training loss became nan in epoch 1"):
        run(cfg)
    (failed,) = job_runs(MlflowClient())
    assert failed.info.status == "FAILED"
    assert failed.data.tags["augsweep.error"].startswith("FloatingPointError: training loss")
    assert "fold0/final_val_accuracy" not in failed.data.metrics


def test_ctrl_c_ends_the_run_killed():
    experiment_id = tracking.setup(mlflow_cfg())
    with pytest.raises(KeyboardInterrupt), tracking.job_run(experiment_id, "x", {}, 30):
        raise KeyboardInterrupt
    (killed,) = job_runs(MlflowClient())
    assert killed.info.status == "KILLED" and "augsweep.error" not in killed.data.tags


def mlflow_cfg():
    from omegaconf import OmegaConf

    return OmegaConf.create({"uri": None, "experiment": "augsweep"})


def fake_running(client: MlflowClient, experiment_id: str, **tags: str):
    """A RUNNING run as a process that has stopped would have left it."""
    return client.create_run(experiment_id, tags={**resume.identity_tags(), **tags}).info.run_id


def test_dead_process_on_this_host_is_recognised():
    client = MlflowClient()
    experiment_id = tracking.setup(mlflow_cfg())
    alive = fake_running(client, experiment_id)
    gone = fake_running(client, experiment_id, **{resume.PID: str(dead_pid())})
    reused = fake_running(client, experiment_id, **{resume.PID_STARTED: "12345.000"})
    dead = resume.reap(experiment_id, dead_after_s=600)
    assert sorted(r.info.run_id for r in dead) == sorted([gone, reused])
    assert client.get_run(alive).info.status == "RUNNING"
    for run_id in (gone, reused):
        found = client.get_run(run_id)
        assert found.info.status == "KILLED" and found.info.end_time is not None
        assert found.data.tags["augsweep.killed"] == "its process died while it ran"


def test_other_host_is_judged_by_its_heartbeat():
    client = MlflowClient()
    experiment_id = tracking.setup(mlflow_cfg())
    now = time.time()
    elsewhere = {resume.HOST: "worker-7", resume.PID: "1"}
    stale = fake_running(client, experiment_id, **elsewhere,
                         **{resume.HEARTBEAT: f"{now - 601:.3f}"})  # fmt: skip
    fresh = fake_running(client, experiment_id, **elsewhere,
                         **{resume.HEARTBEAT: f"{now - 60:.3f}"})  # fmt: skip
    assert [r.info.run_id for r in resume.reap(experiment_id, dead_after_s=600)] == [stale]
    assert client.get_run(fresh).info.status == "RUNNING"
    assert resume.reap(experiment_id, dead_after_s=30)[0].info.run_id == fresh


def test_heartbeat_advances_while_the_job_runs():
    client = MlflowClient()
    experiment_id = tracking.setup(mlflow_cfg())
    run_id = fake_running(client, experiment_id)
    first = float(client.get_run(run_id).data.tags[resume.HEARTBEAT])
    with resume.Heartbeat(run_id, interval_s=0.2):
        time.sleep(1.0)
    beats = float(client.get_run(run_id).data.tags[resume.HEARTBEAT])
    assert beats - first >= 0.6


def test_dead_run_of_the_same_config_is_killed_and_trained_again(make_cfg):
    client = MlflowClient()
    first = run(make_cfg(*SMALL_DIGITS))
    digest = client.get_run(first.run_id).data.tags["config_hash"]
    client.set_terminated(first.run_id, "FAILED")  # as if it had failed
    experiment_id = client.get_run(first.run_id).info.experiment_id
    stuck = fake_running(client, experiment_id, config_hash=digest,
                         **{resume.PID: str(dead_pid())})  # fmt: skip
    client.log_metric(stuck, "fold0/loss", 2.5, step=0)
    again = run(make_cfg(*SMALL_DIGITS))
    assert again.skipped is None
    assert client.get_run(stuck).info.status == "KILLED"
    # what the dead run logged stays in the store
    assert [m.value for m in client.get_metric_history(stuck, "fold0/loss")] == [2.5]
    assert client.get_run(again.run_id).info.status == "FINISHED"


def test_a_config_running_in_a_live_process_is_not_trained_twice(make_cfg):
    client = MlflowClient()
    experiment_id = tracking.setup(mlflow_cfg())
    first = run(make_cfg(*SMALL_DIGITS))
    digest = client.get_run(first.run_id).data.tags["config_hash"]
    client.delete_run(first.run_id)
    running = fake_running(client, experiment_id, config_hash=digest)  # this process: alive
    again = run(make_cfg(*SMALL_DIGITS))
    assert again.skipped == f"RUNNING in another process as run {running}"


def test_grid_size_and_swept_keys():
    assert grid(["aug=none,light", "seed=range(3)", "train.epochs=2"]) == (6, ["aug", "seed"])
    assert grid(["aug=light"]) == (1, [])
    assert grid(["aug.strength=interval(0,1)"]) == (None, ["aug.strength"])


def test_progress_lines():
    done = JobResult("r1", {"val_accuracy_mean": 0.91234})
    assert (
        progress_line(
            2, 12, ["aug=heavy", "aug.strength=0.8"], "val_accuracy_mean", done, 12.34
        )  # fmt: skip
        == "[3/12] aug=heavy aug.strength=0.8: val_accuracy_mean=0.912 (12.3 s)"
    )
    skipped = JobResult("r0", {"val_accuracy_mean": 0.5}, skipped="already FINISHED as run r0")
    assert (
        progress_line(0, None, ["seed=1"], "val_accuracy_mean", skipped, 0.2)
        == "[1/?] seed=1: skipped, already FINISHED as run r0: val_accuracy_mean=0.500"
    )
    failed = FileNotFoundError("no file x.npz\nsecond line")
    assert (
        progress_line(None, None, [], "val_accuracy_mean", failed, 0.04)
        == "defaults: FAILED FileNotFoundError: no file x.npz (0.0 s)"
    )


def test_summary_counts_and_failed_lines():
    client = MlflowClient()
    experiment_id = tracking.setup(mlflow_cfg())
    ids = []
    for status, overrides in (("FINISHED", "aug=none"), ("FAILED", "aug=heavy"),
                              ("FAILED", "aug=light")):  # fmt: skip
        run_id = client.create_run(experiment_id, tags={"augsweep.overrides": overrides}).info
        run_id = run_id.run_id
        if status == "FAILED":
            client.set_tag(run_id, "augsweep.error", f"ValueError: {overrides} broke")
        client.set_terminated(run_id, status)
        ids.append(run_id)
    children = [client.get_run(i) for i in reversed(ids)]
    counts, failed = summary(children, {"augsweep.skipped.abc": "r9"}, [])
    assert counts == {"finished": 1, "failed": 2, "killed": 0, "skipped": 1}
    assert failed == [
        "aug=heavy: ValueError: aug=heavy broke",
        "aug=light: ValueError: aug=light broke",
    ]


def test_multirun_flag_may_come_after_overrides():
    assert multirun_first(["data=gunpoint", "-m", "aug=none,light"]) == [
        "-m", "data=gunpoint", "aug=none,light"]  # fmt: skip
    assert multirun_first(["--cfg", "job", "seed=1"]) == ["--cfg", "job", "seed=1"]


def test_runs_made_before_an_op_changed_meaning_are_trained_again(make_cfg, monkeypatch):
    current = tracking.SEMANTICS_VERSION
    monkeypatch.setattr(tracking.job, "SEMANTICS_VERSION", 1)  # as recorded before the change
    old = run(make_cfg(*SMALL_DIGITS))
    monkeypatch.setattr(tracking.job, "SEMANTICS_VERSION", current)
    new = run(make_cfg(*SMALL_DIGITS))
    assert new.skipped is None and new.run_id != old.run_id
    assert run(make_cfg(*SMALL_DIGITS)).skipped  # and now it is in the store
    hashes = [r.data.tags["config_hash"] for r in job_runs(MlflowClient())]
    assert hashes[0] != hashes[1]


def test_a_config_that_applies_no_augmentation_is_one_job_whatever_its_strength(make_cfg):
    # `-m aug=none,rotation aug.strength=0.5,1` trains aug=none once, not once per strength
    first = run(make_cfg(*SMALL_DIGITS, "aug=none", "aug.strength=0.5"))
    again = run(make_cfg(*SMALL_DIGITS, "aug=none", "aug.strength=1"))
    assert again.skipped and again.run_id == first.run_id
    spelled = run(make_cfg(*SMALL_DIGITS, "aug=rotation", "aug.strength=1"))
    assert run(make_cfg(*SMALL_DIGITS, "aug=rotation", "aug.strength=1.0")).skipped
    none, rotation = job_runs(MlflowClient())
    assert none.data.params["aug.strength"] == "0.0" and none.data.tags["strength"] == "0.0"
    assert rotation.info.run_id == spelled.run_id and rotation.data.tags["strength"] == "1.0"
