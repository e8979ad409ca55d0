"""Datasets from real data: scikit-learn's digits and photos, aeon's UCR/UEA series, real files."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from aeon.datasets import load_classification, save_to_ts_file
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

from src.data import DATASETS, Dataset, load_dataset
from src.errors import ConfigError
from tests.conftest import ROOT

IMAGE_FOLDER = {
    "name": "image_folder",
    "modality": "image",
    "image_size": [16, 16],
    "color_mode": "rgb",
    "test_size": 0.25,
    "subset": None,
    "split_seed": 0,
    "cache": "none",  # paths kept, read per batch; the decoded-once path has its own test
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


def digits_cfg(**extra):
    base = {"name": "digits", "modality": "image", "path": None, "image_size": None}
    base |= {"test_size": 0.2, "subset": None, "split_seed": 0}
    return OmegaConf.create({**base, **extra})


def folder_cfg(path, **extra):
    return OmegaConf.create({**IMAGE_FOLDER, "path": str(path), **extra})


def series_cfg(path, **extra):
    return OmegaConf.create({**SERIES_FILE, "path": str(path), **extra})


def ucr(name: str, ucr_name: str, **extra):
    base = {"name": name, "modality": "series", "ucr_name": ucr_name, "path": None}
    return OmegaConf.create({**base, "subset": None, "split_seed": 0, **extra})


def raises(cfg, match: str) -> ConfigError:
    """load_dataset(cfg) raises a one-line ConfigError matching `match`."""
    with pytest.raises(ConfigError, match=match) as err:
        load_dataset(cfg)
    assert "\n" not in str(err.value)
    return err.value


def gunpoint_arrays():
    x, y = load_classification("GunPoint", split="train")
    return x[:, 0, :].astype(np.float32), y


# ---------------------------------------------------------------- digits


def test_digits_are_8x8_images_in_unit_range_with_a_stratified_test_split():
    data = load_dataset(digits_cfg())
    assert isinstance(data, Dataset) and data.name == "digits" and data.modality == "image"
    assert data.classes == tuple("0123456789") and data.n_classes == 10
    assert data.x_train.shape == (1437, 8, 8, 1) and data.x_test.shape == (360, 8, 8, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    everything = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(data.y_test) - everything * 0.2) <= 1)
    assert data.input_shape == (8, 8, 1) and not data.padded
    # the pixels are the digits' own, scaled: every training image is one of the originals
    originals = {(img / 16.0).astype(np.float32).tobytes() for img in load_digits().images}
    assert all(x[..., 0].tobytes() in originals for x in data.x_train[:50])


def test_digits_subset_is_stratified_and_resize_works():
    data = load_dataset(digits_cfg(subset=200, image_size=[16, 12]))
    assert data.x_train.shape == (200, 16, 12, 1) and data.input_shape == (16, 12, 1)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert np.all(np.abs(np.bincount(data.y_train) - 20) <= 1)
    assert len(data.y_test) == 360  # the test split is never subsampled


def test_digits_without_test_split_and_subset_at_least_n_keeps_everything():
    data = load_dataset(digits_cfg(test_size=0, subset=5000))
    assert data.x_test is None and data.y_test is None and len(data.y_train) == 1797


# ---------------------------------------------------------------- LFW faces


def lfw_cfg(**extra):
    return OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "data" / "lfw_faces.yaml"), extra)


def test_lfw_faces_are_scikit_images_photos_with_a_stratified_test_split():
    from skimage.data import lfw_subset

    data = load_dataset(lfw_cfg())
    assert data.name == "lfw_faces" and data.modality == "image"
    assert data.classes == ("face", "non-face") and data.n_classes == 2
    assert data.x_train.shape == (160, 25, 25, 1) and data.x_test.shape == (40, 25, 25, 1)
    assert data.input_shape == (25, 25, 1) and data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert np.bincount(data.y_train).tolist() == [80, 80]
    assert np.bincount(data.y_test).tolist() == [20, 20]
    # every photo is one of scikit-image's, with its own label: faces are its first 100
    photos = lfw_subset().astype(np.float32)
    index = {photo.tobytes(): i for i, photo in enumerate(photos)}
    for x, y in zip([*data.x_train, *data.x_test], [*data.y_train, *data.y_test], strict=True):
        i = index[x[..., 0].tobytes()]
        assert y == (0 if i < 100 else 1)
    assert len({x.tobytes() for x in [*data.x_train, *data.x_test]}) == 200


def test_lfw_faces_resize_subset_and_bad_values():
    data = load_dataset(lfw_cfg(subset=40, image_size=[32, 32]))
    assert data.x_train.shape == (40, 32, 32, 1) and np.bincount(data.y_train).tolist() == [20, 20]
    assert data.x_test.shape == (40, 32, 32, 1)
    with pytest.raises(ConfigError, match=r"data.image_size=\[0, 5\] is not allowed"):
        load_dataset(lfw_cfg(image_size=[0, 5]))
    with pytest.raises(ConfigError, match=r"data.test_size=1.5 is not allowed"):
        load_dataset(lfw_cfg(test_size=1.5))


def test_loaded_arrays_are_read_only_and_cached():
    first = load_dataset(digits_cfg(subset=100))
    assert first is load_dataset(digits_cfg(subset=100))
    assert first is not load_dataset(digits_cfg(subset=100, split_seed=1))
    with pytest.raises(ValueError, match="read-only"):
        first.x_train[0, 0, 0, 0] = 5.0


def test_plain_mapping_config_is_accepted():
    data = load_dataset({**OmegaConf.to_container(digits_cfg()), "subset": 50})
    assert len(data.y_train) == 50


def test_pipeline_batches_in_memory_arrays_and_shuffles_with_the_seed():
    data = load_dataset(digits_cfg())
    x, y = data.x_train[:40], data.y_train[:40]
    batches = list(data.pipeline(x, y, batch_size=16))
    assert [b[0].shape[0] for b in batches] == [16, 16, 8]
    assert batches[0][0].dtype == "float32" and batches[0][1].dtype == "int64"
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)

    def epochs(seed):
        ds = data.pipeline(x, y, batch_size=40, shuffle=True, seed=seed)
        return [next(iter(ds))[1].numpy() for _ in range(2)]

    a, b = epochs(3), epochs(3)
    np.testing.assert_array_equal(a[0], b[0])  # same seed, same order
    assert not np.array_equal(a[0], a[1])  # reshuffled every epoch
    assert sorted(a[0]) == sorted(y)  # a permutation, nothing dropped


# ---------------------------------------------------------------- image folders


def test_image_folder_streams_real_files(digit_folder):
    data = load_dataset(folder_cfg(digit_folder, cache="none"))
    assert data.classes == ("class_3", "class_5", "class_8") and data.files
    assert data.x_train.dtype.kind == "U" and data.x_train[0].endswith(".png")  # paths, not pixels
    assert len(data.x_train) == 13 and len(data.x_test) == 5 and data.input_shape == (16, 16, 3)
    assert sorted(np.bincount(data.y_test)) == [1, 2, 2]  # stratified
    x, y = next(iter(data.pipeline(data.x_train, data.y_train, batch_size=64)))
    assert x.shape == (13, 16, 16, 3) and x.dtype == "float32" and y.dtype == "int64"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0 and float(np.max(x)) > 0.5
    names = [p.split("/")[-2] for p in data.x_train]
    assert [data.classes[i] for i in y.numpy()] == names  # labels follow the files
    # the decoded pixels are the file's pixels, resized
    first = np.asarray(Image.open(data.x_train[0]).convert("RGB").resize((16, 16)))
    assert np.abs(x[0].numpy() * 255 - first).mean() < 20


@pytest.mark.parametrize("cache", ["memory", "auto"])  # 18 small files: auto keeps them
def test_image_folder_decoded_once_into_memory_equals_streaming(digit_folder, cache):
    streamed = load_dataset(folder_cfg(digit_folder, cache="none"))
    cached = load_dataset(folder_cfg(digit_folder, cache=cache))
    assert not cached.files and cached.x_train.shape == (13, 16, 16, 3)
    assert cached.x_test.shape == (5, 16, 16, 3) and cached.x_train.dtype == np.float32
    assert not cached.x_train.flags.writeable
    np.testing.assert_array_equal(cached.y_train, streamed.y_train)
    for data_x, paths, y in ((cached.x_train, streamed.x_train, streamed.y_train),
                             (cached.x_test, streamed.x_test, streamed.y_test)):  # fmt: skip
        x, _ = next(iter(streamed.pipeline(paths, y, batch_size=64)))
        np.testing.assert_array_equal(data_x, x.numpy())  # the same pixels, decoded once
    shuffled = [
        b.numpy()
        for b, _ in cached.pipeline(
            cached.x_train, cached.y_train, batch_size=4, shuffle=True, seed=3
        )
    ]
    from_files = [
        b.numpy()
        for b, _ in streamed.pipeline(
            streamed.x_train, streamed.y_train, batch_size=4, shuffle=True, seed=3
        )
    ]
    np.testing.assert_array_equal(np.concatenate(shuffled), np.concatenate(from_files))


def test_image_folder_cache_value_is_checked(digit_folder):
    raises(folder_cfg(digit_folder, cache="disk"),
           r"data.cache='disk' is not supported; accepted: auto .*, memory, none")  # fmt: skip


def test_image_folder_grayscale_jpeg_photos_and_nested_files(tmp_path):
    for name, photo in zip(("china", "flower"), load_sample_images().images, strict=True):
        (tmp_path / name / "nested").mkdir(parents=True)
        for k in range(3):  # three crops of each real photo, one in a nested folder
            folder = tmp_path / name / ("nested" if k == 2 else "")
            crop = Image.fromarray(photo[k * 50 : k * 50 + 200, :300])
            crop.save(folder / f"{k}.JPG" if k == 1 else folder / f"{k}.jpeg")
    data = load_dataset(folder_cfg(tmp_path, color_mode="grayscale", test_size=0))
    assert data.classes == ("china", "flower") and data.x_test is None
    assert len(data.x_train) == 6 and data.input_shape == (16, 16, 1)
    x, y = next(iter(data.pipeline(data.x_train, data.y_train, batch_size=8)))
    assert x.shape == (6, 16, 16, 1) and y.numpy().tolist() == [0, 0, 0, 1, 1, 1]
    grey = np.asarray(Image.open(data.x_train[0]).convert("L").resize((16, 16)), np.float32)
    assert np.abs(x[0, ..., 0].numpy() * 255 - grey).mean() < 20


@pytest.mark.parametrize("suffix", ["bmp", "gif"])
def test_grayscale_bmp_and_gif_decode(digit_folder, suffix):
    for png in list(digit_folder.rglob("*.png")):
        Image.open(png).convert("RGB").save(png.with_suffix(f".{suffix}"))
        png.unlink()
    data = load_dataset(folder_cfg(digit_folder, color_mode="grayscale", test_size=0))
    x, _ = next(iter(data.pipeline(data.x_train, data.y_train, batch_size=32)))
    assert x.shape == (18, 16, 16, 1) and float(np.max(x)) > 0.5


def test_non_image_files_are_skipped_with_a_warning(digit_folder):
    (digit_folder / "class_3" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image file.*notes.txt"):
        data = load_dataset(folder_cfg(digit_folder))
    assert len(data.x_train) + len(data.x_test) == 18
    assert not any(p.endswith(".txt") for p in [*data.x_train, *data.x_test])


def test_truncated_image_is_an_error_naming_the_file(digit_folder):
    good = next((digit_folder / "class_3").glob("*.png")).read_bytes()
    (digit_folder / "class_5" / "broken.png").write_bytes(good[:40])
    raises(
        folder_cfg(digit_folder),
        r"image file '[^']*class_5/broken.png' cannot be read \(UnidentifiedImageError: cannot "
        r"identify image file\); accepted: readable PNG, JPEG, MPO, BMP, GIF images",
    )


def test_image_in_a_format_tensorflow_cannot_decode_is_an_error(digit_folder):
    Image.new("L", (8, 8)).save(digit_folder / "class_8" / "scan.png", format="TIFF")
    raises(
        folder_cfg(digit_folder),
        r"image file '.*scan.png' holds a TIFF image; accepted: readable PNG, JPEG, MPO, BMP, GIF",
    )


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/no/such/dir", "does not exist"), ("???", "is not set"), (None, "is not set")],
)
def test_image_folder_path_errors(path, problem):
    cfg = OmegaConf.create({**IMAGE_FOLDER, "path": path})
    raises(cfg, rf"data.path=.* {problem}; accepted: a directory with one subfolder of images")


def test_single_class_folder_is_an_error(digit_folder):
    for folder in ("class_5", "class_8"):
        for file in (digit_folder / folder).iterdir():
            file.unlink()
    raises(
        folder_cfg(digit_folder), r"has 1 class subfolder\(s\) with images; accepted: .*at least 2"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"color_mode": "cmyk"}, r"data.color_mode='cmyk' is not supported; accepted: rgb, gray"),
        ({"image_size": [16]}, r"data.image_size=\[16\] is not allowed; accepted: \[height, w"),
        ({"image_size": None}, r"data.image_size=None is not allowed"),
        ({"test_size": 0.05}, r"data.test_size=0.05 cannot split .* stratified"),
        ({"subset": 2}, r"data.subset=2 is not allowed; accepted: null or an integer >= 3"),
    ],
)
def test_bad_image_folder_values(digit_folder, extra, message):
    raises(folder_cfg(digit_folder, **extra), message)


# ---------------------------------------------------------------- UCR/UEA series


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
    assert data.x_train.dtype == np.float32 and data.y_test.dtype == np.int64
    assert data.n_classes == classes and data.modality == "series" and not data.padded
    assert data.input_shape == train[1:]
    x_raw, y_raw = load_classification(ucr_name, split="test")
    np.testing.assert_allclose(data.x_test, np.transpose(x_raw, (0, 2, 1)), rtol=1e-6)
    assert [data.classes[i] for i in data.y_test] == list(y_raw)  # one encoding for both splits


def test_japanese_vowels_are_zero_padded_at_the_end_to_the_longest_series():
    data = load_dataset(ucr("japanese_vowels", "JapaneseVowels"))
    raw, _ = load_classification("JapaneseVowels", split="train")
    raw_test, _ = load_classification("JapaneseVowels", split="test")
    longest = max(r.shape[1] for r in [*raw, *raw_test])  # 29: the test set has longer series
    assert data.padded and data.n_classes == 9 and data.input_shape == (longest, 12)
    assert data.x_train.shape == (270, longest, 12) and data.x_test.shape == (370, longest, 12)
    lengths = [r.shape[1] for r in raw]
    short = int(np.argmin(lengths))
    np.testing.assert_allclose(data.x_train[short, : lengths[short]], raw[short].T, rtol=1e-6)
    assert np.all(data.x_train[short, lengths[short] :] == 0)


def test_ucr_subset_and_mismatched_names():
    data = load_dataset(ucr("basic_motions", "BasicMotions", subset=8))
    assert np.bincount(data.y_train).tolist() == [2, 2, 2, 2] and len(data.y_test) == 40
    raises(ucr("gunpoint", "Coffee"), r"data.ucr_name='Coffee' does not match .*accepted: GunPoint")
    raises(ucr("gunpoint", "GunPoint", modality="image"), r"data.modality='image' does not match")


# ---------------------------------------------------------------- series files


@pytest.mark.parametrize("kind", ["npz", "npz3d", "csv", "ts"])
def test_series_files_round_trip(tmp_path, kind):
    x, y = gunpoint_arrays()
    path = tmp_path / f"gunpoint.{kind[:3]}"
    if kind == "npz":
        np.savez(path, X=x, y=y)
    elif kind == "npz3d":
        np.savez(path, X=x[..., None], y=y.astype(int))  # Keras layout (n, T, C), int labels
    elif kind == "csv":
        pd.DataFrame(x).assign(label=y).to_csv(path, index=False)
    else:
        save_to_ts_file(x[:, None, :], y, label_type="classification", path=str(tmp_path),
                        problem_name="gunpoint")  # fmt: skip
    data = load_dataset(series_cfg(path, test_size=0))
    assert data.x_train.shape == (50, 150, 1) and data.classes == ("1", "2")
    assert data.x_train.dtype == np.float32 and not data.padded and data.x_test is None
    np.testing.assert_allclose(data.x_train[..., 0], x, rtol=1e-6)
    assert [data.classes[i] for i in data.y_train] == list(y)


def test_variable_length_ts_file_is_padded(tmp_path):
    x, y = load_classification("JapaneseVowels", split="train")
    pick = list(range(0, 270, 10))  # every class
    save_to_ts_file([x[i] for i in pick], y[pick], label_type="classification",
                    path=str(tmp_path), problem_name="vowels")  # fmt: skip
    data = load_dataset(series_cfg(tmp_path / "vowels.ts", test_size=0))
    longest = max(x[i].shape[1] for i in pick)
    assert data.padded and data.x_train.shape == (27, longest, 12)
    np.testing.assert_allclose(data.x_train[0, : x[0].shape[1]], x[0].T, rtol=1e-6)
    assert np.all(data.x_train[0, x[0].shape[1] :] == 0)


def test_series_file_hold_out_is_stratified(tmp_path):
    x, y = gunpoint_arrays()
    np.savez(tmp_path / "g.npz", X=x, y=y)
    data = load_dataset(series_cfg(tmp_path / "g.npz", test_size=0.2, subset=20))
    # GunPoint's training set has 24 and 26 series of its two classes
    assert len(data.y_test) == 10 and np.all(np.abs(np.bincount(data.y_test) - [4.8, 5.2]) < 1)
    assert len(data.y_train) == 20 and np.all(np.abs(np.bincount(data.y_train) - [9.6, 10.4]) < 1)


def test_series_file_with_separate_test_file(tmp_path):
    x, y = gunpoint_arrays()
    np.savez(tmp_path / "train.npz", X=x[:30], y=y[:30])
    np.savez(tmp_path / "test.npz", X=x[30:], y=y[30:])
    cfg = series_cfg(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz"))
    data = load_dataset(cfg)
    assert len(data.y_train) == 30 and len(data.y_test) == 20
    np.testing.assert_allclose(data.x_test[..., 0], x[30:], rtol=1e-6)
    # a test label the training file lacks
    np.savez(tmp_path / "test7.npz", X=x[:3], y=np.array(["1", "2", "7"]))
    cfg.test_path = str(tmp_path / "test7.npz")
    raises(
        cfg,
        r"test label '7' of series file '[^']*/test7.npz' \(data.test_path\) is not a label of "
        r"series file '[^']*/train.npz'; accepted: 1, 2",
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("nan", r"'.*bad.npz' has NaN or infinite values in series 7; accepted: finite values"),
        ("inf", r"'.*bad.npz' has NaN or infinite values in series 7; accepted: finite values"),
        ("short_y", r"'.*bad.npz' has 50 series but 49 labels; accepted: as many labels"),
        ("no_y", r"'.*bad.npz' has arrays \['X'\]; accepted: a .npz archive .* array X of"),
        ("one_class", r"'.*bad.npz' has 1 class \(1\); accepted: at least 2 classes"),
        ("txt", r"'.*bad.txt' has extension '.txt'; accepted: .npz, .csv, .ts"),
        ("missing", r"series file '.*bad.npz' \(data.path\) does not exist"),
    ],
)
def test_bad_series_files(tmp_path, make, message):
    x, y = gunpoint_arrays()
    path = tmp_path / ("bad.txt" if make == "txt" else "bad.npz")
    x[7, 3] = {"nan": np.nan, "inf": np.inf}.get(make, x[7, 3])
    y = {"short_y": y[:-1], "one_class": np.full(50, "1")}.get(make, y)
    if make == "txt":
        path.write_text("1,2,3")
    elif make != "missing":
        np.savez(path, **({"X": x} if make == "no_y" else {"X": x, "y": y}))
    raises(series_cfg(path), message)


def test_csv_errors_name_the_columns(tmp_path):
    x, y = gunpoint_arrays()
    pd.DataFrame(x[:, :20]).assign(cls=y).to_csv(tmp_path / "s.csv", index=False)
    raises(
        series_cfg(tmp_path / "s.csv"),
        r"no label column data.label_column='label'; columns found: 0, 1, 2, .*\(21 in all\); "
        r"accepted: UTF-8 .csv text with a header row",
    )
    pd.DataFrame({"t0": ["a", "b"], "label": ["1", "2"]}).to_csv(tmp_path / "t.csv", index=False)
    raises(
        series_cfg(tmp_path / "t.csv"),
        r"'.*t.csv' has 'a' in column 't0' of series 0, not a number; accepted: one numeric column",
    )
    pd.DataFrame({"label": ["1", "2"]}).to_csv(tmp_path / "v.csv", index=False)
    raises(series_cfg(tmp_path / "v.csv"), r"'.*v.csv' has no numeric time steps")
    pd.DataFrame({"t0": [1.0, 2.0], "label": ["1", None]}).to_csv(tmp_path / "u.csv", index=False)
    raises(series_cfg(tmp_path / "u.csv"), r"'.*u.csv' has no label for series 1")


def test_series_path_not_set():
    raises(OmegaConf.create({**SERIES_FILE, "path": "???"}), r"data.path='\?\?\?' is not set")


# ---------------------------------------------------------------- files, each way they can be wrong


def gunpoint_csv(path, edit=None):
    """GunPoint as CSV text, `edit(lines)` applied to its lines (line 1 is the header)."""
    x, y = gunpoint_arrays()
    lines = pd.DataFrame(x).assign(label=y).to_csv(index=False).splitlines()
    path.write_text("\n".join(edit(lines) if edit else lines) + "\n")


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_bad(path, how: str) -> None:
    """One way a user's series file can be wrong, written to `path`."""
    x, y = gunpoint_arrays()
    arrays = {
        "object_x": lambda: {"X": np.array([x[0], x[1, :100]], dtype=object), "y": y[:2]},
        "object_y": lambda: {"X": x, "y": y.astype(object)},
        "x_1d": lambda: {"X": x[:, 0], "y": y},
        "x_4d": lambda: {"X": x[:, :, None, None], "y": y},
        "y_2d": lambda: {"X": x, "y": y[:, None]},
        "x_strings": lambda: {"X": x.astype(str), "y": y},
        "nan_label": lambda: {"X": x, "y": np.where(np.arange(50) == 3, np.nan, y.astype(float))},
        "beyond_float32": lambda: {
            "X": np.where(np.arange(50)[:, None] == 4, 1e39, x.astype(np.float64)),
            "y": y,
        },  # fmt: skip
        "no_series": lambda: {"X": x[:0], "y": y[:0]},
        "truncated": lambda: {"X": x, "y": y},
    }
    edits = {  # of a CSV's lines, line 1 the header
        "long_row": lambda lines: [*lines[:4], lines[4] + ",7", *lines[5:]],
        "short_row": lambda lines: [*lines[:2], lines[2].split(",", 1)[1], *lines[3:]],
        "one_label": lambda lines: [lines[0], *(ln[: ln.rindex(",")] + ",1" for ln in lines[1:])],
        "header_only": lambda lines: lines[:1],
        "bad_cell": lambda lines: [
            *lines[:3],
            "1.2.3" + lines[3][lines[3].index(",") :],
            *lines[4:],
        ],
    }
    if how == "empty":
        path.write_bytes(b"")
    elif how == "csv_text":  # a CSV file named .npz
        gunpoint_csv(path)
    elif how == "png":  # an image named .csv or .ts
        path.write_bytes(_encoded(Image.new("L", (8, 8)), "PNG"))
    elif how in arrays:
        np.savez(path, **arrays[how]())
        if how == "truncated":
            path.write_bytes(path.read_bytes()[:20000])
    else:
        gunpoint_csv(path, edits[how])


