"""Property tests for src.augment.image on real images: sklearn digits and sample-photo crops.

Every builder is called directly, magnitude 0 included: a magnitude of 0 builds an identity
(for mixup and cutmix a `keras.layers.Identity`, checked through `mix_batch`).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from src.augment.image import IMAGE_OPS, MIXING, ImageNoise, mix_batch

PER_SAMPLE = [name for name in IMAGE_OPS if name not in MIXING]
# the magnitudes at strength 1 the harness documents
TOP = {
    "vertical_flip": 0.5, "translation": 0.3, "shear": 0.3, "brightness": 0.5,
    "noise": 0.2, "erasing": 0.3, "blur": 1.0, "mixup": 0.4, "cutmix": 1.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def images(digits, photos) -> dict[str, np.ndarray]:
    return {"digits": digits, "photos": photos}


def build(name: str, strength: float = 1.0, seed: int = 0, fill_mode: str = "constant"):
    top, _, builder = IMAGE_OPS[name]
    return builder(strength * top, seed, fill_mode)


def run(layer, x: np.ndarray, training: bool = True) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, training=training))


def mean_change(layer, x: np.ndarray) -> float:
    return float(np.abs(run(layer, x) - x).mean())


def test_image_ops_table_is_well_formed():
    assert {name: top for name, (top, _, _) in IMAGE_OPS.items()} == TOP
    assert set(MIXING) <= set(IMAGE_OPS)
    for name, (_, meaning, builder) in IMAGE_OPS.items():
        assert meaning and "\n" not in meaning, name
        assert callable(builder), name
        assert isinstance(build(name), keras.layers.Layer), name


# --- properties every per-sample op has ---------------------------------------------------------


@pytest.mark.parametrize("data", ["digits", "photos"])
@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_is_identity_when_not_training(name, data, images):
    x = images[data]
    np.testing.assert_array_equal(run(build(name), x, training=False), x)


@pytest.mark.parametrize("data", ["digits", "photos"])
@pytest.mark.parametrize("name", PER_SAMPLE)
def test_magnitude_zero_is_identity(name, data, images):
    x = images[data]
    np.testing.assert_array_equal(run(build(name, strength=0.0), x), x)


@pytest.mark.parametrize("data", ["digits", "photos"])
@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_keeps_shape_dtype_and_value_range(name, data, images):
    x = images[data]
    y = run(build(name), x)
    assert y.shape == x.shape
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert not np.array_equal(y, x)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_same_seed_same_output_different_seed_different_output(name, digits):
    first = run(build(name, seed=0), digits)
    np.testing.assert_array_equal(first, run(build(name, seed=0), digits))
    if name != "blur":  # blur is deterministic: every image, one sigma
        assert not np.array_equal(first, run(build(name, seed=1), digits))


@pytest.mark.parametrize("data", ["digits", "photos"])
@pytest.mark.parametrize("name", PER_SAMPLE)
def test_change_grows_with_magnitude(name, data, images):
    x = images[data]  # 500 digits, 32 photos
    changes = [mean_change(build(name, strength=s), x) for s in (0.25, 0.5, 1.0)]
    assert 0 < changes[0] < changes[1] < changes[2], changes


@pytest.mark.parametrize("fill_mode", ["constant", "reflect", "wrap", "nearest"])
@pytest.mark.parametrize("name", ["translation", "shear"])
def test_fill_mode_reaches_the_geometric_layers(name, fill_mode, digits):
    layer = build(name, fill_mode=fill_mode)
    assert layer.fill_mode == fill_mode
    y = run(layer, digits)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_vertical_flip_probability_is_the_magnitude(digits):
    for strength in (0.5, 1.0):
        y = run(build("vertical_flip", strength), digits)
        flipped = np.all(y == digits[:, ::-1], axis=(1, 2, 3))
        kept = np.all(y == digits, axis=(1, 2, 3))
        assert np.all(flipped | kept)  # every image is either flipped upside down or untouched
        assert abs(np.mean(flipped & ~kept) - 0.5 * strength) < 0.08


def test_brightness_shifts_each_image_by_at_most_the_magnitude(photos):
    y = run(build("brightness"), photos)
    inside = (photos > 0.02) & (photos < 0.98) & (y > 0) & (y < 1)  # not clipped
    shift = np.where(inside, y - photos, np.nan)
    per_image = np.nanmean(shift, axis=(1, 2, 3))
    np.testing.assert_allclose(np.nanmax(shift, axis=(1, 2, 3)), per_image, atol=1e-5)
    assert np.all(np.abs(per_image) <= 0.5 + 1e-6)


def test_erasing_erases_one_rectangle_per_image_of_at_most_the_magnitude(photos):
    y = run(build("erasing"), photos)
    changed = np.any(y != photos, axis=-1)  # (batch, H, W)
    for mask in changed:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        assert box <= 0.3 * mask.size + 2 * 64 + 1  # area <= 0.3, up to one pixel row/col more
    assert changed.any(axis=(1, 2)).mean() > 0.9  # probability 1 (a few patches round to 0 px)


def test_blur_smooths_images(photos):
    def roughness(x):
        return float(np.abs(np.diff(x, axis=2)).mean())

    y = run(build("blur"), photos)
    assert roughness(y[:, 4:-4, 4:-4]) < 0.7 * roughness(photos[:, 4:-4, 4:-4])


@pytest.mark.parametrize(
    ("name", "magnitude", "match"),
    [
        ("erasing", 1.5, r"Received: magnitude=1\.5"),
        ("blur", 2.0, r"Received: magnitude=2\.0"),
        ("cutmix", -0.1, r"Received: magnitude=-0\.1"),
        ("mixup", float("nan"), r"Received: magnitude=nan"),
    ],
)
def test_builders_reject_magnitudes_their_layer_cannot_take(name, magnitude, match):
    with pytest.raises(ValueError, match=match):
        IMAGE_OPS[name][2](magnitude, 0, "constant")


# --- ImageNoise -----------------------------------------------------------------------------------


def test_image_noise_has_stddev_where_not_clipped(photos):
    stddev = 0.05
    noise = run(ImageNoise(stddev, seed=0), photos) - photos
    mid = (photos > 0.3) & (photos < 0.7)  # > 4 stddev from 0 and 1: clipping negligible
    assert abs(noise[mid].std() - stddev) < 0.05 * stddev
    assert abs(noise[mid].mean()) < 0.05 * stddev


def test_image_noise_zero_stddev_is_identity(photos):
    np.testing.assert_array_equal(run(ImageNoise(0.0, seed=0), photos), photos)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ImageNoise(-0.1), r"Received: stddev=-0\.1"),
        (lambda: ImageNoise("0.1"), r"Received: stddev='0\.1'"),
        (lambda: ImageNoise(float("inf")), r"Received: stddev=inf"),
        (lambda: ImageNoise(0.1, seed=1.5), r"Received: seed=1\.5"),
        (lambda: ImageNoise(0.1, value_range=(1, 0)), r"Received: value_range=\(1, 0\)"),
        (lambda: ImageNoise(0.1, value_range=0.5), r"Received: value_range=0\.5"),
    ],
)
def test_image_noise_rejects_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_image_noise_config_round_trips(photos):
    layer = ImageNoise(0.2, seed=5, name="noise")
    config = layer.get_config()
    assert {"stddev": 0.2, "value_range": [0.0, 1.0], "seed": 5}.items() <= config.items()
    rebuilt = ImageNoise.from_config(config)
    assert rebuilt.get_config() == config
    np.testing.assert_array_equal(run(ImageNoise(0.2, seed=5), photos), run(rebuilt, photos))


def test_saved_model_with_image_noise_loads_and_predicts_identically(digits, tmp_path):
    x = digits[:32]
    model = keras.Sequential(
        [
            keras.Input(shape=x.shape[1:]),
            ImageNoise(0.2, seed=0, name="noise"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, np.zeros(len(x)))  # the noise runs in a compiled train step
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.get_layer("noise"), ImageNoise)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    fresh = ImageNoise(0.2, seed=0)
    np.testing.assert_array_equal(run(loaded.get_layer("noise"), x), run(fresh, x))


def test_saved_model_with_every_per_sample_op_loads_and_predicts_identically(digits, tmp_path):
    x = digits[:32]

    def augmentation() -> keras.Sequential:
        layers = [build(name, seed=i) for i, name in enumerate(PER_SAMPLE)]
        return keras.Sequential(layers, name="augmentation")

    aug = augmentation()
    model = keras.Sequential(
        [keras.Input(shape=x.shape[1:]), aug, keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, np.zeros(len(x)))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    loaded_aug = loaded.get_layer("augmentation")
    assert [layer.name for layer in loaded_aug.layers] == PER_SAMPLE
    # magnitudes and seeds survive: the loaded pipeline augments like a freshly built one
    np.testing.assert_array_equal(run(loaded_aug, x), run(augmentation(), x))


# --- batch mixing ---------------------------------------------------------------------------------


def mix(name: str, x: np.ndarray, labels: np.ndarray, n_classes: int, strength=1.0, seed=0):
    images, soft = mix_batch(build(name, strength, seed), x, labels, n_classes)
    return keras.ops.convert_to_numpy(images), keras.ops.convert_to_numpy(soft)


@pytest.mark.parametrize("name", MIXING)
def test_mixing_soft_labels_sum_to_one_and_images_stay_valid(name, digits, digit_labels):
    x, labels = digits[:64], digit_labels[:64]
    images, soft = mix(name, x, labels, 10)
    assert images.shape == x.shape and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert soft.shape == (64, 10) and soft.dtype == np.float32
    assert soft.min() >= 0.0 and soft.max() <= 1.0
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    assert (soft.max(axis=1) < 1.0 - 1e-3).mean() > 0.5  # most labels really are mixed
    assert not np.array_equal(images, x)


@pytest.mark.parametrize("name", MIXING)
def test_mixing_binary_labels_are_one_probability_column(name, digits, digit_labels):
    x, labels = digits[:64], digit_labels[:64] % 2
    images, soft = mix(name, x, labels, 2)
    assert soft.shape == (64, 1) and soft.dtype == np.float32
    assert soft.min() >= 0.0 and soft.max() <= 1.0
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert ((soft > 1e-3) & (soft < 1 - 1e-3)).mean() > 0.2  # soft, not just 0/1


@pytest.mark.parametrize("name", MIXING)
@pytest.mark.parametrize("n_classes", [2, 10])
def test_mixing_at_magnitude_zero_leaves_images_and_labels_untouched(
    name, n_classes, digits, digit_labels
):
    x, labels = digits[:64], digit_labels[:64] % n_classes
    images, soft = mix(name, x, labels, n_classes, strength=0.0)
    np.testing.assert_array_equal(images, x)
    expected = np.eye(n_classes, dtype="float32")[labels]
    np.testing.assert_array_equal(soft, expected[:, 1:] if n_classes == 2 else expected)


def test_mixup_images_and_labels_are_the_same_convex_combination(digits, digit_labels):
    x, labels = digits[:64], digit_labels[:64]  # 64 distinct images
    images, soft = mix("mixup", x, labels, 10)
    flat, mixed = x.reshape(64, -1), images.reshape(64, -1)
    for i in range(64):
        # y_i = lam * x_i + (1 - lam) * x_j for the partner j that fits best
        diff = flat[i] - flat  # (64, pixels)
        norm = np.maximum((diff**2).sum(axis=1), 1e-12)
        lam = np.clip(((mixed[i] - flat) * diff).sum(axis=1) / norm, 0.0, 1.0)
        residual = np.abs(lam[:, None] * flat[i] + (1 - lam[:, None]) * flat - mixed[i]).max(1)
        j = int(np.argmin(residual))
        assert residual[j] < 1e-5, (i, residual[j])
        # pixelwise between the two inputs
        low, high = np.minimum(flat[i], flat[j]), np.maximum(flat[i], flat[j])
        assert np.all(mixed[i] >= low - 1e-6) and np.all(mixed[i] <= high + 1e-6)
        if j != i:  # the label carries the same weights as the pixels
            expected = lam[j] * np.eye(10)[labels[i]] + (1 - lam[j]) * np.eye(10)[labels[j]]
            np.testing.assert_allclose(soft[i], expected, atol=1e-4)


def test_cutmix_pastes_pixels_of_one_partner_and_weighs_labels_by_area(photos):
    x = photos  # 32 distinct photo crops
    labels = np.arange(32) % 10
    images, soft = mix("cutmix", x, labels, 10)
    for i in range(32):
        from_self = np.all(images[i] == x[i], axis=-1)
        partners = [j for j in range(32) if np.all(from_self | np.all(images[i] == x[j], axis=-1))]
        assert partners, i  # every pixel is its own or one partner's
        if not from_self.all() and labels[partners[0]] != labels[i]:
            area = 1.0 - from_self.mean()  # fraction pasted from the partner
            assert abs(soft[i, labels[partners[0]]] - area) < 0.05, (i, area)


@pytest.mark.parametrize("name", MIXING)
def test_mix_batch_runs_in_a_tf_data_map(name, digits, digit_labels):
    layer = build(name)
    batches = (
        tf.data.Dataset.from_tensor_slices((digits[:64], digit_labels[:64]))
        .batch(16)
        .map(lambda x, y: mix_batch(layer, x, y, 10))
    )
    for images, soft in batches:
        assert images.shape == (16, 8, 8, 1) and soft.shape == (16, 10)
        np.testing.assert_allclose(soft.numpy().sum(axis=1), 1.0, atol=1e-5)


def test_mix_batch_same_seed_same_output(digits, digit_labels):
    x, labels = digits[:64], digit_labels[:64]
    for name in MIXING:
        first = mix(name, x, labels, 10, seed=3)
        again = mix(name, x, labels, 10, seed=3)
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])


@pytest.mark.parametrize("n_classes", [1, 2.0, True])
def test_mix_batch_rejects_bad_n_classes(n_classes, digits, digit_labels):
    with pytest.raises(ValueError, match="Received: n_classes="):
        mix_batch(build("mixup"), digits[:8], digit_labels[:8], n_classes)
