"""Image augmentation throughput: augsweep's fused pipeline against the alternatives.

    python -m benchmarks.image_throughput

The classic recipe `ImageDataGenerator(shear_range, zoom_range=0.2, horizontal_flip=True,
rescale=1/255)` on the same real images (crops of scikit-learn's two sample photos, 150x150x3
float32, 0-255, tiled to --images), batch 32, run side by side in one process:

- ImageDataGenerator(...).flow (Keras's legacy generator, NumPy/SciPy per image);
- the stock Keras 3 layers (Rescaling, RandomShear, RandomZoom, RandomFlip) in a tf.data map;
- augsweep: Rescaling + FusedGeometry (shear, zoom, flip in one resampling) in a tf.data map,
  and the same layers inside a compiled function (as in the model);
- albumentations (Affine + HorizontalFlip, one process, per image, float32).

Then the classic photometric recipe, `tf.image.random_brightness(x, 0.2)` and
`tf.image.random_contrast(x, 0.8, 1.2)` on images in [0, 1]:

- the classic custom function, per image in a tf.data map (`tf.image.random_*`);
- the stock Keras 3 layers (RandomBrightness, RandomContrast) in a tf.data map;
- augsweep's FusedPhotometric (both ops in one layer) in a tf.data map and in a compiled function;
- albumentations (RandomBrightnessContrast, one process, per image).

Each is timed over all images after a warm-up; the median of --repeats passes is reported.
Results: benchmarks/results/image_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_sample_images

from benchmarks.machine import write
from src.augment.fused import FusedGeometry, FusedPhotometric

BATCH = 32
SHEAR, ZOOM = 0.2, 0.2  # Keras factors; IDG's shear_range is in degrees
BRIGHTNESS, CONTRAST = 0.2, 0.2  # max offset (of the [0, 1] range), max contrast factor change


def real_images(n: int) -> np.ndarray:
    crops = [
        photo[r : r + 300, c : c + 300]
        for photo in load_sample_images().images
        for r in range(0, 127, 42)
        for c in range(0, 340, 85)
    ]
    small = tf.image.resize(np.stack(crops).astype("float32"), (150, 150)).numpy()
    return np.resize(small, (n, 150, 150, 3)).astype("float32")


def timed(run: Callable[[], int], repeats: int) -> float:
    run()  # warm-up: tracing, thread pools
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def idg(x: np.ndarray) -> Callable[[], int]:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    shear_degrees = float(np.degrees(np.arctan(SHEAR)))
    gen = ImageDataGenerator(
        shear_range=shear_degrees, zoom_range=ZOOM, horizontal_flip=True, rescale=1 / 255
    )

    def run() -> int:
        flow = gen.flow(x, batch_size=BATCH, shuffle=False, seed=0)
        return sum(len(next(flow)) for _ in range(len(flow)))

    return run


def in_tf_data(x: np.ndarray, layers: list[keras.layers.Layer]) -> Callable[[], int]:
    stack = keras.Sequential(layers)
    ds = (
        tf.data.Dataset.from_tensor_slices(x)
        .batch(BATCH)
        .map(lambda b: stack(b, training=True), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return lambda: sum(int(b.shape[0]) for b in ds)


def in_function(x: np.ndarray, layers: list[keras.layers.Layer]) -> Callable[[], int]:
    stack = keras.Sequential(layers)
    call = tf.function(lambda b: stack(b, training=True))
    batches = [tf.constant(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]

    def run() -> int:
        for b in batches:
            out = call(b)
        _ = out.numpy()
        return len(x)

    return run


def albumentations(x: np.ndarray) -> Callable[[], int]:
    import albumentations as A

    shear_degrees = float(np.degrees(np.arctan(SHEAR)))
    pipeline = A.Compose(
        [
            A.Affine(scale=(1 - ZOOM, 1 + ZOOM), shear=(-shear_degrees, shear_degrees), p=1.0),
            A.HorizontalFlip(p=0.5),
        ]
    )

    def run() -> int:
        for i in range(0, len(x), BATCH):
            np.stack([pipeline(image=image / 255.0)["image"] for image in x[i : i + BATCH]])
        return len(x)

    return run


def classic_photometric(x: np.ndarray) -> Callable[[], int]:
    """The classic custom function: tf.image.random_brightness / random_contrast per image."""

    def augment(image: tf.Tensor) -> tf.Tensor:
        image = tf.image.random_brightness(image, BRIGHTNESS)
        image = tf.image.random_contrast(image, 1 - CONTRAST, 1 + CONTRAST)
        return tf.clip_by_value(image, 0.0, 1.0)

    ds = (
        tf.data.Dataset.from_tensor_slices(x)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(BATCH)
        .prefetch(tf.data.AUTOTUNE)
    )
    return lambda: sum(int(b.shape[0]) for b in ds)


def albumentations_photometric(x: np.ndarray) -> Callable[[], int]:
    import albumentations as A

    pipeline = A.RandomBrightnessContrast(BRIGHTNESS, CONTRAST, p=1.0)

    def run() -> int:
        for i in range(0, len(x), BATCH):
            np.stack([pipeline(image=image)["image"] for image in x[i : i + BATCH]])
        return len(x)

    return run


def table(rates: dict[str, float], base: str) -> str:
    rows = [f"| {name} | {rate:,.0f} | {rate / rates[base]:.1f}x |" for name, rate in rates.items()]
    return f"| method | images/s | vs {base} |\n|---|---|---|\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x = real_images(args.images)

    def keras_layers() -> list[keras.layers.Layer]:
        return [
            keras.layers.Rescaling(1 / 255),
            keras.layers.RandomShear(x_factor=(0.0, SHEAR), y_factor=(0.0, SHEAR), seed=0),
            keras.layers.RandomZoom(ZOOM, seed=1),
            keras.layers.RandomFlip("horizontal", seed=2),
        ]

    def fused() -> list[keras.layers.Layer]:
        return [
            keras.layers.Rescaling(1 / 255),
            FusedGeometry([("shear", SHEAR), ("zoom", ZOOM), ("flip", 0.5)], seed=0),
        ]

    methods = {
        "ImageDataGenerator.flow": idg(x),
        "Keras 3 layers, tf.data map": in_tf_data(x, keras_layers()),
        "augsweep fused, tf.data map": in_tf_data(x, fused()),
        "augsweep fused, in the model (tf.function)": in_function(x, fused()),
        "albumentations, 1 process": albumentations(x),
    }
    rates = {name: timed(run, args.repeats) for name, run in methods.items()}
    base = rates["ImageDataGenerator.flow"]
    unit = x / 255.0

    def keras_photometric() -> list[keras.layers.Layer]:
        return [
            keras.layers.RandomBrightness(BRIGHTNESS, value_range=(0, 1), seed=0),
            keras.layers.RandomContrast(CONTRAST, value_range=(0, 1), seed=1),
        ]

    def fused_photometric() -> list[keras.layers.Layer]:
        return [FusedPhotometric([("brightness", BRIGHTNESS), ("contrast", CONTRAST)], seed=0)]

    photometric = {
        "classic tf.image function, per image, tf.data map": classic_photometric(unit),
        "Keras 3 layers, tf.data map": in_tf_data(unit, keras_photometric()),
        "augsweep FusedPhotometric, tf.data map": in_tf_data(unit, fused_photometric()),
        "augsweep FusedPhotometric, in the model (tf.function)": in_function(
            unit, fused_photometric()
        ),
        "albumentations, 1 process": albumentations_photometric(unit),
    }
    photo_rates = {name: timed(run, args.repeats) for name, run in photometric.items()}
    best_ours = max(
        rates["augsweep fused, tf.data map"], rates["augsweep fused, in the model (tf.function)"]
    )
    albu = rates["albumentations, 1 process"]
    markdown = (
        "# Image augmentation throughput\n\n"
        f"`python -m benchmarks.image_throughput`: {args.images} real 150x150x3 float32 images "
        f"(crops of scikit-learn's sample photos), batch {BATCH}, shear {SHEAR} + zoom {ZOOM} + "
        f"horizontal flip + rescale 1/255; median of {args.repeats} passes.\n\n"
        f"{table(rates, 'ImageDataGenerator.flow')}\n\n"
        f"- Target at least 4x ImageDataGenerator: {'met' if best_ours >= 4 * base else 'NOT met'}"
        f" ({best_ours / base:.1f}x).\n"
        f"- Target at least albumentations' throughput: {'met' if best_ours >= albu else 'NOT met'}"
        f" ({best_ours / albu:.2f}x).\n\n"
        f"## Photometric: brightness {BRIGHTNESS} + contrast {CONTRAST}, images in [0, 1]\n\n"
        f"{table(photo_rates, 'classic tf.image function, per image, tf.data map')}\n"
    )
    result = {"images": args.images, "batch": BATCH, "images_per_s": rates,
              "photometric_images_per_s": photo_rates}  # fmt: skip
    write("image_throughput", result, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
