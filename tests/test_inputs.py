"""Datasets as MLflow inputs: name, digest, source and split, read back from a real store."""

from __future__ import annotations

import hashlib
import json

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src import inputs, tracking
from src.data import load_dataset
from tests.test_bad_input import write_gunpoint_npz
from tests.test_data import digits_cfg, folder_cfg, series_cfg, ucr


def job_cfg(data_cfg, folds: int = 3, seed: int = 0):
    return OmegaConf.create({"data": OmegaConf.to_container(data_cfg), "seed": seed,
                             "cv": {"folds": folds, "repeats": 1}})  # fmt: skip


def logged(data_cfg, **job) -> list:
    """Log a dataset's inputs on a new run of a real store; its inputs read back."""
    tracking.setup(OmegaConf.create({"uri": None, "experiment": "augsweep"}))
    data = load_dataset(data_cfg)
    with mlflow.start_run() as run:
        inputs.log_datasets(job_cfg(data_cfg, **job), data)
    return MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs


def by_context(dataset_inputs) -> dict:
    return {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i for i in dataset_inputs
    }


def by_hand(x, y, classes) -> str:
    """The digest from the arrays, computed here the way the module documents it."""
    h = hashlib.sha256()
    h.update(f"{x.dtype.str}:{x.shape}".encode() + np.ascontiguousarray(x).tobytes())
    y = np.asarray(y, np.int64)
    h.update(f"{y.dtype.str}:{y.shape}".encode() + y.tobytes())
    h.update(json.dumps(list(classes)).encode())
    return h.hexdigest()[:16]


def test_digits_training_and_test_split_are_logged_with_digest_source_and_split():
    found = by_context(logged(digits_cfg()))
    assert set(found) == {"training", "testing"}
    data = load_dataset(digits_cfg())
    for context, x, y in (("training", data.x_train, data.y_train),
                          ("testing", data.x_test, data.y_test)):  # fmt: skip
        dataset = found[context].dataset
        assert dataset.name == "digits"
        assert dataset.digest == by_hand(x, y, data.classes)
        assert dataset.source_type == "python_loader"
        source = json.loads(dataset.source)
        assert source["loader"] == "sklearn.datasets.load_digits" and source["version"]
        profile = json.loads(dataset.profile)
        assert profile["features_shape"] == list(x.shape)
        assert "features" in json.loads(dataset.schema)["mlflow_tensorspec"]
    tags = {t.key: t.value for t in found["training"].tags}
    assert tags["augsweep.split"].startswith("1437 samples: stratified 3-fold cross-validation")
    tags = {t.key: t.value for t in found["testing"].tags}
    assert tags["augsweep.split"].startswith("360 samples: stratified hold-out of data.test_size")
    # the logged source reads back as the loader that made the data
    source = mlflow.data.get_source(found["training"].dataset)
    assert isinstance(source, inputs.LoaderSource) and source.load().data.shape == (1797, 64)


def test_different_data_gets_a_different_digest_and_the_same_data_the_same():
    whole = by_context(logged(digits_cfg()))
    subset = by_context(logged(digits_cfg(subset=200)))
    again = by_context(logged(digits_cfg(subset=200)))
    other_split = by_context(logged(digits_cfg(split_seed=1)))
    digest = {name: {c: i.dataset.digest for c, i in found.items()}
              for name, found in [("whole", whole), ("subset", subset), ("again", again),
                                  ("other_split", other_split)]}  # fmt: skip
    assert digest["subset"] == digest["again"]
    assert digest["subset"]["training"] != digest["whole"]["training"]
    assert digest["subset"]["testing"] == digest["whole"]["testing"]  # the same hold-out
    assert digest["other_split"]["testing"] != digest["whole"]["testing"]
    tags = {t.key: t.value for t in subset["training"].tags}
    assert "a stratified subset of 200 (data.subset)" in tags["augsweep.split"]


def test_ucr_sets_name_the_aeon_loader_and_their_official_split():
    found = by_context(logged(ucr("gunpoint", "GunPoint")))
    train, test = found["training"].dataset, found["testing"].dataset
    assert train.name == test.name == "gunpoint" and train.digest != test.digest
    assert json.loads(train.source)["arguments"] == {"name": "GunPoint", "split": "train"}
    assert json.loads(test.source)["arguments"] == {"name": "GunPoint", "split": "test"}
    tags = {t.key: t.value for t in found["testing"].tags}
    assert tags["augsweep.split"].startswith("150 samples: the official test split")


def test_a_series_file_is_named_by_its_file_and_points_at_it(tmp_path):
    path = write_gunpoint_npz(tmp_path / "mine.npz")
    found = by_context(logged(series_cfg(path)))
    dataset = found["training"].dataset
    assert dataset.name == "series_file:mine.npz"
    assert dataset.source_type == "local" and json.loads(dataset.source) == {"uri": str(path)}


def test_image_files_read_batch_by_batch_are_digested_by_their_bytes(digit_folder):
    streamed = by_context(logged(folder_cfg(digit_folder, cache="none")))
    dataset = streamed["training"].dataset
    assert dataset.name == "image_folder:digits"
    assert json.loads(dataset.source) == {"uri": str(digit_folder)}
    data = load_dataset(folder_cfg(digit_folder, cache="none"))
    assert data.files  # paths, decoded batch by batch in training
    digest = inputs.digest(data.x_train, data.y_train, data.classes, True, data.input_shape)
    assert digest == dataset.digest
    with open(data.x_train[0], "ab") as image:  # one byte more in one file (still a PNG)
        image.write(b"\0")
    inputs._DIGESTS.clear()
    changed = inputs.digest(data.x_train, data.y_train, data.classes, True, data.input_shape)
    assert changed != digest
    resized = inputs.digest(data.x_train, data.y_train, data.classes, True, (8, 8, 3))
    assert resized not in (digest, changed)  # decoded to another size: other inputs


def test_digests_are_computed_once_per_loaded_array(monkeypatch):
    data = load_dataset(digits_cfg(subset=100))
    first = inputs.digest(data.x_train, data.y_train, data.classes)
    monkeypatch.setattr(inputs, "_hash_array", pytest.fail)  # not hashed again
    assert inputs.digest(data.x_train, data.y_train, data.classes) == first
