"""A job's data as MLflow dataset inputs: what the runs table's Dataset column shows.

Each job logs the training portion it cross-validated (context `training`) and, when there is
one, the test split it scored (context `testing`), each with a name, a digest of exactly what
the model saw (the arrays after the hold-out split, the subset and resizing; for image files
read batch by batch, the files' bytes), where it came from (the Python loader and its version,
or the path of the user's folder or file) and, as input tags, how it was split. Two runs on
different data, including a different subset or test split of the same set, get different
digests; the same data in another process or on another machine gets the same one.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import weakref
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import (
    get_dataset_source_from_json,
    register_dataset_source,
)
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from src.data import Dataset
from src.tracking import tags

DIGEST_CHARS = 16  # of a sha256; MLflow stores up to 36
CHUNK = 1 << 20


class LoaderSource(DatasetSource):
    """Data made by a Python function that ships it, e.g. scikit-learn's `load_digits` or
    aeon's `load_classification("GunPoint", split="train")`: no file of the user's to point at.
    """

    def __init__(self, loader: str, arguments: dict[str, Any], version: str) -> None:
        self.loader, self.arguments, self.version = loader, dict(arguments), version

    @staticmethod
    def _get_source_type() -> str:
        return "python_loader"

    def load(self) -> Any:
        module, name = self.loader.rsplit(".", 1)
        return getattr(__import__(module, fromlist=[name]), name)(**self.arguments)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # made explicitly, never guessed from a string

    @classmethod
    def _resolve(cls, raw_source: Any) -> LoaderSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"loader": self.loader, "arguments": self.arguments, "version": self.version}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> LoaderSource:
        return cls(source_dict["loader"], source_dict.get("arguments", {}),
                   source_dict.get("version", ""))  # fmt: skip


register_dataset_source(LoaderSource)  # so a logged source reads back from its JSON


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _local(path: str | Path) -> DatasetSource:
    """MLflow's own source for a local path (source type `local`)."""
    return get_dataset_source_from_json(json.dumps({"uri": str(path)}), "local")


def sources(data_cfg: DictConfig) -> tuple[DatasetSource, DatasetSource]:
    """Where the training portion and the test split came from."""
    name = data_cfg.name
    if name == "digits":
        source = LoaderSource("sklearn.datasets.load_digits", {}, _version("scikit-learn"))
        return source, source  # one set, split by data.test_size
    if data_cfg.get("ucr_name"):
        loader, version = "aeon.datasets.load_classification", _version("aeon")
        return (
            LoaderSource(loader, {"name": data_cfg.ucr_name, "split": "train"}, version),
            LoaderSource(loader, {"name": data_cfg.ucr_name, "split": "test"}, version),
        )
    path = Path(str(data_cfg.path))
    test_path = data_cfg.get("test_path")
    return _local(path), _local(test_path or path)


def dataset_name(data_cfg: DictConfig) -> str:
    """`digits`, `gunpoint`, or for the user's own data the folder or file, `image_folder:pets`."""
    if data_cfg.get("path") and data_cfg.name in ("image_folder", "series_file"):
        return f"{data_cfg.name}:{Path(str(data_cfg.path)).name}"
    return str(data_cfg.name)


# digests already computed in this process (a dataset is loaded once per process and shared by
# its jobs): (id of the inputs, id of the labels, how the inputs are read) -> (weak references
# that tell the arrays are still those, digest)
_DIGESTS: dict[tuple, tuple[weakref.ref, weakref.ref, str]] = {}


def _hash_array(h: Any, x: np.ndarray, files: bool) -> None:
    """Feed an array into `h`: its dtype, shape and bytes, or each file's bytes for paths."""
    if files:
        h.update(f"files:{len(x)}".encode())
        for path in x:
            with open(str(path), "rb") as handle:
                while chunk := handle.read(CHUNK):
                    h.update(chunk)
            h.update(b"\0")
        return
    h.update(f"{x.dtype.str}:{x.shape}".encode())
    h.update(np.ascontiguousarray(x).data)


