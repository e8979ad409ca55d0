"""Augmentation layers that Keras does not ship: series noise/scaling and per-sample apply.

They follow the shape of `keras.layers.GaussianNoise`: validated constructor arguments, a seeded
`keras.random.SeedGenerator` (same seed, same output), identity outside training, and a
`get_config` that round-trips, so a saved `.keras` model containing them loads again.
Only backend-agnostic `keras.ops` / `keras.random` are used.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from src.checks import is_int, is_number

# RandomApply draws its per-sample mask from `seed + _MASK_SEED_OFFSET`, so a RandomApply and the
# layer it wraps may share one seed without their random streams being identical (correlated).
_MASK_SEED_OFFSET = 1_000_003


def _check_real(name: str, value: Any, low: float, high: float) -> None:
    """Raise ValueError unless `value` is a real number in [low, high] (bools rejected)."""
    ok = is_number(value) and low <= value <= high
    if not ok or not math.isfinite(value):
        accepted = f"[{low}, {high}]" if math.isfinite(high) else f">= {low}"
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a finite float {accepted}. "
            f"Received: {name}={value!r}"
        )


def _check_seed(seed: Any) -> None:
    if seed is not None and not is_int(seed):
        raise ValueError(
            f"Invalid value received for argument `seed`. Expected an integer or None. "
            f"Received: seed={seed!r}"
        )


def _padding_mask(inputs: Any, dtype: str) -> Any:
    """0.0 at end-of-series padding, 1.0 elsewhere, shape `(batch, time, 1)`.

    Padding is the run of time steps at the end whose channels (the last axis) are all exactly 0;
    an all-zero step with a non-zero step after it is data.
    """
    nonzero = ops.cast(ops.any(ops.not_equal(inputs, 0), axis=-1, keepdims=True), "int32")
    if len(inputs.shape) < 3:  # no time axis
        return ops.cast(nonzero, dtype)
    # a non-zero step at or after t: the reversed cumulative sum over time is positive
    later = ops.flip(ops.cumsum(ops.flip(nonzero, axis=1), axis=1), axis=1)
    return ops.cast(later > 0, dtype)


class _SeriesPerturbation(keras.layers.Layer):
    """Shared constructor, shape and config of the series layers: one `stddev`, one seed."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_real("stddev", stddev, 0.0, math.inf)
        _check_seed(seed)
        self.stddev = stddev
        self.seed = seed
        if stddev > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self._build_at_init()

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        base_config = super().get_config()
        config = {"stddev": self.stddev, "seed": self.seed}
        return {**base_config, **config}


@keras.saving.register_keras_serializable(package="augsweep")
class Jitter(_SeriesPerturbation):
    """Add zero-mean Gaussian noise to every value of a series, except at zero padding.

    Series are laid out `(batch, time, channels)`. The time steps at the end whose channels are
    all exactly 0 are end-of-series padding (the model masks them with `Masking(0.0)`), so they get
    no noise and stay exactly zero; an all-zero step inside a series gets noise like any other.
    Only active at training time.

    Args:
        stddev: Float >= 0, standard deviation of the noise, in units of the (z-normalised)
            series; 0 makes the layer an identity.
        seed: Integer or None, seed of the layer's random stream; the same seed gives the same
            output sequence.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Float tensor `(batch, time, channels)` (any rank >= 2; last axis = channels).
        training: Python boolean; noise is added only when True.
    """

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.stddev > 0:
            noise = keras.random.normal(
                shape=ops.shape(inputs),
                mean=0.0,
                stddev=self.stddev,
                dtype=self.compute_dtype,
                seed=self.seed_generator,
            )
            return inputs + noise * _padding_mask(inputs, self.compute_dtype)
        return inputs


