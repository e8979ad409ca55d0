"""Series baselines against Fawaz et al. 2019: each series model with its recipe, no augmentation.

    python -m benchmarks.baselines [--seeds 0,1] [--only fcn/gunpoint,lstm] [--max-jobs N]
    python -m benchmarks.baselines --table     # the table from the jobs done so far

A job is one model on one dataset with one seed: `model=M train=M aug=none cv.folds=5 seed=S`
through `src.train.run` (the engine, the 5 folds trained together) into a temporary SQLite
store, each job in a fresh process. Each of the 5 fold models (trained on four fifths of the
official training split, stopped and its best weights chosen on the fifth) scores the official
test split; a job's figures go to `results/baselines/<model>-<dataset>-seed<S>.json` as soon as
it ends, so the benchmark resumes where it stopped (jobs with a file are not run again) and
every finished job survives an interrupted run.

The table (`results/baselines.{md,json}`) gives per model and dataset the test accuracy over
every fold model of the seeds done (mean, sample std, count), Fawaz et al.'s mean over their
runs (`reference/fawaz2019.csv`), the difference in points, whether the target is met (FCN and
ResNet within 3 points of Fawaz et al.; at least 0.95 on BasicMotions, which they do not
report; the LSTM clearly above chance: its lower 95% bound over the fold models above the test
split's majority-class share), the epochs each fold trained (median) and the seconds per job.

Order: FCN first (the baseline the series studies build on), then the LSTM, then the ResNet
(about twice the FCN's arithmetic); within a model the cheapest datasets first; all jobs of
seed 0 before those of seed 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.machine import RESULTS, describe, write

ROOT = Path(__file__).resolve().parent.parent
JOBS_DIR = RESULTS / "baselines"
VARIANTS_DIR = JOBS_DIR / "variants"
REFERENCE = Path(__file__).resolve().parent / "reference" / "fawaz2019.csv"
FOLDS = 5
MODELS = ("fcn", "lstm", "resnet")
# cheapest first: training samples x length x channels of the official training split
DATASETS = {
    "italy_power_demand": "ItalyPowerDemand",
    "basic_motions": "BasicMotions",
    "gunpoint": "GunPoint",
    "arrow_head": "ArrowHead",
    "japanese_vowels": "JapaneseVowels",
}
WITHIN_POINTS = 3.0  # FCN and ResNet: at most this far below Fawaz et al.
BASIC_MOTIONS_MIN = 0.95


@dataclass(frozen=True)
class Variant:
    """A recipe change tried beside the recipe: `label` names its files, `overrides` are
    Hydra overrides on top of the job's (e.g. train.early_stopping.start_from_epoch=200), an
    override of a key the job sets replacing it (train=fcn_fast: another recipe)."""

    label: str
    overrides: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Variant:
        label, _, rest = text.partition(":")
        overrides = tuple(o for o in rest.split(",") if o)
        if (
            not re.fullmatch(r"[A-Za-z0-9_]+", label)
            or not overrides
            or any("=" not in o for o in overrides)
        ):
            raise ValueError(
                f"--variant {text!r}: expected LABEL:KEY=VALUE[,KEY=VALUE...] with LABEL made "
                "of letters, digits and _"
            )
        return cls(label, overrides)


def variant_rows() -> list[str]:
    """The variants run so far, each beside the recipe's job of the same seed."""
    rows = []
    for path in sorted(VARIANTS_DIR.glob("*.json")) if VARIANTS_DIR.exists() else []:
        job = json.loads(path.read_text())
        recipe = job_path(job["model"], job["dataset"], job["seed"])
        base = json.loads(recipe.read_text()) if recipe.exists() else None
        acc = job["test_accuracy"]
        base_text = f"{statistics.fmean(base['test_accuracy']):.3f}" if base else "not run"
        extra = " ".join(job["variant_overrides"])
        rows.append(
            f"| {job['dataset']} | {job['model']} | {job['seed']} | `{extra}` | "
            f"{statistics.fmean(acc):.3f} ± {statistics.stdev(acc):.3f} | {base_text} | "
            f"{statistics.median(job['epochs_trained']):.0f} | {job['job_s']:.0f} |"
        )
    return rows


def job_name(model: str, dataset: str, seed: int) -> str:
    return f"{model}-{dataset}-seed{seed}"


def planned(seeds: list[int], only: list[str]) -> list[tuple[str, str, int]]:
    """Every job in the order they run; `only` keeps jobs matching MODEL or MODEL/DATASET."""
    jobs = [(m, d, s) for s in seeds for m in MODELS for d in DATASETS]
    if only:
        jobs = [j for j in jobs if j[0] in only or f"{j[0]}/{j[1]}" in only]
    return jobs


