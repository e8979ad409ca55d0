"""The description of a sweep's parent run (tag `mlflow.note.content`, shown as Markdown at the
top of the run's page in the MLflow UI): how many jobs ran, the best setting, the verdicts, and
where the report is.

Written twice: when the sweep ends (the jobs and the best by `optimize_metric`; the report not
made yet) and again when the report is logged on the run (the best and the verdicts as the
report has them, and its files).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

from src.tracking import tags
from src.tracking.context import varying
from src.tracking.store import search_all

NOTE_TAG = "mlflow.note.content"
REPORT_FILES = "`report/report.md` (open it here under Artifacts) and `report/report.html`"
MAX_VERDICTS = 12  # listed in the description; the report has them all


def jobs_line(counts: dict[str, Any]) -> str:
    """`**4 jobs**: 3 finished, 1 failed, 0 skipped (already in the store).`"""
    n = {k: int(counts.get(k, 0)) for k in ("finished", "failed", "killed", "skipped")}
    total = sum(n.values())
    killed = f", {n['killed']} killed" if n["killed"] else ""
    jobs = f"**{total} job{'s' if total != 1 else ''}**"
    return (
        f"{jobs}: {n['finished']} finished, {n['failed']} failed{killed}, {n['skipped']} skipped "
        "(already in the store)."
    )


def best_job(parent: str, metric: str, swept: list[str]) -> str:
    """The sweep's best job by `metric` (its children and the runs it reused), in one line."""
    client = MlflowClient()
    run = client.get_run(parent)
    children = search_all(
        [run.info.experiment_id],
        f"tags.`{tags.PARENT}` = '{parent}' AND attributes.status = 'FINISHED'",
    )
    reused = [v for k, v in run.data.tags.items() if k.startswith(tags.SKIPPED_PREFIX)]
    runs = [*children, *(client.get_run(r) for r in reused)]
    scored = [r for r in runs if metric in r.data.metrics]
    if not scored:
        return f"No finished job has {metric}."
    best = max(scored, key=lambda r: (r.data.metrics[metric], -r.info.start_time))
    found = best.data.tags
    what = " ".join(varying(found.get(tags.OVERRIDES, "").split(), swept))
    what = what or found.get("mlflow.runName", best.info.run_id)
    return (f"**Best by {metric}**: `{what}`, {best.data.metrics[metric]:.4f} "
            f"(run {found.get('mlflow.runName', best.info.run_id)}).")  # fmt: skip


def describe_sweep(parent: str, counts: dict[str, int], swept: list[str], metric: str) -> str:
    """The description a sweep's parent run gets when the sweep ends."""
    text = "\n\n".join([
        f"augsweep sweep. {jobs_line(counts)}",
        best_job(parent, metric, swept),
        f"**Report**: not made yet; `python -m src.report --sweep {parent}` writes it into this "
        f"run's artifacts: {REPORT_FILES}.",
    ])  # fmt: skip
    MlflowClient().set_tag(parent, NOTE_TAG, text)
    return text


def best_settings(report: Any) -> list[dict[str, Any]]:
    """Per dataset and model of the report: its best setting by the metric's mean, the
    baseline's mean, and whether no augmentation was best."""
    comparison, mean = report.comparison, f"{report.metric}_mean"
    out = []
    if comparison.empty:
        return out
    for (dataset, model), rows in comparison.groupby(["dataset", "model"], sort=True):
        bases = report.baselines[(report.baselines.dataset == dataset)
                                 & (report.baselines.model == model)]  # fmt: skip
        best = rows.loc[rows[mean].idxmax()]
        base_mean = float(bases["mean"].max()) if not bases.empty else float("nan")
        out.append({
            "dataset": dataset, "model": model, "aug": best["aug"],
            "strength": float(best["strength"]), "mean": float(best[mean]),
            "baseline_mean": base_mean, "verdict": best["verdict"],
            "baseline_best": bool(pd.notna(base_mean) and base_mean >= best[mean]),
        })  # fmt: skip
    return out


def describe_report(parent: str, report: Any) -> str:
    """The description a sweep's parent run gets once its report is logged on it."""
    client = MlflowClient()
    metrics = client.get_run(parent).data.metrics
    counts = {k: metrics.get(f"jobs_{k}", 0) for k in ("finished", "failed", "killed", "skipped")}
    parts = [f"augsweep sweep. {jobs_line(counts)}"]
    bests = best_settings(report)
    several = len(bests) > 1
    for best in bests:
        where = f" on {best['dataset']}/{best['model']}" if several else ""
        if best["baseline_best"]:
            parts.append(f"**Best by {report.metric}**{where}: no augmentation, "
                         f"{best['baseline_mean']:.4f}; no setting beat it.")  # fmt: skip
        else:
            parts.append(
                f"**Best by {report.metric}**{where}: `aug={best['aug']}` at strength "
                f"{best['strength']:g}, {best['mean']:.4f} against {best['baseline_mean']:.4f} "
                f"without augmentation (verdict: {best['verdict']})."
            )
    rows = report.comparison
    if not rows.empty:
        listed = rows.assign(_d=-rows["diff"].abs()).sort_values("_d").head(MAX_VERDICTS)
        verdicts = "; ".join(
            (f"{r.dataset}/{r.model} " if several else "")
            + f"{r.aug} {r.strength:g}: {r.verdict} ({r.diff:+.4f})"
            for r in listed.itertuples()
        )
        more = f" (and {len(rows) - MAX_VERDICTS} more)" if len(rows) > MAX_VERDICTS else ""
        parts.append(f"**Verdicts** against no augmentation ({report.metric}, margin "
                     f"±{report.margin:g}): {verdicts}{more}.")  # fmt: skip
    elif report.messages:
        parts.append(f"**Not compared**: {report.messages[0]}")
    parts.append(
        f"**Report**: this run's artifacts {REPORT_FILES} (download it and open it in "
        "a browser: verdicts, sortable tables, plots, previews, a link to every run)."
    )
    text = "\n\n".join(parts)
    client.set_tag(parent, NOTE_TAG, text)
    return text
