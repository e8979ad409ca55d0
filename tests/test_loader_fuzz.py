"""Real files, randomly corrupted, through the real loader: a clean load or a one-line
ConfigError naming the file, never another exception (seeded, so every case can be replayed)."""

from __future__ import annotations

import io
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aeon.datasets import load_classification, save_to_ts_file
from PIL import Image
from sklearn.datasets import load_digits

from src.data import load_dataset
from src.errors import ConfigError
from tests.conftest import ROOT

SEED = 17
SERIES_CASES = 60  # per file kind
IMAGE_CASES = 30  # per image format
SERIES_KINDS = ("npz", "npz_compressed", "csv", "ts")
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF", "tif": "TIFF"}


def gunpoint_files(folder: Path) -> dict[str, bytes]:
    """GunPoint's training series as the bytes of each series file kind."""
    x, y = load_classification("GunPoint", split="train")
    x = x[:, 0, :].astype(np.float32)
    files = {}
    for kind, save in (("npz", np.savez), ("npz_compressed", np.savez_compressed)):
        buffer = io.BytesIO()
        save(buffer, X=x, y=y)
        files[kind] = buffer.getvalue()
    files["csv"] = pd.DataFrame(x).assign(label=y).to_csv(index=False).encode()
    save_to_ts_file(x[:, None, :], y, label_type="classification", path=str(folder),
                    problem_name="gunpoint")  # fmt: skip
    files["ts"] = (folder / "gunpoint.ts").read_bytes()
    return files


def digit_images() -> dict[str, list[tuple[str, bytes]]]:
    """Eight digits (four 0s, four 1s) per format, as (class, file bytes), written by Pillow."""
    digits = load_digits()
    picks = [(str(d), i) for d in (0, 1) for i in np.flatnonzero(digits.target == d)[:4]]
    images = {}
    for suffix, fmt in IMAGE_FORMATS.items():
        images[suffix] = []
        for label, i in picks:
            buffer = io.BytesIO()
            Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(buffer, format=fmt)
            images[suffix].append((label, buffer.getvalue()))
    return images


