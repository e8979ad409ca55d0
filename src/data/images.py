"""Image sources: scikit-learn's digits and a folder of class subfolders (paths checked up front,
pixels decoded in the tf.data pipeline or once into memory)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_digits

from src.data.raw import Raw, holdout, is_int, listing, one_line
from src.errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF")  # PIL's names for what decode_image reads


COLOR_CHANNELS = {"rgb": 3, "grayscale": 1}


CACHE_MODES = ("auto", "memory", "none")


CACHE_SHARE_OF_FREE_MEMORY = 0.25  # cache: auto decodes into memory up to this share


def decode(path: tf.Tensor, shape: tuple[int, ...]) -> tf.Tensor:
    """One image file -> float32 (H, W, C) in [0, 1]."""
    height, width, channels = shape
    # decode_image reads BMP and GIF only as colour, so grey is converted from RGB
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(image, (height, width)) / 255.0
    return tf.ensure_shape(image, shape)


def decode_all(paths: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Every file decoded once, in parallel, into one (n, H, W, C) float32 array."""
    if len(paths) == 0:
        return np.zeros((0, *shape), dtype=np.float32)
    files = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda path: decode(path, shape), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return np.concatenate([batch.numpy() for batch in files.batch(256)])


def in_memory(cfg: Mapping, n_images: int, shape: tuple[int, ...]) -> bool:
    """Whether an image folder is decoded once into memory (`data.cache`) or read per batch."""
    mode = cfg.get("cache", "auto")
    if mode not in CACHE_MODES:
        raise ConfigError(
            f"data.cache={mode!r} is not supported; accepted: auto (decode into memory when the "
            "pixels take at most a quarter of free memory), memory, none (read files every epoch)"
        )
    if mode != "auto":
        return mode == "memory"
    import psutil

    pixels = n_images * int(np.prod(shape)) * 4
    return pixels <= CACHE_SHARE_OF_FREE_MEMORY * psutil.virtual_memory().available


def _image_size(value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(is_int(v) and v > 0 for v in value)
    ):
        raise ConfigError(
            f"data.image_size={value!r} is not allowed; accepted: [height, width], two positive "
            "integers"
        )
    return int(value[0]), int(value[1])


def digits(cfg: Mapping) -> Raw:
    """scikit-learn's 8x8 digits, 0..16 scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    if cfg.get("image_size") is not None:
        x = np.clip(tf.image.resize(x, _image_size(cfg["image_size"])).numpy(), 0.0, 1.0)
    return Raw(*holdout(x, digits.target, cfg, "data=digits"), source="data=digits")


def image_folder(cfg: Mapping) -> Raw:
    """A folder with one subfolder of images per class: paths now, pixels in `pipeline`."""
    path = cfg.get("path")
    root = Path(str(path)) if path not in (None, "???", "") else None
    if root is None or not root.is_dir():
        raise ConfigError(
            f"data.path={path!r} is not a directory; accepted: a directory with one subfolder "
            "of images per class"
        )
    color_mode = cfg.get("color_mode", "rgb")
    if color_mode not in COLOR_CHANNELS:
        raise ConfigError(
            f"data.color_mode={color_mode!r} is not supported; accepted: rgb, grayscale"
        )
    height, width = _image_size(cfg.get("image_size"))
    paths, labels, skipped = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(str(file))
                labels.append(folder.name)
            else:
                skipped.append(str(file.relative_to(root)))
    if len(set(labels)) < 2:
        raise ConfigError(
            f"data.path='{root}' has {len(set(labels))} class subfolder(s) with images; "
            "accepted: a directory with at least 2 class subfolders of images"
        )
    for file in paths:  # fail now, naming the file, not in the middle of training
        try:
            with Image.open(file) as image:
                kind = image.format
                image.verify()
        except Exception as err:
            raise ConfigError(
                f"unreadable image file '{file}' ({type(err).__name__}: {one_line(err, 80)}); "
                f"accepted: readable {', '.join(IMAGE_FORMATS)} images"
            ) from None
        if kind not in IMAGE_FORMATS:
            raise ConfigError(
                f"image file '{file}' holds a {kind} image; accepted: {', '.join(IMAGE_FORMATS)}"
            )
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} non-image file(s) under {root}, e.g. {listing(skipped, 3)}; "
            f"images are {', '.join(IMAGE_EXTENSIONS)}",
            UserWarning,
            stacklevel=4,
        )
    source = f"data.path='{root}'"
    split = holdout(np.array(paths), np.array(labels), cfg, source)
    shape = (height, width, COLOR_CHANNELS[color_mode])
    return Raw(*split, source=source, files=True, input_shape=shape)
