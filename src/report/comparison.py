"""The paired comparisons: every setting against its no-augmentation baseline, fold by fold.

Every setting (dataset, model, aug type, strength) is compared fold by fold with the
no-augmentation baseline (`aug=none`, or strength 0) of the same dataset, model, seed, folds
and other config, and gets one of four verdicts (helps, hurts, equivalent within the margin,
undecided); src/stats.py holds the tests and the sequential rule of adaptive sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from src import stats
from src.report import audit
from src.report.selection import Folds

# the per-fold scores a report compares on (`--metric`)
METRICS = (
    "val_accuracy",
    "val_balanced_accuracy",
    "val_f1_macro",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_f1_macro",
)
# what a setting shares with its baseline (context: the hash of the rest of the config)
GROUP = ["dataset", "model", "context"]


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
                audit.COLUMN: float(group.audit_label_drop.mean()),
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