BAD_SERIES_FILES = {  # file name (how it is wrong, the kind of file) -> the message after its path
    "empty.npz": r"is empty \(0 bytes\); accepted: a .npz archive \(numpy.savez\) with a numeric",
    "empty.csv": r"is empty \(0 bytes\); accepted: UTF-8 .csv text with a header row",
    "empty.ts": r"is empty \(0 bytes\); accepted: a .ts file in the UCR/UEA format",
    "truncated.npz": r"cannot be read \(BadZipFile: File is not a zip file\); accepted: a .npz",
    "csv_text.npz": r"cannot be read \(BadZipFile: File is not a zip file\)",
    "png.csv": r"cannot be read \(UnicodeDecodeError: 'utf-8' codec can't decode byte 0x89",
    "png.ts": r"cannot be read \(UnicodeDecodeError: .*\); accepted: a .ts file",
    "object_x.npz": r"has X of dtype object \(pickled Python objects, which augsweep never",
    "object_y.npz": r"has y of dtype object \(pickled Python objects",
    "x_1d.npz": r"has arrays X \(50,\), y \(50,\); accepted: arrays X of shape \(n, T\) or",
    "x_4d.npz": r"has arrays X \(50, 150, 1, 1\), y \(50,\); accepted: arrays X",
    "y_2d.npz": r"has arrays X \(50, 150\), y \(50, 1\); accepted:",
    "x_strings.npz": r"has X of dtype <U\d+; accepted: numbers",
    "nan_label.npz": r"has no label for series 3 \(NaN\); accepted: a label for every series",
    "beyond_float32.npz": r"has values beyond float32's range in series 4; accepted: finite",
    "no_series.npz": r"has no series, or a series of length 0 or with 0 channels; accepted: a",
    "long_row.csv": r"has 152 fields in line 5, but its header has 151; accepted: UTF-8 .csv",
    "short_row.csv": r"has 150 fields in line 3, but its header has 151; accepted: UTF-8",
    "one_label.csv": r"has 1 class \(1\); accepted: at least 2 classes",
    "header_only.csv": r"has no series, or a series of length 0",
    "bad_cell.csv": r"has '1.2.3' in column '0' of series 2, not a number; accepted: one numeric",
}


