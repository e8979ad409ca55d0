"""Time-series augmentations from Um et al. (2017) and Iwana & Uchida (2021), as Keras layers.

Inputs are `(batch, time, channels)`; variable-length series are zero-padded at the end (a step
whose channels are all exactly 0 ends the series). Every op works within each series' own valid
length, vectorised over the batch, and leaves the padding exactly zero. All are identities when
`training=False` or when their magnitude is 0.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from src.augment.layers import _check_real, _check_seed


def _lengths(x: tf.Tensor) -> tf.Tensor:
    """Valid length per series: one past its last step with a non-zero channel, at least 2."""
    steps = tf.reduce_any(tf.not_equal(x, 0), axis=-1)  # (B, T)
    t = tf.shape(x)[1]
    last = tf.reduce_max(tf.where(steps, tf.range(t)[None, :], -1), axis=1)
    return tf.maximum(last + 1, 2)


def _valid(x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """(B, T, 1) float mask of the valid steps."""
    t = tf.range(tf.shape(x)[1])[None, :]
    return tf.cast(t < lengths[:, None], x.dtype)[..., None]


def _padded_with_zeros(out: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """`out` at valid steps, +0.0 at padding (a product with a 0 mask can give -0.0)."""
    t = tf.range(tf.shape(out)[1])[None, :, None]
    return tf.where(t < lengths[:, None, None], out, tf.zeros_like(out))


def _resample(x: tf.Tensor, source: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Output step t reads input coordinate source[b, t] (float) by linear interpolation."""
    top = tf.cast(lengths - 1, x.dtype)[:, None]
    source = tf.clip_by_value(source, 0.0, top)
    low = tf.floor(source)
    weight = (source - low)[..., None]
    low_i = tf.cast(low, tf.int32)
    high_i = tf.minimum(low_i + 1, lengths[:, None] - 1)
    out = tf.gather(x, low_i, batch_dims=1) * (1 - weight)
    out += tf.gather(x, high_i, batch_dims=1) * weight
    return _padded_with_zeros(out, lengths)


