"""The real command line: `python -m src.sweep -m ...` in a subprocess, read back from the store."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, SMALL


def sweep(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "src.sweep",
            *args,
            *SMALL,
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


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
    assert parent.data.tags["augsweep.overrides"].startswith("aug=none,light")
    assert parent.data.metrics["jobs_finished"] == 2 and parent.data.metrics["jobs_failed"] == 0
    assert sorted(c.data.tags["aug"] for c in children) == ["light", "none"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert (child.data.tags["dataset"], child.data.tags["model"]) == (dataset, model)
        assert child.data.tags["augsweep.overrides"].startswith(f"aug={child.data.tags['aug']}")
        assert 0 <= child.data.metrics["val_accuracy_mean"] <= 1
    # same seed, same folds: the two settings differ in their curves, not in their splits
    hashes = {c.data.tags["config_hash"] for c in children}
    assert len(hashes) == 2


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    done = sweep(tmp_path, "-m", "aug.strength=0.5,1.5", "data.subset=200")
    assert done.returncode == 1
    (parent,), children = runs_by_role(MlflowClient())
    status = {c.data.tags["strength"] if "strength" in c.data.tags else "1.5": c for c in children}
    assert status["0.5"].info.status == "FINISHED"
    assert status["1.5"].info.status == "FAILED"
    assert "aug.strength=1.5 is outside [0, 1]" in status["1.5"].data.tags["augsweep.error"]
    assert parent.info.status == "FAILED" and parent.data.metrics["jobs_failed"] == 1


def test_unknown_name_in_a_sweep_fails_before_anything_runs(tmp_path):
    done = sweep(tmp_path, "-m", "data=digits,mnist")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("augsweep: error:")]
    assert errors == [
        "augsweep: error: unknown dataset data='mnist'; accepted: arrow_head, basic_motions, "
        "digits, gunpoint, image_folder, italy_power_demand, japanese_vowels, series_file"
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
    assert grid == [("rotation", "0"), ("rotation", "1"), ("shear", "0"), ("shear", "1")]
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert "augmentation_preview.png" in artifacts
        summary = mlflow.artifacts.load_text(f"runs:/{child.info.run_id}/model_summary.txt")
        # strength 0 is no augmentation at all: the same model as the baseline
        assert ("augmentation" in summary) == (child.data.tags["strength"] == "1")
