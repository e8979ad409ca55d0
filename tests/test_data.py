"""Datasets from real data: scikit-learn's digits, aeon's UCR/UEA series, real files on disk."""

from __future__ import annotations

import numpy as np
import pytest
from aeon.datasets import load_classification
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

from src.data import DATASETS, load_dataset
from src.errors import ConfigError

IMAGE_FOLDER = {
    "name": "image_folder",
    "modality": "image",
    "image_size": [16, 16],
    "color_mode": "rgb",
    "test_size": 0.25,
    "subset": None,
    "split_seed": 0,
}
SERIES_FILE = {
    "name": "series_file",
    "modality": "series",
    "test_path": None,
    "label_column": "label",
    "test_size": 0.2,
    "subset": None,
    "split_seed": 0,
}


def ucr(name: str, ucr_name: str, **extra):
    return OmegaConf.create(
        {
            "name": name,
            "modality": "series",
            "ucr_name": ucr_name,
            "path": None,
            "subset": None,
            "split_seed": 0,
            **extra,
        }
    )


def digits_cfg(**extra):
    return OmegaConf.create(
        {
            "name": "digits",
            "modality": "image",
            "path": None,
            "image_size": None,
            "test_size": 0.2,
            "subset": None,
            "split_seed": 0,
            **extra,
        }
    )


@pytest.fixture
def digit_folder(tmp_path):
    """Real PNG files of three digit classes (6 each, 24x24), one subfolder per class."""
    digits = load_digits()
    root = tmp_path / "digits"
    for label in (3, 5, 8):
        (root / f"class_{label}").mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[:6]:
            image = Image.fromarray((digits.images[i] * 255 / 16).astype("uint8"))
            image.resize((24, 24)).save(root / f"class_{label}" / f"{i}.png")
    return root


def test_digits_are_8x8_images_in_unit_range_with_a_stratified_test_split():
    data = load_dataset(digits_cfg())
    assert data.modality == "image" and data.classes == tuple("0123456789")
    assert data.x_train.shape == (1437, 8, 8, 1) and data.x_test.shape == (360, 8, 8, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    everything = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(data.y_test) - everything * 0.2) <= 1)
    assert data.input_shape == (8, 8, 1) and not data.padded


def test_digits_subset_is_stratified_and_resize_works():
    data = load_dataset(digits_cfg(subset=200, image_size=[16, 16]))
    assert data.x_train.shape == (200, 16, 16, 1) and data.input_shape == (16, 16, 1)
    assert np.all(np.abs(np.bincount(data.y_train) - 20) <= 1)
    assert len(data.y_test) == 360  # the test split is never subsampled


def test_image_folder_streams_real_files(digit_folder):
    data = load_dataset(OmegaConf.create({**IMAGE_FOLDER, "path": str(digit_folder)}))
    assert data.classes == ("class_3", "class_5", "class_8")
    assert data.x_train.dtype.kind == "U" and data.x_train[0].endswith(".png")  # paths, not pixels
    assert len(data.x_train) + len(data.x_test) == 18 and data.input_shape == (16, 16, 3)
    x, y = next(iter(data.pipeline(data.x_train, data.y_train, batch_size=64)))
    assert x.shape == (len(data.x_train), 16, 16, 3) and x.dtype == "float32"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0 and float(np.max(x)) > 0.5
    names = [p.split("/")[-2] for p in data.x_train]
    assert [data.classes[i] for i in y.numpy()] == names  # labels follow the files
    # the decoded pixels are the file's pixels, resized
    first = np.asarray(Image.open(data.x_train[0]).convert("RGB").resize((16, 16)))
    assert np.abs(x[0].numpy() * 255 - first).mean() < 20


def test_image_folder_grayscale_and_jpeg_photos(tmp_path):
    for name, photo in zip(("china", "flower"), load_sample_images().images, strict=True):
        (tmp_path / name).mkdir()
        for k in range(3):  # three crops of each real photo
            Image.fromarray(photo[k * 50 : k * 50 + 200, :300]).save(tmp_path / name / f"{k}.jpg")
    cfg = {**IMAGE_FOLDER, "path": str(tmp_path), "color_mode": "grayscale", "test_size": 0}
    data = load_dataset(OmegaConf.create(cfg))
    assert data.x_test is None and data.input_shape == (16, 16, 1)
    x, _ = next(iter(data.pipeline(data.x_train, data.y_train, batch_size=8)))
    assert x.shape == (6, 16, 16, 1)


