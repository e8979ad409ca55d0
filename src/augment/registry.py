"""The op registry: what each augmentation op does and how hard it pushes at strength 1.

`OPS` is the single source of truth for the ops: an op's magnitude is `aug.strength` (0..1) times
its magnitude at strength 1 (`Op.max_magnitude`), unless an entry of `aug.ops` gives its own
`magnitude` or, for a series op, the arguments of its reference function in Iwana & Uchida's code
(`{name: time_warp, sigma: 0.2}`, see `Literature`). Add an op by adding an `Op` to `OPS`;
`src.augment.resolve` reads a config against this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from src.augment import image
from src.augment.layers import Jitter, Scaling
from src.augment.series import (
    ChannelRotation,
    MagnitudeWarp,
    Permutation,
    TimeWarp,
    WindowSlice,
    WindowWarp,
)
from src.checks import check_choice, finite

MODALITIES: tuple[str, ...] = ("image", "series")
FILL_MODES: tuple[str, ...] = ("constant", "reflect", "wrap", "nearest")


@dataclass(frozen=True)
class Param:
    """One argument of a reference function: its default (the survey's setting) and range."""

    default: Any  # a number, or a tuple of numbers for a list argument
    low: float
    high: float = math.inf
    integer: bool = False

    def accepts(self, value: Any) -> bool:
        if not isinstance(self.default, tuple):
            return self._number(value)
        is_list = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
        return is_list and all(self._number(v) for v in value)

    def _number(self, v: Any) -> bool:
        return (
            finite(v)
            and self.low <= v <= self.high and (not self.integer or v == int(v))
        )  # fmt: skip

    def accepted(self) -> str:
        kind = "an integer" if self.integer else "a number"
        span = f">= {self.low:g}" if self.high == math.inf else f"in [{self.low:g}, {self.high:g}]"
        what = f"{kind} {span}"
        if isinstance(self.default, tuple):
            what = f"a non-empty list of numbers {span}"
        return f"{what}; the survey's {_literal(self.default)}"


def _literal(value: Any) -> str:
    return f"[{', '.join(f'{v:g}' for v in value)}]" if isinstance(value, tuple) else f"{value:g}"


@dataclass(frozen=True)
class Literature:
    """A series op as its reference function parameterises it (Iwana & Uchida 2021, the code of
    their survey: uchidalab/time_series_augmentation, `utils/augmentation.py`).

    An `aug.ops` entry that gives any of `params` means that function called with them (its other
    arguments at their defaults, the survey's setting), e.g. `{name: time_warp, sigma: 0.2}`;
    `aug.strength` then only turns it on (> 0) or off (0), as with `magnitude`.

    Attributes:
        function: the reference function, as the survey's code calls it.
        params: its arguments, with their defaults and accepted ranges.
        convert: those arguments -> (the op's magnitude, other layer arguments).
        strength: the `aug.strength` that changes a series as much as the survey's setting does
            (tests/test_op_reference.py measures it on GunPoint), None when no strength does.
        note: why, or how the parameters map.
    """

    function: str
    params: Mapping[str, Param]
    convert: Callable[..., tuple[float, dict[str, Any]]]
    strength: float | None
    note: str = ""

    def cell(self) -> str:
        """The strength table's cell: the survey's setting -> the strength that gives it."""
        setting = ", ".join(f"`{k}` {_literal(p.default)}" for k, p in self.params.items())
        strength = "none" if self.strength is None else f"{self.strength:g}"
        return f"{setting} → {strength}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Op:
    """One augmentation op: what data it fits, how strong it is at strength 1, how to build it.

    Attributes:
        modality: "image" or "series".
        max_magnitude: the op's magnitude at strength 1 (magnitude = strength * max_magnitude).
        meaning: what the magnitude measures, for docs and run logs.
        build: (magnitude > 0, seed, aug config, **layer arguments) -> a seeded Keras layer.
        mixing: the op mixes samples and their labels (soft labels), so it runs in tf.data.
        literature: the op's reference parameterisation, for series ops.
    """

    modality: str
    max_magnitude: float
    meaning: str
    build: Callable[..., keras.layers.Layer]
    mixing: bool = False
    literature: Literature | None = None


def _flip(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return image.random_flip("horizontal", magnitude, seed, "flip")


def _rotation(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomRotation(
        magnitude, fill_mode=fill_mode(aug_cfg), seed=seed, name="rotation"
    )


def _zoom(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomZoom(magnitude, fill_mode=fill_mode(aug_cfg), seed=seed, name="zoom")


def _contrast(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    # (m, m), not m: Keras turns a single float m into factors U(1, 1 + m), contrast only raised
    return keras.layers.RandomContrast(
        (magnitude, magnitude), value_range=(0, 1), seed=seed, name="contrast"
    )


def _series_layer(cls: type) -> Callable[..., keras.layers.Layer]:
    return lambda magnitude, seed, aug_cfg, **options: cls(magnitude, seed=seed, **options)


def _series_op(cls: type, top: float, meaning: str, literature: Literature) -> Op:
    return Op("series", top, meaning, _series_layer(cls), literature=literature)


# The survey's settings are the reference functions' defaults. Their strength here is measured
# on GunPoint in tests/test_op_reference.py (mean absolute change per value within 15%).
_SIGMA = {"sigma": Param(0.2, 0.0)}
_KNOTS = {**_SIGMA, "knot": Param(4, 1, 1000, integer=True)}


def _image_op(builder: Callable) -> Callable[[float, int, Any], keras.layers.Layer]:
    return lambda magnitude, seed, aug_cfg: builder(magnitude, seed, fill_mode(aug_cfg))


OPS: dict[str, Op] = {
    "flip": Op("image", 0.5, "probability an image is flipped left-right", _flip),
    "rotation": Op(
        "image", 0.25, "max rotation as a fraction of a full turn (0.25 = ±90°)", _rotation
    ),
    "zoom": Op("image", 0.5, "max zoom in/out as a fraction of image size", _zoom),
    "contrast": Op("image", 0.9, "max contrast factor change (factor in [1-m, 1+m])", _contrast),
    **{
        name: Op("image", top, meaning, _image_op(build), mixing=name in image.MIXING)
        for name, (top, meaning, build) in image.IMAGE_OPS.items()
    },
    "jitter": _series_op(
        Jitter, 0.5, "std of additive Gaussian noise (series are z-normalised)",
        Literature("jitter", {"sigma": Param(0.03, 0.0)}, lambda sigma: (sigma, {}), 0.06,
                   "sigma = 0.5 strength"),
    ),
    "scaling": _series_op(
        Scaling, 0.5, "std of a multiplicative factor ~ N(1, σ) per series and channel",
        Literature("scaling", {"sigma": Param(0.1, 0.0)}, lambda sigma: (sigma, {}), 0.2),
    ),
    "magnitude_warp": _series_op(
        MagnitudeWarp, 0.5,
        "std of the knots ~ N(1, σ) of the cubic spline (4 inner knots) multiplying the series",
        Literature("magnitude_warp", _KNOTS, lambda sigma, knot: (sigma, {"knots": knot}), 0.4),
    ),
    "time_warp": _series_op(
        TimeWarp, 0.5,
        "std of the knots ~ N(1, σ) of a smooth speed curve that resamples time (the survey's σ "
        "multiplies time positions instead)",
        Literature("time_warp", _KNOTS,
                   lambda sigma, knot: (sigma, {"knots": knot, "mode": "position"}), None,
                   "strength 1 changes GunPoint by 0.29 per value, the survey's setting by 0.47"),
    ),
    "window_slice": _series_op(
        WindowSlice, 0.5, "fraction of the series cut away before the rest is stretched back",
        Literature("window_slice", {"reduce_ratio": Param(0.9, 0.01, 1.0)},
                   lambda reduce_ratio: (round(1.0 - reduce_ratio, 12), {}), 0.2,
                   "reduce_ratio = 1 - 0.5 strength"),
    ),
    "window_warp": _series_op(
        WindowWarp, 0.5, "fraction of the series in the window sped up or slowed down (x0.5 or x2)",
        Literature("window_warp",
                   {"window_ratio": Param(0.1, 0.0, 1.0), "scales": Param((0.5, 2.0), 0.01, 100)},
                   lambda window_ratio, scales: (window_ratio, {"scales": tuple(scales)}), 0.2),
    ),
    "permutation": _series_op(
        Permutation, 8.0, "max number of segments whose order is shuffled (1 = unchanged)",
        Literature("permutation", {"max_segments": Param(5, 2, 10_001, integer=True)},
                   lambda max_segments: (max_segments - 1.0, {}), 0.5,
                   "it draws 1 to max_segments - 1 segments"),
    ),
    "channel_rotation": _series_op(
        ChannelRotation, math.pi,
        "max rotation angle (radians) mixing channels; univariate: sign flip with p = angle/π",
        Literature("rotation", {"flip": Param(0.5, 0.0, 1.0)},
                   lambda flip: (flip * math.pi, {"mode": "flip_shuffle"}), 0.5,
                   "univariate; multivariate none: it negates and shuffles channels"),
    ),
}  # fmt: skip


def strength_table() -> str:
    """The strength table as Markdown, so the README can be regenerated from `OPS`."""
    rows = [
        "| op | modality | magnitude at strength 1 | meaning | the survey's setting → strength |",
        "|---|---|---|---|---|",
    ]
    for name, op in OPS.items():
        cell = op.literature.cell() if op.literature else ""
        rows.append(f"| {name} | {op.modality} | {op.max_magnitude:g} | {op.meaning} | {cell} |")
    return "\n".join(rows)


def op_names(modality: str | None = None) -> str:
    """The op names, of one modality or all, as error messages list them."""
    return ", ".join(n for n, op in OPS.items() if modality is None or op.modality == modality)


def fill_mode(aug_cfg: Any) -> str:
    """`aug.fill_mode`, checked: how geometric ops fill the pixels they uncover."""
    return check_choice("aug.fill_mode", aug_cfg["fill_mode"], FILL_MODES, "supported")
