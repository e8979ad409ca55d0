"""Image sources: scikit-learn's digits and a folder of class subfolders (paths checked up front,
pixels decoded in the tf.data pipeline or once into memory)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFile
from sklearn.datasets import load_digits

from src.checks import is_int
from src.data.raw import Raw, holdout, listing, path_problem, reading
from src.errors import ConfigError, one_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF")  # PIL's names for what decode_image reads
IMAGES_ACCEPTED = f"readable {', '.join(IMAGE_FORMATS)} images ({', '.join(IMAGE_EXTENSIONS)})"
FOLDER_ACCEPTED = "a directory with one subfolder of images per class"


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
    try:
        return np.concatenate([batch.numpy() for batch in files.batch(256)])
    except tf.errors.OpError:
        check_decodable(paths, shape)  # raises, naming the file, when one cannot be decoded
        raise


def check_decodable(paths: Sequence[str], shape: tuple[int, ...]) -> None:
    """Decode every file once, as training will: the first one TensorFlow refuses is an error
    naming it, raised now rather than in the middle of a fold.

    Pillow's checks in `image_folder` find most broken files; this finds the rest (a JPEG
    whose data is cut short, for one). Parallel, and only one small tensor per file is kept.
    """
    if len(paths) == 0:
        return
    names = tf.constant(np.asarray(paths))
    decoded = tf.data.Dataset.range(len(paths)).map(
        # a value of the pixels: a static shape alone would let TensorFlow skip the decoding
        lambda i: (i, tf.reduce_max(decode(tf.gather(names, i), shape))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ok = {int(i) for i, _ in decoded.ignore_errors().as_numpy_iterator()}
    for i in (i for i in range(len(paths)) if i not in ok):
        try:
            decode(names[i], shape)
        except tf.errors.OpError as err:
            raise ConfigError(
                f"image file '{paths[i]}' cannot be read (TensorFlow's decoder: "
                f"{one_line(_op_message(err), 100)}); accepted: {IMAGES_ACCEPTED}"
            ) from None


def _op_message(err: tf.errors.OpError) -> str:
    """TensorFlow's error message without the name of the graph function it came from."""
    return re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\].*", "", err.message)


def in_memory(cfg: Mapping, n_images: int, shape: tuple[int, ...]) -> bool:
    """Whether an image folder is decoded once into memory (`data.cache`) or read per batch."""
    mode = cfg["cache"]
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


LFW_CLASSES = ("face", "non-face")


def lfw_faces(cfg: Mapping) -> Raw:
    """scikit-image's LFW subset: 100 faces and 100 non-faces, 25x25 grey photos in [0, 1].

    `skimage.data.lfw_subset()` ships in the scikit-image wheel (no download): its first 100
    images are faces (crops of Labeled Faces in the Wild), the other 100 non-face crops of the
    same photos. A flip keeps the label here, unlike on digits.
    """
    from skimage.data import lfw_subset  # only this dataset needs scikit-image

    images = lfw_subset()
    x = images.astype(np.float32)[..., None]
    y = np.array([LFW_CLASSES[0]] * 100 + [LFW_CLASSES[1]] * (len(images) - 100))
    if cfg.get("image_size") is not None:
        x = np.clip(tf.image.resize(x, _image_size(cfg["image_size"])).numpy(), 0.0, 1.0)
    return Raw(*holdout(x, y, cfg, "data=lfw_faces"), source="data=lfw_faces")


NOT_PICTURES = ("EPS", "MPEG")  # Pillow opens them, but such files are documents and videos


def _is_stub(factory: Any) -> bool:
    return isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile)


def pillow_formats() -> dict[str, str]:
    """File extension -> format, for the image formats Pillow reads (`.tif`: TIFF).

    Without the formats Pillow only identifies (HDF5, GRIB, ...) and NOT_PICTURES.
    """
    return {
        suffix: kind
        for suffix, kind in Image.registered_extensions().items()
        if kind in Image.OPEN and not _is_stub(Image.OPEN[kind][0]) and kind not in NOT_PICTURES
    }


def _check_image(file: str) -> None:
    """Fail now, naming the file, not in the middle of training."""
    with reading(f"image file '{file}'", IMAGES_ACCEPTED, file), Image.open(file) as image:
        kind = image.format
        image.verify()
    if kind not in IMAGE_FORMATS:
        raise ConfigError(f"image file '{file}' holds a {kind} image; accepted: {IMAGES_ACCEPTED}")


def _class_files(root: Path) -> tuple[list[str], list[str], list[str], int]:
    """Image paths and their class (subfolder) names, skipped files, and files at the top."""
    paths, labels, skipped = [], [], []
    other_images = pillow_formats()
    with reading(f"data.path='{root}'", FOLDER_ACCEPTED, root):
        entries = sorted(root.iterdir())
        loose = sum(p.is_file() for p in entries)
        for folder in (p for p in entries if p.is_dir()):
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                if file.suffix.lower() in IMAGE_EXTENSIONS:
                    paths.append(str(file))
                    labels.append(folder.name)
                elif file.suffix.lower() in other_images:
                    raise ConfigError(
                        f"image file '{file}' has extension {file.suffix!r} (a "
                        f"{other_images[file.suffix.lower()]} image); accepted: {IMAGES_ACCEPTED}"
                    )
                else:
                    skipped.append(str(file.relative_to(root)))
    return paths, labels, skipped, loose


def image_folder(cfg: Mapping) -> Raw:
    """A folder with one subfolder of images per class: paths now, pixels in `pipeline`."""
    path = cfg.get("path")
    if path in (None, "???", ""):
        raise ConfigError(f"data.path={path!r} is not set; accepted: {FOLDER_ACCEPTED}")
    root = Path(str(path))
    problem = path_problem(root, "directory")
    if problem is not None:
        raise ConfigError(f"data.path='{root}' {problem}; accepted: {FOLDER_ACCEPTED}")
    color_mode = cfg["color_mode"]
    if color_mode not in COLOR_CHANNELS:
        raise ConfigError(
            f"data.color_mode={color_mode!r} is not supported; accepted: rgb, grayscale"
        )
    height, width = _image_size(cfg.get("image_size"))
    paths, labels, skipped, loose = _class_files(root)
    if len(set(labels)) < 2:
        top = f" ({loose} file(s) directly in it belong to no class)" if loose else ""
        raise ConfigError(
            f"data.path='{root}' has {len(set(labels))} class subfolder(s) with images{top}; "
            "accepted: a directory with at least 2 class subfolders of images"
        )
    for file in paths:
        _check_image(file)
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
