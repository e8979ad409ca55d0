"""The real command line: `python -m src.sweep -m ...` in a subprocess, read back from the store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, SMALL
from tests.test_bad_input import write_gunpoint_npz


def command(tmp_path, *args: str) -> list[str]:
    """`python -m src.sweep` with SMALL before the test's own overrides, so those win."""
    flags = [a for a in args if a.startswith("-")]  # argparse wants all overrides together
    overrides = [a for a in args if not a.startswith("-")]
    outputs = [f"hydra.sweep.dir={tmp_path}/sweep", f"hydra.run.dir={tmp_path}/run"]
    return [sys.executable, "-m", "src.sweep", *flags, *SMALL, *overrides, *outputs]


def sweep(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(tmp_path, *args), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def runs_by_role(client: MlflowClient):
    experiment = client.get_experiment_by_name("augsweep")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("augsweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("augsweep.role") == "job"]
    return parents, children


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "dataset", "model"),
    [(["data.subset=200"], "digits", "cnn"), (["data=gunpoint"], "gunpoint", "lstm")],
)
def test_multirun_records_children_under_one_parent(tmp_path, args, dataset, model):
    done = sweep(tmp_path, "-m", "aug=none,light", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    parents, children = runs_by_role(MlflowClient())
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert "aug=none,light" in parent.data.tags["augsweep.overrides"].split()
    assert parent.data.metrics["jobs_finished"] == 2 and parent.data.metrics["jobs_failed"] == 0
    assert sorted(c.data.tags["aug"] for c in children) == ["light", "none"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert (child.data.tags["dataset"], child.data.tags["model"]) == (dataset, model)
        assert f"aug={child.data.tags['aug']}" in child.data.tags["augsweep.overrides"].split()
        assert 0 <= child.data.metrics["val_accuracy_mean"] <= 1
    # same seed, same folds: the two settings differ in their curves, not in their splits
    hashes = {c.data.tags["config_hash"] for c in children}
    assert len(hashes) == 2


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    good, bad = write_gunpoint_npz(tmp_path / "gunpoint.npz"), tmp_path / "moved.npz"
    done = sweep(tmp_path, "data=series_file", "-m", f"data.path={bad},{good}", "aug=none,light")
    assert done.returncode == 1, done.stderr[-3000:]
    client = MlflowClient()
    (parent,), children = runs_by_role(client)
    by_path = {}
    for child in children:
        path = [o for o in child.data.tags["augsweep.overrides"].split() if "path" in o]
        by_path.setdefault(path[0], []).append(child)
    assert sorted(c.info.status for c in by_path[f"data.path={good}"]) == ["FINISHED"] * 2
    for failed in by_path[f"data.path={bad}"]:
        assert failed.info.status == "FAILED"
        assert failed.data.tags["augsweep.error"] == (
            f"ConfigError: series file '{bad}' (data.path) does not exist; "
            "accepted: an existing .npz, .csv, .ts file"
        )
        trace = mlflow.artifacts.load_text(f"runs:/{failed.info.run_id}/error.txt")
        assert "Traceback" in trace and "does not exist" in trace
    assert parent.info.status == "FAILED"
    assert {k: parent.data.metrics[f"jobs_{k}"] for k in ("total", "finished", "failed", "skipped")
            } == {"total": 4, "finished": 2, "failed": 2, "skipped": 0}  # fmt: skip
    lines = done.stdout.splitlines()
    assert f"[1/4] data.path={bad} aug=none: FAILED ConfigError: series file '{bad}'" in "\n".join(
        lines
    )
    assert any(line.startswith(f"[3/4] data.path={good} aug=none: val_accuracy_mean=")
               for line in lines)  # fmt: skip
    assert f"augsweep: sweep done: 2 finished, 2 failed, 0 skipped (already in the store); " \
        f"parent run {parent.info.run_id}" in lines  # fmt: skip
    assert sum(line.startswith(f"augsweep: failed: data.path={bad} aug=")
               for line in lines) == 2  # fmt: skip


def test_unknown_name_in_a_sweep_fails_before_anything_runs(tmp_path):
    done = sweep(tmp_path, "-m", "data=digits,mnist")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("augsweep: error:")]
    assert errors == [
        "augsweep: error: unknown dataset data='mnist'; accepted: arrow_head, basic_motions, "
        "digits, gunpoint, image_folder, italy_power_demand, japanese_vowels, lfw_faces, "
        "series_file"
    ]
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


def test_single_run_bad_value_is_one_line(tmp_path):
    done = sweep(tmp_path, "aug.strength=2")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("augsweep: error: aug.strength=2 is outside [0, 1]")
    )


