"""Datasets: loaded once per process, checked before training, fed to Keras as tf.data batches."""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from src.errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
COLOR_CHANNELS = {"rgb": 3, "grayscale": 1}
SERIES_EXTENSIONS = (".npz", ".csv", ".ts")


@dataclass(frozen=True)
class Dataset:
    """Training portion (for cross-validation) and test split of one dataset.

    Arrays are float32 in Keras layout: images (n, H, W, C) in [0, 1], series (n, T, C). An image
    folder keeps file paths in `x_*` instead; `pipeline` decodes them batch by batch.
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
    decode: Callable[[tf.Tensor], tf.Tensor] | None = None  # file path -> image, for folders

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def pipeline(
        self, x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> tf.data.Dataset:
        """Batches of (inputs, labels); files are read inside the pipeline, never all at once."""
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))
        if shuffle:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        if self.decode is not None:
            ds = ds.map(
                lambda path, label: (self.decode(path), label),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _encode(y_train: np.ndarray, y_test: np.ndarray | None, source: str):
    classes = np.unique(y_train.astype(str))
    if len(classes) < 2:
        raise ConfigError(f"{source} has {len(classes)} class; accepted: at least 2 classes")
    lookup = {c: i for i, c in enumerate(classes)}
    encoded_test = None
    if y_test is not None:
        unknown = sorted(set(y_test.astype(str)) - set(lookup))
        if unknown:
            raise ConfigError(
                f"test label {unknown[0]!r} of {source} is not in its training labels; "
                f"accepted: {', '.join(classes)}"
            )
        encoded_test = np.array([lookup[c] for c in y_test.astype(str)], dtype=np.int64)
    return (
        np.array([lookup[c] for c in y_train.astype(str)], dtype=np.int64),
        encoded_test,
        tuple(str(c) for c in classes),
    )


def _holdout(x, y, test_size, seed):
    """A stratified hold-out test split, or none when test_size is 0."""
    if not isinstance(test_size, int | float) or not 0 <= test_size < 1:
        raise ConfigError(
            f"data.test_size={test_size!r} is not allowed; accepted: a number in [0, 1)"
        )
    if test_size == 0:
        return x, y, None, None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    return x_train, y_train, x_test, y_test


def _subset(x, y, subset, seed, n_classes):
    """A stratified subset of the training portion, for quick runs."""
    if subset is None or subset >= len(y):
        return x, y
    if not isinstance(subset, int) or subset < 2 * n_classes:
        raise ConfigError(
            f"data.subset={subset!r} is not allowed; accepted: null or an integer >= "
            f"{2 * n_classes} (two samples per class)"
        )
    x, _, y, _ = train_test_split(x, y, train_size=subset, stratify=y, random_state=seed)
    return x, y


def _path(cfg: DictConfig, accepted: str) -> Path:
    if OmegaConf.is_missing(cfg, "path") or cfg.path is None:
        raise ConfigError(f"data.path is not set for data={cfg.name}; accepted: {accepted}")
    return Path(str(cfg.path))


def _digits(cfg: DictConfig):
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    if cfg.image_size is not None:
        x = tf.image.resize(x, list(cfg.image_size)).numpy()
    classes = tuple(str(c) for c in range(10))
    x_train, y_train, x_test, y_test = _holdout(x, digits.target, cfg.test_size, cfg.split_seed)
    return x_train, y_train, x_test, y_test, classes, {}


def _image_folder(cfg: DictConfig):
    accepted = "a directory with one subfolder of images per class"
    root = _path(cfg, accepted)
    if not root.is_dir():
        raise ConfigError(f"data.path='{root}' is not a directory; accepted: {accepted}")
    if cfg.color_mode not in COLOR_CHANNELS:
        raise ConfigError(
            f"data.color_mode={cfg.color_mode!r} is not supported; accepted: rgb, grayscale"
        )
    paths, labels, skipped = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(str(file))
                labels.append(folder.name)
            else:
                skipped.append(file)
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} non-image file(s) in {root}, e.g. "
            f"{', '.join(str(p) for p in skipped[:3])}; images are {', '.join(IMAGE_EXTENSIONS)}",
            UserWarning,
            stacklevel=3,
        )
    n_folders = len(set(labels))
    if n_folders < 2:
        raise ConfigError(
            f"data.path='{root}' has {n_folders} class folder(s) with images; accepted: a "
            "directory with at least 2 class subfolders"
        )
    for path in paths:  # fail now, naming the file, not in the middle of training
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:
            raise ConfigError(
                f"unreadable image file '{path}' ({type(err).__name__}); accepted: readable "
                f"{', '.join(IMAGE_EXTENSIONS)} images"
            ) from None
    x, y = np.array(paths), np.array(labels)
    classes = tuple(sorted(set(labels)))
    x_train, y_train, x_test, y_test = _holdout(x, y, cfg.test_size, cfg.split_seed)
    height, width = cfg.image_size
    channels = COLOR_CHANNELS[cfg.color_mode]

    def decode(path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return tf.image.resize(image, (height, width)) / 255.0

    return (
        x_train,
        y_train,
        x_test,
        y_test,
        classes,
        {"decode": decode, "input_shape": (height, width, channels)},
    )


def _to_keras_layout(x) -> tuple[np.ndarray, bool]:
    """aeon's (n, channels, length) or list of (channels, length_i) -> (n, T, C), padded?"""
    if isinstance(x, np.ndarray) and x.ndim == 3:
        return np.transpose(x, (0, 2, 1)).astype(np.float32), False
    series = [np.asarray(s, dtype=np.float32).T for s in x]
    if len({len(s) for s in series}) == 1:
        return np.stack(series), False
    return keras.utils.pad_sequences(series, padding="post", dtype="float32"), True


