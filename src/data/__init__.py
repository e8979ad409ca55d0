"""Datasets: loaded once per process, checked before any training, fed to Keras as tf.data batches.

Every bad input raises ConfigError with a one-line message, so a sweep fails before it trains.
The sources live in `images` (digits, LFW faces, image folders) and `series` (UCR/UEA sets,
series files); `raw` holds what they share: the hold-out split, the subset, the label encoding.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.data.images import (
    check_decodable,
    decode,
    decode_all,
    digits,
    image_folder,
    in_memory,
    lfw_faces,
)
from src.data.raw import encode, split_seed, subset
from src.data.series import UCR_NAMES, series_file, ucr
from src.errors import ConfigError
from src.schema import (
    ImageDataConfig,
    ImageFolderDataConfig,
    SeriesFileDataConfig,
    UcrDataConfig,
    with_defaults,
)

DATASETS: tuple[str, ...] = tuple(
    sorted(["digits", "image_folder", "lfw_faces", "series_file", *UCR_NAMES])
)


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
        return decode(path, self.input_shape)


# data.name -> its loader, its modality and the schema its conf/data file extends
LOADERS = {
    "digits": (digits, "image", ImageDataConfig),
    "image_folder": (image_folder, "image", ImageFolderDataConfig),
    "lfw_faces": (lfw_faces, "image", ImageDataConfig),
    "series_file": (series_file, "series", SeriesFileDataConfig),
    **{name: (ucr, "series", UcrDataConfig) for name in UCR_NAMES},
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
    loader, modality, schema = LOADERS[name]
    if cfg.get("modality") not in (None, modality):
        raise ConfigError(
            f"data.modality={cfg['modality']!r} does not match data.name={name!r}; "
            f"accepted: {modality}"
        )
    cfg = with_defaults(schema, cfg)  # the loaders read split_seed, test_size, ... as composed
    seed = split_seed(cfg)
    raw = loader(cfg)
    y_train, y_test, classes = encode(raw.y_train, raw.y_test, raw.source, raw.test_source)
    x_train, y_train = subset(raw.x_train, y_train, cfg.get("subset"), seed, len(classes))
    x_test, files = raw.x_test, raw.files
    n_images = len(x_train) + (0 if x_test is None else len(x_test))
    if files and in_memory(cfg, n_images, raw.input_shape):
        x_train = decode_all(x_train, raw.input_shape)
        x_test = None if x_test is None else decode_all(x_test, raw.input_shape)
        files = False
    elif files:  # read batch by batch in training: every file is decoded once now, to check it
        check_decodable([*x_train, *(() if x_test is None else x_test)], raw.input_shape)
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
