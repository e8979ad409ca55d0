"""Adaptive seeds: `python -m src.sweep -m <grid> sweep.adaptive.max_seeds=N`.

The process that runs the command runs the sweep as rounds. Round 1 is the command itself: the
grid at `seed`. After each round, every setting's verdict against its baseline is worked out
from the FINISHED runs of the sweep so far exactly as the report works it out
(`report.compare`: the pairing with the baseline, and src/stats.py's sequential rule with
max_seeds N, Holm over the table). Round r + 1 trains seed `seed + r` for the settings still
undecided and for their baselines, as Hydra multiruns with the command's launcher, until every
setting is decided or has N seeds.

All rounds' jobs are children of one parent run: the rounds' multiruns join it (a `Round` of
src/tracking/context.py) instead of starting their own. It carries the tag
`augsweep.adaptive.max_seeds`, so
`python -m src.report --sweep <parent>` replays the same rule on the same runs, and each round's
jobs and decisions (metrics `adaptive/*` with step = round, tags `augsweep.adaptive.round<r>`,
artifacts `adaptive/round<r>.json`). A round is worked out from what the store holds, so the
same command after a crash reuses every FINISHED job (skipped by config hash, as in any sweep),
finds the same undecided settings, and trains only what is missing.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from src.config import CONF_DIR
from src.errors import ConfigError, Terminated, stop_reason
from src.hydra_callbacks import finish_parent, grid, start_parent, sweep_report
from src.study import PRESET_KEY, run_sweep, sweep_dir
from src.study import override_key as _key
from src.tracking import resume, tags
from src.tracking.context import Round, joined_round
from src.tracking.store import setup, store_errors, tracking_uri

# values Hydra's sweep syntax takes as they are, so two jobs can share one `key=a,b` override
PLAIN = re.compile(r"^[\w.:/@+-]*$")


@dataclass(frozen=True)
class Job:
    """One job a round asks for: the setting (its run name without the seed), the seed, the
    job's overrides, and whether it is a baseline (aug=none or strength 0)."""

    setting: str
    seed: int
    overrides: tuple[str, ...]
    baseline: bool = False


def adaptive_of(args: list[str]) -> DictConfig | None:
    """The root config (tracking, seed, sweep.adaptive) when the command is an adaptive sweep.

    None when `sweep.adaptive.max_seeds` is null, and inside one of its rounds. Bad values,
    a swept seed, or no `-m` are a ConfigError before anything runs.
    """
    if joined_round() is not None:
        return None
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    kept = [a for a in overrides if _key(a) == PRESET_KEY or _key(a).split(".")[0]
            in ("tracking", "sweep", "seed")]  # fmt: skip
    if not any(_key(a).startswith("sweep.adaptive") or _key(a) == PRESET_KEY for a in kept):
        return None  # composing costs a few tenths of a second: not for every sweep
    try:
        parsed = OverridesParser.create().parse_overrides(kept)
    except Exception:  # malformed: Hydra's own parser reports it
        return None
    swept = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    for key in swept:
        if key.startswith("sweep.adaptive"):
            raise ConfigError(f"{key} is swept; accepted: one value for each sweep.adaptive key")
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[a for a in kept if _key(a) not in swept],
                      return_hydra_config=True)  # fmt: skip
    GlobalHydra.instance().clear()
    adaptive = cfg.sweep.adaptive
    if adaptive.max_seeds is None:
        return None
    preset_seed = str((cfg.hydra.sweeper.get("params") or {}).get("seed", ""))
    if "seed" in swept or "," in preset_seed:
        raise ConfigError(
            "seed is swept in an adaptive sweep; accepted: one seed (seed=0), the rounds add "
            "the next seeds where they are needed"
        )
    _check(adaptive, cfg.seed)
    if "-m" not in args and "--multirun" not in args:
        raise ConfigError(
            "sweep.adaptive.max_seeds needs a sweep; run it with -m: python -m src.sweep -m "
            "aug=none,light,heavy sweep.adaptive.max_seeds=5"
        )
    return cfg


def _check(adaptive: DictConfig, seed: object) -> None:
    from src.report import METRICS  # pandas and matplotlib: only for an adaptive sweep

    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not (isinstance(adaptive.max_seeds, int) and number(adaptive.max_seeds)
            and adaptive.max_seeds >= 1):  # fmt: skip
        raise ConfigError(f"sweep.adaptive.max_seeds={adaptive.max_seeds!r} is not allowed; "
                          "accepted: null or an integer >= 1")  # fmt: skip
    if not (number(adaptive.margin) and adaptive.margin > 0):
        raise ConfigError(f"sweep.adaptive.margin={adaptive.margin!r} is not allowed; "
                          "accepted: a number > 0")  # fmt: skip
    if adaptive.metric not in METRICS:
        raise ConfigError(f"sweep.adaptive.metric={adaptive.metric!r} is not allowed; "
                          f"accepted: {', '.join(METRICS)}")  # fmt: skip
    if not (isinstance(seed, int) and number(seed) and seed >= 0):
        raise ConfigError(f"seed={seed!r} is not allowed; accepted: an integer >= 0")


