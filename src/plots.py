"""Figures: a run's learning curves and confusion matrix; a report's strength curves, heatmap and
audit label-drop curves."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from src import stats  # noqa: E402


def learning_curves(histories: list[dict[str, list[float]]], title: str) -> Figure:
    """Loss and accuracy per epoch: each fold thin, the mean over folds thick."""
    # fixed margins: matplotlib's constrained layout is slower, and a figure is drawn every job
    # (benchmarks/README.md, a job's figures)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.86, wspace=0.22)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, color in ((metric, "tab:blue"), (f"val_{metric}", "tab:orange")):
            # folds that stopped early have shorter curves: NaN after their last epoch
            longest = max(len(h[key]) for h in histories)
            curves = np.full((len(histories), longest), np.nan)
            for row, h in zip(curves, histories, strict=True):
                row[: len(h[key])] = h[key]
            epochs = np.arange(1, longest + 1)
            for curve in curves:
                ax.plot(epochs, curve, color=color, alpha=0.25, linewidth=0.8)
            label = "validation" if key.startswith("val_") else "train (augmented)"
            mean = [np.nanmean(column) for column in curves.T]  # over the folds still training
            ax.plot(epochs, mean, color=color, linewidth=2, label=label)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} ({len(histories)} folds)")
        ax.legend()
    fig.suptitle(title)
    return fig


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...], title: str
) -> Figure:
    """Counts of true against predicted class; empty cells left blank.

    Drawn directly (one image, a number in each non-empty cell): scikit-learn's
    ConfusionMatrixDisplay writes a number in every cell, and text is most of a figure's
    drawing time (`python -m benchmarks.run_figures`).
    """
    from sklearn.metrics import confusion_matrix as counts_of  # only training needs it here

    n = len(classes)
    counts = counts_of(y_true, y_pred, labels=range(n))
    side = 1.5 + 0.5 * n
    fig, ax = plt.subplots(figsize=(side, side))
    longest = max(len(str(c)) for c in classes)  # tick labels: room for the longest class name
    margin = (0.5 + 0.09 * longest) / side
    fig.subplots_adjust(left=margin, bottom=margin, right=1 - 0.15 / side, top=1 - 0.75 / side)
    ax.imshow(counts, cmap="viridis", vmin=0, interpolation="nearest")
    high = counts.max() / 2
    for i, j in zip(*np.nonzero(counts), strict=True):
        colour = "black" if counts[i, j] > high else "white"
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour)
    ax.set_xticks(range(n), classes, rotation="vertical")
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="Predicted label", ylabel="True label")
    ax.set_title("\n".join(textwrap.wrap(title, int(7 * side))), fontsize="medium")
    return fig


def log(fig: Figure, artifact_file: str) -> None:
    """Log a figure to the active MLflow run and free it."""
    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)


def save(fig: Figure, path: Path) -> None:
    """Write a figure to a file and free it."""
    fig.savefig(path, dpi=120)
    plt.close(fig)


def strength_curves(rows: pd.DataFrame, baseline: pd.Series, metric: str, title: str) -> Figure:
    """Metric against strength, one panel per aug type (shared axes), each with the baseline as
    a band (mean ± 1 sd) and strength 0 at the baseline's mean.

    Filled markers: significantly different from the baseline (Holm-adjusted); hollow: not.
    """
    groups = list(rows.sort_values("strength").groupby("aug"))
    cols = min(4, len(groups))
    nrows = -(-len(groups) // cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(1 + 3 * cols, 0.8 + 2.4 * nrows), sharex=True, sharey=True,
        squeeze=False, constrained_layout=True,
    )  # fmt: skip
    low, high = baseline["mean"] - baseline["std"], baseline["mean"] + baseline["std"]
    for ax, (aug, group) in zip(axes.flat, groups, strict=False):
        ax.axhspan(low, high, color="grey", alpha=0.2, label="no augmentation (mean ± 1 sd)")
        ax.axhline(baseline["mean"], color="grey", linewidth=1)
        x = [0.0, *group.strength]
        y = [baseline["mean"], *group[f"{metric}_mean"]]
        ax.plot(x, y, color="tab:blue")
        ax.errorbar(group.strength, group[f"{metric}_mean"], yerr=group[f"{metric}_std"],
                    fmt="none", ecolor="tab:blue", alpha=0.5, capsize=3)  # fmt: skip
        significant = group.verdict.isin([stats.HELPS, stats.HURTS])
        ax.scatter(
            group.strength,
            group[f"{metric}_mean"],
            color="tab:blue",
            zorder=3,
            facecolors=["tab:blue" if s else "white" for s in significant],
        )
        ax.set_title(aug, fontsize="medium")
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("aug.strength")
    for ax in axes[:, 0]:
        ax.set_ylabel(metric)
    fig.suptitle(
        f"{title}\nmean ± sd over folds; grey band: no augmentation (mean ± 1 sd); "
        "filled: significant (Holm)",
        fontsize="medium",
    )
    return fig


def difference_heatmap(rows: pd.DataFrame, metric: str, title: str) -> Figure:
    """Difference from the baseline over aug type by strength; * marks helps / hurts (Holm),
    = equivalent (within the margin)."""
    grid = rows.pivot_table(index="aug", columns="strength", values="diff", aggfunc="first")
    verdicts = rows.pivot_table(index="aug", columns="strength", values="verdict", aggfunc="first")
    limit = float(np.nanmax(np.abs(grid.to_numpy()))) or 1e-3
    fig, ax = plt.subplots(
        figsize=(2 + 0.9 * grid.shape[1], 1.5 + 0.5 * grid.shape[0]), constrained_layout=True
    )
    image = ax.imshow(grid.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [f"{s:g}" for s in grid.columns])
    ax.set_yticks(range(grid.shape[0]), grid.index)
    for i, aug in enumerate(grid.index):
        for j, strength in enumerate(grid.columns):
            value = grid.loc[aug, strength]
            if np.isnan(value):
                continue
            verdict = verdicts.loc[aug, strength]
            mark = {stats.HELPS: "*", stats.HURTS: "*", stats.EQUIVALENT: "="}.get(verdict, "")
            color = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(j, i, f"{value:+.3f}{mark}", ha="center", va="center", fontsize=8, color=color)
    ax.set(
        xlabel="aug.strength",
        ylabel="aug",
        title=f"{title}\ndifference from no augmentation (* helps / hurts, = equivalent)",
    )
    fig.colorbar(image, ax=ax, label=f"{metric} difference")
    return fig


def label_drop_curves(rows: pd.DataFrame, title: str) -> Figure:
    """The label-safety audit's label drop against strength, one line per aug type (strength 0:
    no augmentation, no drop), the settings that hurt marked with a filled point."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    audited = rows[rows.audit_label_drop.notna()].sort_values("strength")
    for i, (aug, group) in enumerate(audited.groupby("aug")):
        color = f"C{i % 10}"
        ax.plot([0.0, *group.strength], [0.0, *group.audit_label_drop], color=color, label=aug)
        hurts = group.verdict == stats.HURTS
        ax.scatter(group.strength, group.audit_label_drop, color=color, zorder=3,
                   facecolors=[color if h else "white" for h in hurts])  # fmt: skip
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set(xlabel="aug.strength", ylabel="audit label drop (clean - augmented accuracy)")
    ax.legend(fontsize="small")
    ax.set_title(f"{title}\nlabel-safety audit; filled: the setting hurts (Holm)",
                 fontsize="medium")  # fmt: skip
    return fig
