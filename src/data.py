"""Datasets: loaded once per process, checked before any training, fed to Keras as tf.data batches.

Every bad input raises ConfigError with a one-line message, so a sweep fails before it trains.
"""

from __future__ import annotations

import functools
import json
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from aeon.datasets import load_classification, load_from_ts_file
from omegaconf import DictConfig, ListConfig, OmegaConf
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from src.errors import ConfigError

UCR_NAMES = {  # data.name -> the UCR/UEA archive name of a dataset shipped inside aeon
    "arrow_head": "ArrowHead",
    "basic_motions": "BasicMotions",
    "gunpoint": "GunPoint",
    "italy_power_demand": "ItalyPowerDemand",
    "japanese_vowels": "JapaneseVowels",
}
DATASETS: tuple[str, ...] = tuple(sorted(["digits", "image_folder", "series_file", *UCR_NAMES]))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF")  # PIL's names for what decode_image reads
COLOR_CHANNELS = {"rgb": 3, "grayscale": 1}
SERIES_EXTENSIONS = (".npz", ".csv", ".ts")


@dataclass(frozen=True)
class Dataset:
    """The training portion (for cross-validation) and the test split of one dataset.

    Arrays are read-only (they are shared by every job of an in-process sweep): float32 in Keras
    layout, images (n, H, W, C) in [0, 1] and series (n, T, C); labels int64 in 0..K-1. An image
    folder keeps file paths in `x_*` instead, decoded by `pipeline` batch by batch.
    """

    name: str
    modality: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    padded: bool = False  # series zero-padded at the end; models mask the padding
    files: bool = False  # x_* are image file paths, decoded to input_shape in `pipeline`

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def pipeline(
        self, x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> tf.data.Dataset:
        """Batches of (float32 inputs, int64 labels); image files are read inside the pipeline.

        Shuffling permutes indices over the whole set (seeded, reshuffled every epoch), so the
        shuffle buffer holds integers, never images.
        """
        inputs = tf.constant(np.asarray(x) if self.files else np.asarray(x, dtype=np.float32))
        labels = tf.constant(np.asarray(y, dtype=np.int64))
        n = len(y)
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
        if self.files:  # decode one file at a time: a folder larger than memory works
            ds = ds.map(
                lambda i: (self._decode(tf.gather(inputs, i)), tf.gather(labels, i)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            ).batch(batch_size)
        else:  # gather whole batches from the in-memory arrays
            ds = ds.batch(batch_size).map(
                lambda i: (tf.gather(inputs, i), tf.gather(labels, i)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        return ds.prefetch(tf.data.AUTOTUNE)

    def _decode(self, path: tf.Tensor) -> tf.Tensor:
        return _decode(path, self.input_shape)


def _decode(path: tf.Tensor, shape: tuple[int, ...]) -> tf.Tensor:
    """One image file -> float32 (H, W, C) in [0, 1]."""
    height, width, channels = shape
    # decode_image reads BMP and GIF only as colour, so grey is converted from RGB
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(image, (height, width)) / 255.0
    return tf.ensure_shape(image, shape)


def _decode_all(paths: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Every file decoded once, in parallel, into one (n, H, W, C) float32 array."""
    if len(paths) == 0:
        return np.zeros((0, *shape), dtype=np.float32)
    files = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda path: _decode(path, shape), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return np.concatenate([batch.numpy() for batch in files.batch(256)])


CACHE_MODES = ("auto", "memory", "none")
CACHE_SHARE_OF_FREE_MEMORY = 0.25  # cache: auto decodes into memory up to this share


def _in_memory(cfg: Mapping, n_images: int, shape: tuple[int, ...]) -> bool:
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


class _Raw(NamedTuple):
    """What a loader found, before label encoding and subsetting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str  # names the data in error messages
    padded: bool = False
    files: bool = False
    input_shape: tuple[int, ...] | None = None


def _one_line(err: Exception, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(items: Any, limit: int = 8) -> str:
    items = [str(i) for i in items]
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _split_seed(cfg: Mapping) -> int:
    seed = cfg.get("split_seed", 0)
    if not _is_int(seed) or not 0 <= seed < 2**32:
        raise ConfigError(
            f"data.split_seed={seed!r} is not allowed; accepted: an integer in [0, 2**32)"
        )
    return seed


def _image_size(value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(_is_int(v) and v > 0 for v in value)
    ):
        raise ConfigError(
            f"data.image_size={value!r} is not allowed; accepted: [height, width], two positive "
            "integers"
        )
    return int(value[0]), int(value[1])


def _holdout(x: np.ndarray, y: np.ndarray, cfg: Mapping, source: str):
    """A stratified hold-out test split, or none when test_size is 0."""
    test_size = cfg.get("test_size", 0.2)
    if not isinstance(test_size, int | float) or isinstance(test_size, bool):
        test_size = None
    if test_size is None or not 0 <= test_size < 1:
        raise ConfigError(
            f"data.test_size={cfg.get('test_size')!r} is not allowed; accepted: a number in "
            "[0, 1) (0 = no test split)"
        )
    if test_size == 0:
        return x, y, None, None
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=test_size, stratify=y, random_state=_split_seed(cfg)
        )
    except ValueError as err:
        raise ConfigError(
            f"data.test_size={test_size!r} cannot split {source} ({len(y)} samples) stratified "
            f"({_one_line(err)}); accepted: a size that leaves every class in both parts"
        ) from None
    return x_train, y_train, x_test, y_test


def _subset(x: np.ndarray, y: np.ndarray, subset: Any, seed: int, n_classes: int):
    """A stratified subset of the training portion, for quick runs."""
    if subset is None:
        return x, y
    if not _is_int(subset) or subset < n_classes:
        raise ConfigError(
            f"data.subset={subset!r} is not allowed; accepted: null or an integer >= {n_classes} "
            "(the number of classes)"
        )
    if subset >= len(y):
        return x, y
    try:
        x, _, y, _ = train_test_split(x, y, train_size=subset, stratify=y, random_state=seed)
    except ValueError as err:
        raise ConfigError(
            f"data.subset={subset} cannot be drawn stratified from {len(y)} training samples "
            f"({_one_line(err)}); accepted: null, at most {len(y) - n_classes}, or at least "
            f"{len(y)}"
        ) from None
    return x, y


def _encode(y_train: np.ndarray, y_test: np.ndarray | None, source: str):
    """Labels -> int64 indices into the sorted unique training labels, shared with the test."""
    y_train = np.asarray(y_train)
    y_test = None if y_test is None else np.asarray(y_test)
    if any(y is not None and y.dtype.kind not in "biuf" for y in (y_train, y_test)):
        y_train = y_train.astype(str)
        y_test = None if y_test is None else y_test.astype(str)
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise ConfigError(
            f"{source} has {len(classes)} class ({_listing(classes)}); accepted: at least 2 classes"
        )
    names = tuple(str(c) for c in classes)
    encoded_test = None
    if y_test is not None:
        encoded_test = np.searchsorted(classes, y_test).clip(max=len(classes) - 1)
        unknown = classes[encoded_test] != y_test
        if unknown.any():
            raise ConfigError(
                f"test label '{y_test[unknown][0]}' of {source} is not a training label; "
                f"accepted: {_listing(names)}"
            )
        encoded_test = encoded_test.astype(np.int64)
    return np.searchsorted(classes, y_train).astype(np.int64), encoded_test, names


def _digits(cfg: Mapping) -> _Raw:
    """scikit-learn's 8x8 digits, 0..16 scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    if cfg.get("image_size") is not None:
        x = np.clip(tf.image.resize(x, _image_size(cfg["image_size"])).numpy(), 0.0, 1.0)
    return _Raw(*_holdout(x, digits.target, cfg, "data=digits"), source="data=digits")


def _image_folder(cfg: Mapping) -> _Raw:
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
                f"unreadable image file '{file}' ({type(err).__name__}: {_one_line(err, 80)}); "
                f"accepted: readable {', '.join(IMAGE_FORMATS)} images"
            ) from None
        if kind not in IMAGE_FORMATS:
            raise ConfigError(
                f"image file '{file}' holds a {kind} image; accepted: {', '.join(IMAGE_FORMATS)}"
            )
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} non-image file(s) under {root}, e.g. {_listing(skipped, 3)}; "
            f"images are {', '.join(IMAGE_EXTENSIONS)}",
            UserWarning,
            stacklevel=4,
        )
    source = f"data.path='{root}'"
    split = _holdout(np.array(paths), np.array(labels), cfg, source)
    shape = (height, width, COLOR_CHANNELS[color_mode])
    return _Raw(*split, source=source, files=True, input_shape=shape)


def _keras_layout(parts: list[Any], source: str) -> tuple[list[np.ndarray], bool]:
    """aeon layout ((n, C, T) arrays or lists of (C, T_i) arrays) -> (n, T, C) float32 arrays.

    Series of unequal length are zero-padded at the end to the longest of all parts.
    """
    shapes = {p.shape[1:] if isinstance(p, np.ndarray) and p.ndim == 3 else None for p in parts}
    if None not in shapes and len(shapes) == 1:  # one length: a transpose is enough
        arrays = [np.ascontiguousarray(p.transpose(0, 2, 1), dtype=np.float32) for p in parts]
        return arrays, False
    series = [[np.asarray(s, dtype=np.float32).T for s in part] for part in parts]
    channels = sorted({s.shape[1] for part in series for s in part})
    if len(channels) > 1:
        raise ConfigError(
            f"{source} mixes series with {channels} channels; accepted: one number of channels"
        )
    lengths = {s.shape[0] for part in series for s in part}
    padded = [
        keras.utils.pad_sequences(part, maxlen=max(lengths), padding="post", dtype="float32")
        for part in series
    ]
    return padded, len(lengths) > 1


def _ucr(cfg: Mapping) -> _Raw:
    """A UCR/UEA dataset shipped inside aeon, with its official train/test split."""
    name, ucr_name = cfg["name"], UCR_NAMES[cfg["name"]]
    if cfg.get("ucr_name") not in (None, ucr_name):
        raise ConfigError(
            f"data.ucr_name={cfg.get('ucr_name')!r} does not match data.name={name!r}; "
            f"accepted: {ucr_name}"
        )
    x_train, y_train = load_classification(ucr_name, split="train")
    x_test, y_test = load_classification(ucr_name, split="test")
    source = f"data={name} ({ucr_name})"
    (x_train, x_test), padded = _keras_layout([x_train, x_test], source)
    return _Raw(x_train, y_train, x_test, y_test, source=source, padded=padded)


def _series_path(value: Any, key: str) -> Path:
    if value in (None, "???", ""):
        raise ConfigError(
            f"{key}={value!r} is not set; accepted: a {', '.join(SERIES_EXTENSIONS)} file"
        )
    path = Path(str(value))
    if not path.is_file():
        raise ConfigError(
            f"series file '{path}' ({key}) does not exist; accepted: an existing "
            f"{', '.join(SERIES_EXTENSIONS)} file"
        )
    if path.suffix.lower() not in SERIES_EXTENSIONS:
        raise ConfigError(
            f"series file '{path}' has extension {path.suffix!r}; accepted: "
            f"{', '.join(SERIES_EXTENSIONS)}"
        )
    return path


def _read_npz(path: Path) -> tuple[Any, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = sorted(arrays.files)
            x, y = (arrays[k] if k in found else None for k in ("X", "y"))
    except (ValueError, OSError, zipfile.BadZipFile) as err:  # object arrays, corrupt archive
        raise ConfigError(f"series file '{path}' cannot be read ({_one_line(err)})") from None
    if x is None or y is None or x.ndim not in (2, 3) or y.ndim != 1:
        shapes = f"{found}" if x is None or y is None else f"X {x.shape}, y {y.shape}"
        raise ConfigError(
            f"series file '{path}' has arrays {shapes}; accepted: arrays X of shape (n, T) or "
            "(n, T, C) and y of shape (n,)"
        )
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"series file '{path}' has X of dtype {x.dtype}; accepted: numbers")
    x = x[..., None] if x.ndim == 2 else x
    return x.transpose(0, 2, 1), y  # (n, T, C) -> aeon's (n, C, T), like the other readers


def _read_csv(path: Path, label_column: str) -> tuple[Any, np.ndarray]:
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as err:
        raise ConfigError(f"series file '{path}' cannot be read ({_one_line(err)})") from None
    if label_column not in frame.columns:
        raise ConfigError(
            f"series file '{path}' has no label column data.label_column={label_column!r}; "
            f"columns found: {_listing(frame.columns)}"
        )
    y = frame.pop(label_column)
    if y.isna().any():
        first = int(np.flatnonzero(y.isna())[0])
        raise ConfigError(
            f"series file '{path}' has no label for series {first}; accepted: a label in column "
            f"{label_column!r} of every row"
        )
    try:
        x = frame.to_numpy(dtype=np.float32)
    except ValueError:
        x = None
    if x is None or x.shape[1] == 0:
        raise ConfigError(
            f"series file '{path}' has no numeric time steps; accepted: one numeric column per "
            f"time step besides {label_column!r}"
        )
    return x[:, None, :], y.to_numpy()


def _read_series(path: Path, label_column: str) -> tuple[Any, np.ndarray]:
    """One series file -> (series in aeon layout, labels), checked."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, y = _read_npz(path)
    elif suffix == ".csv":
        x, y = _read_csv(path, label_column)
    else:
        try:
            x, y = load_from_ts_file(str(path))
        except Exception as err:  # aeon raises IOError, ValueError, ... on a malformed file
            raise ConfigError(
                f"series file '{path}' is not a readable .ts file ({_one_line(err)})"
            ) from None
    y = np.asarray([] if y is None else y)
    if len(x) != len(y):
        raise ConfigError(
            f"series file '{path}' has {len(x)} series but {len(y)} labels; accepted: as many "
            "labels as series"
        )
    if isinstance(x, np.ndarray):
        finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    else:  # unequal lengths: one (C, T_i) array per series
        finite = np.array([np.isfinite(np.asarray(s, dtype=np.float64)).all() for s in x])
    if not finite.all():
        raise ConfigError(
            f"series file '{path}' has NaN or infinite values in series {int(np.argmin(finite))}; "
            "accepted: finite values only"
        )
    return x, y


def _series_file(cfg: Mapping) -> _Raw:
    """The user's series file, with a separate test file or a stratified hold-out."""
    label_column = cfg.get("label_column", "label")
    path = _series_path(cfg.get("path"), "data.path")
    x, y = _read_series(path, label_column)
    source = f"series file '{path}'"
    if cfg.get("test_path") is None:
        (x,), padded = _keras_layout([x], source)
        return _Raw(*_holdout(x, y, cfg, source), source=source, padded=padded)
    test_path = _series_path(cfg.get("test_path"), "data.test_path")
    x_test, y_test = _read_series(test_path, label_column)
    (x, x_test), padded = _keras_layout([x, x_test], f"{source} with '{test_path}'")
    return _Raw(x, y, x_test, y_test, source=source, padded=padded)


LOADERS = {
    "digits": (_digits, "image"),
    "image_folder": (_image_folder, "image"),
    "series_file": (_series_file, "series"),
    **{name: (_ucr, "series") for name in UCR_NAMES},
}


def _plain(value: Any) -> Any:
    """JSON fallback for config values: OmegaConf containers, numpy scalars, paths."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def load_dataset(data_cfg: DictConfig | Mapping[str, Any]) -> Dataset:
    """The dataset a `data=<name>` config describes, checked; cached for in-process sweeps."""
    if isinstance(data_cfg, DictConfig):
        plain = OmegaConf.to_container(data_cfg, resolve=True)
    else:
        plain = dict(data_cfg) if isinstance(data_cfg, Mapping) else vars(data_cfg)
    return _load(json.dumps(plain, sort_keys=True, default=_plain))


@functools.lru_cache(maxsize=8)
def _load(key: str) -> Dataset:
    """Load from a resolved config as JSON: equal configs share one loaded Dataset."""
    cfg = json.loads(key)
    name = cfg.get("name")
    if name not in LOADERS:
        raise ConfigError(f"unknown dataset data.name={name!r}; accepted: {', '.join(DATASETS)}")
    loader, modality = LOADERS[name]
    if cfg.get("modality") not in (None, modality):
        raise ConfigError(
            f"data.modality={cfg['modality']!r} does not match data.name={name!r}; "
            f"accepted: {modality}"
        )
    seed = _split_seed(cfg)
    raw = loader(cfg)
    y_train, y_test, classes = _encode(raw.y_train, raw.y_test, raw.source)
    x_train, y_train = _subset(raw.x_train, y_train, cfg.get("subset"), seed, len(classes))
    x_test, files = raw.x_test, raw.files
    n_images = len(x_train) + (0 if x_test is None else len(x_test))
    if files and _in_memory(cfg, n_images, raw.input_shape):
        x_train = _decode_all(x_train, raw.input_shape)
        x_test = None if x_test is None else _decode_all(x_test, raw.input_shape)
        files = False
    for array in (x_train, y_train, x_test, y_test):
        if array is not None:
            array.flags.writeable = False  # shared by every job that loads this config
    return Dataset(
        name=name,
        modality=modality,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=classes,
        input_shape=tuple(raw.input_shape or x_train.shape[1:]),
        padded=raw.padded,
        files=files,
    )