def with_seed(overrides: Iterable[str], seed: int) -> tuple[str, ...]:
    """A job's overrides with its seed replaced by `seed` (added when it had none)."""
    kept = [o for o in overrides if _key(o) != "seed"]
    return (*kept, f"seed={seed}")


def _merge_key(a: dict[str, tuple[str, ...]], b: dict[str, tuple[str, ...]]) -> str | None:
    """The key two blocks differ in, when together they are one grid; else None."""
    if a.keys() != b.keys():
        return None
    differ = [k for k in a if a[k] != b[k]]
    if len(differ) != 1 or not all(PLAIN.match(v) for v in (*a[differ[0]], *b[differ[0]])):
        return None
    return differ[0]


def blocks(jobs: Iterable[Iterable[str]]) -> list[list[str]]:
    """Jobs (override lists) as Hydra multiruns: each block one cartesian grid (`key=a,b`)
    that expands to exactly some of the jobs, merged greedily; every job in one block.

    Two blocks merge when they differ in one key only and its values are plain (no commas,
    brackets or quotes, which Hydra's sweep syntax would read differently).
    """
    found: list[dict[str, tuple[str, ...]]] = []
    for job in jobs:
        block = {o.split("=", 1)[0]: (o.split("=", 1)[1],) for o in job}
        if block not in found:
            found.append(block)
    merged = True
    while merged:
        merged = False
        pairs = ((i, j) for i in range(len(found)) for j in range(i + 1, len(found)))
        for i, j in pairs:
            key = _merge_key(found[i], found[j])
            if key is not None:
                found[i][key] += found.pop(j)[key]
                merged = True
                break
    return [[f"{k}={','.join(values)}" for k, values in block.items()] for block in found]


def _label(row) -> str:
    """A setting's name: its run name without the seed, e.g. digits/cnn/heavy/s1."""
    if pd.isna(row.aug) or pd.isna(row.strength):
        return str(row.run_name).rsplit("/seed", 1)[0]
    return f"{row.dataset}/{row.model}/{row.aug}/s{row.strength:g}"


def _is_base(frame: pd.DataFrame) -> pd.Series:
    """The runs report.compare takes as baselines: aug=none, or strength 0."""
    return (frame.aug == "none") | (frame.strength == 0)


def round_jobs(table: pd.DataFrame, seed: int) -> list[Job]:
    """The jobs the store holds for one seed (a round's, read back): every run of that seed,
    and those that failed before they knew their seed."""
    rows = table[(table.seed == seed) | table.seed.isna()]
    base = _is_base(rows)
    return [
        Job(_label(row), seed, tuple(str(row.overrides or "").split()), bool(is_base))
        for row, is_base in zip(rows.itertuples(), base, strict=True)
    ]


@dataclass
class RoundPlan:
    comparison: pd.DataFrame  # report.compare's table: every setting's decision so far
    jobs: list[Job]  # the next round's: the undecided settings and their baselines
    messages: list[str]  # what could not be compared (no baseline), from the report


def plan_round(
    table: pd.DataFrame, folds, metric: str, margin: float, max_seeds: int, seed: int
) -> RoundPlan:
    """The decisions after a round, and the jobs of the next one at `seed`.

    `table` and `folds` are report.tidy's of the sweep's runs so far. A setting is trained
    again when it is undecided with fewer than `max_seeds` seeds (stats.Plan.more), from the
    overrides of its latest run with the seed replaced; so is the baseline it is paired with
    (aug=none before strength 0, the latest: as report.compare pairs them).
    """
    from src import report, stats

    result = report.compare(table, folds, metric, margin, max_seeds)
    comparison = result.comparison
    if comparison.empty:
        return RoundPlan(comparison, [], result.messages)
    finished = table[table.status == "FINISHED"].sort_values("start_time")
    finished = finished.drop_duplicates("config_hash", keep="last")
    keys = ["dataset", "model", "context", "aug", "strength"]
    more = comparison[(comparison.verdict == stats.UNDECIDED) & (comparison.runs < max_seeds)]
    jobs, groups = [], []
    for row in more.itertuples():
        runs = finished[(finished[keys] == pd.Series([getattr(row, k) for k in keys],
                                                     index=keys)).all(axis=1)]  # fmt: skip
        latest = runs.sort_values(["seed", "start_time"]).iloc[-1]
        jobs.append(Job(_label(row), seed, with_seed(latest.overrides.split(), seed)))
        group = (row.dataset, row.model, row.context)
        if group not in groups:
            groups.append(group)
    for dataset, model, context in groups:
        bases = finished[_is_base(finished) & (finished.dataset == dataset)
                         & (finished.model == model) & (finished.context == context)]  # fmt: skip
        base = bases.assign(order=(bases.aug == "none").astype(int))
        base = base.sort_values(["order", "seed", "start_time"]).iloc[-1]
        jobs.append(Job(_label(base), seed, with_seed(base.overrides.split(), seed), True))
    return RoundPlan(comparison, jobs, result.messages)


