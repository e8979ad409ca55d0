"""Adaptive seeds (src/adaptive.py): the round planning on fixed runs, and a real adaptive sweep."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from collections import Counter

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src import adaptive, report, stats
from src.adaptive import Job, blocks, plan_round, with_seed
from src.errors import ConfigError
from src.hydra_callbacks import outcome
from src.tracking.context import ROUND_ENV
from tests.conftest import ROOT

BASE = [0.90, 0.92, 0.91, 0.93, 0.89]  # the baseline's five folds
HARMFUL = [-0.30, -0.31, -0.29, -0.30, -0.32]  # per-fold differences, setting minus baseline
NEUTRAL = [0.02, -0.03, 0.01, -0.01, 0.0]
COMMON = ["train.epochs=3", "cv.folds=5", "sweep.adaptive.max_seeds=3"]


def run_row(aug: str, strength: float, seed: int, scores, start: int) -> dict[str, object]:
    """One job run as mlflow.search_runs gives it (the columns report.tidy reads)."""
    overrides = [f"aug={aug}", *COMMON] + ([f"seed={seed}"] if seed else [])
    row = {
        "run_id": f"{aug}-{strength:g}-{seed}",
        "status": "FINISHED",
        "start_time": pd.Timestamp(1_700_000_000 + start, unit="s", tz="UTC"),
        "tags.mlflow.runName": f"digits/cnn/{aug}/s{strength:g}/seed{seed}",
        "tags.dataset": "digits",
        "tags.model": "cnn",
        "tags.aug": aug,
        "tags.strength": str(strength),
        "tags.seed": str(seed),
        "tags.config_hash": f"hash-{aug}-{strength:g}-{seed}",
        "tags.augsweep.overrides": " ".join(overrides),
        "params.cv.folds": "5",
        "params.train.epochs": "3",
        "params.aug.name": aug,
        "params.seed": str(seed),
    }
    row |= {f"metrics.fold{k}/final_val_accuracy": v for k, v in enumerate(scores)}
    return row


def table_of(rows: list[dict[str, object]]):
    return report.tidy(pd.DataFrame(rows))


def seed_rows(seed: int, start: int, settings=("none", "flip", "noise")) -> list[dict[str, object]]:
    """Baseline, harmful (flip) and neutral (noise) runs of one seed; the seed shifts the
    baseline a little so seeds differ."""
    base = [b - 0.01 * seed for b in BASE]
    diffs = {"none": [0.0] * 5, "flip": HARMFUL, "noise": np.roll(NEUTRAL, seed).tolist()}
    strengths = {"none": 0.0, "flip": 1.0, "noise": 0.05}
    return [
        run_row(aug, strengths[aug], seed, [b + d for b, d in zip(base, diffs[aug], strict=True)],
                start + i)
        for i, aug in enumerate(settings)
    ]  # fmt: skip


def test_with_seed_replaces_or_adds_the_seed():
    assert with_seed(["aug=heavy", "seed=0", "cv.folds=3"], 2) == ("aug=heavy", "cv.folds=3",
                                                                   "seed=2")  # fmt: skip
    assert with_seed(["aug=heavy", "+seed=4"], 5) == ("aug=heavy", "seed=5")
    assert with_seed(["aug=heavy"], 1) == ("aug=heavy", "seed=1")


def expand(block: list[str]) -> set[tuple[str, ...]]:
    """The jobs a cartesian multirun block runs (each job as its sorted overrides)."""
    keys = [o.split("=", 1)[0] for o in block]
    values = [o.split("=", 1)[1].split(",") for o in block]
    return {tuple(sorted(f"{k}={v}" for k, v in zip(keys, combo, strict=True)))
            for combo in itertools.product(*values)}  # fmt: skip


@pytest.mark.parametrize("draw", range(20))
def test_blocks_run_exactly_the_jobs_asked_for(draw):
    grid = list(itertools.product(["none", "flip", "noise", "heavy"], ["0.5", "1"], ["1", "2"]))
    chosen = random.Random(draw).sample(grid, random.Random(draw).randint(1, len(grid)))
    jobs = [[f"aug={a}", "cv.folds=3", f"aug.strength={s}", f"seed={seed}"]
            for a, s, seed in chosen]  # fmt: skip
    found = blocks(jobs)
    expanded = [expand(b) for b in found]
    union = set().union(*expanded)
    assert union == {tuple(sorted(j)) for j in jobs}
    assert sum(len(e) for e in expanded) == len(jobs)  # no job in two blocks
    assert len(found) <= len(jobs)


def test_blocks_merge_a_full_grid_into_one_and_leave_lists_alone():
    grid = [[f"aug={a}", f"aug.strength={s}", "seed=1"] for a in ("none", "flip") for s in (0, 1)]
    assert len(blocks(grid)) == 1
    assert expand(blocks(grid)[0]) == {tuple(sorted(j)) for j in grid}
    # a value Hydra's sweep syntax would split is never merged into a sweep list
    listed = [["aug=combo", "aug.ops=[rotation,zoom]", "seed=1"],
              ["aug=combo", "aug.ops=[flip]", "seed=1"]]  # fmt: skip
    assert blocks(listed) == [list(job) for job in listed]
    assert blocks([["aug=none", "seed=1"], ["aug=none", "seed=1"]]) == [["aug=none", "seed=1"]]


def test_a_round_trains_the_undecided_settings_and_their_baseline():
    table, folds = table_of(seed_rows(0, 0))
    plan = plan_round(table, folds, "val_accuracy", 0.01, max_seeds=3, seed=1)
    verdicts = dict(zip(plan.comparison.aug, plan.comparison.verdict, strict=True))
    assert verdicts == {"flip": stats.HURTS, "noise": stats.UNDECIDED}
    assert plan.jobs == [
        Job("digits/cnn/noise/s0.05", 1, ("aug=noise", *COMMON, "seed=1")),
        Job("digits/cnn/none/s0", 1, ("aug=none", *COMMON, "seed=1"), baseline=True),
    ]
    # the same decisions as the statistics' own API on the same paired differences
    direct = stats.decide({"flip": [HARMFUL], "noise": [NEUTRAL]}, 1 / 4, 0.01, max_seeds=3)
    assert [d.verdict for d in direct.decisions.values()] == [stats.HURTS, stats.UNDECIDED]
    assert direct.more == ("noise",)
    # round 2 ran: noise is still open with 2 of 3 seeds, so round 3 asks again
    table, folds = table_of(seed_rows(0, 0) + seed_rows(1, 10, ("none", "noise")))
    plan = plan_round(table, folds, "val_accuracy", 0.01, max_seeds=3, seed=2)
    assert [(j.setting, j.seed, j.baseline) for j in plan.jobs] == [
        ("digits/cnn/noise/s0.05", 2, False), ("digits/cnn/none/s0", 2, True)]  # fmt: skip
    noise = plan.comparison.set_index("aug").loc["noise"]
    assert (noise.runs, noise.paired_folds) == (2, 10)
    # at max_seeds nothing is asked, whatever is still undecided
    plan = plan_round(table, folds, "val_accuracy", 0.01, max_seeds=2, seed=2)
    assert plan.jobs == [] and "undecided" in set(plan.comparison.verdict)


def test_the_baseline_asked_for_is_the_one_the_report_pairs_with():
    rows = seed_rows(0, 0, ("none", "noise"))
    # a strength-0 run of another op is a baseline too; the report prefers aug=none
    rows.append(run_row("rotation", 0.0, 0, BASE, 5))
    table, folds = table_of(rows)
    plan = plan_round(table, folds, "val_accuracy", 0.01, max_seeds=4, seed=1)
    assert [j.setting for j in plan.jobs if j.baseline] == ["digits/cnn/none/s0"]
    table, folds = table_of(seed_rows(0, 0, ("noise",)))  # no baseline: nothing to decide
    plan = plan_round(table, folds, "val_accuracy", 0.01, max_seeds=4, seed=1)
    assert plan.jobs == [] and plan.comparison.empty
    assert plan.messages and "no baseline" in plan.messages[0]


def test_round_jobs_read_a_round_back_from_the_store():
    table, _ = table_of(seed_rows(0, 0) + seed_rows(1, 10, ("none", "noise")))
    jobs = adaptive.round_jobs(table, 1)
    assert [(j.setting, j.seed, j.baseline) for j in jobs] == [
        ("digits/cnn/none/s0", 1, True), ("digits/cnn/noise/s0.05", 1, False)]  # fmt: skip
    assert jobs[1].overrides == ("aug=noise", *COMMON, "seed=1")


def test_round_commands_keep_the_launcher_and_split_the_outputs():
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "aug=none,flip,noise",
            "cv.folds=5", "hydra.sweep.dir=out"]  # fmt: skip
    assert adaptive.round_commands(1, [], args, "out") == [
        [*args[:-1], "hydra.sweep.dir=out/round1"]
    ]
    jobs = [Job("a", 1, ("aug=noise", "cv.folds=5", "seed=1")),
            Job("b", 1, ("aug=none", "cv.folds=5", "seed=1"), True)]  # fmt: skip
    assert adaptive.round_commands(2, jobs, args, "out") == [
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "aug=noise,none",
         "cv.folds=5", "seed=1", "hydra.sweep.dir=out/round2"]
    ]  # fmt: skip
    jobs.append(Job("c", 1, ("aug=combo", "aug.ops=[flip,zoom]", "cv.folds=5", "seed=1")))
    dirs = [c[-1] for c in adaptive.round_commands(3, jobs, args, "out")]
    assert dirs == ["hydra.sweep.dir=out/round3/1", "hydra.sweep.dir=out/round3/2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "aug=none,heavy", "seed=0,1", "sweep.adaptive.max_seeds=3"], "seed is swept"),
        (["-m", "aug=none,heavy", "sweep.adaptive.max_seeds=0"],
         r"^sweep.adaptive.max_seeds=0 is not allowed; accepted: null or an integer >= 1$"),
        (["-m", "sweep.adaptive.max_seeds=2", "sweep.adaptive.margin=0"],
         r"^sweep.adaptive.margin=0 is not allowed; accepted: a number > 0$"),
        (["-m", "sweep.adaptive.max_seeds=2", "sweep.adaptive.metric=loss"],
         r"^sweep.adaptive.metric='loss' is not allowed; accepted: val_accuracy, "),
        (["aug=heavy", "sweep.adaptive.max_seeds=2"], "needs a sweep; run it with -m"),
        (["-m", "sweep.adaptive.max_seeds=2,3"], "sweep.adaptive.max_seeds is swept"),
    ],
)  # fmt: skip
def test_bad_adaptive_settings_are_refused_before_anything_runs(args, message):
    with pytest.raises(ConfigError, match=message):
        adaptive.adaptive_of(args)


def test_an_adaptive_sweep_is_recognised_and_its_rounds_are_not(monkeypatch):
    assert adaptive.adaptive_of(["-m", "aug=none,heavy"]) is None
    assert adaptive.adaptive_of(["-m", "aug=none,heavy", "sweep.adaptive.max_seeds=null"]) is None
    cfg = adaptive.adaptive_of(["-m", "aug=none,heavy", "seed=3", "sweep.adaptive.max_seeds=4",
                                "tracking.experiment=mine"])  # fmt: skip
    assert (cfg.sweep.adaptive.max_seeds, cfg.sweep.adaptive.margin) == (4, 0.01)
    assert (cfg.sweep.adaptive.metric, cfg.seed, cfg.tracking.experiment) == (
        "val_accuracy", 3, "mine")  # fmt: skip
    monkeypatch.setenv(ROUND_ENV, json.dumps({"parent_run_id": "x", "round": 2}))
    assert adaptive.adaptive_of(["-m", "aug=none,heavy", "sweep.adaptive.max_seeds=4"]) is None


def test_a_round_is_recorded_on_the_parent_run():
    client = MlflowClient()
    experiment = mlflow.create_experiment("rounds")
    parent = client.create_run(experiment).info.run_id
    table, folds = table_of(seed_rows(0, 0))
    jobs = adaptive.round_jobs(table, 0)
    plan = plan_round(table, folds, "val_accuracy", 0.01, max_seeds=3, seed=1)
    adaptive.record_round(client, parent, 1, 0, jobs, plan)
    assert adaptive.progress(plan) == (
        "1 decided (digits/cnn/flip/s1 hurts), 1 undecided (digits/cnn/noise/s0.05)"
    )
    history = client.get_metric_history(parent, "adaptive/settings_trained")
    assert [(m.step, m.value) for m in history] == [(1, 3)]
    assert client.get_metric_history(parent, "adaptive/undecided")[0].value == 1
    tags = client.get_run(parent).data.tags
    assert tags["augsweep.adaptive.round1"] == (
        "seed 0: digits/cnn/none/s0, digits/cnn/flip/s1, digits/cnn/noise/s0.05"
    )
    record = mlflow.artifacts.load_dict(f"runs:/{parent}/adaptive/round1.json")
    assert [d["setting"] for d in record["next"]] == ["digits/cnn/noise/s0.05",
                                                       "digits/cnn/none/s0"]  # fmt: skip
    assert {d["setting"]: d["verdict"] for d in record["decisions"]} == {
        "digits/cnn/flip/s1": "hurts", "digits/cnn/noise/s0.05": "undecided"}  # fmt: skip


def test_a_round_counts_only_its_own_jobs():
    client = MlflowClient()
    experiment = mlflow.create_experiment("counts")
    parent = client.create_run(experiment).info.run_id
    tags = {"mlflow.parentRunId": parent}
    earlier = client.create_run(experiment, start_time=1_000, tags=tags).info.run_id
    client.set_terminated(earlier, "FINISHED")
    client.set_tag(parent, "augsweep.skipped.aaaa", "r0")
    before = frozenset({"augsweep.skipped.aaaa"})
    for status in ("FINISHED", "FAILED"):
        run = client.create_run(experiment, start_time=5_000, tags=tags).info.run_id
        client.set_terminated(run, status)
    client.set_tag(parent, "augsweep.skipped.bbbb", "r1")
    counts, failed = outcome(parent, [], (5_000, before))
    assert (counts["finished"], counts["failed"], counts["skipped"]) == (1, 1, 1)
    assert len(failed) == 1
    counts, _ = outcome(parent, [])
    assert (counts["finished"], counts["skipped"]) == (2, 2)


# --- the rounds, with jobs that record fixed scores instead of training ------------------

STRENGTHS = {"none": 0.0, "flip": 1.0, "noise": 0.05}


class FakeJobs:
    """Stands in for the rounds' `python -m src.sweep` processes: expands each multirun as
    Hydra's basic sweeper does, skips a config with a FINISHED run (as train.skip_earlier does)
    and records the others as FINISHED children of the parent with seed_rows' scores."""

    def __init__(self, stop_in_round: int | None = None) -> None:
        self.stop_in_round, self.commands = stop_in_round, []

    def __call__(self, commands: list[list[str]], env: dict[str, str]) -> int:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        context = json.loads(env[ROUND_ENV])
        client, parent = MlflowClient(), context["parent_run_id"]
        experiment = client.get_run(parent).info.experiment_id
        for command in commands:
            self.commands.append(command)
            args = [a for a in command if "=" in a and not a.startswith(("-", "hydra"))]
            parsed = OverridesParser.create().parse_overrides(args)
            (batch,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
            for job in batch:
                values = dict(o.split("=", 1) for o in job)
                aug, seed = values["aug"], int(values.get("seed", 0))
                digest = f"hash-{aug}-{STRENGTHS[aug]:g}-{seed}"
                same = f"tags.config_hash = '{digest}' AND attributes.status = 'FINISHED'"
                found = client.search_runs([experiment], same)
                if found:
                    client.set_tag(parent, f"augsweep.skipped.{digest}", found[0].info.run_id)
                    continue
                if context["round"] == self.stop_in_round:
                    raise KeyboardInterrupt
                row = next(r for r in seed_rows(seed, 0, (aug,)))
                tags = {k[5:]: v for k, v in row.items() if k.startswith("tags.")}
                tags |= {"mlflow.parentRunId": parent, "augsweep.role": "job",
                         "augsweep.overrides": " ".join(job)}  # fmt: skip
                run = client.create_run(experiment, tags=tags, run_name=tags["mlflow.runName"])
                for key, value in row.items():
                    if key.startswith("params."):
                        client.log_param(run.info.run_id, key[7:], value)
                    elif key.startswith("metrics."):
                        client.log_metric(run.info.run_id, key[8:], value)
                client.set_terminated(run.info.run_id, "FINISHED")
        return 0


def job_runs() -> Counter:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("augsweep").experiment_id
    runs = client.search_runs([experiment], "tags.`augsweep.role` = 'job'")
    return Counter((r.data.tags["aug"], int(r.data.tags["seed"])) for r in runs)


def parents() -> list:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("augsweep").experiment_id
    return client.search_runs([experiment], "tags.`augsweep.role` = 'sweep'",
                              order_by=["attributes.start_time ASC"])  # fmt: skip


ARGS = ["-m", "aug=none,flip,noise", "cv.folds=5", "sweep.adaptive.max_seeds=3",
        "hydra.sweep.dir=out"]  # fmt: skip
EXPECTED = Counter({("none", 0): 1, ("flip", 0): 1, ("noise", 0): 1, ("none", 1): 1,
                    ("noise", 1): 1, ("none", 2): 1, ("noise", 2): 1})  # fmt: skip


def test_rounds_ask_for_seeds_until_decided_and_resume_from_the_store(monkeypatch, capsys):
    fake = FakeJobs()
    monkeypatch.setattr(adaptive, "_launch", fake)
    assert adaptive.run_adaptive(adaptive.adaptive_of(ARGS), ARGS) == 0
    # flip hurts after seed 0; noise stays open and gets every seed, with its baseline
    assert job_runs() == EXPECTED
    assert fake.commands == [
        ["-m", "aug=none,flip,noise", "cv.folds=5", "sweep.adaptive.max_seeds=3",
         "hydra.sweep.dir=out/round1"],
        ["-m", "aug=noise,none", "cv.folds=5", "sweep.adaptive.max_seeds=3", "seed=1",
         "hydra.sweep.dir=out/round2"],
        ["-m", "aug=noise,none", "cv.folds=5", "sweep.adaptive.max_seeds=3", "seed=2",
         "hydra.sweep.dir=out/round3"],
    ]  # fmt: skip
    (parent,) = parents()
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["augsweep.adaptive.rounds"] == "3"
    assert parent.data.tags["augsweep.adaptive.round2"] == (
        "seed 1: digits/cnn/noise/s0.05, digits/cnn/none/s0"
    )
    assert parent.data.metrics["jobs_finished"] == 7
    out = capsys.readouterr().out
    assert "augsweep: adaptive round 1/3: 1 decided (digits/cnn/flip/s1 hurts)" in out
    assert "augsweep: adaptive: digits/cnn/noise/s0.05: undecided after 3 seeds" in out
    # the report reads the parent like any sweep and replays the same rule
    assert report.main(["--sweep", parent.info.run_id, "--out", "report"]) == 0
    table = pd.read_csv("report/comparison.csv").set_index("aug")
    assert table.loc[["flip", "noise"], "runs"].tolist() == [1, 3]
    assert table.loc["flip", "verdict"] == "hurts"
    # the same command again trains nothing and asks for the same rounds
    again = FakeJobs()
    monkeypatch.setattr(adaptive, "_launch", again)
    assert adaptive.run_adaptive(adaptive.adaptive_of(ARGS), ARGS) == 0
    assert job_runs() == EXPECTED and again.commands == fake.commands
    assert parents()[-1].data.metrics["jobs_skipped"] == 7


def test_the_report_replays_the_margin_the_rounds_decided_at(monkeypatch):
    """At a margin of 0.2 the neutral noise is equivalent at once; the report of the sweep
    decides at the sweep's margin unless --margin says otherwise."""
    args = [*ARGS[:-1], "sweep.adaptive.margin=0.2", ARGS[-1]]
    monkeypatch.setattr(adaptive, "_launch", FakeJobs())
    assert adaptive.run_adaptive(adaptive.adaptive_of(args), args) == 0
    assert job_runs() == Counter({("none", 0): 1, ("flip", 0): 1, ("noise", 0): 1})
    (parent,) = parents()
    assert parent.data.tags["augsweep.adaptive.margin"] == "0.2"
    assert report.main(["--sweep", parent.info.run_id, "--out", "report"]) == 0
    table = pd.read_csv("report/comparison.csv").set_index("aug")
    assert table.loc["noise", ["verdict", "margin"]].tolist() == ["equivalent", 0.2]
    assert report.main(["--sweep", parent.info.run_id, "--out", "narrow", "--margin", "0.01"]) == 0
    table = pd.read_csv("narrow/comparison.csv").set_index("aug")
    assert table.loc["noise", ["verdict", "margin"]].tolist() == ["undecided", 0.01]


def test_a_report_over_sweeps_of_two_margins_asks_for_one(monkeypatch, capsys):
    for margin in ("0.2", "0.05"):
        args = [*ARGS[:-1], f"sweep.adaptive.margin={margin}", f"hydra.sweep.dir=out{margin}"]
        monkeypatch.setattr(adaptive, "_launch", FakeJobs())
        assert adaptive.run_adaptive(adaptive.adaptive_of(args), args) == 0
    ids = [p.info.run_id for p in parents()]
    capsys.readouterr()
    assert report.main(["--sweep", *ids, "--out", "both"]) == 2
    assert "decided their rounds at margins 0.05, 0.2; pass --margin" in capsys.readouterr().err
    assert report.main(["--sweep", *ids, "--out", "both", "--margin", "0.05"]) == 0


def test_an_interrupted_adaptive_sweep_resumes_where_it_stopped(monkeypatch, capsys):
    monkeypatch.setattr(adaptive, "_launch", FakeJobs(stop_in_round=2))
    assert adaptive.run_adaptive(adaptive.adaptive_of(ARGS), ARGS) == 130
    assert "the same command resumes" in capsys.readouterr().err
    assert job_runs() == Counter({("none", 0): 1, ("flip", 0): 1, ("noise", 0): 1})
    assert parents()[0].info.status == "KILLED"
    monkeypatch.setattr(adaptive, "_launch", FakeJobs())
    assert adaptive.run_adaptive(adaptive.adaptive_of(ARGS), ARGS) == 0
    assert job_runs() == EXPECTED
    assert parents()[-1].data.metrics["jobs_skipped"] == 3


# --- a real adaptive sweep -----------------------------------------------------------------

# heavy (flips and quarter turns at strength 1) hurts digits by far; pixel noise at its default
# strength 0.5 (sd 0.1) moves accuracy by about a point, which 3 seeds of 5 folds cannot decide
SWEEP = ["-m", "aug=none,heavy,noise", "data.subset=300", "cv.folds=5", "train.epochs=10",
         "sweep.adaptive.max_seeds=3"]  # fmt: skip


def adaptive_sweep(tmp_path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "src.sweep", *SWEEP, f"hydra.sweep.dir={tmp_path}/sweep"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_an_adaptive_sweep_spends_seeds_where_the_verdict_is_open(tmp_path):
    done = adaptive_sweep(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("augsweep")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("augsweep.role") == "sweep"]
    jobs = [r for r in runs if r.data.tags.get("augsweep.role") == "job"]
    assert parent.data.tags["augsweep.adaptive.max_seeds"] == "3"
    assert parent.info.status == "FINISHED"
    rounds = int(parent.data.tags["augsweep.adaptive.rounds"])
    asked = Counter()
    for number in range(1, rounds + 1):
        record = mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/adaptive/round"
                                            f"{number}.json")  # fmt: skip
        asked.update((j["setting"], j["seed"]) for j in record["jobs"])
        assert all(j["seed"] == number - 1 for j in record["jobs"])
    # the store holds exactly the runs the rounds asked for: one FINISHED run each, all
    # children of the one parent
    trained = Counter()
    for run in jobs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        setting = run.info.run_name.rsplit("/seed", 1)[0]
        trained[(setting, int(run.data.tags["seed"]))] += 1
    assert trained == asked and set(asked.values()) == {1}
    seeds = Counter(setting for setting, _ in asked)
    harmful, neutral = seeds["digits/cnn/heavy/s1"], seeds["digits/cnn/noise/s0.5"]
    # the report replays the rule on the same runs and decides the same way
    out = tmp_path / "report"
    assert report.main(["--sweep", parent.info.run_id, "--out", str(out)]) == 0
    table = pd.read_csv(out / "comparison.csv").set_index("aug")
    assert table.loc["heavy", "verdict"] == "hurts"
    assert (table.loc["heavy", "runs"], table.loc["noise", "runs"]) == (harmful, neutral)
    assert harmful < neutral, done.stdout
    assert seeds["digits/cnn/none/s0"] == max(harmful, neutral)
    history = client.get_metric_history(parent.info.run_id, "adaptive/settings_trained")
    assert [m.step for m in history] == list(range(1, rounds + 1))
    # the same command again (a resume) trains nothing and asks for the same rounds
    again = adaptive_sweep(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{rounds} rounds, 0 finished, 0 failed, {sum(asked.values())} skipped" in again.stdout
    assert len(client.search_runs([experiment.experiment_id], "tags.`augsweep.role` = 'job'")) \
        == len(jobs)  # fmt: skip