def _steps(x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Step index t as a float, broadcast to (B, T)."""
    t = tf.cast(tf.range(tf.shape(x)[1]), x.dtype)[None, :]
    return tf.broadcast_to(t, tf.shape(x)[:2])


def _smooth_curve(knots: tf.Tensor, x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Evaluate knot values (B, K, C), spread evenly over each valid length, at every step.

    Smoothstep interpolation between neighbouring knots: continuous, with a continuous slope.
    """
    n = tf.shape(knots)[1]
    top = tf.cast(lengths - 1, x.dtype)[:, None]
    position = _steps(x, lengths) / top * tf.cast(n - 1, x.dtype)
    position = tf.clip_by_value(position, 0.0, tf.cast(n - 1, x.dtype))
    k = tf.minimum(tf.cast(tf.floor(position), tf.int32), n - 2)
    u = (position - tf.cast(k, x.dtype))[..., None]
    u = u * u * (3 - 2 * u)
    return tf.gather(knots, k, batch_dims=1) * (1 - u) + tf.gather(knots, k + 1, batch_dims=1) * u


class _SeriesOp(keras.layers.Layer):
    """Shared shape, seed and config of the ops below: one magnitude argument each."""

    magnitude_name = "magnitude"

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_seed(seed)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    @property
    def magnitude(self) -> float:
        return getattr(self, self.magnitude_name)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.magnitude == 0:
            return inputs
        x = tf.convert_to_tensor(inputs)
        lengths = _lengths(x)
        return self.augment(x, lengths, tf.shape(x)[0])

    def augment(self, x: tf.Tensor, lengths: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _seed(self) -> tf.Tensor:
        return self.seed_generator.next()

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._own_config(), "seed": self.seed}

    def _own_config(self) -> dict[str, Any]:
        return {self.magnitude_name: self.magnitude}


def _normal(layer: _SeriesOp, shape: Any, mean: float, stddev: float) -> tf.Tensor:
    return keras.random.normal(shape, mean=mean, stddev=stddev, seed=layer.seed_generator)


def _uniform(layer: _SeriesOp, shape: Any, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
    return keras.random.uniform(shape, minval=low, maxval=high, seed=layer.seed_generator)


class _KnotOp(_SeriesOp):
    """A smooth random curve with `knots` inner knots ~ N(1, sigma) drives the op."""

    magnitude_name = "sigma"

    def __init__(self, sigma: float, knots: int = 4, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        _check_real("sigma", sigma, 0.0, math.inf)
        _check_real("knots", knots, 1, 1000)
        self.sigma, self.knots = sigma, int(knots)

    def _own_config(self):
        return {"sigma": self.sigma, "knots": self.knots}


@keras.saving.register_keras_serializable(package="augsweep")
class MagnitudeWarp(_KnotOp):
    """Multiply each series by a smooth random curve around 1 (Um et al. 2017).

    Args:
        sigma: Float >= 0, std of the curve's knot values ~ N(1, sigma), per series and channel.
        knots: Integer >= 1, inner knots of the curve (plus one at each end).
        seed: Integer or None, seed of the layer's random stream.
    """

    def augment(self, x, lengths, batch):
        values = _normal(self, (batch, self.knots + 2, tf.shape(x)[2]), 1.0, self.sigma)
        return _padded_with_zeros(x * _smooth_curve(values, x, lengths), lengths)


@keras.saving.register_keras_serializable(package="augsweep")
class TimeWarp(_KnotOp):
    """Resample each series along a smooth random time distortion (Um et al. 2017).

    The local speed is a smooth curve with knots ~ N(1, sigma) (kept above 0.1); its cumulative
    sum, rescaled to span the series, says where each output step reads the input.

    Args:
        sigma: Float >= 0, std of the speed curve's knots.
        knots: Integer >= 1, inner knots of the curve.
        seed: Integer or None, seed of the layer's random stream.
    """

    def augment(self, x, lengths, batch):
        speed = tf.maximum(_normal(self, (batch, self.knots + 2, 1), 1.0, self.sigma), 0.1)
        speed = _smooth_curve(speed, x, lengths)[..., 0] * _valid(x, lengths)[..., 0]
        clock = tf.cumsum(speed, axis=1, exclusive=True)
        end = tf.gather(clock, lengths[:, None] - 1, batch_dims=1)
        top = tf.cast(lengths - 1, x.dtype)[:, None]
        return _resample(x, clock / tf.maximum(end, 1e-6) * top, lengths)


@keras.saving.register_keras_serializable(package="augsweep")
class WindowSlice(_SeriesOp):
    """Cut a random window of (1 - ratio) of each series and stretch it back (Le Guennec 2016).

    Args:
        ratio: Float in [0, 1), fraction of the series cut away.
        seed: Integer or None, seed of the layer's random stream.
    """

    magnitude_name = "ratio"

    def __init__(self, ratio: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        _check_real("ratio", ratio, 0.0, 0.99)
        self.ratio = ratio

    def augment(self, x, lengths, batch):
        top = tf.cast(lengths - 1, x.dtype)[:, None]
        width = tf.maximum(top * (1 - self.ratio), 1.0)
        start = _uniform(self, (batch, 1)) * (top - width)
        return _resample(x, start + _steps(x, lengths) / top * width, lengths)


@keras.saving.register_keras_serializable(package="augsweep")
class WindowWarp(_SeriesOp):
    """Speed up or slow down a random window of each series, then fit it back to its length.

    Args:
        ratio: Float in [0, 1], fraction of the series in the window.
        scales: The window's speed factors; one is drawn per series (Le Guennec 2016: 0.5, 2).
        seed: Integer or None, seed of the layer's random stream.
    """

    magnitude_name = "ratio"

    def __init__(
        self, ratio: float, scales: tuple = (0.5, 2.0), seed: int | None = None, **kwargs: Any
    ):
        super().__init__(seed=seed, **kwargs)
        _check_real("ratio", ratio, 0.0, 1.0)
        for scale in scales:
            _check_real("scales", scale, 0.01, 100.0)
        self.ratio, self.scales = ratio, tuple(float(s) for s in scales)

    def augment(self, x, lengths, batch):
        top = tf.cast(lengths - 1, x.dtype)[:, None]
        width = top * self.ratio
        start = _uniform(self, (batch, 1)) * (top - width)
        pick = tf.cast(_uniform(self, (batch, 1)) * len(self.scales), tf.int32)
        scale = tf.gather(tf.constant(self.scales, x.dtype), tf.minimum(pick, len(self.scales) - 1))
        stretched = width * scale  # the window's length after warping
        # output step t sits at u on the warped series, which maps back piecewise-linearly
        u = _steps(x, lengths) / top * (top - width + stretched)
        source = tf.where(
            u < start,
            u,
            tf.where(u < start + stretched, start + (u - start) / scale, u - stretched + width),
        )
        return _resample(x, source, lengths)

    def _own_config(self):
        return {"ratio": self.ratio, "scales": list(self.scales)}


@keras.saving.register_keras_serializable(package="augsweep")
class Permutation(_SeriesOp):
    """Cut each series into 1..max_segments equal segments and shuffle their order (Um et al.).

    Args:
        max_segments: Number >= 1, rounded to an integer: the most segments (1 = unchanged).
        seed: Integer or None, seed of the layer's random stream.
    """

    magnitude_name = "max_segments"

    def __init__(self, max_segments: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        _check_real("max_segments", max_segments, 0.0, 10_000.0)
        self.max_segments = max_segments

    def call(self, inputs: Any, training: bool = False) -> Any:
        if round(self.max_segments) <= 1:
            return inputs
        return super().call(inputs, training=training)

    def augment(self, x, lengths, batch):
        m = int(round(self.max_segments))
        count = 1 + tf.cast(_uniform(self, (batch, 1)) * m, tf.int32)
        count = tf.minimum(tf.minimum(count, m), lengths[:, None])  # (B, 1) segments in use
        slot = tf.range(m)[None, :]
        # original segment k spans [bounds[k], bounds[k+1])
        bounds = (tf.range(m + 1)[None, :] * lengths[:, None]) // count
        bounds = tf.minimum(bounds, lengths[:, None])
        size = bounds[:, 1:] - bounds[:, :-1]  # (B, m), 0 for unused slots
        keys = tf.where(slot < count, _uniform(self, (batch, m)), 2.0)
        order = tf.argsort(keys, axis=1)  # used slots first, in random order
        out_size = tf.gather(size, order, batch_dims=1)
        out_start = tf.cumsum(out_size, axis=1, exclusive=True)
        t = tf.range(tf.shape(x)[1])[None, :, None]
        used = (slot < count)[:, None, :]
        j = tf.reduce_sum(tf.cast(used & (out_start[:, None, :] <= t), tf.int32), axis=2) - 1
        j = tf.maximum(j, 0)
        source = tf.gather(tf.gather(bounds[:, :-1], order, batch_dims=1), j, batch_dims=1)
        source += tf.range(tf.shape(x)[1])[None, :] - tf.gather(out_start, j, batch_dims=1)
        source = tf.minimum(source, lengths[:, None] - 1)
        return _padded_with_zeros(tf.gather(x, source, batch_dims=1), lengths)


@keras.saving.register_keras_serializable(package="augsweep")
class ChannelRotation(_SeriesOp):
    """Rotate the channels of multivariate series; flip the sign of univariate ones.

    Multivariate: a random orthogonal matrix exp(theta A), A a random skew-symmetric matrix of unit
    spectral scale and theta ~ U(0, angle), mixes the channels at every step (Um et al. 2017 rotate
    3-axis sensor data). Univariate (one channel): the series is negated with probability
    min(1, angle / pi), the univariate rotation of Iwana & Uchida (2021).

    Args:
        angle: Float in [0, pi], the largest rotation angle in radians.
        seed: Integer or None, seed of the layer's random stream.
    """

    magnitude_name = "angle"

    def __init__(self, angle: float, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        _check_real("angle", angle, 0.0, math.pi + 1e-6)
        self.angle = angle

    def augment(self, x, lengths, batch):
        channels = x.shape[-1]
        if channels == 1:
            flip = _uniform(self, (batch, 1, 1)) < min(1.0, self.angle / math.pi)
            return _padded_with_zeros(tf.where(flip, -x, x), lengths)
        a = _normal(self, (batch, channels, channels), 0.0, 1.0)
        skew = a - tf.transpose(a, (0, 2, 1))
        scale = tf.norm(skew, ord="fro", axis=(1, 2))[:, None, None] / math.sqrt(2.0)
        theta = _uniform(self, (batch, 1, 1)) * self.angle
        rotation = tf.linalg.expm(skew / tf.maximum(scale, 1e-6) * theta)
        return _padded_with_zeros(tf.matmul(x, rotation), lengths)