def run_job(model: str, dataset: str, seed: int, store: str, extra: tuple[str, ...] = ()) -> dict:
    """One job through `src.train.run`: its per-fold figures and seconds (`extra`: overrides
    on top, for a quick check of the benchmark itself)."""
    import numpy as np
    from hydra import compose, initialize_config_dir

    from src.config import CONF_DIR
    from src.data import load_dataset
    from src.study import override_key
    from src.train import run

    job = [f"data={dataset}", f"model={model}", f"train={model}", "aug=none",
           f"cv.folds={FOLDS}", f"seed={seed}", "sweep.rerun=true",
           f"tracking.uri=sqlite:///{store}/mlflow.db"]  # fmt: skip
    # an override of `extra` replaces the job's of the same key (train=fcn_fast for train=fcn)
    replaced = {override_key(o) for o in extra}
    overrides = [o for o in job if override_key(o) not in replaced] + list(extra)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    started = time.perf_counter()
    result = run(cfg)
    seconds = time.perf_counter() - started
    import mlflow

    metrics = mlflow.get_run(result.run_id).data.metrics  # per fold: fold<k>/final_<score>
    data = load_dataset(cfg.data)
    y_test = np.asarray(data.y_test)
    majority = float(np.bincount(y_test).max() / len(y_test))

    def folds(name: str) -> list[float]:
        return [float(metrics[f"fold{k}/final_{name}"]) for k in range(FOLDS)]

    return {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "overrides": [o for o in overrides if not o.startswith(("sweep.", "tracking."))],
        "recipe": {k: cfg.train[k] for k in ("epochs", "batch_size", "learning_rate")},
        "test_accuracy": folds("test_accuracy"),
        "val_accuracy": folds("val_accuracy"),
        "epochs_trained": folds("epochs_trained"),
        "test_majority_share": majority,
        "n_classes": int(data.n_classes),
        "job_s": seconds,
    }


