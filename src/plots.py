"""Figures logged with every run: learning curves and the confusion matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402


def learning_curves(histories: list[dict[str, list[float]]], title: str) -> Figure:
    """Loss and accuracy per epoch: each fold thin, the mean over folds thick."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, color in ((metric, "tab:blue"), (f"val_{metric}", "tab:orange")):
            curves = np.array([h[key] for h in histories])
            epochs = np.arange(1, curves.shape[1] + 1)
            for curve in curves:
                ax.plot(epochs, curve, color=color, alpha=0.25, linewidth=0.8)
            label = "validation" if key.startswith("val_") else "train (augmented)"
            ax.plot(epochs, curves.mean(axis=0), color=color, linewidth=2, label=label)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} ({len(histories)} folds)")
        ax.legend()
    fig.suptitle(title)
    return fig


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...], title: str
) -> Figure:
    """Counts of true against predicted class."""
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * len(classes),) * 2, constrained_layout=True)
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=range(len(classes)),
        display_labels=classes,
        ax=ax,
        colorbar=False,
        xticks_rotation="vertical",
    )
    ax.set_title(title)
    return fig


def log(fig: Figure, artifact_file: str) -> None:
    """Log a figure to the active MLflow run and free it."""
    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)
