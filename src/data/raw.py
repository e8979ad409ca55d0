"""What a loader returns, and what every source goes through before it is a Dataset: the
stratified hold-out split, the training subset, the label encoding, and their one-line errors."""

from __future__ import annotations

import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

from src.checks import is_int, is_number
from src.errors import ConfigError, one_line, why


class Raw(NamedTuple):
    """What a loader found, before label encoding and subsetting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str  # names the data in error messages
    padded: bool = False
    files: bool = False
    input_shape: tuple[int, ...] | None = None
    test_source: str | None = None  # names a separate test file in error messages


def listing(items: Any, limit: int = 8) -> str:
    items = [str(i) for i in items]
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


FILE_KINDS = {  # what stat calls a path that is neither a regular file nor a directory
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def path_problem(path: Path, want: str) -> str | None:
    """Why `path` is not the `want` ("file" or "directory") it should be, or None.

    Checked before anything opens the path: opening a FIFO would block the job forever.
    """
    try:
        mode = path.stat().st_mode  # follows symbolic links
    except FileNotFoundError:
        return "does not exist"
    except OSError as err:  # a parent that is a file, or one this user may not enter
        return f"cannot be accessed ({why(err, path, 80)})"
    if stat.S_ISDIR(mode):
        return None if want == "directory" else "is a directory, not a file"
    if stat.S_ISREG(mode):
        return None if want == "file" else "is a file, not a directory"
    kind = next((name for test, name in FILE_KINDS.items() if test(mode)), "not a regular file")
    return f"is {kind}, not a regular {want}"


@contextmanager
def reading(what: str, accepted: str, path: Any = None) -> Iterator[None]:
    """Whatever a parser raises on a user's file, as one ConfigError naming the file.

    Only for calls into parsers of untrusted bytes (zipfile, numpy's .npy reader, pandas, aeon,
    Pillow): on a truncated or corrupted file they raise almost any exception type, and every
    one of them means the same to the user. `path`, already in `what`, is left out of the
    parser's own message.
    """
    try:
        yield
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"{what} cannot be read ({why(err, path)}); accepted: {accepted}"
        ) from None


def split_seed(cfg: Mapping) -> int:
    seed = cfg["split_seed"]
    if not is_int(seed) or not 0 <= seed < 2**32:
        raise ConfigError(
            f"data.split_seed={seed!r} is not allowed; accepted: an integer in [0, 2**32)"
        )
    return seed


def holdout(x: np.ndarray, y: np.ndarray, cfg: Mapping, source: str):
    """A stratified hold-out test split, or none when test_size is 0."""
    test_size = cfg["test_size"]
    if not is_number(test_size):
        test_size = None
    if test_size is None or not 0 <= test_size < 1:
        raise ConfigError(
            f"data.test_size={cfg['test_size']!r} is not allowed; accepted: a number in "
            "[0, 1) (0 = no test split)"
        )
    if test_size == 0:
        return x, y, None, None
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=test_size, stratify=y, random_state=split_seed(cfg)
        )
    except ValueError as err:
        raise ConfigError(
            f"data.test_size={test_size!r} cannot split {source} ({len(y)} samples) stratified "
            f"({one_line(err)}); accepted: a size that leaves every class in both parts"
        ) from None
    return x_train, y_train, x_test, y_test


def subset(x: np.ndarray, y: np.ndarray, subset: Any, seed: int, n_classes: int):
    """A stratified subset of the training portion, for quick runs."""
    if subset is None:
        return x, y
    if not is_int(subset) or subset < n_classes:
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
            f"({one_line(err)}); accepted: null, at most {len(y) - n_classes}, or at least "
            f"{len(y)}"
        ) from None
    return x, y


def encode(
    y_train: np.ndarray, y_test: np.ndarray | None, source: str, test_source: str | None = None
):
    """Labels -> int64 indices into the sorted unique training labels, shared with the test.

    `test_source` names a separate test file, which an unknown test label is blamed on.
    """
    y_train = np.asarray(y_train)
    y_test = None if y_test is None else np.asarray(y_test)
    if any(y is not None and y.dtype.kind not in "biuf" for y in (y_train, y_test)):
        y_train = y_train.astype(str)
        y_test = None if y_test is None else y_test.astype(str)
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise ConfigError(
            f"{source} has {len(classes)} class ({listing(classes)}); accepted: at least 2 classes"
        )
    names = tuple(str(c) for c in classes)
    encoded_test = None
    if y_test is not None:
        encoded_test = np.searchsorted(classes, y_test).clip(max=len(classes) - 1)
        unknown = classes[encoded_test] != y_test
        if unknown.any():
            where = f"{test_source} is not a label of {source}"
            if test_source is None:
                where = f"{source} is not a training label"
            raise ConfigError(
                f"test label '{y_test[unknown][0]}' of {where}; accepted: {listing(names)}"
            )
        encoded_test = encoded_test.astype(np.int64)
    return np.searchsorted(classes, y_train).astype(np.int64), encoded_test, names