def _ucr(cfg: DictConfig):
    from aeon.datasets import load_classification

    x_train, y_train = load_classification(cfg.ucr_name, split="train")
    x_test, y_test = load_classification(cfg.ucr_name, split="test")
    x_all, padded = _to_keras_layout(list(x_train) + list(x_test))
    n = len(x_train)
    return x_all[:n], y_train, x_all[n:], y_test, None, {"padded": padded}


def _read_series(path: Path, label_column: str) -> tuple[object, np.ndarray]:
    if not path.is_file():
        raise ConfigError(
            f"series file '{path}' does not exist; accepted: a .npz, .csv or .ts file"
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            if "X" not in arrays or "y" not in arrays:
                raise ConfigError(
                    f"series file '{path}' has arrays {sorted(arrays.files)}; accepted: arrays X "
                    "of shape (n, T) or (n, T, C) and y of shape (n,)"
                )
            x, y = arrays["X"].astype(np.float32), arrays["y"]
        if x.ndim == 2:
            x = x[..., None]
        return np.transpose(x, (0, 2, 1)), y  # aeon layout, like the other readers
    if suffix == ".csv":
        frame = pd.read_csv(path)
        if label_column not in frame.columns:
            raise ConfigError(
                f"series file '{path}' has no label column data.label_column={label_column!r}; "
                f"columns found: {', '.join(map(str, frame.columns[:8]))}"
            )
        y = frame.pop(label_column).to_numpy()
        return frame.to_numpy(dtype=np.float32)[:, None, :], y
    if suffix == ".ts":
        from aeon.datasets import load_from_ts_file

        return load_from_ts_file(str(path))
    raise ConfigError(
        f"series file '{path}' has extension {suffix!r}; accepted: {', '.join(SERIES_EXTENSIONS)}"
    )


def _checked_series(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray, bool]:
    x, y = _read_series(path, label_column)
    if len(x) != len(y):
        raise ConfigError(
            f"series file '{path}' has {len(x)} series but {len(y)} labels; accepted: one label "
            "per series"
        )
    for i, series in enumerate(x):
        if not np.all(np.isfinite(np.asarray(series, dtype=np.float32))):
            raise ConfigError(
                f"series file '{path}' has NaN or infinite values in series {i}; accepted: "
                "finite values only"
            )
    x, padded = _to_keras_layout(x)
    return x, np.asarray(y), padded


def _series_file(cfg: DictConfig):
    x, y, padded = _checked_series(_path(cfg, "a .npz, .csv or .ts file"), cfg.label_column)
    if cfg.test_path is None:
        x_train, y_train, x_test, y_test = _holdout(x, y, cfg.test_size, cfg.split_seed)
    else:
        x_test, y_test, padded_test = _checked_series(Path(str(cfg.test_path)), cfg.label_column)
        length = max(x.shape[1], x_test.shape[1])
        x_train, x_test = (
            np.pad(a, ((0, 0), (0, length - a.shape[1]), (0, 0))) for a in (x, x_test)
        )
        y_train, padded = y, padded or padded_test or x.shape[1] != x_test.shape[1]
    return x_train, y_train, x_test, y_test, None, {"padded": padded}


LOADERS = {
    "digits": _digits,
    "image_folder": _image_folder,
    "gunpoint": _ucr,
    "italy_power_demand": _ucr,
    "arrow_head": _ucr,
    "basic_motions": _ucr,
    "japanese_vowels": _ucr,
    "series_file": _series_file,
}
DATASETS = tuple(sorted(LOADERS))


def load_dataset(data_cfg: DictConfig) -> Dataset:
    """The dataset a `data=<name>` config describes, checked; cached for in-process sweeps."""
    return _load(json.dumps(OmegaConf.to_container(data_cfg, resolve=True), sort_keys=True))


@functools.lru_cache(maxsize=8)
def _load(key: str) -> Dataset:
    cfg = OmegaConf.create(json.loads(key))
    if cfg.name not in LOADERS:
        raise ConfigError(
            f"unknown dataset data.name={cfg.name!r}; accepted: {', '.join(DATASETS)}"
        )
    x_train, y_train, x_test, y_test, classes, extra = LOADERS[cfg.name](cfg)
    y_train, y_test, found = _encode(np.asarray(y_train), y_test, f"data={cfg.name}")
    classes = classes or found
    x_train, y_train = _subset(x_train, y_train, cfg.get("subset"), cfg.split_seed, len(classes))
    input_shape = extra.pop("input_shape", tuple(x_train.shape[1:]))
    return Dataset(
        cfg.name,
        cfg.modality,
        x_train,
        y_train,
        x_test,
        y_test,
        tuple(classes),
        tuple(input_shape),
        **extra,
    )
