"""Data augmentation: the op/strength table and the Keras layers built from an aug config.

`OPS` is the single source of truth for what each op does and how hard it pushes: an op's
magnitude is `aug.strength` (0..1) times its magnitude at strength 1. `build_augmentation` turns
a config (conf/aug/*.yaml) into a `keras.Sequential` that sits at the front of the model, so it
runs only in training. Add an op by adding an `Op` to `OPS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import keras

from src.augment.layers import Jitter, RandomApply, Scaling
from src.errors import ConfigError

__all__ = [
    "FILL_MODES",
    "MODALITIES",
    "OPS",
    "Jitter",
    "Op",
    "RandomApply",
    "Scaling",
    "build_augmentation",
    "resolve_ops",
    "strength_table",
]

MODALITIES: tuple[str, ...] = ("image", "series")
FILL_MODES: tuple[str, ...] = ("constant", "reflect", "wrap", "nearest")

# Keras's RandomFlip flips an image with probability 0.5; RandomApply scales that down.
_KERAS_FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class Op:
    """One augmentation op: what data it fits, how strong it is at strength 1, how to build it.

    Attributes:
        modality: "image" or "series".
        max_magnitude: the op's magnitude at strength 1 (magnitude = strength * max_magnitude).
        meaning: what the magnitude measures, for docs and run logs.
        build: (magnitude > 0, seed, aug config) -> a seeded Keras layer.
    """

    modality: str
    max_magnitude: float
    meaning: str
    build: Callable[[float, int, Any], keras.layers.Layer]


def _flip(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    rate = min(1.0, magnitude / _KERAS_FLIP_PROBABILITY)
    inner = keras.layers.RandomFlip("horizontal", seed=seed)
    return RandomApply(inner, rate=rate, seed=seed, name="flip")


def _rotation(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomRotation(
        magnitude, fill_mode=_fill_mode(aug_cfg), seed=seed, name="rotation"
    )


def _zoom(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomZoom(magnitude, fill_mode=_fill_mode(aug_cfg), seed=seed, name="zoom")


def _contrast(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomContrast(magnitude, value_range=(0, 1), seed=seed, name="contrast")


def _jitter(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return Jitter(magnitude, seed=seed, name="jitter")


def _scaling(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return Scaling(magnitude, seed=seed, name="scaling")


OPS: dict[str, Op] = {
    "flip": Op("image", 0.5, "probability an image is flipped left-right", _flip),
    "rotation": Op(
        "image", 0.25, "max rotation as a fraction of a full turn (0.25 = ±90°)", _rotation
    ),
    "zoom": Op("image", 0.5, "max zoom in/out as a fraction of image size", _zoom),
    "contrast": Op("image", 0.9, "max contrast factor change (factor in [1-m, 1+m])", _contrast),
    "jitter": Op(
        "series", 0.5, "std of additive Gaussian noise (series are z-normalised)", _jitter
    ),
    "scaling": Op(
        "series", 0.5, "std of a multiplicative factor ~ N(1, σ) per series and channel", _scaling
    ),
}


def strength_table() -> str:
    """The strength table as Markdown, so the README can be regenerated from `OPS`."""
    rows = ["| op | modality | magnitude at strength 1 | meaning |", "|---|---|---|---|"]
    rows += [
        f"| {name} | {op.modality} | {op.max_magnitude:g} | {op.meaning} |"
        for name, op in OPS.items()
    ]
    return "\n".join(rows)


def _names(modality: str | None = None) -> str:
    return ", ".join(n for n, op in OPS.items() if modality is None or op.modality == modality)


def _strength(aug_cfg: Any) -> float:
    strength = aug_cfg.get("strength")
    is_number = isinstance(strength, Real) and not isinstance(strength, bool)
    if not is_number:
        raise ConfigError(
            f"aug.strength={strength!r} is not a number; "
            "accepted: a number from 0 (no augmentation) to 1 (strongest)"
        )
    if not 0 <= strength <= 1:
        raise ConfigError(
            f"aug.strength={strength!r} is outside [0, 1]; "
            "accepted: a number from 0 (no augmentation) to 1 (strongest)"
        )
    return float(strength)


def _fill_mode(aug_cfg: Any) -> str:
    fill_mode = aug_cfg.get("fill_mode", "constant")
    if fill_mode not in FILL_MODES:
        raise ConfigError(
            f"aug.fill_mode={fill_mode!r} is not supported; accepted: {', '.join(FILL_MODES)}"
        )
    return fill_mode


def _op_lists(aug_cfg: Any, modality: str) -> dict[str, list[str]]:
    """aug.ops as {modality: [op names]}, every name checked against OPS and its list's modality.

    `modality` is the dataset's, so an op misplaced in its list is reported in the data's terms.
    """
    ops = aug_cfg.get("ops")
    if not isinstance(ops, Mapping):
        raise ConfigError(
            f"aug.ops={ops!r} is not a mapping; accepted: aug.ops.image and aug.ops.series, "
            "each a list of op names (may be empty)"
        )
    extra = [key for key in ops if key not in MODALITIES]
    if extra:
        raise ConfigError(
            f"aug.ops has unknown key {extra[0]!r}; accepted keys: {', '.join(MODALITIES)}"
        )
    lists: dict[str, list[str]] = {}
    for key in MODALITIES:
        names = ops.get(key)
        if not isinstance(names, Sequence) or isinstance(names, str):
            raise ConfigError(
                f"aug.ops.{key}={names!r} is not a list; accepted: a list of {key} op names "
                f"({_names(key)}), possibly empty"
            )
        seen: set[str] = set()
        for name in names:
            if not isinstance(name, str) or name not in OPS:
                raise ConfigError(f"unknown aug op {name!r} in aug.ops.{key}; accepted: {_names()}")
            if OPS[name].modality != key and key == modality:
                raise ConfigError(
                    f"aug op {name!r} works on {OPS[name].modality} data, but the dataset is "
                    f"{modality} (listed in aug.ops.{key}; {key} ops: {_names(key)})"
                )
            if OPS[name].modality != key:
                raise ConfigError(
                    f"aug op {name!r} works on {OPS[name].modality} data, but is listed in "
                    f"aug.ops.{key}; accepted there: {_names(key)}"
                )
            if name in seen:
                raise ConfigError(
                    f"aug op {name!r} is listed twice in aug.ops.{key}; accepted: each op once"
                )
            seen.add(name)
        lists[key] = list(names)
    return lists


def resolve_ops(aug_cfg: Any, modality: str) -> list[tuple[str, float]]:
    """(op name, magnitude) pairs the config applies to this modality; magnitude-0 ops dropped.

    The whole config is validated (strength, fill_mode, both op lists), so a bad config fails
    on any dataset, before training starts.
    """
    if modality not in MODALITIES:
        raise ConfigError(
            f"data modality {modality!r} is not supported by augmentation; "
            f"accepted: {', '.join(MODALITIES)}"
        )
    strength = _strength(aug_cfg)
    _fill_mode(aug_cfg)
    lists = _op_lists(aug_cfg, modality)
    pairs = [(name, strength * OPS[name].max_magnitude) for name in lists[modality]]
    return [(name, magnitude) for name, magnitude in pairs if magnitude > 0]


def build_augmentation(aug_cfg: Any, modality: str, seed: int) -> keras.Sequential | None:
    """A `keras.Sequential(name="augmentation")` of the resolved ops, or None when nothing applies.

    Layer i gets the explicit seed `seed + i`, so building never draws from Keras's global RNG:
    models built with and without augmentation get identical initial weights.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed={seed!r} is not an integer; accepted: an integer such as 0")
    pairs = resolve_ops(aug_cfg, modality)
    if not pairs:
        return None
    layers = [
        OPS[name].build(magnitude, seed + i, aug_cfg) for i, (name, magnitude) in enumerate(pairs)
    ]
    return keras.Sequential(layers, name="augmentation")
