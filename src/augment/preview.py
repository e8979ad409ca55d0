"""What an augmentation does to real data: originals next to their augmented versions.

A run logs this figure so that a strength can be judged by eye: a digit that no longer reads as
a digit, or a series whose shape is gone, explains a drop in accuracy better than a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from src.checks import is_int  # noqa: E402

__all__ = ["mistakes_figure", "mosaic_tiles", "preview_figure"]

MODALITIES: tuple[str, ...] = ("image", "series")
_IMAGES_PER_ROW = 8
_SERIES_PER_ROW = 4
# matplotlib's default cycle without its grey (C7), which would read as an original
_COLOURS = tuple(f"C{i}" for i in range(10) if i != 7)


def preview_figure(
    x: np.ndarray,
    augment: Callable[[np.ndarray], np.ndarray],
    modality: str,
    title: str,
    n: int = 8,
) -> Figure:
    """A figure of the first `n` samples of `x` and `augment` applied to them.

    Args:
        x: A batch: images `(batch, H, W, C)` in [0, 1] with C = 1 or 3, or series
            `(batch, time, channels)` zero-padded at the end.
        augment: A function from a batch to an augmented batch of the same shape, e.g.
            `lambda b: layer(b, training=True)`; called once, on the first `n` samples.
        modality: "image" (rows "original" / "augmented", up to 8 images per row) or "series"
            (one panel per sample: original in thin grey, augmented in colour, padding not drawn).
        title: The figure's suptitle, e.g. "digits / heavy / strength 0.8".
        n: How many samples to show (fewer if `x` has fewer).
    """
    if modality not in MODALITIES:
        raise ValueError(
            f"modality={modality!r} is not supported; accepted: {', '.join(MODALITIES)}"
        )
    if not is_int(n) or n < 1:
        raise ValueError(f"n={n!r} is not supported; accepted: an integer >= 1")
    x = np.asarray(x)
    rank = 4 if modality == "image" else 3
    if x.ndim != rank or len(x) == 0:
        layout = "(batch, H, W, C)" if modality == "image" else "(batch, time, channels)"
        raise ValueError(
            f"{modality} preview got an array of shape {x.shape}; accepted: a non-empty {layout}"
        )
    if modality == "image" and x.shape[-1] not in (1, 3):
        raise ValueError(
            f"image preview got {x.shape[-1]} channels (shape {x.shape}); accepted: 1 or 3"
        )
    originals = x[:n]
    augmented = np.asarray(augment(originals))
    if augmented.shape != originals.shape:
        raise ValueError(
            f"augment returned shape {augmented.shape} for a batch of shape {originals.shape}; "
            "accepted: a function returning a batch of the same shape"
        )
    if modality == "image":
        fig = _image_grid(originals, augmented)
    else:
        fig = _series_panels(originals, augmented)
    fig.suptitle(title)
    return fig


def mistakes_figure(
    originals: np.ndarray,
    augmented: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    classes: tuple[str, ...],
    modality: str,
    title: str,
    n: int = 24,
) -> Figure:
    """Augmented samples a model gets wrong, each under its original and titled with its label
    and what the model read (the label-safety audit's artifact, `src.audit`).

    Images are drawn as `preview_figure` draws them (one mosaic: originals over augmented, up
    to 8 per row), the caption under each augmented image; series one panel each.

    Args:
        originals, augmented: Batches of the same shape, as `preview_figure` takes them.
        labels, predicted: Class indices per sample: the label, and the model's prediction.
        classes: Class names by index.
        modality, title: As `preview_figure`.
        n: How many samples to show at most.
    """
    k = min(n, len(originals))
    pairs = zip(labels[:k], predicted[:k], strict=True)
    captions = [f"{classes[a]} read as {classes[b]}" for a, b in pairs]
    if modality == "series":
        fig = _series_panels(np.asarray(originals[:k]), np.asarray(augmented[:k]))
        for ax, caption in zip(fig.axes, captions, strict=True):
            ax.set_title(caption, fontsize="small")
        fig.suptitle(title)
        return fig
    fig = _image_grid(np.asarray(originals[:k]), np.asarray(augmented[:k]))
    (ax,) = fig.axes
    h, w, _ = originals.shape[1:]
    gap, cols = _gap(h, w), min(k, _IMAGES_PER_ROW)
    for i, caption in enumerate(captions):
        group, col = divmod(i, cols)
        top, left = (2 * group + 1) * (h + gap), col * (w + gap)
        ax.text(left + (w - 1) / 2, top + h - 0.5, caption, ha="center", va="top",
                fontsize=7, color="black", bbox={"facecolor": "white", "edgecolor": "none",
                                                 "pad": 0.5, "alpha": 0.85})  # fmt: skip
    fig.suptitle(f"{title}\n(label read as: under each augmented image)", fontsize="medium")
    return fig


def _image_grid(originals: np.ndarray, augmented: np.ndarray) -> Figure:
    """Groups of two rows, "original" over "augmented", up to 8 images per row.

    One image of tiles (one axes, one imshow: drawing a figure of 16 axes takes ~0.5 s longer,
    every job), tiles separated by a grey gap of one pixel per 8; `mosaic_tiles` reads it back.
    """
    k = len(originals)
    cols = min(k, _IMAGES_PER_ROW)
    groups = math.ceil(k / cols)
    h, w, c = originals.shape[1:]
    gap = _gap(h, w)
    canvas = np.full(
        (2 * groups * (h + gap) - gap, cols * (w + gap) - gap, c), _GAP_GREY, np.float32
    )
    for i in range(k):
        group, col = divmod(i, cols)
        for row, batch in enumerate((originals, augmented)):
            top, left = (2 * group + row) * (h + gap), col * (w + gap)
            canvas[top : top + h, left : left + w] = np.clip(batch[i], 0.0, 1.0)
    fig = plt.figure(figsize=(1.3 * cols + 0.6, 2.7 * groups + 0.5))
    ax = fig.add_axes((0.1, 0.02, 0.88, 0.86))
    if c == 1:
        ax.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    rows = [(2 * g + r) * (h + gap) + (h - 1) / 2 for g in range(groups) for r in range(2)]
    ax.set_yticks(rows, ["original", "augmented"] * groups)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


_GAP_GREY = 0.5


def _gap(h: int, w: int) -> int:
    return max(1, min(h, w) // 8)


def mosaic_tiles(fig: Figure, shape: tuple[int, int, int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The originals and augmented images (clipped to [0, 1]) an image preview shows."""
    (image,) = fig.axes[0].get_images()
    canvas = np.asarray(image.get_array())
    canvas = canvas[..., None] if canvas.ndim == 2 else canvas
    h, w, _ = shape
    gap, cols = _gap(h, w), min(k, _IMAGES_PER_ROW)
    tiles = np.empty((2, k, *shape), np.float32)
    for i in range(k):
        group, col = divmod(i, cols)
        for row in range(2):
            top, left = (2 * group + row) * (h + gap), col * (w + gap)
            tiles[row, i] = canvas[top : top + h, left : left + w]
    return tiles[0], tiles[1]


def _valid_length(series: np.ndarray) -> int:
    """Number of steps before the end padding (trailing steps whose channels are all 0)."""
    real = np.flatnonzero(np.any(series != 0, axis=-1))
    return int(real[-1]) + 1 if len(real) else 0


def _series_panels(originals: np.ndarray, augmented: np.ndarray) -> Figure:
    """One panel per series: every channel, original thin grey, augmented coloured on top."""
    k = len(originals)
    cols = min(k, _SERIES_PER_ROW)
    rows = math.ceil(k / cols)
    fig = plt.figure(figsize=(3.2 * cols, 2.2 * rows + 0.5), constrained_layout=True)
    grid = fig.add_gridspec(rows, cols)
    for i in range(k):
        ax = fig.add_subplot(grid[divmod(i, cols)])
        length = _valid_length(originals[i])
        steps = np.arange(length)
        for c in range(originals.shape[-1]):
            first = c == 0
            colour = _COLOURS[c % len(_COLOURS)]
            ax.plot(
                steps,
                originals[i, :length, c],
                color="0.6",
                linewidth=0.8,
                label="original" if first else None,
            )
            ax.plot(
                steps,
                augmented[i, :length, c],
                color=colour,
                linewidth=1.2,
                label="augmented" if first else None,
            )
        ax.set_title(f"sample {i} ({length} steps)", fontsize="small")
        ax.tick_params(labelsize="x-small")
        if i == 0:
            ax.legend(fontsize="x-small")
    return fig