@pytest.mark.slow
def test_sweep_of_type_by_strength(tmp_path):
    done = sweep(tmp_path, "-m", "aug=rotation,shear", "aug.strength=0,1", "data.subset=200",
                 "train.epochs=1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient()
    (parent,), children = runs_by_role(client)
    grid = sorted((c.data.tags["aug"], c.data.tags["strength"]) for c in children)
    assert grid == [("rotation", "0.0"), ("rotation", "1.0"), ("shear", "0.0"), ("shear", "1.0")]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert "augmentation_preview.png" in artifacts
        summary = mlflow.artifacts.load_text(f"runs:/{child.info.run_id}/model_summary.txt")
        # strength 0 is no augmentation at all: the same model as the baseline
        assert ("augmentation" in summary) == (child.data.tags["strength"] == "1.0")


def jobs_by_hash(children) -> dict[str, list]:
    found: dict[str, list] = {}
    for child in children:
        found.setdefault(child.data.tags["config_hash"], []).append(child)
    return found


@pytest.mark.slow
def test_sweep_killed_with_sigkill_resumes_where_it_stopped(tmp_path):
    # one fold at a time, so there is a moment with fold 0 finished and fold 1 training (folds
    # trained together all finish at once)
    args = ["data=gunpoint", "train.epochs=30", "train.parallel_folds=false", "-m",
            "aug=none,light,medium"]  # fmt: skip
    client = MlflowClient()
    with open(tmp_path / "first.log", "w") as out:
        first = subprocess.Popen(command(tmp_path, *args), cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 300
        victim = None
        while victim is None and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
            experiment = client.get_experiment_by_name("augsweep")
            running = experiment and client.search_runs(
                [experiment.experiment_id], "tags.aug = 'light' AND attributes.status = 'RUNNING'"
            )
            # fold 0 done (its final scores logged), not only its first curves flushed
            if running and "fold0/final_val_accuracy" in running[0].data.metrics:
                victim = running[0]
        os.killpg(first.pid, signal.SIGKILL)  # mid-job: fold 0 logged, fold 1 training
        first.wait()
    assert victim is not None, (tmp_path / "first.log").read_text()[-3000:]
    logged = len(client.get_metric_history(victim.info.run_id, "fold0/loss"))

    second = sweep(tmp_path, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    parents, children = runs_by_role(client)
    old, new = sorted(parents, key=lambda p: p.info.start_time)
    assert old.info.status == "KILLED" and new.info.status == "FINISHED"
    assert {k: new.data.metrics[f"jobs_{k}"] for k in ("finished", "failed", "skipped")} == {
        "finished": 2, "failed": 0, "skipped": 1}  # fmt: skip
    by_hash = jobs_by_hash(children)
    assert len(by_hash) == 3
    for runs in by_hash.values():
        assert [r.info.status for r in runs].count("FINISHED") == 1
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["aug"] == "light"
    assert killed.data.tags["augsweep.killed"] == "its process died while it ran"
    assert len(client.get_metric_history(killed.info.run_id, "fold0/loss")) == logged == 30
    rerun = [r for r in by_hash[killed.data.tags["config_hash"]] if r.info.status == "FINISHED"]
    assert rerun[0].data.tags["mlflow.parentRunId"] == new.info.run_id
    assert "[1/3] aug=none: skipped, already FINISHED as run" in second.stdout

    # the finished sweep, run once more, trains nothing
    third = sweep(tmp_path, *args)
    assert third.returncode == 0, third.stderr[-3000:]
    parents, again = runs_by_role(client)
    assert sorted(r.info.run_id for r in again) == sorted(r.info.run_id for r in children)
    last = max(parents, key=lambda p: p.info.start_time)
    assert last.data.metrics["jobs_skipped"] == 3 and last.data.metrics["jobs_finished"] == 0
    assert third.stdout.count(": skipped, already FINISHED as run") == 3


@pytest.mark.slow
def test_joblib_workers_write_every_child_under_the_parent(tmp_path):
    done = sweep(tmp_path, "data=gunpoint", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                 "-m", "aug=none,light,medium,heavy")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,), children = runs_by_role(MlflowClient())
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4
    assert sorted(c.data.tags["aug"] for c in children) == ["heavy", "light", "medium", "none"]
    assert len(jobs_by_hash(children)) == 4  # none lost, none duplicated
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert 0 <= child.data.metrics["val_accuracy_mean"] <= 1
    workers = {c.data.tags["augsweep.pid"] for c in children}
    assert len(workers) == 2 and parent.data.tags["augsweep.pid"] not in workers
    # two workers on one stream: each job's line whole, once, and nothing drawn
    lines = done.stdout.splitlines()
    assert "\x1b" not in done.stdout
    for aug in ("none", "light", "medium", "heavy"):
        mine = [line for line in lines if f"] aug={aug}: " in line]
        assert len(mine) == 1 and re.fullmatch(
            rf"\[\d/4\] aug={aug}: val_accuracy_mean=\d\.\d{{3}} \(\d+\.\d s\)", mine[0]
        ), lines


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["model", "dataset"])
def test_same_seed_gives_identical_metrics_in_two_processes(tmp_path, placement):
    args = ["data.subset=200", "aug=heavy", f"aug.placement={placement}", "seed=7",
            "sweep.rerun=true"]  # fmt: skip
    for _ in range(2):
        done = sweep(tmp_path, *args)
        assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("augsweep")
    first, second = client.search_runs([experiment.experiment_id])
    assert first.data.tags["augsweep.pid"] != second.data.tags["augsweep.pid"]
    timeless = {k: v for k, v in first.data.metrics.items() if "time" not in k}
    assert len(timeless) > 20
    assert timeless == {k: second.data.metrics[k] for k in timeless}
    for curve in ("fold0/loss", "fold1/val_accuracy"):
        curves = [[m.value for m in client.get_metric_history(r.info.run_id, curve)]
                  for r in (first, second)]  # fmt: skip
        assert curves[0] == curves[1] and len(curves[0]) == 2


@pytest.mark.slow
def test_a_study_runs_its_grids_in_turn_then_the_report(tmp_path):
    """experiment=digits_image_ops, shrunk from the command line to its first two grids, with
    a fixed seed: both grids become the same two jobs, so the second sweep reuses the first's
    runs; then the report over both, and over no other run of the study's experiment."""
    out = tmp_path / "study"
    other = sweep(tmp_path, "-m", "aug=zoom", "tracking.experiment=study_digits",
                  "data.subset=300", "train.epochs=1")  # fmt: skip
    assert other.returncode == 0, other.stderr[-3000:]
    done = sweep(tmp_path, "-m", "experiment=digits_image_ops", "aug=none,rotation",
                 "aug.strength=0.5", "seed=0", "data.subset=300", "train.epochs=3",
                 "~sweep.study.grids.randaugment", "~sweep.study.grids.policies",
                 "sweep.adaptive.max_seeds=null", f"sweep.study.report.out={out}")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "augsweep: study digits_image_ops: grid 1/2 (ops_by_strength)" in done.stdout
    assert "augsweep: study digits_image_ops: grid 2/2 (recipes)" in done.stdout
    client = MlflowClient()
    experiment = client.get_experiment_by_name("study_digits")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "augsweep.study" in r.data.tags]
    assert [p.data.tags["augsweep.study"] for p in parents] == [
        "digits_image_ops/ops_by_strength", "digits_image_ops/recipes"]  # fmt: skip
    first, second = parents
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == first.info.run_id]
    assert sorted(c.data.tags["aug"] for c in children) == ["none", "rotation"]
    jobs = [r for r in runs if r.data.tags.get("augsweep.role") == "job"]
    assert sorted(j.data.tags["aug"] for j in jobs) == ["none", "rotation", "zoom"]  # zoom: other
    assert all(c.data.params["cv.folds"] == "2" for c in children)
    assert first.data.metrics["jobs_finished"] == 2 and second.data.metrics["jobs_skipped"] == 2
    assert second.data.metrics["jobs_finished"] == 0
    reused = {v for k, v in second.data.tags.items() if k.startswith("augsweep.skipped.")}
    assert reused == {c.info.run_id for c in children}
    # each grid's Hydra outputs in its own folder under the one sweep dir
    assert (tmp_path / "sweep" / "ops_by_strength" / "1" / ".hydra").is_dir()
    assert (tmp_path / "sweep" / "recipes" / "multirun.yaml").is_file()
    table = pd.read_csv(out / "comparison.csv")
    assert table[["aug", "strength", "runs", "folds"]].values.tolist() == [["rotation", 0.5, 1, 2]]
    rotation, none = (
        next(c for c in children if c.data.tags["aug"] == a) for a in ("rotation", "none")
    )
    assert table.loc[0, "val_accuracy_mean"] == pytest.approx(
        rotation.data.metrics["val_accuracy_mean"])  # fmt: skip
    assert table.loc[0, "baseline_mean"] == pytest.approx(none.data.metrics["val_accuracy_mean"])
    # the report covers the study's two sweeps, and is logged on both parents
    text = (out / "report.md").read_text()
    assert f"Runs: sweeps {first.info.run_id} (" in text and f", {second.info.run_id} (" in text
    for parent in parents:
        logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
        assert "report/comparison.csv" in logged
    assert len({p.data.tags["augsweep.study_id"] for p in parents}) == 1