@keras.saving.register_keras_serializable(package="augsweep")
class Scaling(_SeriesPerturbation):
    """Multiply each series, channel by channel, by a random factor drawn from N(1, stddev).

    One factor is drawn per (series, channel) and applied to all its time steps. End-of-series
    padding (trailing steps with all channels exactly 0) stays exactly +0.0. Only active at
    training time.

    Args:
        stddev: Float >= 0, standard deviation of the multiplicative factor around 1; 0 makes the
            layer an identity. Above about 0.3 some factors come out negative (sign flips).
        seed: Integer or None, seed of the layer's random stream; the same seed gives the same
            output sequence.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Float tensor `(batch, time, channels)` (any rank >= 2; last axis = channels).
        training: Python boolean; scaling is applied only when True.
    """

    def call(self, inputs: Any, training: bool = False) -> Any:
        if training and self.stddev > 0:
            shape = ops.shape(inputs)
            factor_shape = (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)
            factor = keras.random.normal(
                shape=factor_shape,
                mean=1.0,
                stddev=self.stddev,
                dtype=self.compute_dtype,
                seed=self.seed_generator,
            )
            # written as input + masked perturbation so padded steps stay exactly +0.0
            change = inputs * (factor - 1.0) * _padding_mask(inputs, self.compute_dtype)
            return inputs + change
        return inputs


