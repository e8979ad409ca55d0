"""The classic recipes, `aug=idg`, single-op choices, own magnitudes, users' own augmentations."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.preprocessing.image import ImageDataGenerator

from src.augment import OPS, build_augmentation, resolve_ops
from src.augment.idg import idg_layers
from src.augment.layers import BrightnessScale, CenteredShear, ChannelShift, TrainingOnly
from src.config import choices
from src.errors import ConfigError
from tests.conftest import photo_crops

# ImageDataGenerator itself warns once per image that it imports scipy's affine_transform from a
# deprecated namespace; it is the reference these tests compare against, so that one is allowed.
IDG_WARNING = "ignore:Please import `affine_transform`:DeprecationWarning"


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """64 real 48x48 RGB crops of scikit-learn's two sample photos, in [0, 1]."""
    return photo_crops(192, 48, range(0, 224, 32), range(0, 128, 32))[:64]


def mean_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).mean())


def idg_change(kwargs: dict, x: np.ndarray, draws: int = 4) -> float:
    """Mean absolute change ImageDataGenerator's own random_transform makes, on 0..255 pixels."""
    idg = ImageDataGenerator(**kwargs)
    np.random.seed(0)
    out = [idg.random_transform(img * 255.0) / 255.0 for _ in range(draws) for img in x]
    return mean_change(np.stack(out), np.concatenate([x] * draws))


def ours_change(kwargs: dict, x: np.ndarray, draws: int = 4) -> float:
    layers = keras.Sequential(idg_layers(kwargs, 1.0, seed=0))
    out = [keras.ops.convert_to_numpy(layers(x, training=True)) for _ in range(draws)]
    return mean_change(np.concatenate(out), np.concatenate([x] * draws))


@pytest.mark.filterwarnings(IDG_WARNING)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"shear_range": 0.2, "zoom_range": 0.2, "horizontal_flip": True},  # classic_idg
        {"zoom_range": 0.3},
        {"rotation_range": 30},
        {"width_shift_range": 0.2, "height_shift_range": 0.1},
        {"shear_range": 30},
        {"channel_shift_range": 60.0},
    ],
    ids=["classic_idg", "zoom", "rotation", "shift", "shear", "channel_shift"],
)
def test_idg_keywords_reproduce_image_data_generator(photos, kwargs):
    """The same keywords change real photos as much as ImageDataGenerator's own transform."""
    reference, ours = idg_change(kwargs, photos), ours_change(kwargs, photos)
    assert reference > 0.005
    assert ours == pytest.approx(reference, rel=0.2)


def test_classic_idg_preset_is_the_recipe(make_cfg):
    cfg = make_cfg("aug=classic_idg")
    assert dict(cfg.aug.idg) == {
        "rescale": pytest.approx(1 / 255),
        "shear_range": 0.2,
        "zoom_range": 0.2,
        "horizontal_flip": True,
    }
    aug = build_augmentation(cfg.aug, "image", seed=0)
    names = [layer.name for layer in aug.layers[0].layers]
    assert names == ["idg_shear", "idg_zoom", "idg_horizontal_flip"]
    shear, zoom = aug.layers[0].layers[:2]
    assert shear.max_degrees == pytest.approx(0.2)  # degrees, as ImageDataGenerator has it
    assert zoom.height_factor == pytest.approx((-0.2, 0.2))
    assert zoom.width_factor == pytest.approx((-0.2, 0.2))
    with pytest.raises(ConfigError, match=r"works on image data, but the dataset is series"):
        resolve_ops(cfg.aug, "series")


def test_brightness_contrast_preset_matches_the_tf_image_recipe(make_cfg, photos):
    aug = build_augmentation(make_cfg("aug=brightness_contrast").aug, "image", seed=0)
    tf.random.set_seed(0)
    recipe = [
        tf.image.random_contrast(tf.image.random_brightness(p, 0.2), 0.8, 1.2) for p in photos
    ]
    ours = keras.ops.convert_to_numpy(aug(photos, training=True))
    assert mean_change(ours, photos) == pytest.approx(
        mean_change(np.clip(np.stack(recipe), 0, 1), photos), rel=0.2
    )


def test_gaussian_noise_preset_adds_sigma_0_1_to_series(make_cfg, gunpoint):
    x = gunpoint
    aug = build_augmentation(make_cfg("data=gunpoint", "aug=gaussian_noise").aug, "series", 0)
    noise = keras.ops.convert_to_numpy(aug(x, training=True)) - x
    assert float(noise.std()) == pytest.approx(0.1, rel=0.05)
    assert abs(float(noise.mean())) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zca_whitening": True}, r"aug.idg.zca_whitening cannot be mapped .*accepted"),
        ({"rescale": 0.5}, r"aug.idg.rescale=0.5 is not supported; accepted: null or 1/255"),
        ({"width_shift_range": 4}, r"width_shift_range=4.0 is a shift in pixels"),
        ({"zoom_range": [1.2, 0.8]}, r"aug.idg.zoom_range=\[1.2, 0.8\] is not supported"),
        ({"fill_mode": "mirror"}, r"aug.idg.fill_mode='mirror' is not supported"),
    ],
)
def test_unmappable_idg_keywords_are_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        idg_layers(kwargs, 1.0, seed=0)
    assert "\n" not in str(err.value)


