"""Time-series augmentation layers on real series: GunPoint, BasicMotions, JapaneseVowels."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from aeon.datasets import load_classification

from src.augment.series import (
    ChannelRotation,
    MagnitudeWarp,
    Permutation,
    TimeWarp,
    WindowSlice,
    WindowWarp,
)

# each layer with its magnitude at strength 1
LAYERS = {
    MagnitudeWarp: 0.5, TimeWarp: 0.5, WindowSlice: 0.5, WindowWarp: 0.5, Permutation: 8.0,
    ChannelRotation: math.pi,
}  # fmt: skip
RESAMPLING = (TimeWarp, WindowSlice, WindowWarp)


def keras_layout(x) -> np.ndarray:
    return np.transpose(x, (0, 2, 1)).astype("float32")


@pytest.fixture(scope="module")
def series() -> dict[str, np.ndarray]:
    gunpoint, _ = load_classification("GunPoint", split="train")
    motions, _ = load_classification("BasicMotions", split="train")
    vowels, _ = load_classification("JapaneseVowels", split="train")
    padded = keras.utils.pad_sequences([v.T for v in vowels], padding="post", dtype="float32")
    return {"gunpoint": keras_layout(gunpoint), "basic_motions": keras_layout(motions),
            "japanese_vowels": padded}  # fmt: skip


def apply(layer, x, training=True) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, training=training))


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("data", ["gunpoint", "basic_motions", "japanese_vowels"])
def test_layer_properties(cls, data, series):
    x, top = series[data], LAYERS[cls]
    layer = cls(top, seed=0)
    np.testing.assert_array_equal(apply(layer, x, training=False), x)
    np.testing.assert_array_equal(apply(cls(0.0, seed=0), x), x)
    y = apply(layer, x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    padding = ~x.any(axis=-1)
    assert np.all(y[padding] == 0) and not np.signbit(y[padding]).any()  # exactly +0.0
    np.testing.assert_array_equal(apply(cls(top, seed=0), x), y)  # same seed, same output
    if not (cls is ChannelRotation and x.shape[-1] == 1):  # angle pi flips every series
        assert not np.array_equal(apply(cls(top, seed=1), x), y)
    changes = [np.abs(apply(cls(f * top, seed=0), x) - x).mean() for f in (0.25, 0.5, 1.0)]
    assert 0 < changes[0] < changes[1] < changes[2], changes


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_config_round_trip_and_saved_model(cls, series, tmp_path):
    layer = cls(LAYERS[cls] / 2, seed=3)
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = series["basic_motions"]
    model = keras.Sequential([keras.Input(x.shape[1:]), layer, keras.layers.Flatten(),
                              keras.layers.Dense(4)])  # fmt: skip
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("cls", RESAMPLING, ids=lambda c: c.__name__)
def test_resampling_stays_within_each_series_range(cls, series):
    x = series["gunpoint"]
    y = apply(cls(LAYERS[cls], seed=0), x)
    assert np.all(y.min(axis=1) >= x.min(axis=1) - 1e-5)
    assert np.all(y.max(axis=1) <= x.max(axis=1) + 1e-5)


def test_magnitude_warp_curve_is_centred_on_one(series):
    x = series["gunpoint"] + 10.0  # keep clear of zero so the curve can be read off
    spreads = []
    for sigma in (0.1, 0.3):
        curve = apply(MagnitudeWarp(sigma, seed=0), x) / x
        assert abs(curve.mean() - 1) < 0.05
        spreads.append(curve.std())
    assert spreads[0] < spreads[1]


def test_permutation_keeps_every_value(series):
    for x in series.values():
        y = apply(Permutation(8, seed=0), x)
        np.testing.assert_array_equal(np.sort(y, axis=1), np.sort(x, axis=1))


def test_channel_rotation_is_orthogonal_and_flips_univariate_signs(series):
    x = series["basic_motions"]
    y = apply(ChannelRotation(math.pi, seed=0), x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-4)
    g = series["gunpoint"]
    flipped = apply(ChannelRotation(math.pi, seed=0), g)
    np.testing.assert_array_equal(np.abs(flipped), np.abs(g))
    assert np.all(flipped == -g)  # angle pi flips every univariate series
    half = apply(ChannelRotation(math.pi / 2, seed=0), g)
    share = np.mean([np.array_equal(h, -s) for h, s in zip(half, g, strict=True)])
    assert 0.25 < share < 0.75


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MagnitudeWarp(-0.1), r"Received: sigma=-0.1"),
        (lambda: WindowSlice(1.5), r"Received: ratio=1.5"),
        (lambda: ChannelRotation(4.0), r"Received: angle=4.0"),
        (lambda: TimeWarp(0.2, seed="x"), r"Received: seed='x'"),
    ],
)
def test_bad_arguments_quote_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
