"""The augmentation preview on real data: digits and photo crops, GunPoint, JapaneseVowels."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.image import AxesImage
from sklearn.datasets import load_sample_images

from src.augment.image import IMAGE_OPS
from src.augment.layers import Jitter
from src.augment.preview import mosaic_tiles, preview_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture
def digits(digits) -> np.ndarray:
    """20 of conftest's digits: fewer than some previews ask for, (20, 8, 8, 1)."""
    return digits[:20]


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """6 real 32x32 RGB crops of scikit-learn's sample photos, float32 in [0, 1]."""
    crops = [
        photo[:256, c : c + 256] for photo in load_sample_images().images for c in (0, 192, 384)
    ]
    x = tf.image.resize(np.stack(crops).astype("float32") / 255.0, (32, 32)).numpy()
    return np.clip(x, 0.0, 1.0)


class Recorder:
    """An augment function that remembers what it returned, so the plot can be checked."""

    def __init__(self, layer: keras.layers.Layer) -> None:
        self.layer = layer
        self.returned: np.ndarray | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.returned = keras.ops.convert_to_numpy(self.layer(batch, training=True))
        return self.returned


def image_op(name: str, seed: int = 0) -> Recorder:
    top, _, builder = IMAGE_OPS[name]
    return Recorder(builder(top, seed, "constant"))


def axes_images(fig) -> list[AxesImage]:
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert all(len(ax.get_images()) == 1 for ax in fig.axes)
    return images


def assert_png(fig, path) -> None:
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


# --- images ---------------------------------------------------------------------------------------


def row_labels(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_image_preview_rows_are_originals_and_what_augment_returned(digits, tmp_path):
    augment = image_op("noise")
    fig = preview_figure(digits, augment, "image", "digits / heavy / strength 0.8", n=8)
    assert len(fig.axes) == 1  # one mosaic of tiles
    (image,) = axes_images(fig)
    assert augment.returned is not None and augment.returned.shape == (8, 8, 8, 1)
    originals, augmented = mosaic_tiles(fig, (8, 8, 1), 8)
    np.testing.assert_array_equal(originals, digits[:8])
    np.testing.assert_array_equal(augmented, np.clip(augment.returned, 0, 1))
    assert image.get_cmap().name == "gray" and image.get_clim() == (0.0, 1.0)
    assert not np.array_equal(augment.returned, digits[:8])
    assert row_labels(fig) == ["original", "augmented"]
    assert not fig.axes[0].get_xticks().size
    assert "digits / heavy / strength 0.8" in fig.get_suptitle()
    assert_png(fig, tmp_path / "digits.png")


def test_image_preview_of_rgb_photos_clips_to_unit_range(photos, tmp_path):
    augment = image_op("brightness", seed=1)
    fig = preview_figure(photos, augment, "image", "photos / brightness / strength 1", n=4)
    (image,) = axes_images(fig)
    assert np.asarray(image.get_array()).shape[-1] == 3
    originals, augmented = mosaic_tiles(fig, (32, 32, 3), 4)
    np.testing.assert_array_equal(augmented, np.clip(augment.returned, 0, 1))
    np.testing.assert_array_equal(originals, photos[:4])
    assert "strength 1" in fig.get_suptitle()
    assert_png(fig, tmp_path / "photos.png")


@pytest.mark.parametrize(("n", "shown", "groups"), [(12, 12, 2), (20, 20, 3), (50, 20, 3)])
def test_image_preview_wraps_into_groups_of_two_rows(n, shown, groups, digits):
    augment = image_op("translation")
    fig = preview_figure(digits, augment, "image", "digits", n=n)
    assert augment.returned.shape[0] == shown  # at most as many images as given
    assert row_labels(fig) == ["original", "augmented"] * groups
    (image,) = axes_images(fig)
    # 8 tiles a row of 8 pixels, one pixel apart; two rows a group
    assert np.asarray(image.get_array()).shape == (2 * groups * 9 - 1, 8 * 9 - 1)
    originals, augmented = mosaic_tiles(fig, (8, 8, 1), shown)
    np.testing.assert_array_equal(originals, digits[:shown])
    np.testing.assert_array_equal(augmented, np.clip(augment.returned, 0, 1))


# --- series ---------------------------------------------------------------------------------------


def test_series_preview_overlays_augmented_on_original(gunpoint, tmp_path):
    augment = Recorder(Jitter(0.3, seed=0))
    fig = preview_figure(gunpoint, augment, "series", "GunPoint / jitter / strength 0.6", n=8)
    assert len(fig.axes) == 8
    for i, ax in enumerate(fig.axes):
        original, augmented = ax.get_lines()  # one channel: one grey line, one coloured line
        np.testing.assert_array_equal(original.get_ydata(), gunpoint[i, :, 0])
        np.testing.assert_array_equal(augmented.get_ydata(), augment.returned[i, :, 0])
        np.testing.assert_array_equal(augmented.get_xdata(), np.arange(150))
        assert original.get_color() == "0.6" and augmented.get_color() != "0.6"
        assert original.get_linewidth() < augmented.get_linewidth()
    assert "GunPoint / jitter / strength 0.6" in fig.get_suptitle()
    assert_png(fig, tmp_path / "gunpoint.png")


def test_series_preview_draws_only_unpadded_steps_of_every_channel(vowels, tmp_path):
    x = vowels[:6]
    lengths = [int(np.flatnonzero(np.any(s != 0, axis=-1))[-1]) + 1 for s in x]
    assert min(lengths) < x.shape[1]  # some series really are padded
    augment = Recorder(Jitter(0.3, seed=0))
    fig = preview_figure(x, augment, "series", "JapaneseVowels", n=10)
    assert len(fig.axes) == 6  # as many panels as samples
    for i, ax in enumerate(fig.axes):
        lines = ax.get_lines()
        assert len(lines) == 2 * 12  # every channel, original and augmented
        for c in range(12):
            original, augmented = lines[2 * c], lines[2 * c + 1]
            np.testing.assert_array_equal(original.get_xdata(), np.arange(lengths[i]))
            np.testing.assert_array_equal(original.get_ydata(), x[i, : lengths[i], c])
            np.testing.assert_array_equal(
                augmented.get_ydata(), augment.returned[i, : lengths[i], c]
            )
    assert_png(fig, tmp_path / "vowels.png")


# --- bad input ------------------------------------------------------------------------------------


def identity(batch: np.ndarray) -> np.ndarray:
    return batch


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("audio", identity), r"modality='audio' is not supported; accepted: image, series"),
        (("series", identity), r"series preview got an array of shape \(20, 8, 8, 1\)"),
        (("image", lambda b: b[:, :4]), r"augment returned shape \(8, 4, 8, 1\) for a batch"),
    ],
)
def test_preview_rejects_bad_input(args: tuple[str, Callable], match, digits):
    modality, augment = args
    with pytest.raises(ValueError, match=match):
        preview_figure(digits, augment, modality, "digits")