def test_non_image_files_are_skipped_with_a_warning(digit_folder):
    (digit_folder / "class_3" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image file.*notes.txt"):
        data = load_dataset(OmegaConf.create({**IMAGE_FOLDER, "path": str(digit_folder)}))
    assert not any(p.endswith(".txt") for p in [*data.x_train, *data.x_test])


def test_unreadable_image_is_an_error_naming_the_file(digit_folder):
    bad = digit_folder / "class_5" / "broken.png"
    bad.write_bytes((digit_folder / "class_3").glob("*.png").__next__().read_bytes()[:40])
    with pytest.raises(ConfigError, match=r"unreadable image file '.*broken.png'") as err:
        load_dataset(OmegaConf.create({**IMAGE_FOLDER, "path": str(digit_folder)}))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/no/such/dir", r"data.path='/no/such/dir' is not a directory; accepted: a directory"),
        ("???", r"data.path is not set for data=image_folder; accepted: a directory with one"),
    ],
)
def test_image_folder_path_errors(path, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(OmegaConf.create({**IMAGE_FOLDER, "path": path}))


@pytest.mark.parametrize(
    ("name", "ucr_name", "train", "test", "classes"),
    [
        ("gunpoint", "GunPoint", (50, 150, 1), (150, 150, 1), 2),
        ("italy_power_demand", "ItalyPowerDemand", (67, 24, 1), (1029, 24, 1), 2),
        ("arrow_head", "ArrowHead", (36, 251, 1), (175, 251, 1), 3),
        ("basic_motions", "BasicMotions", (40, 100, 6), (40, 100, 6), 4),
    ],
)
def test_ucr_series_keep_the_official_split(name, ucr_name, train, test, classes):
    data = load_dataset(ucr(name, ucr_name))
    assert data.x_train.shape == train and data.x_test.shape == test
    assert data.n_classes == classes and data.modality == "series" and not data.padded
    x_raw, _ = load_classification(ucr_name, split="train")
    np.testing.assert_allclose(data.x_train, np.transpose(x_raw, (0, 2, 1)), rtol=1e-6)


def test_japanese_vowels_are_zero_padded_at_the_end():
    data = load_dataset(ucr("japanese_vowels", "JapaneseVowels"))
    raw, _ = load_classification("JapaneseVowels", split="train")
    test, _ = load_classification("JapaneseVowels", split="test")
    lengths = [r.shape[1] for r in raw]
    longest = max(r.shape[1] for r in [*raw, *test])  # one length for train and test
    assert data.padded and data.x_train.shape == (270, longest, 12) and data.n_classes == 9
    assert data.x_test.shape == (370, longest, 12)
    short = int(np.argmin(lengths))
    np.testing.assert_allclose(data.x_train[short, : lengths[short]], raw[short].T, rtol=1e-6)
    assert np.all(data.x_train[short, lengths[short] :] == 0)


def gunpoint_arrays():
    x, y = load_classification("GunPoint", split="train")
    return x[:, 0, :].astype(np.float32), y


@pytest.mark.parametrize("kind", ["npz", "csv", "ts"])
def test_series_files_round_trip(tmp_path, kind):
    x, y = gunpoint_arrays()
    path = tmp_path / f"gunpoint.{kind}"
    if kind == "npz":
        np.savez(path, X=x, y=y)
    elif kind == "csv":
        import pandas as pd

        pd.DataFrame(x).assign(label=y).to_csv(path, index=False)
    else:
        header = "@problemName GunPoint\n@timeStamps false\n@univariate true\n"
        header += "@classLabel true 1 2\n@data\n"
        body = "".join(
            ",".join(f"{v:.9g}" for v in row) + f":{label}\n"
            for row, label in zip(x, y, strict=True)
        )
        path.write_text(header + body)
    data = load_dataset(OmegaConf.create({**SERIES_FILE, "path": str(path), "test_size": 0}))
    assert data.x_train.shape == (50, 150, 1) and data.classes == ("1", "2")
    np.testing.assert_allclose(data.x_train[..., 0], x, rtol=1e-6)
    assert [data.classes[i] for i in data.y_train] == list(y)


def test_series_file_with_separate_test_file(tmp_path):
    x, y = gunpoint_arrays()
    np.savez(tmp_path / "train.npz", X=x[:30], y=y[:30])
    np.savez(tmp_path / "test.npz", X=x[30:], y=y[30:])
    cfg = {
        **SERIES_FILE,
        "path": str(tmp_path / "train.npz"),
        "test_path": str(tmp_path / "test.npz"),
    }
    data = load_dataset(OmegaConf.create(cfg))
    assert len(data.y_train) == 30 and len(data.y_test) == 20


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("nan", r"'.*bad.npz' has NaN or infinite values in series 7; accepted: finite values"),
        ("short_y", r"'.*bad.npz' has 50 series but 49 labels"),
        ("no_y", r"'.*bad.npz' has arrays \['X'\]; accepted: arrays X"),
        ("txt", r"'.*bad.txt' has extension '.txt'; accepted: .npz, .csv, .ts"),
        ("missing", r"series file '.*bad.npz' does not exist"),
    ],
)
def test_bad_series_files(tmp_path, make, message):
    x, y = gunpoint_arrays()
    path = tmp_path / ("bad.txt" if make == "txt" else "bad.npz")
    if make == "nan":
        x[7, 3] = np.nan
    arrays = {"X": x} if make == "no_y" else {"X": x, "y": y[:-1] if make == "short_y" else y}
    if make == "txt":
        path.write_text("1,2,3")
    elif make != "missing":
        np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=message) as err:
        load_dataset(OmegaConf.create({**SERIES_FILE, "path": str(path)}))
    assert "\n" not in str(err.value)


def test_csv_without_the_label_column(tmp_path):
    x, _ = gunpoint_arrays()
    np.savetxt(tmp_path / "s.csv", x[:5], delimiter=",", header="a,b", comments="")
    with pytest.raises(ConfigError, match=r"no label column data.label_column='label'"):
        load_dataset(OmegaConf.create({**SERIES_FILE, "path": str(tmp_path / "s.csv")}))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (digits_cfg(name="mnist"), r"unknown dataset data.name='mnist'; accepted: arrow_head, "),
        (digits_cfg(subset=5), r"data.subset=5 is not allowed; accepted: null or an integer >= 20"),
        (digits_cfg(test_size=1.5), r"data.test_size=1.5 is not allowed; accepted: a number in"),
    ],
)
def test_bad_data_values(cfg, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(cfg)
    assert set(DATASETS) >= {"digits", "gunpoint", "japanese_vowels", "series_file"}


def test_loading_twice_reuses_the_loaded_dataset():
    assert load_dataset(digits_cfg(subset=100)) is load_dataset(digits_cfg(subset=100))
