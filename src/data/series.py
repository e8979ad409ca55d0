"""Series sources: the UCR/UEA sets shipped inside aeon (official split) and the user's .npz,
.csv or .ts files, all in Keras layout (n, T, C), unequal lengths zero-padded at the end."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from aeon.datasets import load_classification, load_from_ts_file

from src.data.raw import Raw, holdout, listing, path_problem, reading
from src.errors import ConfigError

UCR_NAMES = {  # data.name -> the UCR/UEA archive name of a dataset shipped inside aeon
    "arrow_head": "ArrowHead",
    "basic_motions": "BasicMotions",
    "gunpoint": "GunPoint",
    "italy_power_demand": "ItalyPowerDemand",
    "japanese_vowels": "JapaneseVowels",
}


SERIES_EXTENSIONS = (".npz", ".csv", ".ts")


NPZ_ACCEPTED = (
    "a .npz archive (numpy.savez) with a numeric array X of shape (n, T) or (n, T, C) and "
    "labels y of shape (n,), numbers or strings (no object arrays)"
)
TS_ACCEPTED = "a .ts file in the UCR/UEA format (aeon, sktime) with class labels"


def csv_accepted(label_column: str) -> str:
    return (
        "UTF-8 .csv text with a header row, then one row per series with the header's number of "
        f"fields: one numeric column per time step and the label column {label_column!r} "
        "(data.label_column)"
    )


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
    problem = path_problem(path, "file")
    if problem is not None:
        raise ConfigError(
            f"series file '{path}' ({key}) {problem}; accepted: an existing "
            f"{', '.join(SERIES_EXTENSIONS)} file"
        )
    if path.suffix.lower() not in SERIES_EXTENSIONS:
        raise ConfigError(
            f"series file '{path}' has extension {path.suffix!r}; accepted: "
            f"{', '.join(SERIES_EXTENSIONS)}"
        )
    return path


def _npy_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an .npz archive, from its header alone.

    A header whose shape asks for more data than the archive holds is refused here, before
    numpy would allocate that much.
    """
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        held = archive.getinfo(name).file_size - member.tell()
    wanted = math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and wanted != held:
        raise ValueError(f"{name} is truncated or corrupt: its header asks for {wanted} bytes of "
                         f"data, the archive holds {held}")  # fmt: skip
    return shape, dtype


def _read_npz(path: Path) -> tuple[Any, np.ndarray]:
    """X and y of an .npz archive, their headers checked before any data is read."""
    what = f"series file '{path}'"
    with reading(what, NPZ_ACCEPTED, path), zipfile.ZipFile(path) as archive:
        names = [n.removesuffix(".npy") for n in archive.namelist() if n.endswith(".npy")]
        if "X" not in names or "y" not in names:
            raise ConfigError(f"{what} has arrays {sorted(names)}; accepted: {NPZ_ACCEPTED}")
        (x_shape, x_dtype), (y_shape, y_dtype) = (_npy_header(archive, f"{k}.npy") for k in "Xy")
        for key, dtype in (("X", x_dtype), ("y", y_dtype)):
            if dtype.hasobject:
                raise ConfigError(
                    f"{what} has {key} of dtype {dtype} (pickled Python objects, which augsweep "
                    f"never unpickles); accepted: {NPZ_ACCEPTED}"
                )
        if len(x_shape) not in (2, 3) or len(y_shape) != 1:
            raise ConfigError(
                f"{what} has arrays X {x_shape}, y {y_shape}; accepted: arrays X of shape (n, T) "
                "or (n, T, C) and y of shape (n,)"
            )
        if x_dtype.kind not in "biuf":
            raise ConfigError(f"{what} has X of dtype {x_dtype}; accepted: numbers")
        if y_dtype.kind not in "biufUS":
            raise ConfigError(
                f"{what} has y of dtype {y_dtype}; accepted: labels as numbers or strings"
            )
        x, y = (_npy_array(archive, f"{k}.npy") for k in "Xy")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ConfigError(
            f"{what} has no label for series {int(np.flatnonzero(np.isnan(y))[0])} (NaN); "
            "accepted: a label for every series"
        )
    x = x[..., None] if x.ndim == 2 else x
    return x.transpose(0, 2, 1), y  # (n, T, C) -> aeon's (n, C, T), like the other readers


def _npy_array(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    with archive.open(name) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _csv_rows(path: Path, label_column: str) -> str:
    """The file's text, after checking that every row has the header's number of fields.

    pandas pads a short row with NaN, which would be reported as a NaN value, not as the
    malformed row it is.
    """
    what, accepted = f"series file '{path}'", csv_accepted(label_column)
    with reading(what, accepted, path):
        text = path.read_bytes().decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text))
        header = None
        for row in reader:
            if not row:  # a blank line, which pandas skips too
                continue
            if header is None:
                header = row
            elif len(row) != len(header):
                raise ConfigError(
                    f"{what} has {len(row)} fields in line {reader.line_num}, but its header has "
                    f"{len(header)}; accepted: {accepted}"
                )
    if header is None:
        raise ConfigError(f"{what} has no rows, not even a header; accepted: {accepted}")
    return text