def test_idg_choice_takes_a_users_keywords(make_cfg):
    cfg = make_cfg("aug=idg", "aug.idg.rotation_range=20", "aug.idg.vertical_flip=true",
                   "aug.strength=0.5")  # fmt: skip
    aug = build_augmentation(cfg.aug, "image", seed=0)
    rotation, flip = aug.layers[0].layers
    assert rotation.factor == pytest.approx((-10 / 360, 10 / 360))  # strength halves the range
    assert flip.rate == 0.5 and flip.layer.mode == "vertical"
    assert build_augmentation(make_cfg("aug=idg").aug, "image", seed=0) is None  # all defaults


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_is_a_choice_that_sweeps_by_strength(make_cfg, name):
    op = OPS[name]
    other = "series" if op.modality == "image" else "image"
    data = "digits" if op.modality == "image" else "gunpoint"
    assert name in choices("aug")
    for strength in (0, 0.5, 1):
        cfg = make_cfg(f"data={data}", f"aug={name}", f"aug.strength={strength}")
        resolved = resolve_ops(cfg.aug, op.modality)
        assert [n for n, _ in resolved] == ([name] if strength else [])
        assert [m for _, m in resolved] == pytest.approx(
            [strength * op.max_magnitude] * bool(strength)
        )
    with pytest.raises(ConfigError, match=rf"aug op '{name}' works on {op.modality} data, but "
                       rf"the dataset is {other}"):  # fmt: skip
        resolve_ops(cfg.aug, other)


def test_ops_list_replaces_a_presets_choice(make_cfg):
    cfg = make_cfg("aug=heavy", "aug.ops=[translation,{name:shear,magnitude:0.1}]")
    assert resolve_ops(cfg.aug, "image") == [("translation", 0.3), ("shear", 0.1)]
    assert resolve_ops(make_cfg("aug=heavy").aug, "image")[0] == ("flip", 0.5)


def test_ops_list_with_own_magnitudes(make_cfg):
    cfg = make_cfg("aug=combo", "aug.ops=[rotation,{name:zoom,magnitude:0.1}]")
    assert resolve_ops(cfg.aug, "image") == [("rotation", 0.125), ("zoom", 0.1)]
    bad = make_cfg("aug=combo", "aug.ops=[{name:zoom,magnitude:-1}]")
    with pytest.raises(ConfigError, match=r"op 'zoom' has magnitude=-1; accepted: a number >= 0"):
        resolve_ops(bad.aug, "image")
    unknown = make_cfg("aug=combo", "aug.ops=[rotation,warp]")
    with pytest.raises(ConfigError, match=r"unknown aug op 'warp' in aug.ops; accepted: flip, "):
        resolve_ops(unknown.aug, "image")
    with pytest.raises(ConfigError, match=r"aug.ops is not set; accepted: a list of ops"):
        resolve_ops(make_cfg("aug=combo").aug, "image")


def test_users_function_augments_in_training_only(make_cfg, photos):
    cfg = make_cfg("aug=custom", "aug.target=tests.user_augment.random_brightness")
    aug = build_augmentation(cfg.aug, "image", seed=0)
    assert np.array_equal(keras.ops.convert_to_numpy(aug(photos, training=False)), photos)
    changed = keras.ops.convert_to_numpy(aug(photos, training=True)) - photos
    # random_brightness adds one offset per batch, up to 0.2
    assert 0 < np.abs(changed).max() <= 0.2 + 1e-6 and np.allclose(changed, changed.flat[0])


def test_users_layer_class_with_kwargs(make_cfg, photos):
    cfg = make_cfg("aug=custom", "aug.target=keras.layers.RandomFlip", "+aug.kwargs.mode=vertical")
    (layer,) = build_augmentation(cfg.aug, "image", seed=7).layers
    assert isinstance(layer, keras.layers.RandomFlip) and layer.mode == "vertical"
    assert layer.seed == 7


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.user_augment.nothing_here", r"aug.target='tests.user_augment.nothing_here' cannot"),
        ("???", r"aug.target is not set"),
    ],
)
def test_bad_user_targets(make_cfg, target, message):
    overrides = ["aug=custom"] + ([] if target == "???" else [f"aug.target={target}"])
    with pytest.raises(ConfigError, match=message):
        resolve_ops(make_cfg(*overrides).aug, "image")


@pytest.mark.parametrize(
    "layer",
    [
        lambda: CenteredShear(20.0, seed=1),
        lambda: BrightnessScale(0.5, 1.5, seed=2),
        lambda: ChannelShift(0.2, seed=3),
        lambda: TrainingOnly("tests.user_augment.random_brightness"),
    ],
    ids=["CenteredShear", "BrightnessScale", "ChannelShift", "TrainingOnly"],
)
def test_recipe_layers_behave_like_keras_layers(layer, photos, tmp_path):
    aug = layer()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aug(photos)), photos)
    out = keras.ops.convert_to_numpy(aug(photos, training=True))
    assert out.shape == photos.shape and out.dtype == np.float32 and not np.allclose(out, photos)
    assert out.min() >= 0 and out.max() <= 1 or isinstance(aug, TrainingOnly)
    clone = type(aug).from_config(aug.get_config())
    assert clone.get_config() == aug.get_config()
    model = keras.Sequential([keras.Input(photos.shape[1:]), aug, keras.layers.Flatten(),
                              keras.layers.Dense(2)])  # fmt: skip
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(photos, verbose=0), model.predict(photos, verbose=0))


def test_brightness_scale_factor_range(photos):
    out = keras.ops.convert_to_numpy(BrightnessScale(0.5, 0.5)(photos, training=True))
    np.testing.assert_allclose(out, photos * 0.5, rtol=1e-6)