@pytest.mark.parametrize("name", list(BAD_SERIES_FILES))
def test_every_bad_series_file_is_a_config_error_naming_it(tmp_path, name):
    write_bad(tmp_path / name, name.split(".")[0])
    raises(
        series_cfg(tmp_path / name), rf"^series file '{tmp_path / name}' {BAD_SERIES_FILES[name]}"
    )


def test_a_bad_test_file_is_named_as_the_test_file(tmp_path):
    x, y = gunpoint_arrays()
    np.savez(tmp_path / "train.npz", X=x, y=y)
    write_bad(tmp_path / "test.npz", "truncated")
    cfg = series_cfg(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz"))
    raises(cfg, rf"^series file '{tmp_path / 'test.npz'}' cannot be read \(BadZipFile")
    (tmp_path / "folder.npz").mkdir()
    cfg.test_path = str(tmp_path / "folder.npz")
    raises(cfg, r"^series file '.*folder.npz' \(data.test_path\) is a directory, not a file; ")


def test_paths_that_are_not_regular_files(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    os.mkfifo(tmp_path / "pipe.csv")  # opening it would block the job forever
    (tmp_path / "file").write_text("")
    accepted = "; accepted: an existing .npz, .csv, .ts file"
    for path, problem in [
        ("dir.npz", "is a directory, not a file"),
        ("pipe.csv", "is a FIFO (named pipe), not a regular file"),
        ("file/s.npz", "cannot be accessed (NotADirectoryError: [Errno 20] Not a directory)"),
    ]:
        message = f"series file '{tmp_path / path}' (data.path) {problem}{accepted}"
        raises(series_cfg(tmp_path / path), f"^{re.escape(message)}$")
    message = f"data.path='{tmp_path / 'file'}' is a file, not a directory; accepted: a directory"
    raises(folder_cfg(tmp_path / "file"), f"^{re.escape(message)}")


UNREADABLE = """
import json, sys
from omegaconf import OmegaConf
from src.data import load_dataset
from src.errors import ConfigError
out = []
for cfg in json.loads(sys.argv[1]):
    try:
        load_dataset(OmegaConf.create(cfg))
        out.append("loaded")
    except ConfigError as err:
        out.append(str(err))
print(json.dumps(out))
"""


def load_without_permission(cfgs: list[dict]) -> list[str]:
    """Load each config in a process that file permissions apply to, for real.

    Root reads any file whatever its mode; a root process without the capabilities that let it
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) does not, and still runs this interpreter.
    """
    command = [sys.executable, "-c", UNREADABLE, json.dumps(cfgs)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file permissions cannot apply")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_files_without_read_permission(tmp_path, digit_folder):
    x, y = gunpoint_arrays()
    np.savez(tmp_path / "s.npz", X=x, y=y)
    gunpoint_csv(tmp_path / "s.csv")
    save_to_ts_file(x[:, None, :], y, label_type="classification", path=str(tmp_path),
                    problem_name="s")  # fmt: skip
    locked = next((digit_folder / "class_5").glob("*.png"))
    for path in (tmp_path / "s.npz", tmp_path / "s.csv", tmp_path / "s.ts", locked):
        path.chmod(0)
    closed = tmp_path / "closed"
    shutil.copytree(digit_folder, closed)
    closed.chmod(0)
    cfgs = [series_cfg(tmp_path / f"s.{kind}") for kind in ("npz", "csv", "ts")]
    cfgs = [
        OmegaConf.to_container(c) for c in (*cfgs, folder_cfg(digit_folder), folder_cfg(closed))
    ]
    try:
        messages = load_without_permission(cfgs)
    finally:
        closed.chmod(0o755)
    denied = r"cannot be read \(PermissionError: \[Errno 13\] Permission denied\); accepted: "
    for kind, message in zip(("npz", "csv", "ts"), messages, strict=False):
        assert re.fullmatch(rf"series file '{tmp_path}/s.{kind}' {denied}.*", message), message
    assert re.fullmatch(rf"image file '{locked}' {denied}readable PNG, .*", messages[3])
    assert re.fullmatch(rf"data.path='{closed}' {denied}a directory with .*", messages[4])


def test_image_folder_problems_name_the_file(digit_folder):
    (digit_folder / "loose.png").write_bytes(next(digit_folder.rglob("*.png")).read_bytes())
    for folder in ("class_5", "class_8"):
        shutil.rmtree(digit_folder / folder)
    raises(folder_cfg(digit_folder),
           r"has 1 class subfolder\(s\) with images \(1 file\(s\) directly in it belong to no "
           r"class\); accepted: a directory with at least 2 class subfolders")  # fmt: skip


@pytest.mark.parametrize("suffix", ["tif", "webp"])
def test_images_pillow_reads_but_augsweep_does_not_are_named(digit_folder, suffix):
    Image.new("L", (8, 8)).save(digit_folder / "class_8" / f"scan.{suffix}")
    message = str(raises(folder_cfg(digit_folder), rf"^image file '.*/scan.{suffix}' "))
    assert message.endswith(
        f"has extension '.{suffix}' (a {'TIFF' if suffix == 'tif' else 'WEBP'} image); accepted: "
        "readable PNG, JPEG, MPO, BMP, GIF images (.png, .jpg, .jpeg, .bmp, .gif)"
    )


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_a_jpeg_only_tensorflow_finds_broken_is_named_before_training(digit_folder, cache):
    """Pillow opens and verifies a JPEG cut short; TensorFlow's decoder refuses it. Found at
    load time both when the folder is decoded into memory and when it is read per batch."""
    photo = load_sample_images().images[0][:64, :64]
    data = _encoded(Image.fromarray(photo), "JPEG")
    (digit_folder / "class_3" / "cut.jpg").write_bytes(data[:-30])
    with Image.open(digit_folder / "class_3" / "cut.jpg") as image:
        image.verify()  # Pillow finds nothing wrong
    raises(folder_cfg(digit_folder, cache=cache),
           r"^image file '.*class_3/cut.jpg' cannot be read \(TensorFlow's decoder: .*JPEG.*\); "
           r"accepted: readable PNG")  # fmt: skip


# ---------------------------------------------------------------- common


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (digits_cfg(name="mnist"), r"unknown dataset data.name='mnist'; accepted: arrow_head, "),
        (digits_cfg(subset=5), r"data.subset=5 is not allowed; accepted: null or an integer >= 10"),
        (digits_cfg(subset=True), r"data.subset=True is not allowed"),
        (digits_cfg(test_size=1.5), r"data.test_size=1.5 is not allowed; accepted: a number in"),
        (digits_cfg(test_size="big"), r"data.test_size='big' is not allowed"),
        (digits_cfg(split_seed=-1), r"data.split_seed=-1 is not allowed; accepted: an integer"),
        (digits_cfg(modality="series"), r"data.modality='series' does not match data.name="),
    ],
)
def test_bad_data_values(cfg, message):
    raises(cfg, message)


def test_every_data_config_names_a_dataset_the_loader_knows_and_no_other():
    configs = {OmegaConf.load(path).name for path in (ROOT / "conf" / "data").glob("*.yaml")}
    assert set(DATASETS) == configs
    with pytest.raises(ConfigError) as raised:
        load_dataset(digits_cfg(name="no_such_set"))
    assert f"accepted: {', '.join(sorted(configs))}" in str(raised.value)  # each, in order
