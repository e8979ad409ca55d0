"""The report written out: tables as CSV, Markdown, LaTeX and HTML, the figures, and report.md.

src/report/page.py writes report.html from the same tables.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from src import plots, stats
from src.report import audit
from src.report.comparison import GROUP, Report
from src.report.selection import Selection


def drop_single_context(frame: pd.DataFrame) -> pd.DataFrame:
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
              "audit": audit.agreement(report.comparison, report.margin)}  # fmt: skip
    for name, frame in tables.items():
        if frame.empty:
            continue
        frame = drop_single_context(frame) if "dataset" in frame else frame
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
    several = "context" in drop_single_context(comparison).columns
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
        if rows[audit.COLUMN].notna().any():
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
        verdicts = drop_single_context(report.comparison)[
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
                    audit.COLUMN,
                )
                if c in drop_single_context(report.comparison)
            ]
        ]
        parts += [
            "## Against the no-augmentation baseline\n",
            shown(verdicts).to_markdown(index=False) + "\n",
            verdict_notes(report),
        ]
        audited = audit.markdown(audit.agreement(report.comparison, report.margin), report.margin)
        parts += [audited] if audited else []
    if not report.strengths.empty:
        parts += [
            "## Strength per augmentation type\n",
            shown(drop_single_context(report.strengths)).to_markdown(index=False) + "\n",
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
