"""Augmentation policies: RandAugment, TrivialAugment and AugMix, with one magnitude knob.

A policy draws, per sample, which ops to apply and how hard, from one op table
(`IMAGE_POLICY_OPS`); `aug.strength` is the magnitude. RandAugment (Cubuk et al. 2020) applies
N ops per image at magnitude M: here M = 10 x strength on the paper's 0..10 scale, so every op
moves `strength` of the way to its magnitude at M = 10 (the table; the paper's and timm's
ranges: 30 degrees, shear 0.3, translation 0.45, enhance factors 1 +- 0.9, 4 bits, full
solarisation). TrivialAugment (Mueller & Hutter 2021) applies one op per image at a magnitude
drawn uniformly from 0 to M. AugMix (Hendrycks et al. 2020) mixes `num_chains` chains of 1..N
ops (magnitudes uniform to M) with Dirichlet weights, then with the original by a Beta weight.

Why not `keras.layers.RandAugment` and `keras.layers.AugMix` (they are `aug.implementation=keras`,
`src.augment.keras_policies`): measured on digits (tests/test_policies.py), Keras's RandAugment
at factor 0 changes every image (solarisation with threshold 0 inverts it, posterisation to 1
bit), and its change shrinks as the factor grows, so its factor is no magnitude to sweep; it also
draws one op set per batch, not per image. Keras's AugMix picks its ops with Python's `random`
when its call is traced, so a traced model or tf.data map applies the same chains to every batch.
The layers here draw every choice per sample from their seeded `keras.random.SeedGenerator`, so
they trace statelessly inside the engine's program (`aug.placement=model`) and in tf.data alike.

Strength 0 is the identity for every op (enhance factors 1, no bits removed, nothing solarised);
auto_contrast and equalize, which have no magnitude in the papers, are blended with the original
by `strength`. Images are `(batch, H, W, C)` in `value_range`; results stay in it.

The series RandAugment (`SeriesRandAugment`, like tsai's `RandAugment` for time series) draws N of
augsweep's series ops per series, each at `strength` x its magnitude at strength 1 (the strength
table `src.augment.OPS`); every one keeps end padding exactly zero, and so does the policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from src.augment.layers import _check_real, _check_seed
from src.checks import is_int

__all__ = [
    "IMAGE_POLICY_LAYERS", "IMAGE_POLICY_OPS", "POLICIES", "POLICY_OPS", "SERIES_POLICIES",
    "AugMix", "RandAugment", "SeriesRandAugment", "TrivialAugment", "policy_table", "series_ops",
]  # fmt: skip


@dataclass(frozen=True)
class PolicyOp:
    """One op of the image policies: its magnitude at strength 1 (M = 10) and its meaning."""

    top: float
    meaning: str
    signed: bool = False  # the paper draws a random sign for it
    geometric: bool = False


IMAGE_POLICY_OPS: dict[str, PolicyOp] = {
    "rotation": PolicyOp(30.0, "rotation angle in degrees, about the centre", True, True),
    "shear_x": PolicyOp(0.3, "shear factor along x, about the centre", True, True),
    "shear_y": PolicyOp(0.3, "shear factor along y, about the centre", True, True),
    "translate_x": PolicyOp(0.45, "shift as a fraction of the width", True, True),
    "translate_y": PolicyOp(0.45, "shift as a fraction of the height", True, True),
    "brightness": PolicyOp(0.9, "brightness factor 1 ± m (PIL: blend with black)", True),
    "color": PolicyOp(0.9, "saturation factor 1 ± m (blend with grey; colour images only)", True),
    "contrast": PolicyOp(0.9, "contrast factor 1 ± m (blend with the mean grey)", True),
    "sharpness": PolicyOp(0.9, "sharpness factor 1 ± m (blend with PIL's smoothed image)", True),
    "posterize": PolicyOp(4.0, "bits cleared of each 8-bit value (rounded; 8 - m bits kept)"),
    "solarize": PolicyOp(1.0, "pixels at or above 256 (1 - m) of 255 inverted (all at m = 1)"),
    "auto_contrast": PolicyOp(1.0, "weight of the auto-contrasted image (blend with original)"),
    "equalize": PolicyOp(1.0, "weight of the histogram-equalised image (blend with original)"),
    "identity": PolicyOp(0.0, "nothing (TrivialAugment's list has it)"),
}  # fmt: skip

_ALL = [name for name in IMAGE_POLICY_OPS if name != "identity"]
# each policy's image ops, as its paper lists them (RandAugment's identity left out, so N counts
# ops that change the image)
POLICY_OPS: dict[str, list[str]] = {
    "randaugment": _ALL,
    "trivialaugment": ["identity", *_ALL],
    # AugMix leaves out the ops that overlap ImageNet-C's corruptions (brightness, colour,
    # contrast, sharpness), as its paper does
    "augmix": ["auto_contrast", "equalize", "posterize", "rotation", "solarize", "shear_x",
               "shear_y", "translate_x", "translate_y"],
}  # fmt: skip
POLICIES: tuple[str, ...] = tuple(POLICY_OPS)
# the policies that also work on series, over every series op of src.augment.OPS
SERIES_POLICIES: tuple[str, ...] = ("randaugment",)


def policy_table() -> str:
    """The image policies' op table as Markdown, so the README can be regenerated from it."""
    rows = [
        "| op | at strength 1 (M = 10) | meaning | randaugment | trivialaugment | augmix |",
        "|---|---|---|---|---|---|",
    ]
    for name, op in IMAGE_POLICY_OPS.items():
        top = f"±{op.top:g}" if op.signed else f"{op.top:g}"
        marks = ["yes" if name in POLICY_OPS[p] else "" for p in POLICIES]
        rows.append(f"| {name} | {top} | {op.meaning} | {' | '.join(marks)} |")
    return "\n".join(rows)


