"""How long `python -m src.report` takes over an MLflow store of 10,000 job runs (target < 10 s).

    python -m benchmarks.report_scale                   # builds a temporary store (minutes), times
    python -m benchmarks.report_scale --store /tmp/big  # builds it there once; later runs reuse it

The store: a few REAL jobs are trained first with `src.train.run` (digits, data.subset=200,
5 folds x 2 epochs: aug=none at seeds 0 and 1, and rotation, noise and erasing at strengths
0.2, 0.6 and 1.0, seed 0) into a separate SQLite store. Their params, tags, per-fold and aggregate
metrics and per-epoch curves are then replicated, with MlflowClient.create_run + log_batch +
set_terminated, into 10,100 FINISHED job runs under one sweep parent run (augsweep.role=sweep):
10 image aug types x 10 strengths (0.1..1) x 100 seeds, plus an aug=none baseline per seed. Each
replica's params are the real resolved config of its (aug, strength, seed) (`src.train.prepare`,
`src.tracking.flatten`, `config_hash`); its per-fold scores are those of the nearest trained run,
moved by a deterministic per-setting effect and per-(seed, fold) noise (accuracies kept in [0, 1],
gap and the means and standard deviations recomputed); its curves are the template's, unchanged.

Measured over that store: `python -c "import src.report"` and `python -m src.report` end to end,
each in a fresh process (median of --repeats), and select(), tidy(), compare(), export() and the
rest of main (report.md, log_artifacts) in this process. Over the target, or with --profile,
each stage also runs once under cProfile and its top functions by cumulative time are listed.
Results: benchmarks/results/report_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import write

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0
EXPERIMENT = "augsweep"
TYPES = ("rotation", "zoom", "translation", "shear", "flip",
         "brightness", "contrast", "blur", "noise", "erasing")  # fmt: skip
TRAINED_TYPES = ("rotation", "noise", "erasing")
TRAINED_STRENGTHS = (0.2, 0.6, 1.0)
BASELINE_SEEDS = (0, 1)
SMALL = ["data.subset=200", "train.epochs=2", "cv.folds=5"]
# per-fold scores that are fractions (kept in [0, 1] when moved)
BOUNDED = ("train_accuracy", "val_accuracy", "val_balanced_accuracy", "val_f1_macro",
           "test_accuracy", "test_balanced_accuracy", "test_f1_macro")  # fmt: skip
FINAL = re.compile(r"^fold(\d+)/final_(.+)$")
JOB_SECONDS = 12  # spacing of the replicas' start times, like a sweep's jobs


@dataclass
class Template:
    """A real trained run: what its replicas copy."""

    tags: dict[str, str]
    folds: list[dict[str, float]]  # per fold: score -> final value
    wall_time_s: float
    curves: list[tuple[str, float, int, int]]  # key, value, step, ms after the run's start


def compose(*overrides: str) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from src.config import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=[*SMALL, *overrides])


def train_templates(store: Path) -> dict[tuple[str, float, int], Template]:
    """Train the real runs into their own store; (aug, strength, seed) -> its template."""
    from mlflow.tracking import MlflowClient

    from src.train import run

    uri = f"sqlite:///{store / 'templates' / 'mlflow.db'}"
    settings = [("none", 0.0, s) for s in BASELINE_SEEDS] + [
        (a, s, 0) for a in TRAINED_TYPES for s in TRAINED_STRENGTHS
    ]
    client, templates = MlflowClient(tracking_uri=uri), {}
    for aug, strength, seed in settings:
        cfg = compose(f"aug={aug}", f"aug.strength={strength}", f"seed={seed}",
                      f"tracking.uri={uri}")  # fmt: skip
        started = time.perf_counter()
        run_id = run(cfg).run_id
        print(f"trained {aug} {strength} seed {seed}: {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        real = client.get_run(run_id)
        folds: dict[int, dict[str, float]] = {}
        curves = []
        for key, value in real.data.metrics.items():
            match = FINAL.match(key)
            if match:
                folds.setdefault(int(match[1]), {})[match[2]] = value
            elif "/" in key:
                curves += [(key, m.value, m.step, m.timestamp - real.info.start_time)
                           for m in client.get_metric_history(run_id, key)]  # fmt: skip
        templates[(aug, strength, seed)] = Template(
            dict(real.data.tags),
            [folds[k] for k in sorted(folds)],
            real.data.metrics["wall_time_s"],
            curves,
        )
    return templates


def moved(template: Template, effect: float, rng: np.random.Generator) -> dict[str, float]:
    """The template's metrics, each fold moved by `effect` plus noise; aggregates recomputed."""
    per_fold = []
    for values in template.folds:
        shift = effect + rng.normal(0, 0.01)
        fold = {s: float(np.clip(values[s] + shift, 0, 1)) for s in BOUNDED if s in values}
        fold["gap"] = fold["train_accuracy"] - fold["val_accuracy"]
        fold["fit_time_s"] = values["fit_time_s"] * float(rng.uniform(0.9, 1.1))
        per_fold.append(fold)
    metrics = {f"fold{k}/final_{s}": v for k, fold in enumerate(per_fold) for s, v in fold.items()}
    for score in per_fold[0]:
        values = np.array([fold[score] for fold in per_fold])
        metrics[f"{score}_mean"] = float(values.mean())
        metrics[f"{score}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    fit = sum(f["fit_time_s"] for f in template.folds)
    metrics["wall_time_s"] = template.wall_time_s * metrics["fit_time_s_mean"] * len(per_fold) / fit
    return metrics


def build_store(store: Path, types: int, strengths: int, seeds: int) -> dict[str, Any]:
    """Train the templates, then write the sweep parent and its replicated job runs."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    from src import tracking
    from src.tracking import resume
    from src.train import prepare, run_name

    started = time.perf_counter()
    templates = train_templates(store)
    trained_s = time.perf_counter() - started
    uri = f"sqlite:///{store / 'mlflow.db'}"
    experiment_id = tracking.setup(OmegaConf.create({"uri": uri, "experiment": EXPERIMENT}))
    client = MlflowClient(tracking_uri=uri)
    grid_types = TYPES[:types]
    grid_strengths = [round((i + 1) / strengths, 2) for i in range(strengths)]
    jobs = seeds * (1 + types * strengths)
    grid = (f"aug=none,{','.join(grid_types)} "
            f"aug.strength={','.join(f'{s:g}' for s in grid_strengths)} seed=range({seeds}) "
            + " ".join(SMALL))  # fmt: skip
    t0 = int(time.time() * 1000) - (jobs + 1) * JOB_SECONDS * 1000
    parent = client.create_run(
        experiment_id,
        start_time=t0,
        tags={
            "mlflow.runName": f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')} (replicated)",
            "augsweep.role": "sweep",
            "augsweep.command": "python -m benchmarks.report_scale (replicas of real runs)",
            "augsweep.overrides": grid,
            "augsweep.sweep_dir": str(store),
            **resume.identity_tags(),
        },
    ).info.run_id
    client.log_metric(parent, "jobs_total", jobs, timestamp=t0)
    # the resolved config of each aug type, as src.train.prepare makes it (data loaded once each)
    jobs_of = {a: prepare(compose(f"aug={a}", f"tracking.uri={uri}"))[0]
               for a in ("none", *grid_types)}  # fmt: skip
    settings = [("none", 0.0)] + [(a, s) for a in grid_types for s in grid_strengths]
    written = 0
    started_writes = time.perf_counter()
    for seed in range(seeds):
        for aug, strength in settings:
            ti = len(TYPES) if aug == "none" else TYPES.index(aug)
            si = 0 if aug == "none" else grid_strengths.index(strength)
            if aug == "none":
                template = templates[("none", 0.0, BASELINE_SEEDS[seed % len(BASELINE_SEEDS)])]
                effect = 0.0
            else:
                near = min(TRAINED_STRENGTHS, key=lambda s: (abs(s - strength), s))
                template = templates[(TRAINED_TYPES[ti % len(TRAINED_TYPES)], near, 0)]
                gain, loss = np.random.default_rng([ti, si, 7]).uniform(0, 0.04, 2)
                effect = float(gain * strength - 1.5 * loss * strength**2)
            rng = np.random.default_rng([ti, si, seed])
            job = jobs_of[aug]
            job.aug.strength, job.seed = strength, seed
            start = t0 + (written + 1) * JOB_SECONDS * 1000
            metrics = moved(template, effect, rng)
            tags = {
                **template.tags,
                "mlflow.parentRunId": parent,
                "mlflow.runName": run_name(job),
                "augsweep.overrides": f"aug={aug} aug.strength={strength:g} seed={seed} "
                + " ".join(SMALL),
                "aug": aug,
                "strength": str(strength),
                "seed": str(seed),
                "config_hash": tracking.config_hash(job),
            }
            run_id = client.create_run(experiment_id, start_time=start, tags=tags).info.run_id
            end = start + int(metrics["wall_time_s"] * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, end, 0) for k, v in metrics.items()]
                + [Metric(k, v, start + ms, step) for k, v, step, ms in template.curves],
                params=[Param(k, v) for k, v in tracking.flatten(job).items()],
                synchronous=True,
            )
            client.set_terminated(run_id, "FINISHED", end_time=end)
            written += 1
            if written % 1000 == 0:
                print(f"replicated {written}/{jobs} runs", file=sys.stderr)
    end = t0 + (jobs + 1) * JOB_SECONDS * 1000
    client.log_batch(parent, metrics=[Metric(f"jobs_{k}", v, end, 0) for k, v in
                                      {"finished": jobs, "failed": 0, "killed": 0,
                                       "skipped": 0}.items()])  # fmt: skip
    client.set_terminated(parent, "FINISHED", end_time=end)
    info = {
        "uri": uri,
        "sweep_run_id": parent,
        "job_runs": jobs,
        "aug_types": list(grid_types),
        "strengths": grid_strengths,
        "seeds": seeds,
        "trained_runs": len(templates),
        "train_s": round(trained_s, 1),
        "replicate_s": round(time.perf_counter() - started_writes, 1),
        "build_s": round(time.perf_counter() - started, 1),
        "params_per_run": len(tracking.flatten(job)),
        "metrics_per_run": len(metrics) + len({k for k, *_ in template.curves}),
        "tags_per_run": len(tags),
    }
    (store / "store.json").write_text(json.dumps(info, indent=2))
    return info


def timed_process(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def stages(uri: str, out: Path, profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    """select, tidy, compare, export and the rest of main, each timed (or profiled) in turn."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from src import report

    mlflow.set_tracking_uri(uri)
    profiles: dict[str, pstats.Stats] = {}
    seconds: dict[str, float] = {}

    def stage(name: str, call: Any, *args: Any) -> Any:
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        result = call(*args)
        seconds[name] = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiles[name] = pstats.Stats(profiler)
            profiler.clear()
        return result

    def rest(rep: report.Report, selection: report.Selection) -> None:
        (out / "report.md").write_text(report.summary_markdown(rep, selection))
        MlflowClient().log_artifacts(selection.sweep_ids[0], str(out), artifact_path="report")

    selection = stage("select", report.select, EXPERIMENT)
    table, folds = stage("tidy", report.tidy, selection.runs)
    rep = stage("compare", report.compare, table, folds, "val_accuracy")
    stage("export", report.export, rep, out)
    stage("report.md + log_artifacts", rest, rep, selection)
    return {"seconds": seconds, "profiles": profiles, "rows": len(selection.runs),
            "settings": len(rep.comparison), "columns": selection.runs.shape[1]}  # fmt: skip


def where(func: tuple[str, int, str]) -> str:
    path, line, name = func
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{line}({name})" if line else name


def hotspots(profile: pstats.Stats, top: int) -> list[dict[str, Any]]:
    """The functions with the most cumulative time, the stage's own entry point left out."""
    rows = sorted(profile.stats.items(), key=lambda item: item[1][3], reverse=True)  # type: ignore[attr-defined]
    out = []
    for func, (_, calls, own, cumulative, _) in rows:
        name = where(func)
        if name.startswith(("benchmarks/", "<")) or "disable' of '_lsprof" in name:
            continue
        out.append({"function": name, "calls": calls, "own_s": round(own, 3),
                    "cumulative_s": round(cumulative, 3)})  # fmt: skip
        if len(out) == top:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="build the store here, or reuse it if built")
    parser.add_argument("--types", type=int, default=10, help=f"aug types, at most {len(TYPES)}")
    parser.add_argument("--strengths", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=100, help="job runs = seeds x (1 + T x S)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile even under the target")
    parser.add_argument("--top", type=int, default=12, help="hotspots listed per stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = (args.store or Path(tmp) / "store").resolve()
        if (store / "store.json").exists():
            info = json.loads((store / "store.json").read_text()) | {"reused": True}
            print(f"reusing the store in {store}", file=sys.stderr)
        else:
            store.mkdir(parents=True, exist_ok=True)
            info = build_store(store, args.types, args.strengths, args.seeds) | {"reused": False}
        uri = info["uri"]
        imports = [timed_process(["-c", "import src.report"]) for _ in range(args.repeats)]
        end_to_end = [
            timed_process(["-m", "src.report", "--tracking-uri", uri, "--out", f"{tmp}/e2e{i}"])
            for i in range(args.repeats)
        ]
        passes = [stages(uri, Path(tmp) / f"inproc{i}") for i in range(args.repeats)]
        median = statistics.median(end_to_end)
        profiled = None
        if args.profile or median >= TARGET_S:
            profiled = stages(uri, Path(tmp) / "profiled", cProfile.Profile())
    names = list(passes[0]["seconds"])
    per_stage = {n: [p["seconds"][n] for p in passes] for n in names}
    stage_median = {n: statistics.median(v) for n, v in per_stage.items()}
    met = median < TARGET_S
    hot = {n: hotspots(profiled["profiles"][n], args.top) for n in names} if profiled else {}
    made = (
        f"reused from an earlier run ({info['build_s']:.0f} s to build then)"
        if info["reused"]
        else f"built in {info['build_s']:.0f} s: {info['train_s']:.0f} s training "
        f"{info['trained_runs']} real runs, {info['replicate_s']:.0f} s writing the replicas"
    )
    markdown = (
        "# Report at scale: `python -m src.report` over 10,000 job runs\n\n"
        f"`python -m benchmarks.report_scale`: one SQLite MLflow store, one sweep parent run "
        f"with {info['job_runs']:,} FINISHED job runs ({len(info['aug_types'])} image aug types x "
        f"{len(info['strengths'])} strengths x {info['seeds']} seeds, plus an aug=none baseline "
        f"per seed), each with {info['params_per_run']} params, {info['metrics_per_run']} metric "
        f"keys and {info['tags_per_run']} tags; {passes[0]['settings']} settings compared. "
        f"Median of {args.repeats}; target under {TARGET_S:g} s.\n\n"
        "| | seconds |\n|---|---|\n"
        f'| `python -c "import src.report"` (import overhead) | '
        f"{statistics.median(imports):.2f} |\n"
        f"| **`python -m src.report` end to end** | **{median:.2f}** |\n"
        + "".join(
            f"| in process: {'`' + n + '()`' if n.isidentifier() else n} | "
            f"{stage_median[n]:.2f} |\n"
            for n in names
        )
        + f"| in process: sum of stages | {sum(stage_median.values()):.2f} |\n\n"
        f"- Target (end to end < {TARGET_S:g} s): {'met' if met else 'NOT met'}.\n"
        f"- End-to-end runs: {', '.join(f'{s:.2f}' for s in end_to_end)} s.\n\n"
        "How the store was made (not timed): real jobs were trained with `src.train.run` "
        f"({info['trained_runs']} runs: digits, data.subset=200, 5 folds x 2 epochs; aug=none "
        f"at seeds {', '.join(map(str, BASELINE_SEEDS))}; {', '.join(TRAINED_TYPES)} at "
        f"strengths {', '.join(map(str, TRAINED_STRENGTHS))}, seed 0) into a separate store, "
        "then replicated with `MlflowClient.create_run` + `log_batch` + `set_terminated`. Each "
        "replica has the real resolved config of its aug type, strength and seed as params and "
        "config hash, the tags of a sweep job, and the per-fold scores of the nearest trained "
        "run (by type, then strength) moved by a deterministic per-setting effect plus per-seed, "
        "per-fold noise (sd 0.01), with gap, means and standard deviations recomputed; the "
        "per-epoch curves (2 epochs) are the template's, unchanged. Store "
        f"{made}.\n"
    )
    if hot:
        markdown += (
            "\n## Profile (cProfile, one in-process pass; times inflated by profiling)\n\n"
            + "".join(
                f"### {n}: {profiled['seconds'][n]:.2f} s under the profiler\n\n"
                "| function | calls | own s | cumulative s |\n|---|---|---|---|\n"
                + "".join(
                    f"| `{h['function']}` | {h['calls']} | {h['own_s']:.2f} | "
                    f"{h['cumulative_s']:.2f} |\n"
                    for h in hot[n]
                )
                + "\n"
                for n in names
            )
        )
    result = {
        "store": info,
        "target_s": TARGET_S,
        "met": met,
        "import_s": imports,
        "end_to_end_s": end_to_end,
        "end_to_end_median_s": median,
        "stages_s": per_stage,
        "stages_median_s": stage_median,
        "rows": passes[0]["rows"],
        "columns": passes[0]["columns"],
        "settings": passes[0]["settings"],
        "profile": hot,
    }
    out = write("report_scale", result, markdown)
    print(out.read_text())


if __name__ == "__main__":
    main()
