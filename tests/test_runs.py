"""src.tracking.runs reads a real SQLite MLflow store into the frame mlflow.search_runs gives."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from src.tracking import runs


def same_frame(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    def canonical(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[sorted(frame.columns)].sort_values("run_id", ignore_index=True)

    pd.testing.assert_frame_equal(canonical(ours), canonical(theirs))


@pytest.fixture
def store():
    """A sweep parent with children that differ in what they logged, and runs to leave out."""
    client = MlflowClient()
    experiment_id = client.create_experiment("augsweep")
    other_experiment = client.create_experiment("other")
    parent = client.create_run(experiment_id, tags={"augsweep.role": "sweep"}).info.run_id

    def child(params: dict, metrics: dict, tags: dict, status: str | None = "FINISHED") -> str:
        run_id = client.create_run(
            experiment_id, tags={"mlflow.parentRunId": parent, "augsweep.role": "job", **tags}
        ).info.run_id
        client.log_batch(
            run_id,
            metrics=[
                Metric(k, v, 1_700_000_000_000 + i, i) for i, (k, v) in enumerate(metrics.items())
            ],
            params=[Param(k, v) for k, v in params.items()],
        )
        if status:
            client.set_terminated(run_id, status)
        return run_id

    full = child(
        {"aug.name": "rotation", "aug.strength": "0.5", "cv.folds": "5"},
        {"fold0/final_val_accuracy": 0.91, "fold1/final_val_accuracy": 0.89,
         "val_accuracy_mean": 0.9, "fold0/loss": float("nan"), "gap_mean": -0.0},
        {"aug": "rotation", "strength": "0.5"},
    )  # fmt: skip
    sparse = child({"aug.name": "none"}, {"fold0/final_val_accuracy": 0.5}, {"aug": "none"})
    running = child({"aug.name": "zoom"}, {}, {"aug": "zoom"}, status=None)
    failed = child({"aug.name": "blur"}, {"fold0/loss": 2.5}, {"augsweep.error": "boom"}, "FAILED")
    # a metric logged twice: the latest value counts
    client.log_metric(full, "val_accuracy_mean", 0.95, timestamp=1_800_000_000_000, step=9)
    client.set_tag(full, "note", "ünïcode, 'quotes' and %s")
    deleted = child({"aug.name": "flip"}, {"fold0/final_val_accuracy": 0.1}, {})
    client.delete_run(deleted)
    stranger = client.create_run(experiment_id, tags={"mlflow.parentRunId": "someone-else"})
    elsewhere = client.create_run(other_experiment, tags={"mlflow.parentRunId": parent})
    client.log_batch(elsewhere.info.run_id, tags=[RunTag("aug", "elsewhere")])
    return {
        "experiment_id": experiment_id,
        "parent": parent,
        "children": {full, sparse, running, failed},
        "deleted": deleted,
        "stranger": stranger.info.run_id,  # same experiment, another parent
        "elsewhere": elsewhere.info.run_id,  # this parent, another experiment
    }


def test_a_parents_children_read_from_sqlite_equal_mlflow_search_runs(store):
    found = runs.search(store["experiment_id"], parent=store["parent"])
    theirs = mlflow.search_runs(
        [store["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{store['parent']}'"
    )
    same_frame(found, theirs)
    assert set(found.run_id) == store["children"]
    by_id = found.set_index("run_id")
    full = by_id[by_id["tags.aug"] == "rotation"].iloc[0]
    assert full["metrics.val_accuracy_mean"] == 0.95  # the latest of two values
    assert math.isnan(full["metrics.fold0/loss"])  # a NaN logged stays NaN
    assert full["tags.note"] == "ünïcode, 'quotes' and %s"
    sparse = by_id[by_id["tags.aug"] == "none"].iloc[0]
    assert pd.isna(sparse["params.cv.folds"])
    assert math.isnan(sparse["metrics.val_accuracy_mean"])
    assert set(found.status) == {"FINISHED", "RUNNING", "FAILED"}
    assert found.loc[found.status == "RUNNING", "end_time"].isna().all()
    assert isinstance(found.start_time.dtype, pd.DatetimeTZDtype)


def test_runs_by_id_in_chunks_equal_mlflow_search_runs(store, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK", 2)  # 7 ids: 4 queries
    ids = [*sorted(store["children"]), store["deleted"], store["stranger"], store["elsewhere"]]
    found = runs.search(store["experiment_id"], run_ids=[*ids, ids[0]])  # a repeat counts once
    theirs = runs._mlflow_search(store["experiment_id"], None, ids)
    same_frame(found, theirs)
    # neither the deleted run nor the run of the other experiment
    assert set(found.run_id) == store["children"] | {store["stranger"]}


def test_which_stores_are_read_with_sql():
    assert runs.is_database("sqlite:////tmp/x/mlflow.db")
    assert runs.is_database("postgresql+psycopg2://user:pw@db:5432/mlflow")
    assert runs.is_database("mysql://db/mlflow")
    assert not runs.is_database("http://127.0.0.1:5000")
    assert not runs.is_database("file:///tmp/mlruns")
    assert not runs.is_database("databricks")
    with pytest.raises(ValueError, match="either parent or run_ids"):
        runs.search("1")


def test_listings_read_every_page(monkeypatch):
    """A sweep's counts, its dead runs and its best job, past one page of search_runs."""
    from src import description, hydra_callbacks
    from src.tracking import resume, search_all, store

    client = MlflowClient()
    experiment_id = client.create_experiment("paged")
    parent = client.create_run(experiment_id, tags={"augsweep.role": "sweep"}).info.run_id
    statuses = ["FINISHED"] * 5 + ["FAILED"] * 2
    for k, status in enumerate(statuses):
        run_id = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_metric(run_id, "val_accuracy_mean", k / 10)
        client.set_terminated(run_id, status)
    gone = {**resume.identity_tags(), resume.PID: "999999999"}  # a process that cannot exist
    dead = [client.create_run(experiment_id, tags=gone).info.run_id for _ in range(4)]
    found = search_all([experiment_id], "tags.`mlflow.parentRunId` = '" + parent + "'",
                       order_by=["attributes.start_time ASC"], page_size=2)  # fmt: skip
    assert len(found) == 7 and len({r.info.run_id for r in found}) == 7  # four pages
    assert len(search_all([experiment_id], page_size=3)) == 12  # every run of the experiment
    monkeypatch.setattr(store, "PAGE_SIZE", 2)  # each caller's default page
    counts, failed = hydra_callbacks.outcome(parent, [])
    assert (counts["finished"], counts["failed"], len(failed)) == (5, 2, 2)
    assert sorted(r.info.run_id for r in resume.reap(experiment_id, 600)) == sorted(dead)
    # the best FINISHED job is the fifth (0.4), on the third page of two
    assert ", 0.4000 (run " in description.best_job(parent, "val_accuracy_mean", [])