def digest(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], files: bool = False,
           input_shape: tuple[int, ...] = ()) -> str:  # fmt: skip
    """A digest of what the model sees: inputs (or the image files and the size they are
    decoded to), labels and class names."""
    key = (id(x), id(y), files, tuple(input_shape), tuple(classes))
    known = _DIGESTS.get(key)
    if known is not None and known[0]() is x and known[1]() is y:
        return known[2]
    h = hashlib.sha256()
    _hash_array(h, x, files)
    if files:
        h.update(f"decoded to {tuple(input_shape)}".encode())
    _hash_array(h, np.asarray(y, dtype=np.int64), False)
    h.update(json.dumps(list(classes)).encode())
    value = h.hexdigest()[:DIGEST_CHARS]
    for stale in [k for k, (xs, ys, _) in _DIGESTS.items() if xs() is None or ys() is None]:
        del _DIGESTS[stale]
    try:
        _DIGESTS[key] = (weakref.ref(x), weakref.ref(y), value)
    except TypeError:  # an array that cannot be weakly referenced: computed every time
        pass
    return value


def split_text(job: DictConfig, data: Dataset) -> tuple[str, str]:
    """How each part was used, for the inputs' `augsweep.split` tags."""
    cv = job.cv
    repeats = f", {cv.repeats} repeats" if cv.repeats != 1 else ""
    training = (f"{len(data.y_train)} samples: stratified {cv.folds}-fold cross-validation"
                f"{repeats} (seed {job.seed}), each fold trained on its train part and scored on "
                "its validation part")  # fmt: skip
    if job.data.get("subset") is not None:
        training += f"; a stratified subset of {job.data.subset} (data.subset)"
    test_n = 0 if data.y_test is None else len(data.y_test)
    if job.data.get("ucr_name"):
        testing = f"{test_n} samples: the official test split, scored by every fold's model"
    elif job.data.get("test_path"):
        testing = f"{test_n} samples: data.test_path, scored by every fold's model"
    else:
        testing = (f"{test_n} samples: stratified hold-out of data.test_size="
                   f"{job.data.get('test_size')} (split seed {job.data.split_seed}), "
                   "scored by every fold's model")  # fmt: skip
    return training, testing


def log_datasets(job: DictConfig, data: Dataset) -> list[mlflow.data.dataset.Dataset]:
    """Log the job's training portion and test split as inputs of the active run."""
    train_source, test_source = sources(job.data)
    name = dataset_name(job.data)
    training, testing = split_text(job, data)
    parts = [("training", data.x_train, data.y_train, train_source, training)]
    if data.x_test is not None:
        parts.append(("testing", data.x_test, data.y_test, test_source, testing))
    datasets, contexts, split_tags = [], [], []
    for context, x, y, source, how in parts:
        value = digest(x, y, data.classes, data.files, data.input_shape)
        datasets.append(mlflow.data.from_numpy(
            np.asarray(x), targets=np.asarray(y), source=source, name=name, digest=value
        ))  # fmt: skip
        contexts.append(context)
        split_tags.append({tags.SPLIT: how, tags.CLASSES: str(len(data.classes)),
                           tags.MODALITY: data.modality})  # fmt: skip
    log_inputs(datasets, contexts, split_tags)
    return datasets


# what a store says when two runs register the same new dataset at once (SQLite, PostgreSQL,
# MySQL): MLflow looks the dataset up, then inserts it, and the later insert loses the race
DUPLICATE = ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")
ATTEMPTS = 4


def log_inputs(datasets: list, contexts: list[str], tags: list[dict[str, str]]) -> None:
    """`mlflow.log_inputs`, tried again when a concurrent job registered the same dataset
    between MLflow's lookup and its insert (jobs of a parallel sweep start together): the
    failed call wrote nothing, and the next one finds the dataset and links it."""
    for attempt in range(ATTEMPTS):
        try:
            mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=tags)
            return
        except MlflowException as err:
            if attempt == ATTEMPTS - 1 or not any(text in str(err) for text in DUPLICATE):
                raise
            time.sleep(0.1 * (attempt + 1) + random.random() * 0.2)