def child(model: str, dataset: str, seed: int, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as store:
        print(json.dumps(run_job(model, dataset, seed, store, tuple(extra))))


def job_path(model: str, dataset: str, seed: int, variant: Variant | None = None) -> Path:
    """A job's file: results/baselines/<job>.json, or variants/<job>-<label>.json."""
    if variant is None:
        return JOBS_DIR / f"{job_name(model, dataset, seed)}.json"
    return VARIANTS_DIR / f"{job_name(model, dataset, seed)}-{variant.label}.json"


def measure(model: str, dataset: str, seed: int, variant: Variant | None = None) -> Path:
    """Run one job in a fresh process; its figures written to its file, with the machine."""
    extra = list(variant.overrides) if variant else []
    command = [sys.executable, "-m", "benchmarks.baselines", "--child", model, dataset, str(seed),
               *extra]  # fmt: skip
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{job_name(model, dataset, seed)} failed:\n{out.stderr[-3000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    path = job_path(model, dataset, seed, variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    if variant is not None:
        figures |= {"variant": variant.label, "variant_overrides": list(variant.overrides)}
    path.write_text(json.dumps({"machine": describe(), **figures}, indent=2) + "\n")
    return path


def reference() -> dict[tuple[str, str], dict[str, float]]:
    """Fawaz et al.'s (classifier, UCR name) -> mean, std, iterations."""
    with REFERENCE.open() as f:
        return {
            (row["classifier_name"], row["dataset_name"]): {
                "mean": float(row["accuracy_mean"]),
                "std": float(row["accuracy_std"]),
                "iterations": int(row["iterations"]),
            }
            for row in csv.DictReader(f)
        }


def lower_bound(values: list[float]) -> float:
    """The lower end of a two-sided 95% t interval of the mean (the mean for one value)."""
    from scipy import stats

    if len(values) < 2:
        return values[0]
    sem = statistics.stdev(values) / math.sqrt(len(values))
    return statistics.fmean(values) - stats.t.ppf(0.975, len(values) - 1) * sem


def verdict(model: str, dataset: str, mean: float, low: float, majority: float, ref) -> str:
    """Whether the job meets the issue's target, and by how much it misses."""
    if model == "lstm":
        ok = low > majority
        return f"{'met' if ok else 'NOT met'} (95% low {low:.3f} vs majority {majority:.3f})"
    if dataset == "basic_motions":
        ok = mean >= BASIC_MOTIONS_MIN
        gap = (mean - BASIC_MOTIONS_MIN) * 100
        return f"{'met' if ok else 'NOT met'} ({gap:+.1f} points vs {BASIC_MOTIONS_MIN})"
    if ref is None:
        return "no reference"
    gap = (mean - ref["mean"]) * 100
    ok = gap >= -WITHIN_POINTS
    return f"{'met' if ok else 'NOT met'} ({gap:+.1f} points)"


def table(seeds: list[int]) -> Path:
    """results/baselines.{md,json} from the job files there are: of `seeds` and of every seed
    with a finished job (a run of seed 1 alone keeps seed 0's rows)."""
    found = {int(p.stem.rsplit("-seed", 1)[1]) for p in JOBS_DIR.glob("*-seed*.json")}
    seeds = sorted(set(seeds) | found)
    ref = reference()
    rows, summary = [], {}
    for model in MODELS:
        for dataset, ucr in DATASETS.items():
            jobs = [
                json.loads((JOBS_DIR / f"{job_name(model, dataset, s)}.json").read_text())
                for s in seeds
                if (JOBS_DIR / f"{job_name(model, dataset, s)}.json").exists()
            ]
            theirs = ref.get((model, ucr))
            theirs_text = f"{theirs['mean']:.3f} ± {theirs['std']:.3f}" if theirs else "—"
            if not jobs:
                rows.append(f"| {dataset} | {model} | not run yet | | {theirs_text} | | | | |")
                continue
            acc = [a for j in jobs for a in j["test_accuracy"]]
            mean = statistics.fmean(acc)
            std = statistics.stdev(acc) if len(acc) > 1 else float("nan")
            low = lower_bound(acc)
            majority = jobs[0]["test_majority_share"]
            diff = f"{(mean - theirs['mean']) * 100:+.1f}" if theirs else "—"
            epochs = statistics.median(e for j in jobs for e in j["epochs_trained"])
            job_s = statistics.fmean(j["job_s"] for j in jobs)
            met = verdict(model, dataset, mean, low, majority, theirs)
            summary[f"{model}/{dataset}"] = {"mean": mean, "std": std, "n": len(acc),
                                             "seeds": [j["seed"] for j in jobs],
                                             "fawaz": theirs, "majority": majority,
                                             "median_epochs": epochs, "job_s": job_s,
                                             "target": met}  # fmt: skip
            rows.append(
                f"| {dataset} | {model} | {mean:.3f} ± {std:.3f} | {len(acc)} "
                f"({len(jobs)} seed{'s' if len(jobs) > 1 else ''}) | {theirs_text} | {diff} | "
                f"{met} | {epochs:.0f} | {job_s:.0f} |"
            )
    markdown = (
        "# Series baselines beside Fawaz et al. 2019\n\n"
        f"`python -m benchmarks.baselines --seeds {','.join(map(str, seeds))}`: each model with "
        "its recipe (`train=<model>`), no augmentation, 5 folds of the official training split "
        "per seed, every fold model scored on the official test split.\n\n"
        "| dataset | model | test accuracy (mean ± std over fold models) | fold models | "
        "Fawaz et al. | difference, points | target | epochs trained (median) | s per job |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Targets: FCN and ResNet within {WITHIN_POINTS:.0f} points of Fawaz et al. (at least "
        f"{BASIC_MOTIONS_MIN} on BasicMotions, which they do not report); the LSTM clearly above "
        "chance (the lower end of the 95% t interval over its fold models above the test split's "
        "majority-class share). Seconds per job: one job of 5 folds trained together, on the "
        "machine below (each job's own machine is in its file under results/baselines/).\n"
    )
    variants = variant_rows()
    if variants:
        markdown += (
            "\n## Variants of a recipe\n\n"
            "`python -m benchmarks.baselines --seeds S --only MODEL/DATASET --variant "
            "LABEL:KEY=VALUE,...`: the same job with the overrides on top, beside the recipe's "
            "job of the same seed (results/baselines/variants/).\n\n"
            "| dataset | model | seed | overrides | test accuracy | the recipe's, same seed | "
            "epochs trained (median) | s per job |\n|---|---|---|---|---|---|---|---|\n"
            + "\n".join(variants)
            + "\n"
        )
    return write("baselines", {"seeds": seeds, "summary": summary}, markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--only", default="", help="comma-separated MODEL or MODEL/DATASET")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after this many jobs")
    parser.add_argument("--table", action="store_true", help="only rebuild the table")
    parser.add_argument("--variant", default=None,
                        help="LABEL:KEY=VALUE,...: run the jobs with these overrides on top, "
                             "into results/baselines/variants/")  # fmt: skip
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.child[3:])
        return
    try:
        variant = Variant.parse(args.variant) if args.variant else None
    except ValueError as err:
        parser.error(str(err))
    seeds = [int(s) for s in args.seeds.split(",")]
    only = [o for o in args.only.split(",") if o]
    bad = [o for o in only if o.split("/")[0] not in MODELS
           or ("/" in o and o.split("/")[1] not in DATASETS)]  # fmt: skip
    if bad:
        parser.error(f"--only {bad[0]!r}: expected MODEL or MODEL/DATASET with MODEL in "
                     f"{list(MODELS)} and DATASET in {list(DATASETS)}")  # fmt: skip
    if not args.table:
        todo = [j for j in planned(seeds, only) if not job_path(*j, variant).exists()]
        for done, job in enumerate(todo[: args.max_jobs]):
            print(f"[{done + 1}/{len(todo)}] {job_name(*job)} ...", flush=True)
            path = measure(*job, variant)
            figures = json.loads(path.read_text())
            print(f"  test accuracy {statistics.fmean(figures['test_accuracy']):.3f} in "
                  f"{figures['job_s']:.0f} s -> {path.relative_to(ROOT)}", flush=True)  # fmt: skip
            table(seeds)
    print(table(seeds).read_text())


if __name__ == "__main__":
    main()
