"""Time-series augmentations from Um et al. (2017) and Iwana & Uchida (2021), as Keras layers.

Inputs are `(batch, time, channels)`; variable-length series are zero-padded at the end (a step
whose channels are all exactly 0 ends the series). Every op works within each series' own valid
length, vectorised over the batch, and leaves the padding exactly zero. All are identities when
`training=False` or when their magnitude is 0.

The reference of every op is the code of Iwana & Uchida's survey ("An empirical survey of data
augmentation for time series classification with neural networks", PLOS ONE 16(7): e0254841,
2021): github.com/uchidalab/time_series_augmentation, `utils/augmentation.py`, at commit 656318d.
`tests/test_op_reference.py` compares each layer with it on GunPoint. Where a layer draws the
same distribution, its docstring says "as the reference"; where it is parameterised differently
(`TimeWarp(mode="speed")`, `ChannelRotation(mode="rotate")`, `Permutation`'s inclusive count,
`WindowSlice`'s cut fraction), the docstring says how the reference's parameter maps onto it.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from src.augment.layers import _check_real, _check_seed


def _check_choice(name: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected one of {accepted}. "
            f"Received: {name}={value!r}"
        )


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


@cache
def _spline_basis(n: int) -> np.ndarray:
    """(n - 1 pieces, 4 powers, n knots): the not-a-knot cubic spline through n evenly spaced
    knots, in knot units, as polynomial coefficients per piece and knot.

    A cubic spline is linear in its knot values, so the spline through values y is, on piece j
    at offset v, sum_k y_k sum_p basis[j, p, k] v^(3 - p). The coefficients are scipy's
    `CubicSpline` (default not-a-knot ends, the reference's) through the unit vectors; an affine
    change of the time axis leaves the spline the same, so knot units fit every length.
    """
    from scipy.interpolate import CubicSpline

    return np.transpose(CubicSpline(np.arange(n), np.eye(n)).c, (1, 0, 2))


def _spline_curve(knots: tf.Tensor, x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """Evaluate knot values (B, K, C), spread evenly over each valid length, at every step, along
    the cubic spline through them (as the reference's `CubicSpline(warp_steps, values)`)."""
    n = knots.shape[1]
    basis = tf.constant(_spline_basis(n), x.dtype)
    top = tf.cast(lengths - 1, x.dtype)[:, None]
    position = tf.clip_by_value(_steps(x, lengths) / top * (n - 1), 0.0, n - 1.0)
    piece = tf.minimum(tf.cast(tf.floor(position), tf.int32), n - 2)
    v = position - tf.cast(piece, x.dtype)
    powers = tf.stack([v * v * v, v * v, v, tf.ones_like(v)], axis=-1)  # (B, T, 4)
    weights = tf.einsum("btp,btpk->btk", powers, tf.gather(basis, piece))
    return tf.einsum("btk,bkc->btc", weights, knots)


def _running_max(values: tf.Tensor) -> tf.Tensor:
    """Running maximum along axis 1 of (B, T), in log2(T) doubling steps."""
    t = tf.shape(values)[1]
    lowest = tf.fill(tf.shape(values), values.dtype.min)

    def body(k: tf.Tensor, m: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shifted = tf.concat([lowest[:, :k], m[:, : t - k]], axis=1)
        return k * 2, tf.maximum(m, shifted)

    return tf.while_loop(
        lambda k, m: k < t,
        body,
        (tf.constant(1), values),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None])),
    )[1]