def _check_ops(names: Any, accepted: Sequence[str], policy: str) -> list[str]:
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise ValueError(
            f"Invalid value received for argument `ops`. Expected a non-empty list of op names "
            f"of {policy}. Received: ops={names!r}"
        )
    unknown = [n for n in names if n not in accepted]
    if unknown:
        raise ValueError(
            f"Invalid value received for argument `ops`. Expected names from "
            f"{', '.join(accepted)}. Received: ops={list(names)!r}"
        )
    return [str(n) for n in names]


def _check_int(name: str, value: Any, low: int, high: float = math.inf) -> int:
    ok = is_int(value) and low <= value <= high
    if not ok:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected an integer >= {low}"
            f"{'' if high == math.inf else f' and <= {high}'}. Received: {name}={value!r}"
        )
    return value


# -- the ops, on float32 images in [0, 1]; m is one magnitude per image, (B,) ---------------------
def _grey(x: tf.Tensor) -> tf.Tensor:
    """Luminance (ITU-R 601-2, PIL's "L"), (B, H, W, 1)."""
    if x.shape[-1] == 1:
        return x
    weights = tf.constant([0.299, 0.587, 0.114], x.dtype)
    return tf.reduce_sum(x[..., :3] * weights, axis=-1, keepdims=True)


def _blend(degenerate: tf.Tensor, x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """PIL's ImageEnhance: degenerate + factor (x - degenerate), clipped."""
    return tf.clip_by_value(degenerate + factor * (x - degenerate), 0.0, 1.0)


def _smooth(x: tf.Tensor) -> tf.Tensor:
    """PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13) inside, the border left as it is."""
    channels = x.shape[-1]
    kernel = tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], x.dtype) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smoothed = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    rows = tf.logical_and(tf.range(h) > 0, tf.range(h) < h - 1)
    cols = tf.logical_and(tf.range(w) > 0, tf.range(w) < w - 1)
    inside = tf.logical_and(rows[:, None], cols[None, :])[None, :, :, None]
    return tf.where(inside, smoothed, x)


