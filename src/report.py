"""`python -m src.report`: where augmentation helps and where it hurts, read back from MLflow.

    python -m src.report                      # the latest sweep in experiment `augsweep`
    python -m src.report --sweep <parent run id> --metric val_f1_macro --out reports/mine
    python -m src.report --filter "tags.dataset = 'gunpoint'"

Every setting (dataset, model, aug type, strength) is compared fold by fold with the
no-augmentation baseline (`aug=none`, or strength 0) of the same dataset, model, seed, folds
and other config, and gets one of four verdicts (helps, hurts, equivalent within --margin,
undecided); see src/stats.py for the tests and the sequential rule of adaptive sweeps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from src import audit_report, plots, report_html, stats
from src.description import describe_report
from src.tracking import UNHASHED, tracking_uri
from src.tracking.runs import search

METRICS = (
    "val_accuracy",
    "val_balanced_accuracy",
    "val_f1_macro",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_f1_macro",
)
GROUP = ["dataset", "model", "context"]
FOLD_METRIC = re.compile(r"^metrics\.fold(\d+)/final_(.+)$")
# config keys that do not make two runs incomparable: the augmentation itself, the seed (paired
# on), and the keys left out of the config hash
NOT_CONTEXT = ("aug.", "seed", *UNHASHED)
ROLE = "tags.`augsweep.role`"
# set on a sweep's parent run by an adaptive sweep: its max_seeds, so the report replays the
# sequential rule the rounds were decided by (src/stats.py); absent: a fixed design
ADAPTIVE_TAG = "augsweep.adaptive.max_seeds"


class ReportError(Exception):
    """Nothing to report, said in one line."""


@dataclass
class Selection:
    runs: pd.DataFrame  # one row per job run, as mlflow.search_runs gives them
    sweep_ids: tuple[str, ...]  # the sweeps' parent runs (none for --filter)
    description: str
    max_seeds: int | None = None  # the adaptive design's, from the parents' ADAPTIVE_TAG


def select(
    experiment: str,
    sweeps: str | list[str] | None = None,
    filter_string: str | None = None,
) -> Selection:
    """The job runs to report: a filter's, one or more sweeps', or by default the latest
    sweep's.

    A sweep's runs are its children plus the earlier runs it reused instead of training again;
    a run two sweeps share counts once.
    """
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        raise ReportError(f"no experiment {experiment!r} in {mlflow.get_tracking_uri()}")
    experiment_id = found.experiment_id
    if filter_string:
        runs = mlflow.search_runs(
            [experiment_id],
            filter_string=f"{ROLE} = 'job' AND {filter_string}",
            max_results=100_000,
        )
        return Selection(runs, (), f"runs of experiment {experiment!r} where {filter_string}")
    client = MlflowClient()
    if sweeps is None:
        latest = client.search_runs(
            [experiment_id],
            f"{ROLE} = 'sweep'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if not latest:
            raise ReportError(
                f"no sweep in experiment {experiment!r}; run one first, e.g. "
                "python -m src.sweep -m aug=none,light,heavy"
            )
        sweeps = latest[0].info.run_id
    sweeps = [sweeps] if isinstance(sweeps, str) else list(dict.fromkeys(sweeps))
    parts, names, designs = [], [], set()
    for sweep in sweeps:
        parent = client.get_run(sweep)
        parts.append(search(experiment_id, parent=sweep))
        tags = parent.data.tags
        if ADAPTIVE_TAG in tags:
            designs.add(int(tags[ADAPTIVE_TAG]))
        reused = sorted(v for k, v in tags.items() if k.startswith("augsweep.skipped."))
        if reused:
            parts.append(search(experiment_id, run_ids=reused))
        names.append(f"{sweep} ({tags.get('mlflow.runName', sweep)})")
    runs = pd.concat(parts).drop_duplicates("run_id").reset_index(drop=True)
    what = f"sweep {names[0]}" if len(names) == 1 else f"sweeps {', '.join(names)}"
    return Selection(runs, tuple(sweeps), what, max(designs) if designs else None)


def _contexts(runs: pd.DataFrame, param_columns: list[str]) -> list[str]:
    """Per run, a hash of the config that must match for two runs to be compared."""
    kept = sorted(c for c in param_columns if not c.removeprefix("params.").startswith(NOT_CONTEXT))
    names = [c.removeprefix("params.") for c in kept]
    hashes: dict[tuple, str] = {}  # a sweep's runs share a few configs: hash each once

    def context(values: tuple) -> str:
        if values not in hashes:
            config = {n: v for n, v in zip(names, values, strict=True) if pd.notna(v)}
            text = json.dumps(config, sort_keys=True)
            hashes[values] = hashlib.sha256(text.encode()).hexdigest()[:8]
        return hashes[values]

    return [context(values) for values in runs[kept].itertuples(index=False, name=None)]


# (run id, score) -> that score of the run on each fold: {fold index: value}
Folds = dict[tuple[str, str], dict[int, float]]


def tidy(runs: pd.DataFrame) -> tuple[pd.DataFrame, Folds]:
    """One row per run (what it is, its status), and each run's per-fold scores."""
    if runs.empty:
        return pd.DataFrame(), {}
    params = [c for c in runs.columns if c.startswith("params.")]

    def tag(name: str) -> pd.Series:
        column = f"tags.{name}"
        return runs[column] if column in runs else pd.Series([None] * len(runs), index=runs.index)

    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": tag("mlflow.runName"),
            "status": runs["status"],
            "start_time": runs["start_time"],
            "dataset": tag("dataset"),
            "model": tag("model"),
            "aug": tag("aug"),
            "strength": pd.to_numeric(tag("strength"), errors="coerce"),
            "seed": pd.to_numeric(tag("seed"), errors="coerce"),
            "config_hash": tag("config_hash"),
            "folds_k": pd.to_numeric(runs.get("params.cv.folds"), errors="coerce"),
            "error": tag("augsweep.error"),
            "overrides": tag("augsweep.overrides"),
            "audit_label_drop": pd.to_numeric(
                runs.get("metrics.audit/label_drop", pd.Series(np.nan, index=runs.index))
            ),
        }
    )
    table["context"] = _contexts(runs, params)
    folds: Folds = {}
    run_ids = runs["run_id"].tolist()
    for column in sorted(runs.columns):
        match = FOLD_METRIC.match(column)
        if match:
            fold, score = int(match[1]), match[2]
            for run_id, value in zip(run_ids, runs[column].to_numpy(float).tolist(), strict=True):
                if value == value:  # not NaN
                    folds.setdefault((run_id, score), {})[fold] = value
    return table, folds