def _finite(value: object) -> object:
    """JSON without NaN or inf."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def decisions(comparison: pd.DataFrame) -> list[dict[str, object]]:
    """Per setting: its verdict, seeds, difference and p-values, for the round's record."""
    columns = ["runs", "diff", "ci_low", "ci_high", "p_holm", "p_tost_holm", "more_seeds"]
    return [
        {"setting": _label(row), "verdict": row.verdict,
         **{c: _finite(float(getattr(row, c))) for c in columns}}
        for row in comparison.itertuples()
    ]  # fmt: skip


def progress(plan: RoundPlan) -> str:
    """`1 decided (digits/cnn/heavy/s1 hurts), 1 undecided (digits/cnn/noise/s0.5)`."""
    rows = decisions(plan.comparison)
    closed = [f"{r['setting']} {r['verdict']}" for r in rows if r["verdict"] != "undecided"]
    still = [str(r["setting"]) for r in rows if r["verdict"] == "undecided"]
    return (f"{len(closed)} decided ({', '.join(closed) or '-'}), {len(still)} undecided "
            f"({', '.join(still) or '-'})")  # fmt: skip


def record_round(client, parent: str, number: int, seed: int, jobs: list[Job],
                 plan: RoundPlan) -> None:  # fmt: skip
    """A round on the sweep's parent run: metrics adaptive/round, adaptive/settings_trained
    (jobs asked), adaptive/undecided (settings undecided after it), step = round; the tag
    augsweep.adaptive.round<r> (seed: settings) and artifact adaptive/round<r>.json (jobs,
    decisions after the round, what the next round asks)."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    undecided = [d for d in decisions(plan.comparison) if d["verdict"] == "undecided"]
    metrics = [
        Metric("adaptive/round", number, now, number),
        Metric("adaptive/settings_trained", len(jobs), now, number),
        Metric("adaptive/undecided", len(undecided), now, number),
    ]
    asked = f"seed {seed}: " + ", ".join(j.setting for j in jobs)
    written = [RunTag(f"{tags.ADAPTIVE_PREFIX}round{number}", asked[:5000]),
               RunTag(f"{tags.ADAPTIVE_PREFIX}rounds", str(number))]  # fmt: skip
    client.log_batch(parent, metrics=metrics, tags=written)
    record = {
        "round": number,
        "seed": seed,
        "jobs": [asdict(j) for j in jobs],
        "decisions": decisions(plan.comparison),
        "next": [asdict(j) for j in plan.jobs],
    }
    client.log_dict(parent, record, f"adaptive/round{number}.json")


def _launch(commands: list[list[str]], env: dict[str, str]) -> int:
    """Run a round's multiruns one after another; the highest exit code (2 stops at once)."""
    codes = []
    for command in commands:
        codes.append(run_sweep(command, env))
        if codes[-1] == 2:
            break
    return max(codes, default=0)


def round_commands(number: int, jobs: list[Job], args: list[str], base: str) -> list[list[str]]:
    """A round's multiruns: round 1 is the command itself; a later round runs its jobs with
    the command's flags and Hydra overrides (the launcher), its outputs in <base>/round<r>."""
    args = [a for a in args if _key(a) != "hydra.sweep.dir"]
    if number == 1:
        return [[*args, f"hydra.sweep.dir={base}/round1"]]
    launch = [a for a in args if a not in ("-m", "--multirun") and
              (a.startswith("-") or "=" not in a or _key(a).startswith("hydra"))]  # fmt: skip
    parts = blocks(j.overrides for j in jobs)
    where = [f"{base}/round{number}" + (f"/{i}" if len(parts) > 1 else "")
             for i in range(1, len(parts) + 1)]  # fmt: skip
    return [
        ["-m", *launch, *part, f"hydra.sweep.dir={d}"] for part, d in zip(parts, where, strict=True)
    ]