def _read_csv(path: Path, label_column: str) -> tuple[Any, np.ndarray]:
    what = f"series file '{path}'"
    text = _csv_rows(path, label_column)
    with reading(what, csv_accepted(label_column), path):
        frame = pd.read_csv(io.StringIO(text))
    if label_column not in frame.columns:
        raise ConfigError(
            f"{what} has no label column data.label_column={label_column!r}; columns found: "
            f"{listing(frame.columns)}; accepted: {csv_accepted(label_column)}"
        )
    y = frame.pop(label_column)
    if y.isna().any():
        first = int(np.flatnonzero(y.isna())[0])
        raise ConfigError(
            f"{what} has no label for series {first}; accepted: a label in column "
            f"{label_column!r} of every row"
        )
    if frame.shape[1] == 0:
        raise ConfigError(
            f"{what} has no numeric time steps; accepted: one numeric column per time step "
            f"besides {label_column!r}"
        )
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"{what} has {frame[column].iloc[row]!r} in column {column!r} of series {row}, "
                f"not a number; accepted: one numeric column per time step besides "
                f"{label_column!r}"
            )
    return frame.to_numpy(dtype=np.float64)[:, None, :], y.to_numpy()


def _read_ts(path: Path) -> tuple[Any, np.ndarray]:
    with reading(f"series file '{path}'", TS_ACCEPTED, path):
        x, y = load_from_ts_file(str(path))
    return x, np.asarray([] if y is None else y)


def _first_not_finite(x: Any, dtype: type | None = None) -> int | None:
    """The first series with a NaN or infinite value (once cast to `dtype`), or None."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing cast is what we look for
        if isinstance(x, np.ndarray):
            finite = np.isfinite(x if dtype is None else x.astype(dtype))
            finite = finite.reshape(len(x), -1).all(axis=1)
        else:  # unequal lengths: one (C, T_i) array per series
            finite = np.array([np.isfinite(np.asarray(s, dtype=dtype)).all() for s in x])
    return None if finite.all() else int(np.argmin(finite))


def _read_series(path: Path, label_column: str) -> tuple[Any, np.ndarray]:
    """One series file -> (series in aeon layout, labels), checked."""
    suffix = path.suffix.lower()
    accepted = {".npz": NPZ_ACCEPTED, ".csv": csv_accepted(label_column), ".ts": TS_ACCEPTED}
    if path.stat().st_size == 0:
        raise ConfigError(f"series file '{path}' is empty (0 bytes); accepted: {accepted[suffix]}")
    if suffix == ".npz":
        x, y = _read_npz(path)
    elif suffix == ".csv":
        x, y = _read_csv(path, label_column)
    else:
        x, y = _read_ts(path)
    if len(x) != len(y):
        raise ConfigError(
            f"series file '{path}' has {len(x)} series but {len(y)} labels; accepted: as many "
            "labels as series"
        )
    if len(x) == 0 or min(np.size(s) for s in x) == 0:
        raise ConfigError(
            f"series file '{path}' has no series, or a series of length 0 or with 0 channels; "
            f"accepted: {accepted[suffix]}"
        )
    if (first := _first_not_finite(x)) is not None:
        raise ConfigError(
            f"series file '{path}' has NaN or infinite values in series {first}; "
            "accepted: finite values only"
        )
    if (first := _first_not_finite(x, np.float32)) is not None:  # what Keras gets
        raise ConfigError(
            f"series file '{path}' has values beyond float32's range in series {first}; "
            f"accepted: finite values within ±{np.finfo(np.float32).max:.3g}"
        )
    return x, y


def series_file(cfg: Mapping) -> Raw:
    """The user's series file, with a separate test file or a stratified hold-out."""
    label_column = cfg["label_column"]
    path = _series_path(cfg.get("path"), "data.path")
    x, y = _read_series(path, label_column)
    source = f"series file '{path}'"
    if cfg.get("test_path") is None:
        (x,), padded = _keras_layout([x], source)
        return Raw(*holdout(x, y, cfg, source), source=source, padded=padded)
    test_path = _series_path(cfg.get("test_path"), "data.test_path")
    x_test, y_test = _read_series(test_path, label_column)
    (x, x_test), padded = _keras_layout([x, x_test], f"{source} with '{test_path}'")
    test_source = f"series file '{test_path}' (data.test_path)"
    return Raw(x, y, x_test, y_test, source=source, padded=padded, test_source=test_source)