def _auto_contrast(x: tf.Tensor) -> tf.Tensor:
    """Each channel of each image stretched to [0, 1]; a constant channel is left alone."""
    low = tf.reduce_min(x, axis=(1, 2), keepdims=True)
    high = tf.reduce_max(x, axis=(1, 2), keepdims=True)
    stretched = (x - low) / tf.maximum(high - low, 1e-12)
    return tf.where(high > low, stretched, x)


def _equalize(x: tf.Tensor) -> tf.Tensor:
    """Histogram equalisation of each channel of each image (not of the batch, as Keras's
    `Equalization` does): a value goes to the share of the image's other values below it."""
    shape = tf.shape(x)
    flat = tf.reshape(tf.transpose(x, (0, 3, 1, 2)), (shape[0] * shape[3], -1))  # (B*C, H*W)
    ordered = tf.sort(flat, axis=-1)
    at_or_below = tf.cast(tf.searchsorted(ordered, flat, side="right"), x.dtype)
    lowest = tf.cast(tf.searchsorted(ordered, ordered[:, :1], side="right"), x.dtype)
    n = tf.cast(tf.shape(flat)[1], x.dtype)
    out = tf.where(n > lowest, (at_or_below - lowest) / tf.maximum(n - lowest, 1.0), flat)
    out = tf.reshape(out, (shape[0], shape[3], shape[1], shape[2]))
    return tf.transpose(out, (0, 2, 3, 1))


