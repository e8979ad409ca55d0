"""The sweep context reaches a job's process whole, and an explicit store beats it."""

from __future__ import annotations

import subprocess
import sys

from omegaconf import OmegaConf

from src.tracking import context, tracking_uri
from src.tracking.context import STUDY_ENV, SWEEP_ENV, Round, StudyGrid, SweepContext
from tests.conftest import ROOT

SWEEP = SweepContext(
    "parent-1", tracking_uri="sqlite:////shared/mlflow.db", cwd="/data/team", size=6,
    swept=["aug", "seed"], metric="val_f1_mean", round=2,
)  # fmt: skip


def in_child(code: str) -> str:
    """What a fresh Python process (a joblib or submitit worker) prints, with this one's env."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=120)  # fmt: skip
    return done.stdout.strip()


def test_the_context_round_trips_to_a_worker_process(monkeypatch):
    monkeypatch.delenv(SWEEP_ENV, raising=False)
    context.begin(SWEEP)
    try:
        got = in_child("from src.tracking import context; print(context.current().to_json())")
    finally:
        assert context.end() == SWEEP
    assert SweepContext.from_json(got) == SWEEP
    assert context.current() is None  # ended: the next process started is in no sweep
    assert in_child("from src.tracking import context; print(context.current())") == "None"


def test_a_round_reaches_the_process_of_its_multirun():
    env = Round("parent-2", 3, ["aug", "seed"]).env({"PATH": "/usr/bin"})
    code = "from src.tracking import context; r = context.joined_round(); print(r.number, r.swept)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, env=env, timeout=120)  # fmt: skip
    assert done.stdout.strip() == "3 ['aug', 'seed']"


def test_a_study_grid_reaches_the_process_of_its_sweep_and_tags_its_parent(monkeypatch):
    grid = StudyGrid("digits_image_ops", "recipes", "id-1")
    env = grid.env({"PATH": "/usr/bin"})
    code = "from src.tracking import context; print(context.study_grid().tags())"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, env=env, timeout=120)  # fmt: skip
    assert done.stdout.strip() == str(
        {"augsweep.study": "digits_image_ops/recipes", "augsweep.study_id": "id-1"}
    )
    monkeypatch.delenv(STUDY_ENV, raising=False)
    assert context.study_grid() is None  # a sweep of its own is no study's grid


def test_an_explicit_tracking_uri_wins_over_the_contexts(monkeypatch, tmp_path):
    given = f"sqlite:///{tmp_path / 'mine.db'}"
    assert tracking_uri({"uri": given}, SWEEP) == given  # report --tracking-uri
    assert tracking_uri(OmegaConf.create({"uri": given}), SWEEP) == given
    # without one, a job records where its sweep does, whatever its own environment says
    assert tracking_uri({"uri": None}, SWEEP) == SWEEP.tracking_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri({"uri": None}, SWEEP) == SWEEP.tracking_uri
    # tracking=server on a worker without $MLFLOW_TRACKING_URI: its ??? is the sweep's store
    server = OmegaConf.create({"uri": "${oc.env:MLFLOW_TRACKING_URI,???}"})
    assert tracking_uri(server, SWEEP) == SWEEP.tracking_uri
    assert tracking_uri({"uri": None}).endswith("mlruns/mlflow.db")  # no sweep: the default