def test_a_study_without_multirun_is_refused(tmp_path):
    done = sweep(tmp_path, "experiment=digits_image_ops")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "augsweep: error: experiment=digits_image_ops is a study of 4 sweeps; run it with -m: "
        "python -m src.sweep -m experiment=digits_image_ops"
    )


@pytest.mark.slow
def test_ctrl_c_stops_a_study_and_its_running_job_ends_killed(tmp_path):
    """Ctrl-C reaches the study and its grid's sweep (one process group): the sweep ends its
    run KILLED, the study waits for it, says how to resume and exits 130 without the report."""
    out = tmp_path / "study"
    args = ["-m", "experiment=digits_image_ops", "aug=none,rotation", "aug.strength=0.5", "seed=0",
            "data.subset=300", "train.epochs=200", f"sweep.study.report.out={out}"]  # fmt: skip
    client = MlflowClient()
    with open(tmp_path / "study.log", "w") as log:
        study = subprocess.Popen(command(tmp_path, *args), cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 300
        victim = None
        while victim is None and time.monotonic() < deadline and study.poll() is None:
            time.sleep(0.5)
            experiment = client.get_experiment_by_name("study_digits")
            running = experiment and client.search_runs(
                [experiment.experiment_id], "tags.`augsweep.role` = 'job'"
            )
            if running and client.get_metric_history(running[0].info.run_id, "fold0/loss"):
                victim = running[0]
        os.killpg(study.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        code = study.wait(timeout=120)
    text = (tmp_path / "study.log").read_text()
    assert victim is not None, text[-3000:]
    assert code == 130, text[-3000:]
    assert (
        "augsweep: study digits_image_ops stopped by Ctrl-C (SIGINT); the same command resumes"
        in text
    )
    assert "grid 2/2" not in text and not out.exists()
    assert client.get_run(victim.info.run_id).info.status == "KILLED"