def _pixel(name: str, x: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    """One photometric op with per-image magnitude m, (B, 1, 1, 1)."""
    if name == "brightness":
        return _blend(tf.zeros_like(x), x, 1.0 + m)
    if name == "color":
        return _blend(_grey(x), x, 1.0 + m)
    if name == "contrast":
        return _blend(tf.reduce_mean(_grey(x), axis=(1, 2, 3), keepdims=True), x, 1.0 + m)
    if name == "sharpness":
        return _blend(_smooth(x), x, 1.0 + m)
    if name == "posterize":  # PIL's, on 8-bit values: the lowest round(m) bits cleared
        step = tf.pow(2.0, tf.round(m))
        cleared = tf.floor(tf.round(x * 255.0) / step) * step / 255.0
        return tf.where(tf.round(m) > 0, cleared, x)
    if name == "solarize":  # PIL's threshold 256 (1 - m) on 8-bit values: none inverted at 0
        return tf.where(x * 255.0 >= 256.0 * (1.0 - m), 1.0 - x, x)
    if name == "auto_contrast":
        return x + m * (_auto_contrast(x) - x)
    if name == "equalize":
        return x + m * (_equalize(x) - x)
    return x  # identity


def _matrix(name: str, m: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """(B, 8) output-to-input pixel maps of one geometric op, magnitude m (B,)."""
    ones, zeros = tf.ones_like(m), tf.zeros_like(m)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    if name == "rotation":
        angle = m * (math.pi / 180.0)
        c, s = tf.cos(angle), tf.sin(angle)
        rows = [c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy]
    elif name == "shear_x":
        rows = [ones, m, -m * cy, zeros, ones, zeros]
    elif name == "shear_y":
        rows = [ones, zeros, zeros, m, ones, -m * cx]
    elif name == "translate_x":
        rows = [ones, zeros, m * width, zeros, ones, zeros]
    else:  # translate_y
        rows = [ones, zeros, zeros, zeros, ones, m * height]
    return tf.stack([*rows, zeros, zeros], axis=1)


_IDENTITY_MAP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


class _ImagePolicy(keras.layers.Layer):
    """Shared arguments, checks, draws and config of the image policies."""

    policy = ""

    def __init__(
        self,
        strength: float,
        num_ops: int = 2,
        ops: Sequence[str] | None = None,
        value_range: tuple[float, float] = (0.0, 1.0),
        fill_mode: str = "constant",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_real("strength", strength, 0.0, 1.0)
        _check_seed(seed)
        self.ops = _check_ops(
            POLICY_OPS[self.policy] if ops is None else ops,
            POLICY_OPS[self.policy],
            self.policy,
        )
        self.num_ops = _check_int("num_ops", num_ops, 1)
        if len(value_range) != 2 or not value_range[0] < value_range[1]:
            raise ValueError(
                "Invalid value received for argument `value_range`. Expected (low, high) with "
                f"low < high. Received: value_range={value_range!r}"
            )
        self.strength, self.fill_mode, self.seed = float(strength), fill_mode, seed
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.active = list(self.ops)  # the ops that can change an image of the built shape

    def build(self, input_shape: tuple) -> None:
        # a grey image has no saturation: colour would spend a draw on nothing
        if input_shape[-1] == 1 and len(self.ops) > 1:
            self.active = [name for name in self.ops if name != "color"]
        self._check_active()

    def _check_active(self) -> None:
        pass

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.strength == 0:
            return inputs
        low, high = self.value_range
        x = (tf.cast(inputs, "float32") - low) / (high - low)
        out = tf.clip_by_value(self.augment(x), 0.0, 1.0)
        return tf.cast(out * (high - low) + low, inputs.dtype)

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    # -- draws -----------------------------------------------------------------------------------
    def _uniform(self, shape: Any) -> tf.Tensor:
        return keras.random.uniform(shape, seed=self.seed_generator)

    def _distinct(self, n: tf.Tensor, k: int) -> tf.Tensor:
        """(n, k) indices of k distinct active ops per image, in random order."""
        keys = self._uniform((n, len(self.active)))
        return tf.argsort(keys, axis=1)[:, :k]

    def _magnitudes(self, idx: tf.Tensor, uniform: bool) -> tf.Tensor:
        """Signed magnitude of the chosen op per image: strength x its top (RandAugment's fixed
        M), or uniform in [0, that] (TrivialAugment, AugMix); a random sign for signed ops."""
        tops = tf.constant([IMAGE_POLICY_OPS[n].top for n in self.active], "float32")
        signed = tf.constant([IMAGE_POLICY_OPS[n].signed for n in self.active])
        m = tf.gather(tops, idx) * self.strength
        if uniform:
            m *= self._uniform(tf.shape(idx))
        flip = tf.logical_and(tf.gather(signed, idx), self._uniform(tf.shape(idx)) < 0.5)
        return tf.where(flip, -m, m)

    def apply(self, x: tf.Tensor, idx: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
        """Each image through its own op `active[idx]` at magnitude m: the geometric ops in one
        resampling (each image's own matrix), the photometric ones computed and picked."""
        shape = tf.shape(x)
        n = shape[0]
        height, width = tf.cast(shape[1], "float32"), tf.cast(shape[2], "float32")
        out = x
        geometric = [i for i, name in enumerate(self.active) if IMAGE_POLICY_OPS[name].geometric]
        if geometric:
            maps = tf.broadcast_to(tf.constant(_IDENTITY_MAP), (n, 8))
            for i in geometric:
                chosen = tf.equal(idx, i)[:, None]
                maps = tf.where(chosen, _matrix(self.active[i], m, height, width), maps)
            moved = ops.image.affine_transform(
                x, maps, interpolation="bilinear", fill_mode=self.fill_mode
            )
            is_geometric = tf.reduce_any(tf.equal(idx[:, None], geometric), axis=1)
            out = tf.where(is_geometric[:, None, None, None], moved, out)
        per_image = tf.reshape(m, (-1, 1, 1, 1))
        for i, name in enumerate(self.active):
            if IMAGE_POLICY_OPS[name].geometric or name == "identity":
                continue
            chosen = tf.equal(idx, i)[:, None, None, None]
            out = tf.where(chosen, _pixel(name, x, per_image), out)
        return out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {
            "strength": self.strength,
            "num_ops": self.num_ops,
            "ops": list(self.ops),
            "value_range": list(self.value_range),
            "fill_mode": self.fill_mode,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="augsweep")
class RandAugment(_ImagePolicy):
    """RandAugment (Cubuk et al. 2020): `num_ops` distinct ops per image, in random order, each
    at the fixed magnitude `strength` x its magnitude at M = 10 (`IMAGE_POLICY_OPS`), with a
    random sign where the op has one.

    The paper (and torchvision) draw the N ops with replacement, so an op can come twice; here
    they are distinct (as tsai's RandAugment), so N is the number of ops that change an image.

    Args:
        strength: Float in [0, 1], the magnitude: M = 10 x strength on the paper's 0..10 scale;
            0 makes the layer an identity.
        num_ops: Integer >= 1, N: ops per image; at most the number of ops (of `ops`; on grey
            images `color` is left out).
        ops: The op names to draw from (default: all but identity); `aug.exclude` removes some.
        value_range: `(low, high)`, the images' value range; results stay in it.
        fill_mode: "constant", "nearest", "reflect" or "wrap": what geometric ops fill with.
        seed: Integer or None, seed of the layer's random stream.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Float tensor `(batch, height, width, channels)`.
        training: Python boolean; images change only when True.
    """

    policy = "randaugment"

    def _check_active(self) -> None:
        if self.num_ops > len(self.active):
            raise ValueError(
                "Invalid value received for argument `num_ops`. Expected at most the "
                f"{len(self.active)} ops that apply ({', '.join(self.active)}). "
                f"Received: num_ops={self.num_ops}"
            )

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        idx = self._distinct(tf.shape(x)[0], self.num_ops)
        for j in range(self.num_ops):
            x = self.apply(x, idx[:, j], self._magnitudes(idx[:, j], uniform=False))
        return x


@keras.saving.register_keras_serializable(package="augsweep")
class TrivialAugment(_ImagePolicy):
    """TrivialAugment (Mueller & Hutter 2021, with RandAugment's ranges): one op per image,
    uniformly from `ops` (identity included), at a magnitude uniform in [0, strength x its
    magnitude at M = 10], with a random sign where the op has one.

    The paper's TrivialAugment has no magnitude parameter: strength 1 is it.

    Args:
        strength: Float in [0, 1], scales the largest magnitude; 0 makes the layer an identity.
        num_ops: Must be 1 (one op per image, by definition).
        ops, value_range, fill_mode, seed: As `RandAugment`.
    """

    policy = "trivialaugment"

    def __init__(self, strength: float, num_ops: int = 1, **kwargs: Any) -> None:
        super().__init__(strength, num_ops=_check_int("num_ops", num_ops, 1, 1), **kwargs)

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        idx = self._distinct(tf.shape(x)[0], 1)[:, 0]
        return self.apply(x, idx, self._magnitudes(idx, uniform=True))


@keras.saving.register_keras_serializable(package="augsweep")
class AugMix(_ImagePolicy):
    """AugMix (Hendrycks et al. 2020): `num_chains` chains of 1..`num_ops` ops per image (depth
    and ops drawn per image and chain), each op at a magnitude uniform in [0, strength x its
    magnitude at M = 10]; the chains mixed with Dirichlet(alpha) weights, then with the original
    image by a Beta(alpha, alpha) weight, all per image. (Its consistency loss is not part of it.)

    Args:
        strength: Float in [0, 1], scales the largest magnitude (the paper's severity / 10);
            0 makes the layer an identity.
        num_ops: Integer >= 1, the deepest chain (the paper: depth 1 to 3).
        num_chains: Integer >= 1, chains mixed (the paper's width, 3).
        alpha: Float > 0, the Dirichlet and Beta parameter (the paper's 1).
        ops, value_range, fill_mode, seed: As `RandAugment`.
    """

    policy = "augmix"

    def __init__(
        self,
        strength: float,
        num_ops: int = 3,
        num_chains: int = 3,
        alpha: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(strength, num_ops=num_ops, **kwargs)
        self.num_chains = _check_int("num_chains", num_chains, 1)
        _check_real("alpha", alpha, 1e-6, math.inf)
        self.alpha = float(alpha)

    def augment(self, x: tf.Tensor) -> tf.Tensor:
        n = tf.shape(x)[0]
        k = len(self.active)
        weights = keras.random.gamma((n, self.num_chains), self.alpha, seed=self.seed_generator)
        weights /= tf.reduce_sum(weights, axis=1, keepdims=True)
        a = keras.random.gamma((n,), self.alpha, seed=self.seed_generator)
        b = keras.random.gamma((n,), self.alpha, seed=self.seed_generator)
        keep = tf.reshape(a / (a + b), (-1, 1, 1, 1))
        mixed = tf.zeros_like(x)
        for c in range(self.num_chains):
            depth = 1 + tf.cast(self._uniform((n,)) * self.num_ops, "int32")
            chain = x
            for j in range(self.num_ops):
                idx = tf.minimum(tf.cast(self._uniform((n,)) * k, "int32"), k - 1)
                stepped = self.apply(chain, idx, self._magnitudes(idx, uniform=True))
                chain = tf.where((j < depth)[:, None, None, None], stepped, chain)
            mixed += tf.reshape(weights[:, c], (-1, 1, 1, 1)) * chain
        return keep * x + (1 - keep) * mixed

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_chains": self.num_chains, "alpha": self.alpha}


IMAGE_POLICY_LAYERS: dict[str, type[_ImagePolicy]] = {
    "randaugment": RandAugment,
    "trivialaugment": TrivialAugment,
    "augmix": AugMix,
}


@keras.saving.register_keras_serializable(package="augsweep")
class SeriesRandAugment(keras.layers.Layer):
    """A time-series RandAugment: `num_ops` distinct series ops per series, in random order, each
    at `strength` x its magnitude at strength 1 (`src.augment.OPS`, the strength table).

    Every op keeps the end padding of a variable-length series exactly zero and the shape, and
    the policy picks, per series, an op's output or its input: padding and shape are kept.

    Args:
        strength: Float in [0, 1]; 0 makes the layer an identity.
        num_ops: Integer >= 1, N: ops per series, at most len(ops).
        ops: Names of series ops of `src.augment.OPS` (default: all of them).
        seed: Integer or None, seed of the layer's random stream; op i gets seed + 1 + i.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Float tensor `(batch, time, channels)`, zero-padded at the end.
        training: Python boolean; series change only when True.
    """

    def __init__(
        self,
        strength: float,
        num_ops: int = 2,
        ops: Sequence[str] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from src.augment import OPS  # the strength table imports this module

        accepted = [name for name, op in OPS.items() if op.modality == "series"]
        _check_real("strength", strength, 0.0, 1.0)
        _check_seed(seed)
        self.ops = _check_ops(accepted if ops is None else ops, accepted, "the series ops")
        self.num_ops = _check_int("num_ops", num_ops, 1, len(self.ops))
        self.strength, self.seed = float(strength), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        base = 0 if seed is None else seed
        self.op_layers = [
            OPS[name].build(self.strength * OPS[name].max_magnitude, base + 1 + i, None)
            for i, name in enumerate(self.ops)
        ]
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        for layer in self.op_layers:
            if not layer.built:
                layer.build(input_shape)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.strength == 0:
            return inputs
        keys = keras.random.uniform((tf.shape(inputs)[0], len(self.ops)), seed=self.seed_generator)
        idx = tf.argsort(keys, axis=1)[:, : self.num_ops]
        x = inputs
        for j in range(self.num_ops):
            out = x
            for i, layer in enumerate(self.op_layers):
                chosen = tf.equal(idx[:, j], i)[:, None, None]
                out = tf.where(chosen, layer(x, training=True), out)
            x = out
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {
            "strength": self.strength,
            "num_ops": self.num_ops,
            "ops": list(self.ops),
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def series_ops() -> list[str]:
    from src.augment import OPS

    return [name for name, op in OPS.items() if op.modality == "series"]