def _per_channel(x: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(B, T, C) -> (B * C, T, 1) with lengths repeated: one univariate series per channel."""
    channels = tf.shape(x)[2]
    flat = tf.reshape(tf.transpose(x, (0, 2, 1)), (-1, tf.shape(x)[1], 1))
    return flat, tf.repeat(lengths, channels)


def _from_channels(flat: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Inverse of `_per_channel`."""
    shape = tf.shape(x)
    return tf.transpose(tf.reshape(flat, (shape[0], shape[2], shape[1])), (0, 2, 1))


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
        # float32 inside, whatever the policy: time positions of long series need its precision
        out = self.augment(tf.cast(x, "float32"), _lengths(x), tf.shape(x)[0])
        return tf.cast(out, x.dtype)

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

    As the reference's `magnitude_warp(x, sigma, knot)`: the cubic spline through `knots + 2`
    evenly spaced values ~ N(1, sigma), one curve per series and channel.

    Args:
        sigma: Float >= 0, std of the curve's knot values ~ N(1, sigma), per series and channel.
        knots: Integer >= 1, inner knots of the curve (plus one at each end).
        seed: Integer or None, seed of the layer's random stream.
    """

    def augment(self, x, lengths, batch):
        values = _normal(self, (batch, self.knots + 2, tf.shape(x)[2]), 1.0, self.sigma)
        return _padded_with_zeros(x * _spline_curve(values, x, lengths), lengths)


TIME_WARP_MODES = ("speed", "position")


@keras.saving.register_keras_serializable(package="augsweep")
class TimeWarp(_KnotOp):
    """Resample each series along a smooth random time distortion (Um et al. 2017).

    `mode="speed"` (augsweep's own): the local speed is a smooth curve with knots ~ N(1, sigma)
    (kept above 0.1); its cumulative sum, rescaled to span the series, says where each output
    step reads the input. One warp per series, shared by its channels.

    `mode="position"` (the reference's `time_warp(x, sigma, knot)`): the knots' own time
    positions are multiplied by factors ~ N(1, sigma), the cubic spline through them (rescaled to
    end at the last step) is the warped clock, and output step t reads the input where that clock
    first reaches t. Every channel gets its own warp, as in the reference. Since a knot moves in
    proportion to its position, late knots move far: at the same sigma this warp moves a series
    several times more than `speed` does.

    Args:
        sigma: Float >= 0, std of the knot factors.
        knots: Integer >= 1, inner knots of the curve.
        mode: "speed" or "position", what the knot factors multiply.
        seed: Integer or None, seed of the layer's random stream.
    """

    def __init__(
        self,
        sigma: float,
        knots: int = 4,
        mode: str = "speed",
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(sigma, knots=knots, seed=seed, **kwargs)
        _check_choice("mode", mode, TIME_WARP_MODES)
        self.mode = mode

    def augment(self, x, lengths, batch):
        if self.mode == "position":
            flat, flat_lengths = _per_channel(x, lengths)
            warped = self._position_warp(flat, flat_lengths, tf.shape(flat)[0])
            return _from_channels(warped, x)
        speed = tf.maximum(_normal(self, (batch, self.knots + 2, 1), 1.0, self.sigma), 0.1)
        speed = _smooth_curve(speed, x, lengths)[..., 0] * _valid(x, lengths)[..., 0]
        clock = tf.cumsum(speed, axis=1, exclusive=True)
        end = tf.gather(clock, lengths[:, None] - 1, batch_dims=1)
        top = tf.cast(lengths - 1, x.dtype)[:, None]
        return _resample(x, clock / tf.maximum(end, 1e-6) * top, lengths)

    def _position_warp(self, x, lengths, batch):
        n = self.knots + 2
        top = tf.cast(lengths - 1, x.dtype)[:, None]
        knots = tf.linspace(tf.constant(0.0, x.dtype), 1.0, n)[None, :] * top  # (B, n)
        factors = _normal(self, (batch, n), 1.0, self.sigma)
        clock = _spline_curve((knots * factors)[..., None], x, lengths)[..., 0]
        end = tf.gather(clock, lengths[:, None] - 1, batch_dims=1)
        clock = tf.clip_by_value(clock * top / tf.maximum(end, 1e-6), 0.0, top)
        # the reference's np.interp(t, clock, x): x where the clock reaches t. A clock that turns
        # back is read at its running maximum, as np.interp's forward search mostly does
        clock = _running_max(clock)
        t = _steps(x, lengths)
        low = tf.clip_by_value(tf.searchsorted(clock, t, side="right") - 1, 0, lengths[:, None] - 2)
        at_low = tf.gather(clock, low, batch_dims=1)
        gap = tf.maximum(tf.gather(clock, low + 1, batch_dims=1) - at_low, 1e-6)
        source = tf.cast(low, x.dtype) + tf.clip_by_value((t - at_low) / gap, 0.0, 1.0)
        return _resample(x, tf.where(t >= top, top, source), lengths)

    def _own_config(self):
        return {**super()._own_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="augsweep")
class WindowSlice(_SeriesOp):
    """Cut a random window of (1 - ratio) of each series and stretch it back (Le Guennec 2016).

    The reference's `window_slice(x, reduce_ratio)` keeps `reduce_ratio` of the series: it is
    this layer at `ratio = 1 - reduce_ratio`.

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

    As the reference's `window_warp(x, window_ratio, scales)`, with `ratio = window_ratio`.

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

    The reference's `permutation(x, max_segments)` draws 1 to `max_segments - 1` segments
    (`np.random.randint(1, max_segments)`): it is this layer at `max_segments - 1`.

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


ROTATION_MODES = ("rotate", "flip_shuffle")


@keras.saving.register_keras_serializable(package="augsweep")
class ChannelRotation(_SeriesOp):
    """Rotate the channels of multivariate series; flip the sign of univariate ones.

    `mode="rotate"` (augsweep's own), multivariate: a random orthogonal matrix exp(theta A), A a
    random skew-symmetric matrix of unit spectral scale and theta ~ U(0, angle), mixes the
    channels at every step (Um et al. 2017 rotate 3-axis sensor data).

    `mode="flip_shuffle"` (the reference's `rotation(x)`), multivariate: every channel is negated
    with probability min(1, angle / pi) and the channels are put in a random order, per series
    (the reference shuffles once per batch and negates with probability 0.5: angle pi / 2).

    Univariate (one channel), either mode: the series is negated with probability
    min(1, angle / pi), the univariate rotation of Iwana & Uchida (2021), whose code negates with
    probability 0.5.

    Args:
        angle: Float in [0, pi], the largest rotation angle in radians; angle / pi is the
            probability of a sign flip.
        mode: "rotate" or "flip_shuffle", what happens to multivariate series.
        seed: Integer or None, seed of the layer's random stream.
    """

    magnitude_name = "angle"

    def __init__(self, angle: float, mode: str = "rotate", seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        _check_real("angle", angle, 0.0, math.pi + 1e-6)
        _check_choice("mode", mode, ROTATION_MODES)
        self.angle, self.mode = angle, mode

    def augment(self, x, lengths, batch):
        channels = x.shape[-1]
        flip_rate = min(1.0, self.angle / math.pi)
        if channels == 1 or self.mode == "flip_shuffle":
            flip = _uniform(self, (batch, 1, channels)) < flip_rate
            if channels > 1:
                order = tf.argsort(_uniform(self, (batch, channels)), axis=1)
                x = tf.gather(x, order, axis=2, batch_dims=1)
            return _padded_with_zeros(tf.where(flip, -x, x), lengths)
        a = _normal(self, (batch, channels, channels), 0.0, 1.0)
        skew = a - tf.transpose(a, (0, 2, 1))
        scale = tf.norm(skew, ord="fro", axis=(1, 2))[:, None, None] / math.sqrt(2.0)
        theta = _uniform(self, (batch, 1, 1)) * self.angle
        rotation = tf.linalg.expm(skew / tf.maximum(scale, 1e-6) * theta)
        return _padded_with_zeros(tf.matmul(x, rotation), lengths)

    def _own_config(self):
        return {"angle": self.angle, "mode": self.mode}
