"""Image augmentation ops: builders over Keras 3's own layers, plus the one layer Keras lacks.

Every builder is `(magnitude, seed, fill_mode) -> keras.layers.Layer`, seeded explicitly so the
same seed gives the same augmented batches. `IMAGE_OPS` lists each op's magnitude at strength 1
and what that magnitude measures; `src.augment.OPS` merges it into the strength table.
Images are float `(batch, H, W, C)` with values in [0, 1]; every op keeps them there.

A magnitude of 0 always builds an identity (for mixup and cutmix a `keras.layers.Identity`, since
Keras's MixUp/CutMix still mix at their smallest setting). Mixing ops need labels, so they run on
`(images, labels)` batches through `mix_batch`, never inside the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from src.augment.layers import RandomApply, _check_real, _check_seed
from src.checks import is_int

__all__ = [
    "IMAGE_OPS", "MIXING", "ImageNoise", "blur", "brightness", "cutmix", "erasing",
    "gaussian_noise", "mix_batch", "mixup", "shear", "translation", "vertical_flip",
]  # fmt: skip

MIXING: tuple[str, ...] = ("mixup", "cutmix")

# Keras's RandomFlip flips an image with probability 0.5; RandomApply scales that down.
_KERAS_FLIP_PROBABILITY = 0.5
# RandomGaussianBlur accepts sigma in [0, 1] pixels; the kernel spans +-3 sigma.
_MAX_BLUR_SIGMA = 1.0


@keras.saving.register_keras_serializable(package="augsweep")
class ImageNoise(keras.layers.Layer):
    """Add zero-mean Gaussian noise to every pixel, then clip back to the images' value range.

    `keras.layers.GaussianNoise` leaves values outside [0, 1], which an image model never sees
    at test time; this layer keeps augmented images valid images. Only active at training time.

    Args:
        stddev: Float >= 0, standard deviation of the noise in the images' units (0.1 is 10% of
            the [0, 1] range); 0 makes the layer an identity.
        value_range: Two floats `(low, high)`, the images' value range; results are clipped to it.
        seed: Integer or None, seed of the layer's random stream; the same seed gives the same
            output sequence.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Float tensor `(batch, height, width, channels)` (any shape).
        training: Python boolean; noise is added only when True.
    """

    def __init__(
        self,
        stddev: float,
        value_range: tuple[float, float] = (0.0, 1.0),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_real("stddev", stddev, 0.0, math.inf)
        _check_seed(seed)
        low, high = _value_range(value_range)
        self.stddev = stddev
        self.value_range = (low, high)
        self.seed = seed
        if stddev > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.stddev > 0:
            noise = keras.random.normal(
                shape=ops.shape(inputs),
                mean=0.0,
                stddev=self.stddev,
                dtype=self.compute_dtype,
                seed=self.seed_generator,
            )
            return ops.clip(inputs + noise, *self.value_range)
        return inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        base_config = super().get_config()
        config = {"stddev": self.stddev, "value_range": list(self.value_range), "seed": self.seed}
        return {**base_config, **config}


def _value_range(value_range: Any) -> tuple[float, float]:
    ok = isinstance(value_range, (tuple, list)) and len(value_range) == 2
    if ok:
        try:
            _check_real("value_range[0]", value_range[0], -math.inf, math.inf)
            _check_real("value_range[1]", value_range[1], value_range[0], math.inf)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            "Invalid value received for argument `value_range`. Expected two finite floats "
            f"(low, high) with low <= high. Received: value_range={value_range!r}"
        )
    return float(value_range[0]), float(value_range[1])


def random_flip(mode: str, magnitude: float, seed: int, name: str) -> keras.layers.Layer:
    """Flip each image (`mode`: Keras's "horizontal" or "vertical") with probability
    `magnitude` (at most 1): Keras's RandomFlip flips half the images it sees, so it runs on a
    share of them."""
    rate = min(1.0, magnitude / _KERAS_FLIP_PROBABILITY)
    inner = keras.layers.RandomFlip(mode, seed=seed)
    return RandomApply(inner, rate=rate, seed=seed, name=name)


def vertical_flip(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Flip each image upside down with probability `magnitude` (at most 1)."""
    return random_flip("vertical", magnitude, seed, "vertical_flip")


def translation(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Shift each image by up to `magnitude` of its height and of its width, in both directions."""
    return keras.layers.RandomTranslation(
        magnitude, magnitude, fill_mode=fill_mode, seed=seed, name="translation"
    )


def shear(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Shear along x and y by factors in [-magnitude, magnitude]: at 0.3 pixels move up to 30%
    of the image across.

    Keras draws each factor from the given range and flips both signs together at random. The
    range is passed as `(0, m)`: a float `m` is stored as `(-m, m)`, which RandomShear's own
    validation rejects when a saved model is loaded.
    """
    return keras.layers.RandomShear(
        x_factor=(0.0, magnitude),
        y_factor=(0.0, magnitude),
        fill_mode=fill_mode,
        seed=seed,
        name="shear",
    )


def brightness(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Add one offset in [-magnitude, magnitude] (fraction of the [0, 1] range) to each image."""
    return keras.layers.RandomBrightness(
        magnitude, value_range=(0, 1), seed=seed, name="brightness"
    )


def gaussian_noise(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Pixel-wise Gaussian noise of standard deviation `magnitude`, clipped to [0, 1]."""
    return ImageNoise(magnitude, seed=seed, name="noise")


def erasing(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Erase one rectangle of every image, of area up to `magnitude` of the image (cutout).

    Keras's `scale=(0, m)` draws each side's fraction as sqrt(U(0, m)), so the erased area is
    at most `m` of the image; `factor=(1, 1)` erases every image. The patch is filled with
    Gaussian noise clipped to [0, 1] (Keras's default, as in the Random Erasing paper).
    """
    _check_real("magnitude", magnitude, 0.0, 1.0)
    return keras.layers.RandomErasing(
        factor=(1.0, 1.0), scale=(0.0, magnitude), value_range=(0, 1), seed=seed, name="erasing"
    )


def blur(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """Gaussian blur of every image, sigma `magnitude` pixels (Keras caps sigma at 1).

    The kernel spans +-3 sigma (odd size, 1 at magnitude 0, 7 at 1); `factor=(1, 1)` blurs every
    image. Image borders are zero-padded, as in Keras.
    """
    _check_real("magnitude", magnitude, 0.0, _MAX_BLUR_SIGMA)
    kernel_size = 2 * math.ceil(3 * magnitude) + 1
    return keras.layers.RandomGaussianBlur(
        factor=(1.0, 1.0),
        kernel_size=kernel_size,
        sigma=(magnitude, magnitude),
        value_range=(0, 1),
        seed=seed,
        name="blur",
    )


def mixup(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """MixUp with Beta(alpha, alpha) weights, alpha = `magnitude`; use it through `mix_batch`."""
    _check_real("magnitude", magnitude, 0.0, math.inf)
    if magnitude == 0:
        return keras.layers.Identity(name="mixup")
    return keras.layers.MixUp(alpha=magnitude, seed=seed, name="mixup")


def cutmix(magnitude: float, seed: int, fill_mode: str) -> keras.layers.Layer:
    """CutMix with Keras's `factor` = `magnitude` (Beta(a, a) weights, a ~ U(0, magnitude));
    use it through `mix_batch`."""
    _check_real("magnitude", magnitude, 0.0, 1.0)
    if magnitude == 0:
        return keras.layers.Identity(name="cutmix")
    return keras.layers.CutMix(factor=magnitude, seed=seed, name="cutmix")


def mix_batch(layer: keras.layers.Layer, images: Any, labels: Any, n_classes: int) -> tuple:
    """Mix a batch and its labels with a mixing layer (`mixup`/`cutmix`): (images, soft labels).

    Integer labels `(batch,)` become float32 one-hot `(batch, n_classes)` before mixing, so soft
    labels sum to 1 per sample. For `n_classes == 2` the soft label is the probability of class 1,
    `(batch, 1)`, the target of a 1-unit sigmoid head with binary cross-entropy. Works eagerly and
    inside `tf.data` maps.
    """
    if not is_int(n_classes) or n_classes < 2:
        raise ValueError(
            "Invalid value received for argument `n_classes`. Expected an integer >= 2. "
            f"Received: n_classes={n_classes!r}"
        )
    onehot = ops.one_hot(ops.cast(labels, "int32"), n_classes, dtype="float32")
    mixed = layer({"images": images, "labels": onehot}, training=True)
    soft = ops.cast(mixed["labels"], "float32")
    if n_classes == 2:
        soft = soft[:, 1:]
    return mixed["images"], soft


IMAGE_OPS: dict[str, tuple[float, str, Callable[[float, int, str], keras.layers.Layer]]] = {
    "vertical_flip": (0.5, "probability an image is flipped upside down", vertical_flip),
    "translation": (
        0.3, "max shift as a fraction of image height and width (each direction)", translation
    ),
    "shear": (0.3, "max shear factor along x and y (pixels move up to m of the image)", shear),
    "brightness": (0.5, "max brightness offset as a fraction of the [0, 1] range", brightness),
    "noise": (
        0.2, "std of additive pixel noise (images in [0, 1], clipped back)", gaussian_noise
    ),
    "erasing": (0.3, "max erased area as a fraction of the image (every image erased)", erasing),
    "blur": (1.0, "Gaussian blur sigma in pixels (Keras's maximum is 1)", blur),
    "mixup": (0.4, "alpha of the Beta(alpha, alpha) mixing weight (batch mixing)", mixup),
    "cutmix": (1.0, "CutMix factor: Beta(a, a) patch weights, a ~ U(0, m) (batch mixing)", cutmix),
}  # fmt: skip
