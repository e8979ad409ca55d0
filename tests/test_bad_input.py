"""Bad input fails before any training with a one-line error that names the value."""

from __future__ import annotations

import numpy as np
import pytest
from aeon.datasets import load_classification
from mlflow.tracking import MlflowClient
from PIL import Image
from sklearn.datasets import load_digits

from src.errors import ConfigError
from src.train import run


def write_gunpoint_npz(path, nan: bool = False, drop_label: bool = False):
    x, y = load_classification("GunPoint", split="train")
    x = x[:, 0, :].astype("float32")
    if nan:
        x[7, 20] = np.nan
    np.savez(path, X=x, y=y[:-1] if drop_label else y)
    return path


def write_one_class_folder(root):
    digits = load_digits()
    (root / "zero").mkdir(parents=True)
    for i in np.flatnonzero(digits.target == 0)[:5]:
        Image.fromarray((digits.images[i] * 15).astype("uint8")).save(root / "zero" / f"{i}.png")
    return root


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["aug.strength=1.5"], r"aug.strength=1.5 is outside \[0, 1\]"),
        (["aug.strength=-0.1"], r"aug.strength=-0.1 is outside \[0, 1\]"),
        (["data=image_folder", "data.path=/no/such/folder"], r"data.path='/no/such/folder'"),
        (
            ["data=arrow_head", "cv.folds=13"],
            r"class '\d' has 1[0-2] training samples, fewer than cv.folds=13",
        ),
        (["model=lstm"], r"model 'lstm' needs series data, but the dataset is image"),
        (["cv.folds=1"], r"cv.folds=1 is not allowed; accepted: an integer >= 2"),
        (
            ["+model.standardize=true"],
            r"model.standardize=True is not allowed for image data; accepted: false \(series",
        ),
        (
            ["data=gunpoint", "model=lstm", "model.standardize=yes"],
            r"model.standardize='yes' is not allowed for series data; accepted: true, false",
        ),
        (
            ["aug.ops=[rotation,warp]"],
            r"unknown aug op .warp. in aug.ops; accepted: flip, rotation",
        ),
    ],
)
def test_config_errors_fail_the_run_before_training(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        run(make_cfg(*overrides))
    assert "\n" not in str(err.value)
    client = MlflowClient()
    (found,) = client.search_runs([client.get_experiment_by_name("augsweep").experiment_id])
    assert found.info.status == "FAILED"
    assert found.data.tags["augsweep.error"].startswith("ConfigError: ")
    assert found.data.metrics == {}  # nothing trained


def test_folder_with_one_class(make_cfg, tmp_path):
    root = write_one_class_folder(tmp_path / "images")
    with pytest.raises(ConfigError, match=r"at least 2") as err:
        run(make_cfg("data=image_folder", f"data.path={root}"))
    assert str(root) in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"nan": True}, r"NaN|finite"), ({"drop_label": True}, r"50.*49|49.*50")],
)
def test_bad_series_files(make_cfg, tmp_path, kwargs, message):
    path = write_gunpoint_npz(tmp_path / "series.npz", **kwargs)
    with pytest.raises(ConfigError, match=message) as err:
        run(make_cfg("data=series_file", f"data.path={path}"))
    assert "series.npz" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("problem", ["empty", "unknown_test_label"])
def test_the_files_of_issue_17_fail_the_run_naming_the_file(make_cfg, tmp_path, problem):
    """An empty .npz (was EOFError with a traceback) and a test file with a label the
    training file lacks (the message named the training file)."""
    train, test = write_gunpoint_npz(tmp_path / "train.npz"), tmp_path / "test.npz"
    if problem == "empty":
        test.write_bytes(b"")
        expected = f"series file '{test}' is empty (0 bytes); accepted: a .npz archive"
    else:
        np.savez(test, X=np.zeros((2, 150), "float32"), y=np.array(["1", "3"]))
        expected = (
            f"test label '3' of series file '{test}' (data.test_path) is not a label of "
            f"series file '{train}'; accepted: 1, 2"
        )
    cfg = make_cfg("data=series_file", f"data.path={train}", f"data.test_path={test}")
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)
    client = MlflowClient()
    (found,) = client.search_runs([client.get_experiment_by_name("augsweep").experiment_id])
    assert found.info.status == "FAILED" and found.data.metrics == {}
    assert found.data.tags["augsweep.error"] == f"ConfigError: {err.value}"