@keras.saving.register_keras_serializable(package="augsweep")
class RandomApply(keras.layers.Layer):
    """Apply an augmentation layer to each sample independently with probability `rate`.

    The wrapped layer runs on the whole batch (in training mode); a random per-sample mask then
    picks, for each sample, either its augmented or its original version. Shape and dtype are kept,
    so the wrapped layer must preserve its input's shape. Only active at training time.

    Args:
        layer: A `keras.layers.Layer` that preserves shape, e.g. `keras.layers.RandomFlip(...)`.
        rate: Float in [0, 1], probability that a sample is passed through `layer`; 0 makes this
            an identity, 1 always applies `layer`.
        seed: Integer or None, seed of the per-sample mask stream (offset internally, so it may
            equal the wrapped layer's seed without correlating the two).
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Tensor `(batch, ...)`.
        training: Python boolean; the layer is applied only when True.
    """

    def __init__(
        self, layer: keras.layers.Layer, rate: float, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"Invalid value received for argument `layer`. Expected a keras.layers.Layer "
                f"instance. Received: layer={layer!r}"
            )
        _check_real("rate", rate, 0.0, 1.0)
        _check_seed(seed)
        self.layer = layer
        self.rate = rate
        self.seed = seed
        if rate > 0:
            mask_seed = None if seed is None else seed + _MASK_SEED_OFFSET
            self.seed_generator = keras.random.SeedGenerator(mask_seed)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if not self.layer.built:
            self.layer.build(input_shape)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.rate == 0:
            return inputs
        augmented = ops.cast(self.layer(inputs, training=True), inputs.dtype)
        shape = ops.shape(inputs)
        apply = keras.random.uniform(shape=(shape[0],), seed=self.seed_generator) < self.rate
        apply = ops.reshape(apply, (shape[0],) + (1,) * (len(shape) - 1))
        return ops.where(apply, augmented, inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        base_config = super().get_config()
        config = {
            "layer": keras.saving.serialize_keras_object(self.layer),
            "rate": self.rate,
            "seed": self.seed,
        }
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RandomApply:
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="augsweep")
class BrightnessScale(keras.layers.Layer):
    """Multiply each image by a random brightness factor, as `ImageDataGenerator(brightness_range)`.

    Keras's `RandomBrightness` adds an offset; ImageDataGenerator multiplies (PIL's
    `ImageEnhance.Brightness`), so its recipes need this layer to be reproduced.

    Args:
        lower: Float >= 0, smallest factor (1 = unchanged).
        upper: Float >= lower, largest factor.
        value_range: The images' value range; results are clipped to it.
        seed: Integer or None, seed of the layer's random stream.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(
        self,
        lower: float,
        upper: float,
        value_range: tuple[float, float] = (0.0, 1.0),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_real("lower", lower, 0.0, math.inf)
        _check_real("upper", upper, lower, math.inf)
        _check_seed(seed)
        self.lower, self.upper, self.seed = lower, upper, seed
        self.value_range = tuple(value_range)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.lower == self.upper == 1.0:
            return inputs
        shape = ops.shape(inputs)
        factor = keras.random.uniform(
            (shape[0],) + (1,) * (len(shape) - 1),
            minval=self.lower,
            maxval=self.upper,
            dtype=self.compute_dtype,
            seed=self.seed_generator,
        )
        return ops.clip(inputs * factor, *self.value_range)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        base_config = super().get_config()
        config = {
            "lower": self.lower,
            "upper": self.upper,
            "value_range": list(self.value_range),
            "seed": self.seed,
        }
        return {**base_config, **config}


@keras.saving.register_keras_serializable(package="augsweep")
class ChannelShift(keras.layers.Layer):
    """Add one random offset to every channel, as `ImageDataGenerator(channel_shift_range)`.

    The result is clipped to the image's own minimum and maximum, as ImageDataGenerator does.

    Args:
        intensity: Float >= 0, the offset is drawn from [-intensity, intensity], in the units of
            the images (ImageDataGenerator's range in 0..255 units divided by 255 for [0, 1] data).
        seed: Integer or None, seed of the layer's random stream.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, intensity: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_real("intensity", intensity, 0.0, math.inf)
        _check_seed(seed)
        self.intensity, self.seed = intensity, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.intensity == 0:
            return inputs
        shape = ops.shape(inputs)
        per_image = (shape[0],) + (1,) * (len(shape) - 1)
        shift = keras.random.uniform(
            per_image,
            minval=-self.intensity,
            maxval=self.intensity,
            dtype=self.compute_dtype,
            seed=self.seed_generator,
        )
        axes = tuple(range(1, len(shape)))
        low = ops.min(inputs, axis=axes, keepdims=True)
        high = ops.max(inputs, axis=axes, keepdims=True)
        return ops.minimum(ops.maximum(inputs + shift, low), high)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        base_config = super().get_config()
        return {**base_config, "intensity": self.intensity, "seed": self.seed}


@keras.saving.register_keras_serializable(package="augsweep")
class TrainingOnly(keras.layers.Layer):
    """A user's augmentation function, applied in training only.

    The classic `keras.layers.Lambda(lambda x: tf.image.random_brightness(x, 0.2))` runs at
    inference too; this wrapper makes the same function an augmentation: identity when
    `training=False`.

    Args:
        function: Dotted path of a function from a batch to a batch of the same shape,
            e.g. "mypackage.augment.random_brightness".
        **kwargs: Base layer keyword arguments.
    """

    def __init__(self, function: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from hydra.utils import get_method

        self.function = function
        self._fn = get_method(function)

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self._fn(inputs) if training else inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "function": self.function}


@keras.saving.register_keras_serializable(package="augsweep")
class CenteredShear(keras.layers.Layer):
    """Shear about the image centre by an angle in degrees, as `ImageDataGenerator(shear_range)`.

    Keras's `RandomShear` shears about the top-left corner, which moves far pixels more; this
    layer draws the angle uniformly in [-max_degrees, max_degrees] and applies
    ImageDataGenerator's own matrix (rows move by sin(angle) x column, columns scale by cos).

    Args:
        max_degrees: Float in [0, 90), the largest shear angle in degrees.
        fill_mode: "constant", "nearest", "reflect" or "wrap", for points outside the image.
        fill_value: Float, the value of "constant" filling.
        seed: Integer or None, seed of the layer's random stream.
        **kwargs: Base layer keyword arguments.
    """

    def __init__(
        self,
        max_degrees: float,
        fill_mode: str = "nearest",
        fill_value: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_real("max_degrees", max_degrees, 0.0, 89.999)
        _check_seed(seed)
        self.max_degrees, self.fill_mode, self.fill_value = max_degrees, fill_mode, fill_value
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_at_init()

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.max_degrees == 0:
            return inputs
        shape = ops.shape(inputs)
        limit = math.radians(self.max_degrees)
        angle = keras.random.uniform(
            (shape[0],), -limit, limit, dtype="float32", seed=self.seed_generator
        )
        sin, cos = ops.sin(angle), ops.cos(angle)
        cx = ops.cast(shape[2], "float32") / 2 - 0.5
        zero, one = ops.zeros_like(angle), ops.ones_like(angle)
        # output (x, y) -> input (cos x + (1 - cos) cx, y - sin x + sin cx)
        transform = ops.stack([cos, zero, (1 - cos) * cx, -sin, one, sin * cx, zero, zero], axis=1)
        out = ops.image.affine_transform(
            ops.cast(inputs, "float32"),
            transform,
            interpolation="bilinear",
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
        )
        return ops.cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {
            "max_degrees": self.max_degrees,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
