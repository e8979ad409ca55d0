"""`aug=idg`: a user's `ImageDataGenerator(...)` keywords, in its own units, as Keras layers.

So an existing `ImageDataGenerator(rotation_range=20, zoom_range=0.2, ...)` can be ablated
unchanged. `aug.strength` scales every range (1 = the user's settings exactly); flips are applied
with probability 0.5 x strength.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras

from src.augment.layers import BrightnessScale, CenteredShear, ChannelShift, RandomApply
from src.checks import is_number
from src.errors import ConfigError

MAPPED = (
    "rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range",
    "horizontal_flip", "vertical_flip", "brightness_range", "channel_shift_range", "fill_mode",
    "cval", "rescale",
)  # fmt: skip
IDG_FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def _number(kwargs: Mapping, key: str, low: float = 0.0, high: float = math.inf) -> float:
    value = kwargs.get(key) or 0
    if not is_number(value) or not low <= value <= high:
        raise ConfigError(
            f"aug.idg.{key}={value!r} is not supported; accepted: a number in [{low}, {high}]"
        )
    return float(value)


def _shift(kwargs: Mapping, key: str) -> float:
    value = _number(kwargs, key)
    if value >= 1:
        raise ConfigError(
            f"aug.idg.{key}={value!r} is a shift in pixels; accepted: a fraction of the image "
            "size below 1 (pixel shifts depend on the image size, give the fraction instead)"
        )
    return value


def _zoom(kwargs: Mapping) -> tuple[float, float]:
    value = kwargs.get("zoom_range") or 0
    if is_number(value) and 0 <= value < 1:
        return 1 - value, 1 + value
    if isinstance(value, list | tuple) and len(value) == 2 and 0 < value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ConfigError(
        f"aug.idg.zoom_range={value!r} is not supported; accepted: a number in [0, 1) or "
        "[lower, upper] with 0 < lower <= upper"
    )


def _brightness(kwargs: Mapping) -> tuple[float, float] | None:
    value = kwargs.get("brightness_range")
    if value is None:
        return None
    if isinstance(value, list | tuple) and len(value) == 2 and 0 <= value[0] <= value[1]:
        return float(value[0]), float(value[1])
    raise ConfigError(
        f"aug.idg.brightness_range={value!r} is not supported; accepted: [lower, upper] "
        "with 0 <= lower <= upper"
    )


def idg_layers(kwargs: Mapping[str, Any], strength: float, seed: int) -> list[keras.Layer]:
    """Keras layers that draw the same transformations as ImageDataGenerator(**kwargs).

    Images here are already scaled to [0, 1], which is what `rescale=1/255` does to 8-bit images,
    so that is the one rescale accepted.
    """
    unknown = sorted(set(kwargs) - set(MAPPED))
    if unknown:
        raise ConfigError(
            f"aug.idg.{unknown[0]} cannot be mapped to an augmentation layer; accepted "
            f"ImageDataGenerator keywords: {', '.join(MAPPED)}"
        )
    rescale = kwargs.get("rescale")
    if rescale not in (None, 0, 1 / 255) and not math.isclose(rescale, 1 / 255):
        raise ConfigError(
            f"aug.idg.rescale={rescale!r} is not supported; accepted: null or 1/255 "
            "(augsweep's images are already scaled to [0, 1])"
        )
    fill_mode = kwargs.get("fill_mode", "nearest")
    if fill_mode not in IDG_FILL_MODES:
        raise ConfigError(
            f"aug.idg.fill_mode={fill_mode!r} is not supported; accepted: "
            f"{', '.join(IDG_FILL_MODES)}"
        )
    fill = {"fill_mode": fill_mode, "fill_value": float(kwargs.get("cval") or 0.0)}
    layers: list[keras.Layer] = []

    def add(layer: keras.Layer) -> None:
        layers.append(layer)

    s = strength
    if rotation := _number(kwargs, "rotation_range", high=180) * s:
        add(keras.layers.RandomRotation(rotation / 360, seed=seed, name="idg_rotation", **fill))
    width, height = (
        _shift(kwargs, "width_shift_range") * s,
        _shift(kwargs, "height_shift_range") * s,
    )
    if width or height:
        add(keras.layers.RandomTranslation(height, width, seed=seed + 1, name="idg_shift", **fill))
    if shear := _number(kwargs, "shear_range", high=89) * s:
        # in degrees about the centre, with ImageDataGenerator's own matrix
        add(CenteredShear(shear, seed=seed + 2, name="idg_shear", **fill))
    low, high = _zoom(kwargs)
    if (low, high) != (1.0, 1.0):
        # independent zoom per axis, like ImageDataGenerator's zx, zy (factor -0.2 = zoom 0.8)
        zoom = ((low - 1) * s, (high - 1) * s)
        add(keras.layers.RandomZoom(zoom, zoom, seed=seed + 3, name="idg_zoom", **fill))
    for key, mode, offset in (
        ("horizontal_flip", "horizontal", 4),
        ("vertical_flip", "vertical", 5),
    ):
        if kwargs.get(key) and s > 0:
            flip = keras.layers.RandomFlip(mode, seed=seed + offset)
            add(RandomApply(flip, rate=s, seed=seed + offset, name=f"idg_{key}"))
    if (brightness := _brightness(kwargs)) is not None and s > 0:
        lower, upper = (1 + (b - 1) * s for b in brightness)
        add(BrightnessScale(lower, upper, seed=seed + 6, name="idg_brightness"))
    if channel := _number(kwargs, "channel_shift_range", high=255) * s:
        add(ChannelShift(channel / 255, seed=seed + 7, name="idg_channel_shift"))
    return layers
