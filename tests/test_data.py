"""Datasets from real data: scikit-learn's digits and photos, aeon's UCR/UEA series, real files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from aeon.datasets import load_classification, save_to_ts_file
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

from src.data import DATASETS, Dataset, load_dataset
from src.errors import ConfigError

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
    raises(folder_cfg(digit_folder), r"unreadable image file '.*class_5/broken.png'")


def test_image_in_a_format_tensorflow_cannot_decode_is_an_error(digit_folder):
    Image.new("L", (8, 8)).save(digit_folder / "class_8" / "scan.png", format="TIFF")
    raises(folder_cfg(digit_folder), r"image file '.*scan.png' holds a TIFF image; accepted: PNG")


@pytest.mark.parametrize("path", ["/no/such/dir", "???", None])
def test_image_folder_path_errors(path):
    cfg = OmegaConf.create({**IMAGE_FOLDER, "path": path})
    raises(cfg, r"data.path=.* is not a directory; accepted: a directory with one subfolder")


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
        cfg, r"test label '7' of series file '.*train.npz' is not a training label; accepted: 1, 2"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("nan", r"'.*bad.npz' has NaN or infinite values in series 7; accepted: finite values"),
        ("inf", r"'.*bad.npz' has NaN or infinite values in series 7; accepted: finite values"),
        ("short_y", r"'.*bad.npz' has 50 series but 49 labels; accepted: as many labels"),
        ("no_y", r"'.*bad.npz' has arrays \['X'\]; accepted: arrays X"),
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
        r"no label column data.label_column='label'; columns found: 0, 1, 2, .*\(21 in all\)",
    )
    pd.DataFrame({"t0": ["a", "b"], "label": ["1", "2"]}).to_csv(tmp_path / "t.csv", index=False)
    raises(series_cfg(tmp_path / "t.csv"), r"'.*t.csv' has no numeric time steps")
    pd.DataFrame({"t0": [1.0, 2.0], "label": ["1", None]}).to_csv(tmp_path / "u.csv", index=False)
    raises(series_cfg(tmp_path / "u.csv"), r"'.*u.csv' has no label for series 1")


def test_series_path_not_set():
    raises(OmegaConf.create({**SERIES_FILE, "path": "???"}), r"data.path='\?\?\?' is not set")


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


def test_every_dataset_is_listed():
    assert DATASETS == tuple(sorted(DATASETS))
    assert set(DATASETS) == {
        "arrow_head",
        "basic_motions",
        "digits",
        "gunpoint",
        "image_folder",
        "italy_power_demand",
        "japanese_vowels",
        "series_file",
    }
