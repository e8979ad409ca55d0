"""A run's figures read back: what they draw is what was predicted."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix as counts_of
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from src import plots


def test_confusion_matrix_draws_the_counts_and_numbers_only_the_non_empty_cells(tmp_path):
    digits = load_digits()
    y = digits.target[:400]
    predicted = cross_val_predict(KNeighborsClassifier(1), digits.data[:400], y, cv=3)
    classes = tuple(f"digit {c}" for c in range(10))
    fig = plots.confusion_matrix(y, predicted, classes, "digits / 1-NN")
    (ax,) = fig.axes
    (image,) = ax.get_images()
    expected = counts_of(y, predicted, labels=range(10))
    np.testing.assert_array_equal(np.asarray(image.get_array()), expected)
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
             for t in ax.texts}  # fmt: skip
    assert cells == {(i, j): int(expected[i, j]) for i, j in np.argwhere(expected)}
    assert 0 in expected  # some cells are empty, and they carry no number
    assert [t.get_text() for t in ax.get_xticklabels()] == list(classes)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(classes)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted label", "True label")
    fig.savefig(tmp_path / "confusion.png")
    plt.close(fig)
    assert (tmp_path / "confusion.png").stat().st_size > 1000
