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

# each layer (and mode) with its magnitude at strength 1
LAYERS = {
    "MagnitudeWarp": (MagnitudeWarp, 0.5, {}),
    "TimeWarp": (TimeWarp, 0.5, {}),
    "TimeWarp-position": (TimeWarp, 0.5, {"mode": "position"}),
    "WindowSlice": (WindowSlice, 0.5, {}),
    "WindowWarp": (WindowWarp, 0.5, {}),
    "Permutation": (Permutation, 8.0, {}),
    "ChannelRotation": (ChannelRotation, math.pi, {}),
    "ChannelRotation-flip_shuffle": (ChannelRotation, math.pi, {"mode": "flip_shuffle"}),
}
RESAMPLING = ("TimeWarp", "TimeWarp-position", "WindowSlice", "WindowWarp")


def layer_for(name: str, fraction: float = 1.0, seed: int = 0):
    """The layer `name` at `fraction` of its magnitude at strength 1."""
    cls, top, kwargs = LAYERS[name]
    return cls(fraction * top, seed=seed, **kwargs)


def keras_layout(x) -> np.ndarray:
    return np.transpose(x, (0, 2, 1)).astype("float32")


@pytest.fixture(scope="module")
def series(gunpoint, vowels) -> dict[str, np.ndarray]:
    motions, _ = load_classification("BasicMotions", split="train")
    return {"gunpoint": gunpoint, "basic_motions": keras_layout(motions),
            "japanese_vowels": vowels}  # fmt: skip


def apply(layer, x, training=True) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, training=training))


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("data", ["gunpoint", "basic_motions", "japanese_vowels"])
def test_layer_properties(name, data, series):
    x = series[data]
    layer = layer_for(name)
    np.testing.assert_array_equal(apply(layer, x, training=False), x)
    np.testing.assert_array_equal(apply(layer_for(name, 0.0), x), x)
    y = apply(layer, x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    padding = ~x.any(axis=-1)
    assert np.all(y[padding] == 0) and not np.signbit(y[padding]).any()  # exactly +0.0
    np.testing.assert_array_equal(apply(layer_for(name), x), y)  # same seed, same output
    if not (name.startswith("ChannelRotation") and x.shape[-1] == 1):  # pi flips every series
        assert not np.array_equal(apply(layer_for(name, seed=1), x), y)
    changes = [np.abs(apply(layer_for(name, f), x) - x).mean() for f in (0.25, 0.5, 1.0)]
    assert 0 < changes[0] < changes[1] < changes[2], changes


@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trip_and_saved_model(name, series, tmp_path):
    layer = layer_for(name, 0.5, seed=3)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = series["basic_motions"]
    model = keras.Sequential([keras.Input(x.shape[1:]), layer, keras.layers.Flatten(),
                              keras.layers.Dense(4)])  # fmt: skip
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_every_layer_runs_under_mixed_precision(series):
    x = series["japanese_vowels"]
    padding = ~x.any(axis=-1)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        outputs = {name: layer_for(name)(x, training=True) for name in LAYERS}
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for name, y in outputs.items():
        y = keras.ops.convert_to_numpy(y)
        assert y.dtype == np.float16 and np.isfinite(y).all() and np.all(y[padding] == 0), name


@pytest.mark.parametrize("name", RESAMPLING)
def test_resampling_stays_within_each_series_range(name, series):
    x = series["gunpoint"]
    y = apply(layer_for(name), x)
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


def test_flip_shuffle_negates_and_reorders_channels_and_is_rotate_on_one_channel(series):
    x = series["basic_motions"]
    y = apply(ChannelRotation(math.pi / 2, mode="flip_shuffle", seed=0), x)
    negated = []
    for before, after in zip(x, y, strict=True):
        for out in after.T:  # each output channel is one input channel, negated or not
            k = [k for k in range(x.shape[2]) if np.array_equal(np.abs(out), np.abs(before[:, k]))]
            assert k
            negated.append(np.array_equal(out, -before[:, k[0]]))
    assert 0.35 < np.mean(negated) < 0.65  # probability angle / pi
    g = series["gunpoint"]
    np.testing.assert_array_equal(
        apply(ChannelRotation(math.pi / 2, mode="flip_shuffle", seed=0), g),
        apply(ChannelRotation(math.pi / 2, seed=0), g),
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MagnitudeWarp(-0.1), r"Received: sigma=-0.1"),
        (lambda: WindowSlice(1.5), r"Received: ratio=1.5"),
        (lambda: ChannelRotation(4.0), r"Received: angle=4.0"),
        (lambda: TimeWarp(0.2, seed="x"), r"Received: seed='x'"),
        (lambda: TimeWarp(0.2, mode="positions"), r"Received: mode='positions'"),
        (lambda: ChannelRotation(1.0, mode="shuffle"), r"Received: mode='shuffle'"),
    ],
)
def test_bad_arguments_quote_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()
