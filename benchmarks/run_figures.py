"""Seconds a job spends on each of its figures, drawn and written as PNG.

    python -m benchmarks.run_figures [--repeats 5]

Every job logs three figures: the augmentation preview (8 digits and their augmented versions,
`src.augment.preview`), the learning curves (5 folds x 30 epochs, `src.plots.learning_curves`)
and the confusion matrix (10 classes, `src.plots.confusion_matrix`). Each is drawn and saved to
an in-memory PNG as `mlflow.log_figure` saves it, alternating, in one process; the preview also
as the grid of 16 axes it was before (one axes per image), the confusion matrix also as
scikit-learn's ConfusionMatrixDisplay drew it before. Median seconds over --repeats.
Results: benchmarks/results/run_figures.{json,md}.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np


def grid_of_axes(originals: np.ndarray, augmented: np.ndarray):
    """The preview as it was drawn before: one axes per image, constrained layout."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1.3 * len(originals) + 0.6, 3.2), constrained_layout=True)
    grid = fig.add_gridspec(2, len(originals))
    for i in range(len(originals)):
        for row, batch in enumerate((originals, augmented)):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(batch[i, ..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def display_of_sklearn(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]):
    """The confusion matrix as it was drawn before: scikit-learn's display, every cell numbered."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=range(len(classes)),
                                            display_labels=classes, ax=ax, colorbar=False,
                                            xticks_rotation="vertical")  # fmt: skip
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_digits

    from benchmarks.machine import write
    from src import plots
    from src.augment.preview import preview_figure

    digits = load_digits()
    x = (digits.images[:8, ..., None] / 16.0).astype("float32")
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 31)
    histories = [
        {
            key: list(np.exp(-epochs / 10) + rng.normal(0, 0.02, 30))
            for key in ("loss", "val_loss", "accuracy", "val_accuracy")
        }  # fmt: skip
        for _ in range(5)
    ]
    y = digits.target[:360]
    predicted = np.where(rng.random(360) < 0.9, y, rng.integers(0, 10, 360))
    classes = tuple(map(str, range(10)))
    figures = {
        "preview (one mosaic)": lambda: preview_figure(x, lambda b: b[:, ::-1], "image", "t"),
        "preview (16 axes, before)": lambda: grid_of_axes(x, x[:, ::-1]),
        "learning curves": lambda: plots.learning_curves(histories, "digits / cnn / light"),
        "confusion matrix (non-empty cells numbered)": lambda: plots.confusion_matrix(
            y, predicted, classes, "confusion"
        ),
        "confusion matrix (scikit-learn's display, before)": lambda: display_of_sklearn(
            y, predicted, classes
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in figures}
    for _ in range(args.repeats):
        for name, draw in figures.items():
            start = time.perf_counter()
            fig = draw()
            fig.savefig(io.BytesIO(), format="png")
            plt.close(fig)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    rows = [f"| {name} | {seconds:.3f} |" for name, seconds in median.items()]
    markdown = (
        "# A job's figures\n\n"
        f"`python -m benchmarks.run_figures --repeats {args.repeats}`: drawn and saved as PNG, "
        f"median of {args.repeats}.\n\n| figure | s |\n|---|---|\n" + "\n".join(rows) + "\n"
    )
    write("run_figures", {"repeats": args.repeats, "seconds": times}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