def corrupt(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """A truncation at a random offset, random bit flips (1 to 8), or both; and what was done."""
    how = rng.choice(["truncate", "flip", "both"])
    out, done = bytearray(data), []
    if how in ("truncate", "both"):
        cut = int(rng.integers(0, len(out)))
        del out[cut:]
        done.append(f"cut at {cut} of {len(data)}")
    if how in ("flip", "both") and out:
        where = rng.integers(0, len(out), size=int(rng.integers(1, 9)))
        for at in where:
            out[at] ^= 1 << int(rng.integers(0, 8))
        done.append(f"a bit flipped in bytes {sorted(where.tolist())}")
    return bytes(out), ", ".join(done)


def outcome(data_cfg, path: Path) -> str:
    """'loaded' or 'ConfigError'; raises AssertionError for anything else, with its traceback."""
    try:
        with warnings.catch_warnings(record=True):  # a skipped file's warning is an outcome too
            warnings.simplefilter("always")
            load_dataset(data_cfg)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message, message
        assert str(path) in message, message  # names the file (or the folder it is in)
        return "ConfigError"
    except Exception:
        raise AssertionError(traceback.format_exc(limit=-3)) from None
    return "loaded"


def fuzz(cases: int, seed: int, attempt) -> dict[str, int]:
    """Run `attempt(rng, case)` per case; every case's failure, with how to replay it."""
    counts, failures = {"loaded": 0, "ConfigError": 0}, []
    for case in range(cases):
        rng = np.random.default_rng([seed, case])
        try:
            counts[attempt(rng, case)] += 1
        except AssertionError as err:
            failures.append(f"case {case} (seed {seed}): {err}")
    assert not failures, "\n\n".join(failures[:5])
    return counts


@pytest.fixture(scope="module")
def series_originals(tmp_path_factory) -> dict[str, bytes]:
    return gunpoint_files(tmp_path_factory.mktemp("originals"))


@pytest.mark.parametrize("kind", SERIES_KINDS)
def test_corrupted_series_files_load_or_fail_with_a_config_error(
    make_cfg, tmp_path, series_originals, kind
):
    cfg = make_cfg("data=series_file", "data.path=unset")
    suffix = ".npz" if kind.startswith("npz") else f".{kind}"
    original = series_originals[kind]

    def attempt(rng: np.random.Generator, case: int) -> str:
        data, done = corrupt(original, rng)
        path = tmp_path / f"case{case}{suffix}"  # a new name: the loader caches by config
        path.write_bytes(data)
        cfg.data.path = str(path)
        try:
            return outcome(cfg.data, path)
        except AssertionError as err:
            raise AssertionError(f"{kind} {done}: {err}") from None

    counts = fuzz(SERIES_CASES, SEED + SERIES_KINDS.index(kind), attempt)
    assert counts["ConfigError"] > 0
    # the same file uncorrupted loads
    (tmp_path / f"clean{suffix}").write_bytes(original)
    cfg.data.path = str(tmp_path / f"clean{suffix}")
    assert len(load_dataset(cfg.data).y_train) == 40


@pytest.mark.parametrize("suffix", list(IMAGE_FORMATS))
def test_corrupted_images_load_or_fail_with_a_config_error(make_cfg, tmp_path, suffix):
    originals = digit_images()[suffix]
    cfg = make_cfg("data=image_folder", "data.path=unset", "data.image_size=[8,8]")

    def attempt(rng: np.random.Generator, case: int) -> str:
        root = tmp_path / f"case{case}"
        victim = int(rng.integers(0, len(originals)))
        for k, (label, data) in enumerate(originals):
            (root / label).mkdir(parents=True, exist_ok=True)
            if k == victim:
                data, done = corrupt(data, rng)
            (root / label / f"{k}.{suffix}").write_bytes(data)
        # half decoded once into memory, half checked for reading batch by batch
        cfg.data.path, cfg.data.cache = str(root), ("memory", "none")[case % 2]
        try:
            return outcome(cfg.data, root)
        except AssertionError as err:
            raise AssertionError(f"{suffix} file {victim} {done}: {err}") from None

    counts = fuzz(IMAGE_CASES, SEED + 100 + list(IMAGE_FORMATS).index(suffix), attempt)
    if suffix == "tif":  # Pillow reads TIFF, TensorFlow's decoder does not
        assert counts == {"loaded": 0, "ConfigError": IMAGE_CASES}
    else:
        assert counts["ConfigError"] > 0


def cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "src.sweep", *overrides, f"hydra.run.dir={tmp_path}/run"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["npz", "png"])
def test_the_cli_reports_a_corrupted_file_in_one_line(tmp_path, series_originals, kind):
    """A corrupted series file and a corrupted image, through `python -m src.sweep`."""
    if kind == "npz":
        path = tmp_path / "series.npz"
        path.write_bytes(series_originals["npz"][:5000])  # cut short
        done = cli(tmp_path, "data=series_file", f"data.path={path}")
        expected = f"augsweep: error: series file '{path}' cannot be read (BadZipFile: "
    else:
        for k, (label, data) in enumerate(digit_images()["png"]):
            (tmp_path / "images" / label).mkdir(parents=True, exist_ok=True)
            (tmp_path / "images" / label / f"{k}.png").write_bytes(data[:60] if k == 5 else data)
        path = tmp_path / "images" / "1" / "5.png"
        done = cli(tmp_path, "data=image_folder", f"data.path={tmp_path / 'images'}")
        expected = f"augsweep: error: image file '{path}' cannot be read ("
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("augsweep:")]
    assert len(errors) == 1 and errors[0].startswith(expected), done.stderr[-3000:]
    assert "; accepted: " in errors[0]
