"""Shared fixtures: the real config, composed and shrunk, a temporary real MLflow store, and real
data (digits, photos, GunPoint, JapaneseVowels) that test files share instead of each loading it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from aeon.datasets import load_classification
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
# small enough for seconds per run, big enough for every class in every fold
SMALL = ["train.epochs=2", "cv.folds=2", "train.batch_size=32"]


@pytest.fixture(autouse=True)
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test writes to its own SQLite store under tmp_path, never to ./mlruns."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)  # an earlier test's explicit URI would win over the variable
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def make_cfg() -> Iterator[Callable[..., DictConfig]]:
    """Compose conf/config.yaml with the test's overrides on top of SMALL."""

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(CONF), version_base="1.3"):
            return compose("config", overrides=[*SMALL, *overrides])

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def gunpoint() -> np.ndarray:
    """GunPoint's 50 training series in Keras layout, (50, 150, 1) float32."""
    x, _ = load_classification("GunPoint", split="train")
    return np.transpose(x, (0, 2, 1)).astype("float32")


@pytest.fixture(scope="session")
def vowels() -> np.ndarray:
    """JapaneseVowels' 270 training series, 12 channels, zero-padded at the end to length 26."""
    x, _ = load_classification("JapaneseVowels", split="train")
    return keras.utils.pad_sequences([s.T for s in x], padding="post", dtype="float32")


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """scikit-learn's first 500 digits images, (500, 8, 8, 1) float32 in [0, 1] (the data
    module's scaling: / 16)."""
    return (load_digits().images[:500].reshape(-1, 8, 8, 1) / 16.0).astype("float32")


@pytest.fixture(scope="session")
def digit_labels() -> np.ndarray:
    """The labels of `digits`, 0-9."""
    return load_digits().target[:500]


@pytest.fixture
def digit_folder(tmp_path):
    """Real PNG files of three digit classes (6 each, resized to 24x24), one folder per class."""
    digits = load_digits()
    root = tmp_path / "digits"
    for label in (3, 5, 8):
        (root / f"class_{label}").mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[:6]:
            image = Image.fromarray((digits.images[i] * 255 / 16).astype("uint8"))
            image.resize((24, 24)).save(root / f"class_{label}" / f"{i}.png")
    return root


def photo_crops(crop: int, size: int, rows: range, cols: range) -> np.ndarray:
    """Square `crop`-pixel crops of scikit-learn's two sample photos at the given row and column
    offsets, resized to `size` x `size` RGB, float32 in [0, 1]."""
    crops = [
        photo[r : r + crop, c : c + crop]
        for photo in load_sample_images().images
        for r in rows
        for c in cols
    ]
    x = tf.image.resize(np.stack(crops).astype("float32") / 255.0, (size, size)).numpy()
    return np.clip(x, 0.0, 1.0)


@pytest.fixture(scope="session")
def photos() -> np.ndarray:
    """32 real 64x64 RGB crops of scikit-learn's two sample photos, float32 in [0, 1]."""
    return photo_crops(256, 64, range(0, 172, 57), range(0, 385, 128))