def _rounds(cfg: DictConfig, args: list[str], parent: str, swept: list[str]):
    """Round after round until every setting is decided or has max_seeds seeds: the exit code
    of each round's multiruns, and the plan after the last."""
    from mlflow.tracking import MlflowClient

    from src import report

    adaptive, client = cfg.sweep.adaptive, MlflowClient()
    max_seeds, base = int(adaptive.max_seeds), sweep_dir(args, "adaptive")
    codes, plan, jobs = [], None, []
    for number in range(1, max_seeds + 1):
        seed = int(cfg.seed) + number - 1
        what = ", ".join(j.setting for j in jobs) if jobs else "the grid"
        print(f"augsweep: adaptive round {number}/{max_seeds}: seed {seed} for {what}", flush=True)
        env = Round(parent, number, [*swept, "seed"]).env()
        codes.append(_launch(round_commands(number, jobs, args, base), env))
        if codes[-1] == 2:
            break
        table, folds = report.tidy(report.select(cfg.tracking.experiment, parent).runs)
        if table.empty:
            break
        if number == 1:
            jobs = round_jobs(table, seed)
        plan = plan_round(table, folds, adaptive.metric, adaptive.margin, max_seeds, seed + 1)
        record_round(client, parent, number, seed, jobs, plan)
        print(f"augsweep: adaptive round {number}/{max_seeds}: {progress(plan)}", flush=True)
        for message in plan.messages:
            print(f"augsweep: adaptive: {message}", flush=True)
        jobs = plan.jobs
        if not jobs:
            break
    return codes, plan


def run_adaptive(cfg: DictConfig, args: list[str]) -> int:
    """An adaptive sweep under one parent run, each round `python -m src.sweep` processes;
    the exit code (1 when a job failed, 2 for bad input, 130 / 143 when stopped)."""
    from src.report import ADAPTIVE_TAG

    adaptive = cfg.sweep.adaptive
    overrides = [a for a in args if "=" in a and not a.startswith("-")
                 and not _key(a).startswith("hydra")]  # fmt: skip
    _, swept = grid(overrides)
    uri = tracking_uri(cfg.tracking)
    try:
        experiment_id = setup(cfg.tracking)
        with store_errors(uri):
            resume.reap(experiment_id, cfg.sweep.dead_after_s)
            more = {
                ADAPTIVE_TAG: str(adaptive.max_seeds),
                f"{tags.ADAPTIVE_PREFIX}metric": adaptive.metric,
                f"{tags.ADAPTIVE_PREFIX}margin": f"{adaptive.margin:g}",
            }
            parent = start_parent(experiment_id, overrides, sweep_dir(args, "adaptive"), more)
    except ConfigError as err:
        print(f"augsweep: error: {err}", file=sys.stderr, flush=True)
        return 2
    heartbeat = resume.Heartbeat(parent, cfg.sweep.heartbeat_s).__enter__()
    try:
        codes, plan = _rounds(cfg, args, parent, swept)
    except KeyboardInterrupt as stop:
        heartbeat.__exit__()
        finish_parent(parent, swept, stop, cfg.optimize_metric)
        print(f"augsweep: adaptive sweep {stop_reason(stop)}: its parent run {parent} ended "
              "KILLED; the same command resumes, training only what is not FINISHED",
              file=sys.stderr, flush=True)  # fmt: skip
        return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
    heartbeat.__exit__()
    counts, failed = finish_parent(parent, swept, metric=cfg.optimize_metric)
    if 2 in codes:
        return 2
    if cfg.sweep.report:
        from mlflow.tracking import MlflowClient

        where = MlflowClient().get_run(parent).data.tags.get(tags.SWEEP_DIR, "multirun")
        sweep_report(cfg, parent, os.path.join(where, "report"))
    for row in decisions(plan.comparison) if plan is not None else []:
        print(f"augsweep: adaptive: {row['setting']}: {row['verdict']} after {row['runs']:g} "
              f"seeds (diff {row['diff']:+.4f})", flush=True)  # fmt: skip
    print(
        f"augsweep: adaptive sweep done: {len(codes)} rounds, {counts['finished']} finished, "
        f"{counts['failed']} failed, {counts['skipped']} skipped (already in the store); "
        f"parent run {parent}; report: python -m src.report --sweep {parent}",
        flush=True,
    )
    return max([*codes, 1 if failed else 0])
