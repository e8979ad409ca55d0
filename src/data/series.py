"""Series sources: the UCR/UEA sets shipped inside aeon (official split) and the user's .npz,
.csv or .ts files, all in Keras layout (n, T, C), unequal lengths zero-padded at the end."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from aeon.datasets import load_classification, load_from_ts_file

from src.data.raw import Raw, holdout, listing, one_line
from src.errors import ConfigError

UCR_NAMES = {  # data.name -> the UCR/UEA archive name of a dataset shipped inside aeon
    "arrow_head": "ArrowHead",
    "basic_motions": "BasicMotions",
    "gunpoint": "GunPoint",
    "italy_power_demand": "ItalyPowerDemand",
    "japanese_vowels": "JapaneseVowels",
}


SERIES_EXTENSIONS = (".npz", ".csv", ".ts")


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


def ucr(cfg: Mapping) -> Raw:
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
    return Raw(x_train, y_train, x_test, y_test, source=source, padded=padded)


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
        raise ConfigError(f"series file '{path}' cannot be read ({one_line(err)})") from None
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
        raise ConfigError(f"series file '{path}' cannot be read ({one_line(err)})") from None
    if label_column not in frame.columns:
        raise ConfigError(
            f"series file '{path}' has no label column data.label_column={label_column!r}; "
            f"columns found: {listing(frame.columns)}"
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
                f"series file '{path}' is not a readable .ts file ({one_line(err)})"
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


def series_file(cfg: Mapping) -> Raw:
    """The user's series file, with a separate test file or a stratified hold-out."""
    label_column = cfg.get("label_column", "label")
    path = _series_path(cfg.get("path"), "data.path")
    x, y = _read_series(path, label_column)
    source = f"series file '{path}'"
    if cfg.get("test_path") is None:
        (x,), padded = _keras_layout([x], source)
        return Raw(*holdout(x, y, cfg, source), source=source, padded=padded)
    test_path = _series_path(cfg.get("test_path"), "data.test_path")
    x_test, y_test = _read_series(test_path, label_column)
    (x, x_test), padded = _keras_layout([x, x_test], f"{source} with '{test_path}'")
    return Raw(x, y, x_test, y_test, source=source, padded=padded)
