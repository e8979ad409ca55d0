"""The fused geometric pipeline draws the same transforms as the stock Keras layers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from scipy.stats import ks_2samp, kstest
from sklearn.datasets import load_sample_images

from src.augment import build_augmentation
from src.augment.fused import FusedGeometry, FusedPhotometric

DRAWS = 12


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """32 real 48x48 RGB crops of scikit-learn's two sample photos, in [0, 1]."""
    crops = [photo[r : r + 192, c : c + 192] for photo in load_sample_images().images
             for r in range(0, 224, 56) for c in range(0, 448, 112)]  # fmt: skip
    return np.clip(tf.image.resize(np.stack(crops) / 255.0, (48, 48)).numpy(), 0, 1)[:32]


def cfg(ops: list[str], strength: float, fused: bool = True):
    return OmegaConf.create({"name": "t", "strength": strength, "ops": ops,
                             "fill_mode": "constant", "fused": fused})  # fmt: skip


def change(layer, x: np.ndarray) -> np.ndarray:
    """Per-image mean |augmented - original| over DRAWS passes: a sample of the transform's size."""
    call = tf.function(lambda batch: layer(batch, training=True))
    return np.concatenate(
        [np.abs(call(tf.constant(x)).numpy() - x).mean(axis=(1, 2, 3)) for _ in range(DRAWS)]
    )


@pytest.mark.parametrize(
    ("op", "magnitude"),
    [
        ("rotation", 0.125),
        ("zoom", 0.3),
        ("translation", 0.2),
        ("shear", 0.3),
    ],  # fmt: skip
)
def test_each_op_matches_its_keras_layer_in_distribution(photos, op, magnitude):
    from src.augment import OPS

    keras_layer = build_augmentation(cfg([op], magnitude / OPS[op].max_magnitude), "image", 0)
    assert "fused" not in keras_layer.layers[0].name  # a single op stays Keras's layer
    fused = FusedGeometry([(op, magnitude)], seed=1)
    ours, theirs = change(fused, photos), change(keras_layer, photos)
    assert ks_2samp(ours, theirs).pvalue > 0.001
    assert ours.mean() == pytest.approx(theirs.mean(), rel=0.1)


@pytest.mark.parametrize(("op", "axis", "magnitude"),
                         [("flip", 2, 0.5), ("vertical_flip", 1, 0.25)])  # fmt: skip
def test_flips_happen_as_often_as_keras_flips(photos, op, axis, magnitude):
    from src.augment import OPS

    keras_layer = build_augmentation(cfg([op], magnitude / OPS[op].max_magnitude), "image", 0)
    fused = FusedGeometry([(op, magnitude)], seed=1)
    n = DRAWS * len(photos) * 4
    for layer in (fused, keras_layer):
        call = tf.function(lambda batch, layer=layer: layer(batch, training=True))
        flipped = kept = 0
        for _ in range(DRAWS * 4):
            y = call(tf.constant(photos)).numpy()
            flipped += np.all(np.abs(y - np.flip(photos, axis)) < 1e-5, axis=(1, 2, 3)).sum()
            kept += np.all(np.abs(y - photos) < 1e-5, axis=(1, 2, 3)).sum()
        assert flipped + kept == n  # an exact mirror or untouched, nothing in between
        assert abs(flipped / n - magnitude) < 4 * np.sqrt(magnitude * (1 - magnitude) / n)


def test_fused_stack_matches_the_unfused_stack(photos):
    ops = ["flip", "rotation", "zoom", "translation"]
    fused = build_augmentation(cfg(ops, 0.5), "image", 0)
    unfused = build_augmentation(cfg(ops, 0.5, fused=False), "image", 0)
    assert [layer.name for layer in fused.layers] == ["fused_flip_rotation_zoom_translation"]
    assert len(unfused.layers) == 4
    ours, theirs = change(fused, photos), change(unfused, photos)
    # the same transforms; the unfused stack blurs a little more (four resamplings, not one)
    assert ours.mean() == pytest.approx(theirs.mean(), rel=0.1)
    assert np.median(ours) <= np.median(theirs)


def test_zero_magnitudes_resample_to_the_identity(photos):
    """Composed identity transforms resample every pixel onto itself."""
    layer = FusedGeometry([("zoom", 0.0), ("rotation", 0.0)], seed=0)
    y = layer(tf.constant(photos), training=True).numpy()
    np.testing.assert_allclose(y, photos, atol=1e-5)


def test_identity_at_inference_and_config_round_trip(photos):
    layer = FusedGeometry([("rotation", 0.2), ("shear", 0.1)], fill_mode="reflect", seed=4)
    np.testing.assert_array_equal(layer(tf.constant(photos), training=False).numpy(), photos)
    again = FusedGeometry.from_config(layer.get_config())
    assert (again.ops, again.fill_mode, again.seed) == (layer.ops, "reflect", 4)
    a = again(tf.constant(photos), training=True).numpy()
    b = FusedGeometry.from_config(layer.get_config())(tf.constant(photos), training=True).numpy()
    np.testing.assert_array_equal(a, b)  # same seed, same draws
    assert a.min() >= 0 and a.max() <= 1 and not np.allclose(a, photos)
    with pytest.raises(ValueError, match="FusedGeometry got op 'blur'; accepted: flip, "):
        FusedGeometry([("blur", 1.0)])


