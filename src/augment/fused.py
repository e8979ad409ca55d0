"""Image ops fused: geometric ops into one resampling per batch, photometric ops into one layer.

A stack of Keras layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomShear)
resamples every image once per layer: four ops cost four interpolations, and each one blurs and
loses corners again. `FusedGeometry` draws each op's random parameters exactly as its Keras layer
does, composes the per-image matrices in the listed order into one projective transform, and
resamples once (`keras.ops.image.affine_transform`). `FusedPhotometric` does the same for the
per-pixel ops (brightness, contrast, noise): one layer draws every op's parameters for the batch
and applies them in order, with the clipping to [0, 1] each Keras layer does. Both are in-graph,
so they run inside the model and in a tf.data map, on CPU and GPU.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from src.augment.layers import _check_seed

# op name -> what its magnitude means, as in src.augment.OPS
GEOMETRIC: tuple[str, ...] = ("flip", "vertical_flip", "rotation", "zoom", "translation", "shear")
PHOTOMETRIC: tuple[str, ...] = ("brightness", "contrast", "noise")
# Keras's RandomFlip flips with probability 0.5; the ops scale that by magnitude / 0.5, capped
_MAX_FLIP_PROBABILITY = 0.5


def _checked(ops: list[tuple[str, float]], seed: Any, accepted: tuple[str, ...], layer: str):
    """The (name, magnitude) list of a fused layer, its names and seed checked."""
    _check_seed(seed)
    unknown = [name for name, _ in ops if name not in accepted]
    if unknown:
        raise ValueError(f"{layer} got op {unknown[0]!r}; accepted: {', '.join(accepted)}")
    return [(str(name), float(magnitude)) for name, magnitude in ops]


@keras.saving.register_keras_serializable(package="augsweep")
class FusedGeometry(keras.layers.Layer):
    """Random geometric ops of one image batch, applied with a single resampling.

    Each op draws its parameters from the same distribution as the Keras layer that `aug=<op>`
    builds at that magnitude: flip / vertical_flip with probability min(m, 0.5); rotation by an
    angle ~ U(-m, m) full turns about the centre; zoom by a factor ~ U(1 - m, 1 + m) about the
    centre; translation by ~ U(-m, m) of the height and width; shear (Keras's RandomShear, about
    the top-left corner) by factors ~ U(0, m) along x and y with one random sign.

    Args:
        ops: List of `(name, magnitude)` pairs, names from `GEOMETRIC`, applied in this order.
        fill_mode: "constant", "nearest", "wrap" or "reflect": what fills pixels from outside.
        seed: Integer or None, seed of the layer's random stream.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Float tensor `(batch, height, width, channels)`.
        training: Python boolean; the images are transformed only when True.
    """

    def __init__(
        self,
        ops: list[tuple[str, float]],
        fill_mode: str = "constant",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ops = _checked(ops, seed, GEOMETRIC, "FusedGeometry")
        self.fill_mode, self.seed = fill_mode, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_at_init()

    def _matrix(self, name: str, m: float, n: Any, height: Any, width: Any) -> Any:
        """(n, 3, 3) output-to-input pixel maps of one op, drawn as its Keras layer draws them."""
        seed = self.seed_generator
        ones, zeros = ops.ones((n,)), ops.zeros((n,))
        cx, cy = (width - 1) / 2, (height - 1) / 2
        if name in ("flip", "vertical_flip"):
            p = min(m, _MAX_FLIP_PROBABILITY)
            flip = ops.cast(keras.random.uniform((n,), seed=seed) < p, "float32")
            s = 1 - 2 * flip  # -1 flips
            if name == "flip":
                rows = [s, zeros, (1 - s) * (width - 1) / 2, zeros, ones, zeros]
            else:
                rows = [ones, zeros, zeros, zeros, s, (1 - s) * (height - 1) / 2]
        elif name == "rotation":
            angle = keras.random.uniform((n,), -m, m, seed=seed) * 2 * math.pi
            c, s = ops.cos(angle), ops.sin(angle)
            rows = [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy]
        elif name == "zoom":
            z = keras.random.uniform((n,), 1 - m, 1 + m, seed=seed)
            rows = [z, zeros, cx * (1 - z), zeros, z, cy * (1 - z)]
        elif name == "translation":
            dy = keras.random.uniform((n,), -m, m, seed=seed) * height
            dx = keras.random.uniform((n,), -m, m, seed=seed) * width
            rows = [ones, zeros, -dx, zeros, ones, -dy]
        else:  # shear
            sign = ops.where(keras.random.uniform((n,), seed=seed) > 0.5, -1.0, 1.0)
            sy = keras.random.uniform((n,), 0.0, m, seed=seed) * sign
            sx = keras.random.uniform((n,), 0.0, m, seed=seed) * sign
            rows = [ones, sx, zeros, sy, ones, zeros]
        top = ops.reshape(ops.stack(rows, axis=1), (n, 2, 3))
        last = ops.broadcast_to(ops.convert_to_tensor([[[0.0, 0.0, 1.0]]]), (n, 1, 3))
        return ops.concatenate([top, last], axis=1)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or not self.ops:
            return inputs
        shape = ops.shape(inputs)
        n = shape[0]
        height, width = ops.cast(shape[1], "float32"), ops.cast(shape[2], "float32")
        # ops applied in order 1, 2, ...: output pixel -> input pixel is M1 @ M2 @ ...
        total = None
        for name, magnitude in self.ops:
            matrix = self._matrix(name, magnitude, n, height, width)
            total = matrix if total is None else ops.matmul(total, matrix)
        flat = ops.reshape(total, (n, 9))[:, :8] / total[:, 2:3, 2]
        return ops.image.affine_transform(
            inputs, flat, interpolation="bilinear", fill_mode=self.fill_mode
        )

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {"ops": [list(op) for op in self.ops], "fill_mode": self.fill_mode}
        return {**super().get_config(), **config, "seed": self.seed}


@keras.saving.register_keras_serializable(package="augsweep")
class FusedPhotometric(keras.layers.Layer):
    """Random brightness, contrast and Gaussian noise of one image batch, in one layer.

    Each op draws from the same distribution as the layer `aug=<op>` builds at that magnitude and
    clips to [0, 1] after it, as that layer does: brightness adds one offset ~ U(-m, m) per image
    (Keras's RandomBrightness); contrast scales each channel's deviation from its spatial mean by
    one factor ~ U(1 - m, 1 + m) per image (Keras's RandomContrast); noise adds N(0, m) per pixel
    (augsweep's ImageNoise). The ops apply in the listed order.

    Args:
        ops: List of `(name, magnitude)` pairs, names from `PHOTOMETRIC`.
        seed: Integer or None, seed of the layer's random stream.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Float tensor `(batch, height, width, channels)` in [0, 1].
        training: Python boolean; the images are changed only when True.
    """

    def __init__(
        self, ops: list[tuple[str, float]], seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.ops = _checked(ops, seed, PHOTOMETRIC, "FusedPhotometric")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or not self.ops:
            return inputs
        per_image = (ops.shape(inputs)[0], 1, 1, 1)
        x, seed, dtype = inputs, self.seed_generator, self.compute_dtype
        for name, m in self.ops:
            if name == "brightness":
                x = x + keras.random.uniform(per_image, -m, m, seed=seed, dtype=dtype)
            elif name == "contrast":
                factor = keras.random.uniform(per_image[:1], 1 - m, 1 + m, seed=seed)  # float32
                # TensorFlow's fused kernel, (x - channel mean) * factor + channel mean, with one
                # factor per image: faster than the separate mean, subtract, multiply and add
                # (benchmarks/README.md, image throughput)
                # (float32: TensorFlow has no float16 CPU kernel for it)
                x = ops.cast(tf.vectorized_map(
                    lambda a: tf.image.adjust_contrast(a[0], a[1]), (ops.cast(x, "float32"), factor)
                ), dtype)  # fmt: skip
            else:  # noise
                x = x + keras.random.normal(ops.shape(x), stddev=m, seed=seed, dtype=dtype)
            x = ops.clip(x, 0.0, 1.0)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {"ops": [list(op) for op in self.ops], "seed": self.seed}
        return {**super().get_config(), **config}