def _values(folds: Folds, run_ids: Iterable[str], score: str) -> np.ndarray:
    """One score of these runs on all their folds, in one array."""
    return np.array(
        [v for run_id in run_ids for v in folds.get((run_id, score), {}).values()], dtype=float
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _std(values: np.ndarray, empty: float = float("nan")) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else empty


def _rounds(folds: Folds, pairs: list[tuple[str, str]], metric: str) -> list[np.ndarray]:
    """Per pair (one per seed, in the order given): the differences, first minus second, on
    the folds both runs have."""
    rounds = []
    for treated, base in pairs:
        a, b = folds.get((treated, metric), {}), folds.get((base, metric), {})
        rounds.append(np.array([a[k] - b[k] for k in sorted(a.keys() & b.keys())], dtype=float))
    return rounds


@dataclass
class Report:
    comparison: pd.DataFrame  # one row per (dataset, model, aug, strength)
    strengths: pd.DataFrame  # one row per (dataset, model, aug): best and too-strong strength
    across: pd.DataFrame  # one row per (model, aug, strength) seen on two or more datasets
    baselines: pd.DataFrame  # per (dataset, model, context): the baseline's folds, mean, std
    not_finished: pd.DataFrame  # failed, killed and running runs, never averaged in
    messages: list[str]  # what could not be compared, and why
    metric: str
    margin: float = stats.MARGIN
    max_seeds: int | None = None  # the adaptive design the verdicts replay; None: fixed


# the across-datasets table counts the datasets that got each verdict
VERDICT_COUNTS = (stats.HELPS, stats.HURTS, stats.EQUIVALENT, stats.UNDECIDED)
# the columns each verdict adds to a table, from stats.Decision
DECISION_COLUMNS = ("ci_low", "ci_high", "half_width", "p_value", "p_holm", "p_tost",
                    "p_tost_holm", "verdict", "more_seeds")  # fmt: skip


def compare(
    table: pd.DataFrame,
    folds: Folds,
    metric: str,
    margin: float = stats.MARGIN,
    max_seeds: int | None = None,
) -> Report:
    """The comparison table, the per-type strength summary, and what was left out.

    `margin`: the equivalence margin in units of the metric; `max_seeds`: the adaptive
    design the sweep ran (its rounds are replayed look by look), None for a fixed design.
    """
    finished = table[table.status == "FINISHED"].sort_values("start_time")
    # a config trained twice (sweep.rerun=true) counts once: its latest run
    finished = finished.drop_duplicates("config_hash", keep="last")
    not_finished = table[table.status != "FINISHED"][
        ["run_name", "status", "overrides", "error", "run_id"]
    ].reset_index(drop=True)
    is_base = (finished.aug == "none") | (finished.strength == 0)
    # per (dataset, model, context, seed): the baseline run, aug=none before strength 0
    bases = finished[is_base].assign(order=lambda d: (d.aug == "none").astype(int))
    bases = bases.sort_values(["order", "start_time"]).drop_duplicates(
        [*GROUP, "seed"], keep="last"
    )
    keys = bases[[*GROUP, "seed"]].itertuples(index=False, name=None)
    base_of = dict(zip(keys, bases.run_id, strict=True))
    rows, messages, rounds, ratios = [], [], {}, {}
    treated = finished[~is_base]
    for key, group in treated.groupby([*GROUP, "aug", "strength"], sort=True):
        pairs = [
            (r.run_id, base_of[(*key[:3], r.seed)])
            for r in group.sort_values("seed").itertuples()
            if (*key[:3], r.seed) in base_of
        ]
        if not pairs:
            seeds = ",".join(str(int(s)) for s in sorted(group.seed.unique()))
            near = bases[(bases.dataset == key[0]) & (bases.model == key[1])]
            message = (
                f"no baseline for {key[0]}/{key[1]} (aug={key[3]}): add aug=none to the "
                f"sweep, e.g. python -m src.sweep -m aug=none,{key[3]}"
                if near.empty
                else f"no baseline with the same seed and config for {key[0]}/{key[1]} "
                f"(aug={key[3]}, seed {seeds}): add aug=none with seed={seeds} to the sweep"
            )
            if message not in messages:
                messages.append(message)
            continue
        values = _values(folds, group.run_id, metric)
        base_values = _values(folds, [b for _, b in pairs], metric)
        rounds[len(rows)] = _rounds(folds, pairs, metric)
        ratios[len(rows)] = 1 / (group.folds_k.iloc[0] - 1)
        paired = np.concatenate(rounds[len(rows)])
        rows.append(
            {
                "dataset": key[0],
                "model": key[1],
                "context": key[2],
                "aug": key[3],
                "strength": key[4],
                "runs": len(group),
                "folds": len(values),
                f"{metric}_mean": _mean(values),
                f"{metric}_std": _std(values),
                "baseline_mean": _mean(base_values),
                "diff": _mean(paired),
                "paired_folds": len(paired),
                "gap_mean": _mean(_values(folds, group.run_id, "gap")),
                "fit_time_s_mean": _mean(_values(folds, group.run_id, "fit_time_s")),
                audit_report.COLUMN: float(group.audit_label_drop.mean()),
            }
        )
    comparison = _with_verdicts(pd.DataFrame(rows), rounds, ratios, margin, max_seeds)
    strengths = _strengths(finished, bases, folds, metric, margin, max_seeds)
    baselines = pd.DataFrame(
        [
            {
                "dataset": key[0],
                "model": key[1],
                "context": key[2],
                "runs": len(group),
                "folds": len(values),
                "mean": _mean(values),
                "std": _std(values, empty=0.0),
            }
            for key, group in bases.groupby(GROUP)
            for values in [_values(folds, group.run_id, metric)]
        ],
        columns=[*GROUP, "runs", "folds", "mean", "std"],
    )
    across = across_datasets(comparison, margin)
    return Report(comparison, strengths, across, baselines, not_finished, messages, metric,
                  margin, max_seeds)  # fmt: skip


def _with_verdicts(frame, rounds, ratios, margin, max_seeds) -> pd.DataFrame:
    """The table with each row's verdict columns (stats.decide over all its rows: Holm over
    the whole table), ci_low..p_tost_holm after `diff`, verdict, margin and more_seeds last."""
    if frame.empty:
        return frame
    plan = stats.decide(rounds, ratios, margin=margin, max_seeds=max_seeds)
    decided = pd.DataFrame([plan.decisions[i] for i in range(len(frame))])[list(DECISION_COLUMNS)]
    at = frame.columns.get_loc("diff") + 1
    front, back = frame.iloc[:, :at], frame.iloc[:, at:]
    head = decided[["ci_low", "ci_high", "half_width"]]
    tests = decided[["p_value", "p_holm", "p_tost", "p_tost_holm"]]
    tail = decided[["verdict"]].assign(margin=margin, more_seeds=decided.more_seeds)
    return pd.concat([front, head, back.iloc[:, :1], tests, back.iloc[:, 1:], tail], axis=1)


def across_datasets(comparison: pd.DataFrame, margin: float = stats.MARGIN) -> pd.DataFrame:
    """Per (model, aug, strength): the direction of the effect over the datasets it was run on.

    Each dataset (and config) counts once, by its mean paired difference from the comparison
    table: how many gained and lost, the mean and median difference, how many datasets got
    each of the four verdicts (at `margin`), and the Wilcoxon signed-rank p-value over the
    datasets (the test Demsar, JMLR 2006, recommends for two methods over several datasets; no
    correction across rows). Empty unless some setting was run on two or more datasets.
    """
    columns = ["model", "aug", "strength", "datasets", "better", "worse", "mean_diff",
               "median_diff", *VERDICT_COUNTS, "margin", "p_wilcoxon"]  # fmt: skip
    if comparison.empty or comparison.dataset.nunique() < 2:
        return pd.DataFrame(columns=columns)
    rows = []
    for (model, aug, strength), group in comparison.groupby(["model", "aug", "strength"]):
        diffs = group["diff"].to_numpy(float)
        rows.append(
            {
                "model": model,
                "aug": aug,
                "strength": strength,
                "datasets": len(group),
                "better": int((diffs > 0).sum()),
                "worse": int((diffs < 0).sum()),
                "mean_diff": float(np.nanmean(diffs)),
                "median_diff": float(np.nanmedian(diffs)),
                **{name: int((group.verdict == name).sum()) for name in VERDICT_COUNTS},
                "margin": margin,
                "p_wilcoxon": stats.signed_rank(diffs),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _strengths(
    finished: pd.DataFrame,
    bases: pd.DataFrame,
    folds: Folds,
    metric: str,
    margin: float = stats.MARGIN,
    max_seeds: int | None = None,
) -> pd.DataFrame:
    """Per aug type: the best strength (0 = baseline) and where more starts to hurt.

    Every strength above the best gets a verdict against the best (paired by seed and fold,
    stats.decide over the strengths above the best: Holm over them), listed in `above_best`;
    `too_strong_from` is the lowest one whose verdict is hurts.
    """
    rows = []
    treated = finished[(finished.aug != "none") & (finished.strength > 0)]
    for key, group in treated.groupby([*GROUP, "aug"], sort=True):
        base = bases[(bases[GROUP] == pd.Series(key[:3], index=GROUP)).all(axis=1)]
        by_strength = {s: g for s, g in group.groupby("strength")}
        if not base.empty:
            by_strength[0.0] = base
        means = {s: _mean(_values(folds, g.run_id, metric)) for s, g in by_strength.items()}
        best = max(means, key=lambda s: (means[s], -s))
        best_runs = dict(zip(by_strength[best].seed, by_strength[best].run_id, strict=True))
        above = sorted(s for s in by_strength if s > best)
        rounds, ratios = {}, {}
        for s in above:
            pairs = [
                (r.run_id, best_runs[r.seed])
                for r in by_strength[s].sort_values("seed").itertuples()
                if r.seed in best_runs
            ]
            rounds[s] = _rounds(folds, pairs, metric)
            ratios[s] = 1 / (by_strength[s].folds_k.iloc[0] - 1)
        decided = stats.decide(rounds, ratios, margin=margin, max_seeds=max_seeds).decisions
        worse = [s for s in above if decided[s].verdict == stats.HURTS]
        first = decided[worse[0]] if worse else None
        rows.append(
            {
                "dataset": key[0],
                "model": key[1],
                "context": key[2],
                "aug": key[3],
                "strengths": ", ".join(f"{s:g}" for s in sorted(by_strength)),
                "best_strength": best,
                f"best_{metric}_mean": means[best],
                "too_strong_from": worse[0] if worse else float("nan"),
                "drop_vs_best": first.mean if first else float("nan"),
                "p_holm": first.p_holm if first else float("nan"),
                "above_best": "; ".join(f"{s:g} {decided[s].verdict}" for s in above),
                "margin": margin,
            }
        )
    return pd.DataFrame(rows)


def _drop_single_context(frame: pd.DataFrame) -> pd.DataFrame:
    """The context column only matters when a dataset/model pair was run in several configs."""
    if frame.empty or frame.groupby(["dataset", "model"]).context.nunique().max() > 1:
        return frame
    return frame.drop(columns="context")


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    """For reading: 4 decimals, p-values in 2 significant digits (tiny ones stay visible)."""
    frame = frame.copy()
    for column in frame.columns:
        if column.startswith("p_"):
            frame[column] = [f"{p:.2g}" if pd.notna(p) else "" for p in frame[column]]
    frame = frame.round(4)
    return frame.astype(object).where(frame.notna(), "")


# what export() writes; an earlier report's files of these names are removed first, so a folder
# never mixes two reports (other files, such as a study's README.md, are left alone)
OUTPUTS = ("comparison.*", "strengths.*", "across_datasets.*", "audit.*", "not_finished.csv",
           "report.md", "strength_curves_*.png", "difference_heatmap_*.png",
           "label_drop_*.png", "report.html")  # fmt: skip


def export(report: Report, out: Path) -> list[Path]:
    """CSV, Markdown, LaTeX and HTML tables, plots, and report.md, written to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for pattern in OUTPUTS:
        for stale in out.glob(pattern):
            stale.unlink()
    written = []
    tables = {"comparison": report.comparison, "strengths": report.strengths,
              "across_datasets": report.across,
              "audit": audit_report.agreement(report.comparison, report.margin)}  # fmt: skip
    for name, frame in tables.items():
        if frame.empty:
            continue
        frame = _drop_single_context(frame) if "dataset" in frame else frame
        frame.to_csv(out / f"{name}.csv", index=False)
        readable = shown(frame)
        (out / f"{name}.md").write_text(readable.to_markdown(index=False) + "\n")
        latex = readable.to_latex(index=False, float_format="{:.4g}".format, escape=True)
        (out / f"{name}.tex").write_text(latex)
        (out / f"{name}.html").write_text(readable.to_html(index=False, na_rep=""))
        written += [out / f"{name}.{ext}" for ext in ("csv", "md", "tex", "html")]
    if not report.not_finished.empty:
        report.not_finished.to_csv(out / "not_finished.csv", index=False)
        written.append(out / "not_finished.csv")
    comparison = report.comparison
    if comparison.empty:
        return written
    several = "context" in _drop_single_context(comparison).columns
    for (dataset, model, context), rows in comparison.groupby(GROUP):
        stem = f"{dataset}_{model}" + (f"_{context}" if several else "")
        base = report.baselines[
            (report.baselines.dataset == dataset)
            & (report.baselines.model == model)
            & (report.baselines.context == context)
        ].iloc[0]
        title = f"{dataset} / {model}: {report.metric}"
        figures = {
            f"strength_curves_{stem}.png": plots.strength_curves(rows, base, report.metric, title),
            f"difference_heatmap_{stem}.png": plots.difference_heatmap(rows, report.metric, title),
        }
        if rows[audit_report.COLUMN].notna().any():
            figures[f"label_drop_{stem}.png"] = plots.label_drop_curves(rows, title)
        for name, figure in figures.items():
            plots.save(figure, out / name)
            written.append(out / name)
    return written


def compute_line(runs: pd.DataFrame) -> str:
    """What the finished runs cost: their summed wall time, and first start to last end."""
    done = runs[runs.status == "FINISHED"]
    if done.empty or "metrics.wall_time_s" not in done:
        return ""
    job = duration(done["metrics.wall_time_s"].sum())
    span = duration((done.end_time.max() - done.start_time.min()).total_seconds())
    return (
        f"Compute: {len(done)} finished runs, {job} of job wall time (sum of wall_time_s); "
        f"{span} from the first run's start to the last run's end.\n"
    )


def duration(seconds: float) -> str:
    """`42 s`, `12.5 min` or `3.25 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def verdict_notes(report: Report) -> str:
    """What the comparison table's columns and verdicts mean, in report.md."""
    m, alpha = f"{report.margin:g}", f"{stats.ALPHA:g}"
    if report.max_seeds is None:
        design = (
            "Fixed design: all seeds pooled; ci_low..ci_high is the 95% interval; more_seeds "
            "is an estimate for planning, and adding those seeds then testing again is "
            "optional stopping: run them as an adaptive sweep (sweep.adaptive.max_seeds)."
        )
    else:
        design = (
            f"Adaptive design, at most {report.max_seeds} seeds: every seed was a look, each "
            "test's p-value is its repeated p-value over the looks (alpha spent half at the "
            "last look, half evenly over the others, Bonferroni across looks: valid however "
            "the sweep stopped), and ci_low..ci_high is the repeated 95% interval."
        )
    return (
        f"diff: mean paired difference (setting minus baseline) over seeds and folds. p_holm: "
        f"corrected resampled t-test (Nadeau and Bengio) of no difference, and p_tost_holm: "
        f"its equivalence test (TOST) of a difference within ±{m}, each Holm-adjusted over all "
        f"settings in this table.\n\n"
        f"- **helps** / **hurts**: p_holm < {alpha}: the setting is better / worse than the "
        "baseline.\n"
        f"- **equivalent**: p_tost_holm < {alpha} (and no difference shown): the effect lies "
        f"within ±{m} of the baseline.\n"
        f"- **undecided**: neither: these seeds cannot tell; more_seeds estimates how many more "
        "seeds would decide it if the mean and spread stayed as seen (inf: none would, the "
        "corrected variance has a floor of var/(k-1)).\n\n"
        f"Margin: ±{m} {report.metric}. {design}\n"
    )


def summary_markdown(report: Report, selection: Selection) -> str:
    """report.md: what was compared, the verdicts, and what was left out."""
    parts = [f"# augsweep report: {report.metric}\n", f"Runs: {selection.description}.\n"]
    parts += [line for line in [compute_line(selection.runs)] if line]
    if not report.comparison.empty:
        verdicts = _drop_single_context(report.comparison)[
            [
                c
                for c in (
                    "dataset",
                    "model",
                    "context",
                    "aug",
                    "strength",
                    "runs",
                    "folds",
                    f"{report.metric}_mean",
                    "diff",
                    "ci_low",
                    "ci_high",
                    "p_holm",
                    "p_tost_holm",
                    "verdict",
                    "margin",
                    "more_seeds",
                    audit_report.COLUMN,
                )
                if c in _drop_single_context(report.comparison)
            ]
        ]
        parts += [
            "## Against the no-augmentation baseline\n",
            shown(verdicts).to_markdown(index=False) + "\n",
            verdict_notes(report),
        ]
        audited = audit_report.markdown(
            audit_report.agreement(report.comparison, report.margin), report.margin
        )
        parts += [audited] if audited else []
    if not report.strengths.empty:
        parts += [
            "## Strength per augmentation type\n",
            shown(_drop_single_context(report.strengths)).to_markdown(index=False) + "\n",
            "above_best: each strength above the best and its verdict against the best, at "
            f"margin {report.margin:g} (Holm over those strengths); too_strong_from: the lowest "
            "of them that hurts (blank: none within the strengths tried).\n",
        ]
    if not report.across.empty:
        parts += [
            "## Across datasets\n",
            shown(report.across).to_markdown(index=False) + "\n",
            "better / worse: datasets whose mean paired difference is above / below 0; helps / "
            "hurts / equivalent / undecided: how many datasets got each verdict above; "
            "p_wilcoxon: signed-rank test of the per-dataset "
            "differences, uncorrected; with n datasets it cannot go below 2 / 2^n (0.0625 for "
            "5).\n",
        ]
    if report.messages:
        parts += ["## Not compared\n", *[f"- {m}\n" for m in report.messages]]
    if not report.not_finished.empty:
        parts += [
            "## Failed, killed or running runs (left out of every number)\n",
            report.not_finished.to_markdown(index=False) + "\n",
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.report", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("--experiment", default="augsweep", help="MLflow experiment name")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else mlruns/")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--sweep", nargs="+", help="the parent run id of one or more sweeps (default: the latest)"
    )
    which.add_argument("--filter", help="an MLflow filter string over the job runs instead")
    parser.add_argument(
        "--metric",
        default="val_accuracy",
        choices=METRICS,
        help="per-fold score to compare (default: val_accuracy)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: reports/<sweep>)")
    parser.add_argument(
        "--margin",
        type=float,
        default=stats.MARGIN,
        help=f"equivalence margin in units of the metric (default: {stats.MARGIN:g})",
    )
    parser.add_argument(
        "--max-seeds",
        type=int,
        help="replay an adaptive sweep's sequential rule with this max_seeds "
        f"(default: the sweep's tag {ADAPTIVE_TAG}, else a fixed design)",
    )
    parser.add_argument("--ui-url", help="the MLflow UI report.html links runs to (default: a "
                        f"tracking server's URL, else {report_html.DEFAULT_UI})")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="print only where the files went")
    args = parser.parse_args(argv)
    if not args.margin > 0 or (args.max_seeds is not None and args.max_seeds < 1):
        parser.error(f"--margin={args.margin} --max-seeds={args.max_seeds}; accepted: "
                     "a margin > 0, max seeds >= 1")  # fmt: skip
    uri = tracking_uri({"uri": args.tracking_uri})
    mlflow.set_tracking_uri(uri)
    try:
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise ReportError(f"no MLflow store at {uri}; run a sweep first")
        selection = select(args.experiment, args.sweep, args.filter)
        table, folds = tidy(selection.runs)
        if table.empty:
            raise ReportError(f"no job runs in {selection.description}")
        max_seeds = args.max_seeds or selection.max_seeds
        try:
            report = compare(table, folds, args.metric, args.margin, max_seeds)
        except ValueError as err:  # a setting with more seeds than the design allows
            raise ReportError(f"{err}; pass --max-seeds with the sweep's max_seeds") from None
    except (ReportError, mlflow.exceptions.MlflowException) as err:
        print(f"augsweep: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    out = args.out or Path("reports") / (
        f"sweep-{selection.sweep_ids[0]}" if selection.sweep_ids else "selection"
    )
    written = export(report, out)
    text = summary_markdown(report, selection)
    (out / "report.md").write_text(text)
    written.append(out / "report.md")
    written.append(report_html.render(report, selection, table, out, uri, args.ui_url))
    if selection.sweep_ids:  # the report's own files, not whatever else is in `out`
        with tempfile.TemporaryDirectory() as staging:
            for path in written:
                shutil.copy2(path, staging)
            for sweep_id in selection.sweep_ids:
                MlflowClient().log_artifacts(sweep_id, staging, artifact_path="report")
        for sweep_id in selection.sweep_ids:
            describe_report(sweep_id, report)
    if not args.quiet:
        print(text)
    logged = f" and to runs {', '.join(selection.sweep_ids)} (artifacts/report)"
    print(f"augsweep: wrote {len(written)} files to {out}{logged if selection.sweep_ids else ''}; "
          f"open {out / 'report.html'}")  # fmt: skip
    if report.comparison.empty:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