# --- photometric ---------------------------------------------------------------------------------


def test_fused_brightness_and_contrast_draw_keras_parameters_exactly(photos):
    """Mid-grey images never clip: each image's offset and contrast factor can be read back."""
    x = (0.4 + 0.2 * photos).astype("float32")  # in [0.4, 0.6]
    layer = FusedPhotometric([("brightness", 0.1), ("contrast", 0.2)], seed=3)
    call = tf.function(lambda batch: layer(batch, training=True))
    offsets, factors = [], []
    for _ in range(DRAWS):
        y = call(tf.constant(x)).numpy()
        x_mean, y_mean = x.mean(axis=(1, 2), keepdims=True), y.mean(axis=(1, 2), keepdims=True)
        offset = (y_mean - x_mean).mean(axis=(1, 2, 3))  # contrast keeps the channel mean
        factor = (y - y_mean).std(axis=(1, 2, 3)) / (x - x_mean).std(axis=(1, 2, 3))
        expected = (x - x_mean) * factor[:, None, None, None] + x_mean + offset[:, None, None, None]
        np.testing.assert_allclose(y, expected, atol=1e-5)
        offsets.append(offset)
        factors.append(factor)
    offsets, factors = np.concatenate(offsets), np.concatenate(factors)
    assert kstest(offsets, "uniform", args=(-0.1, 0.2)).pvalue > 0.001
    assert kstest(factors, "uniform", args=(0.8, 0.4)).pvalue > 0.001


def contrast_factors(layer, x: np.ndarray) -> np.ndarray:
    """Per image, the factor its deviations from the channel means were scaled by."""
    call = tf.function(lambda batch: layer(batch, training=True))
    factors = []
    for _ in range(DRAWS):
        y = call(tf.constant(x)).numpy()
        spread = [(v - v.mean(axis=(1, 2), keepdims=True)).std(axis=(1, 2, 3)) for v in (y, x)]
        factors.append(spread[0] / spread[1])
    return np.concatenate(factors)


def test_contrast_op_lowers_and_raises_contrast(photos):
    """aug=contrast at strength 1 scales contrast by U(0.1, 1.9), as its table entry says."""
    x = (0.45 + 0.1 * photos).astype("float32")  # never clipped at any factor up to 1.9
    keras_layer = build_augmentation(cfg(["contrast"], 1.0), "image", 0)
    for layer in (keras_layer, FusedPhotometric([("contrast", 0.9)], seed=0)):
        factors = contrast_factors(layer, x)
        assert kstest(factors, "uniform", args=(0.1, 1.8)).pvalue > 0.001


def test_fused_photometric_stack_matches_the_keras_stack(photos):
    ops = ["brightness", "contrast", "noise"]
    fused = build_augmentation(cfg(ops, 0.5), "image", 0)
    unfused = build_augmentation(cfg(ops, 0.5, fused=False), "image", 0)
    assert [type(layer) for layer in fused.layers] == [FusedPhotometric]
    assert [layer.name for layer in unfused.layers] == ["brightness", "contrast", "noise"]
    ours, theirs = change(fused, photos), change(unfused, photos)
    assert ks_2samp(ours, theirs).pvalue > 0.001
    assert ours.mean() == pytest.approx(theirs.mean(), rel=0.1)


def test_each_family_fuses_its_own_runs():
    ops = ["rotation", "zoom", "brightness", "contrast", "blur", "flip", "noise"]
    layers = build_augmentation(cfg(ops, 0.5), "image", 0).layers
    assert [layer.name for layer in layers] == [
        "fused_rotation_zoom", "fused_brightness_contrast", "blur", "flip", "noise"
    ]  # fmt: skip
    assert [type(layer) for layer in layers[:2]] == [FusedGeometry, FusedPhotometric]


def test_photometric_identity_at_inference_and_config_round_trip(photos):
    layer = FusedPhotometric([("contrast", 0.5), ("noise", 0.1)], seed=2)
    np.testing.assert_array_equal(layer(tf.constant(photos), training=False).numpy(), photos)
    again = FusedPhotometric.from_config(layer.get_config())
    assert (again.ops, again.seed) == (layer.ops, 2)
    a = again(tf.constant(photos), training=True).numpy()
    b = FusedPhotometric.from_config(layer.get_config())(tf.constant(photos), training=True)
    np.testing.assert_array_equal(a, b.numpy())  # same seed, same draws
    assert a.min() >= 0 and a.max() <= 1 and not np.allclose(a, photos)
    with pytest.raises(ValueError, match="FusedPhotometric got op 'zoom'; accepted: brightness"):
        FusedPhotometric([("zoom", 0.1)])


def test_photometric_runs_under_mixed_precision(photos):
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = FusedPhotometric([("brightness", 0.2), ("contrast", 0.2), ("noise", 0.05)], seed=0)
        y = tf.function(lambda b: layer(b, training=True))(tf.constant(photos))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == tf.float16 and 0 <= float(tf.reduce_min(y)) <= float(tf.reduce_max(y)) <= 1
    assert float(tf.reduce_mean(tf.abs(tf.cast(y, tf.float32) - photos))) > 0.01
