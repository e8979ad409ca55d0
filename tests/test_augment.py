"""Property tests for src.augment on real data: digits images, GunPoint, JapaneseVowels."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from src.augment import (
    MODALITIES,
    OPS,
    Jitter,
    RandomApply,
    Scaling,
    build_augmentation,
    resolve_ops,
    strength_table,
)
from src.augment.policies import SERIES_POLICIES
from src.errors import ConfigError

# mixup and cutmix mix labels too: tests/test_image_ops.py covers them
PER_SAMPLE = [name for name, op in OPS.items() if not op.mixing]
IMAGE_OPS = [name for name in PER_SAMPLE if OPS[name].modality == "image"]
SERIES_OPS = [name for name, op in OPS.items() if op.modality == "series"]
CONF_AUG = Path(__file__).resolve().parents[1] / "conf" / "aug"


def aug_cfg(strength=0.25, image=(), series=(), fill_mode="constant", name="test"):
    """An aug config shaped like conf/aug/*.yaml."""
    return OmegaConf.create(
        {
            "name": name,
            "strength": strength,
            "ops": {"image": list(image), "series": list(series)},
            "fill_mode": fill_mode,
        }
    )


def single_op(name: str, strength: float, **kwargs):
    """A config that applies only `name` at `strength`."""
    return aug_cfg(strength, **{OPS[name].modality: [name]}, **kwargs)


@pytest.fixture(scope="module")
def data(digits, gunpoint) -> dict[str, np.ndarray]:
    return {"image": digits, "series": gunpoint}


def run(layer, x: np.ndarray, training: bool = True) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, training=training))


def mean_change(layer, x: np.ndarray) -> float:
    return float(np.abs(run(layer, x) - x).mean())


# --- the strength table and config resolution --------------------------------------------------


def test_ops_table_is_well_formed():
    for name, op in OPS.items():
        assert op.modality in MODALITIES, name
        assert op.max_magnitude > 0, name
        assert op.meaning, name
    table = strength_table()
    assert all(f"| {name} | {op.modality} |" in table for name, op in OPS.items())


def test_resolve_ops_scales_magnitudes_with_strength():
    cfg = aug_cfg(0.25, image=["rotation", "zoom"], series=["jitter"])
    assert resolve_ops(cfg, "image") == [("rotation", 0.0625), ("zoom", 0.125)]
    assert resolve_ops(cfg, "series") == [("jitter", 0.125)]
    full = aug_cfg(1.0, image=IMAGE_OPS, series=SERIES_OPS)
    for modality in MODALITIES:
        assert dict(resolve_ops(full, modality)) == {
            name: op.max_magnitude
            for name, op in OPS.items()
            if op.modality == modality and not op.mixing
        }


@pytest.mark.parametrize("path", sorted(CONF_AUG.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_aug_configs_resolve(make_cfg, path):
    cfg = make_cfg(f"aug={path.stem}").aug  # composed: the file on its schema (src/schema.py)
    if OmegaConf.is_missing(cfg, "ops") or "target" in cfg.keys():  # the user must fill in
        with pytest.raises(ConfigError, match=r"aug.(ops|target) is not set"):
            resolve_ops(cfg, "image")
        return
    modalities = MODALITIES
    if OmegaConf.is_list(cfg.ops) and len(cfg.ops):  # a single-modality list
        modalities = {OPS[op if isinstance(op, str) else op.name].modality for op in cfg.ops}
    elif cfg.get("idg"):
        modalities = ("image",)
    elif cfg.get("policy") and cfg.policy not in SERIES_POLICIES:  # image-only policies
        modalities = ("image",)
    for modality in modalities:
        pairs = resolve_ops(cfg, modality)
        assert all(magnitude > 0 for _, magnitude in pairs)
        per_sample = [n for n, _ in pairs if n not in OPS or not OPS[n].mixing]
        assert (build_augmentation(cfg, modality, seed=0) is None) == (not per_sample)


@pytest.mark.parametrize("modality", MODALITIES)
def test_strength_zero_or_no_ops_builds_nothing(modality):
    assert build_augmentation(aug_cfg(0.0, IMAGE_OPS, SERIES_OPS), modality, seed=0) is None
    assert resolve_ops(aug_cfg(0.0, IMAGE_OPS, SERIES_OPS), modality) == []
    assert build_augmentation(aug_cfg(1.0), modality, seed=0) is None


def test_build_augmentation_is_a_named_sequential_with_one_layer_per_op():
    cfg = aug_cfg(0.5, image=IMAGE_OPS)
    cfg.fused = False
    aug = build_augmentation(cfg, "image", seed=3)
    assert isinstance(aug, keras.Sequential)
    assert aug.name == "augmentation"
    assert [layer.name for layer in aug.layers] == IMAGE_OPS
    assert [layer.seed for layer in aug.layers] == list(range(3, 3 + len(IMAGE_OPS)))


def test_consecutive_ops_of_one_family_are_fused_into_one_layer():
    aug = build_augmentation(aug_cfg(0.5, image=IMAGE_OPS), "image", seed=3)
    assert IMAGE_OPS == ["flip", "rotation", "zoom", "contrast", "vertical_flip", "translation",
                         "shear", "brightness", "noise", "erasing", "blur"]  # fmt: skip
    names = [layer.name for layer in aug.layers]
    assert names == ["fused_flip_rotation_zoom", "contrast",
                     "fused_vertical_flip_translation_shear", "fused_brightness_noise",
                     "erasing", "blur"]  # fmt: skip
    assert aug.layers[0].ops == [("flip", 0.25), ("rotation", 0.125), ("zoom", 0.25)]
    assert aug.layers[3].ops == [("brightness", 0.25), ("noise", 0.1)]
    assert [layer.seed for layer in aug.layers[:4]] == [3, 6, 7, 10]


# --- properties every op must have --------------------------------------------------------------


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_is_identity_when_not_training(name, data):
    x = data[OPS[name].modality]
    aug = build_augmentation(single_op(name, 1.0), OPS[name].modality, seed=0)
    np.testing.assert_array_equal(run(aug, x, training=False), x)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_keeps_shape_dtype_and_image_range(name, data):
    x = data[OPS[name].modality]
    aug = build_augmentation(single_op(name, 1.0), OPS[name].modality, seed=0)
    y = run(aug, x)
    assert y.shape == x.shape
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    if OPS[name].modality == "image":
        assert y.min() >= 0.0 and y.max() <= 1.0
    assert not np.array_equal(y, x)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_same_seed_same_output_different_seed_different_output(name, data):
    x = data[OPS[name].modality]
    cfg, modality = single_op(name, 1.0), OPS[name].modality
    first = run(build_augmentation(cfg, modality, seed=0), x)
    again = run(build_augmentation(cfg, modality, seed=0), x)
    other = run(build_augmentation(cfg, modality, seed=1), x)
    np.testing.assert_array_equal(first, again)
    # a fixed-sigma blur draws nothing; a full-angle univariate rotation flips every series
    if name not in ("blur", "channel_rotation"):
        assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_op_change_grows_with_strength(name, data):
    x = data[OPS[name].modality]
    changes = [
        mean_change(build_augmentation(single_op(name, s), OPS[name].modality, seed=0), x)
        for s in (0.25, 0.5, 1.0)
    ]
    assert 0 < changes[0] < changes[1] < changes[2], changes


@pytest.mark.parametrize("fill_mode", ["constant", "reflect", "wrap", "nearest"])
def test_fill_modes_reach_the_geometric_layers(fill_mode, digits):
    cfg = aug_cfg(1.0, ["rotation", "zoom"], fill_mode=fill_mode)
    fused = build_augmentation(cfg, "image", 0)
    assert [layer.fill_mode for layer in fused.layers] == [fill_mode]
    cfg.fused = False
    unfused = build_augmentation(cfg, "image", 0)
    assert [layer.fill_mode for layer in unfused.layers] == [fill_mode, fill_mode]
    for aug in (fused, unfused):
        y = run(aug, digits[:50])
        assert y.min() >= 0.0 and y.max() <= 1.0


def test_flip_probability_is_half_the_strength(digits):
    x = digits
    for strength in (0.5, 1.0):
        y = run(build_augmentation(single_op("flip", strength), "image", seed=0), x)
        flipped = np.all(y == x[:, :, ::-1], axis=(1, 2, 3))
        kept = np.all(y == x, axis=(1, 2, 3))
        assert np.all(flipped | kept)  # every image is either flipped or untouched
        assert abs(np.mean(flipped & ~kept) - 0.5 * strength) < 0.06


# --- the series layers --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERIES_OPS)
def test_series_ops_keep_padding_exactly_zero(name, vowels):
    padded = ~np.any(vowels != 0, axis=-1)
    assert padded.any() and not padded.all()
    aug = build_augmentation(single_op(name, 1.0), "series", seed=0)
    y = run(aug, vowels)
    assert np.all(y[padded] == 0.0)
    assert not np.signbit(y[padded]).any()  # +0.0, not -0.0
    real = ~padded[..., None] & (vowels != 0)
    # resampling ops keep the end points, permutation may leave a segment in place
    assert np.mean(y[real] != vowels[real]) > 0.5


def test_jitter_noise_std_matches_stddev(gunpoint):
    for stddev in (0.1, 0.5):
        noise = run(Jitter(stddev, seed=0), gunpoint) - gunpoint
        assert abs(noise.std() - stddev) < 0.1 * stddev
        assert abs(noise.mean()) < 0.1 * stddev


def test_scaling_factor_per_series_and_channel_has_stddev(gunpoint):
    x = np.tile(gunpoint, (20, 1, 2))  # 1000 series, 2 channels: 2000 independent factors
    stddev = 0.2
    y = run(Scaling(stddev, seed=0), x)
    big = np.abs(x) > 0.5
    ratio = np.where(big, y / np.where(big, x, 1.0), np.nan)
    factor = np.nanmean(ratio, axis=1)  # (series, channel)
    # one factor per (series, channel), constant along time
    np.testing.assert_allclose(np.nanmax(ratio, axis=1), factor, rtol=1e-4)
    np.testing.assert_allclose(np.nanmin(ratio, axis=1), factor, rtol=1e-4)
    assert abs(factor.std() - stddev) < 0.1 * stddev
    assert abs(factor.mean() - 1.0) < 0.05
    assert abs(np.corrcoef(factor[:, 0], factor[:, 1])[0, 1]) < 0.1  # channels independent


def test_jitter_noises_zeros_inside_a_series_and_not_its_end_padding(gunpoint):
    # GunPoint with every 10th step set to exactly 0 and its last 20 steps padding
    x = gunpoint.copy()
    x[:, ::10] = 0.0
    x[:, -20:] = 0.0
    y = run(Jitter(0.5, seed=0), x)
    inside = y[:, :-20:10]
    assert np.mean(inside != 0) > 0.99  # zeros that are data get noise
    assert abs(inside.std() - 0.5) < 0.05
    assert np.all(y[:, -20:] == 0.0) and not np.signbit(y[:, -20:]).any()


@pytest.mark.parametrize("cls", [Jitter, Scaling])
def test_series_layer_zero_stddev_is_identity(cls, gunpoint):
    np.testing.assert_array_equal(run(cls(0.0, seed=0), gunpoint), gunpoint)


# --- RandomApply ----------------------------------------------------------------------------------


def test_random_apply_rate_zero_is_identity(digits):
    layer = RandomApply(keras.layers.RandomFlip("horizontal", seed=0), rate=0.0, seed=0)
    np.testing.assert_array_equal(run(layer, digits), digits)


def test_random_apply_rate_one_matches_inner_layer(digits, gunpoint):
    # RandomFlip alone flips about half the images; wrapped with rate 1 it still does
    wrapped = RandomApply(keras.layers.RandomFlip("horizontal", seed=0), rate=1.0, seed=0)
    y = run(wrapped, digits)
    flipped = np.mean(np.all(y == digits[:, :, ::-1], axis=(1, 2, 3)))
    assert abs(flipped - 0.5) < 0.06
    # a layer that changes everything: noise statistics unchanged by wrapping
    noise = run(RandomApply(Jitter(0.3, seed=0), rate=1.0, seed=0), gunpoint) - gunpoint
    assert abs(noise.std() - 0.3) < 0.03


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_random_apply_changes_a_rate_fraction_of_samples(rate, gunpoint):
    x = np.tile(gunpoint, (20, 1, 1))  # 1000 series
    y = run(RandomApply(Jitter(0.3, seed=1), rate=rate, seed=1), x)
    changed = np.any(y != x, axis=(1, 2))
    assert abs(changed.mean() - rate) < 0.05
    # unchanged samples are untouched, changed ones carry the inner layer's full noise
    np.testing.assert_array_equal(y[~changed], x[~changed])
    assert abs((y[changed] - x[changed]).std() - 0.3) < 0.03


def test_random_apply_same_seed_same_output(digits):
    def make(seed):
        return RandomApply(keras.layers.RandomFlip("horizontal", seed=seed), rate=0.5, seed=seed)

    np.testing.assert_array_equal(run(make(0), digits), run(make(0), digits))
    assert not np.array_equal(run(make(0), digits), run(make(1), digits))


# --- constructor validation and serialisation -----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Jitter(-0.1), r"Received: stddev=-0\.1"),
        (lambda: Jitter("0.1"), r"Received: stddev='0\.1'"),
        (lambda: Scaling(float("nan")), r"Received: stddev=nan"),
        (lambda: Scaling(0.1, seed=1.5), r"Received: seed=1\.5"),
        (lambda: RandomApply(keras.layers.RandomFlip(seed=0), rate=1.5), r"Received: rate=1\.5"),
        (lambda: RandomApply("flip", rate=0.5), r"Received: layer='flip'"),
    ],
)
def test_layer_constructors_reject_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Jitter(0.2, seed=5),
        lambda: Scaling(0.3, seed=5),
        lambda: RandomApply(Jitter(0.2, seed=6), rate=0.5, seed=5),
        lambda: RandomApply(keras.layers.RandomFlip("horizontal", seed=6), rate=0.5, seed=5),
    ],
)
def test_layer_config_round_trips(make, gunpoint, digits):
    layer = make()
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    x = digits if isinstance(getattr(layer, "layer", None), keras.layers.RandomFlip) else gunpoint
    np.testing.assert_array_equal(run(make(), x), run(rebuilt, x))


# keras 3.15's TF backend saves variables with np.array(tf.Variable), which numpy 2 flags with this
# DeprecationWarning (project pytest config turns warnings into errors); not ours to fix here.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
@pytest.mark.parametrize("modality", MODALITIES)
def test_saved_model_with_augmentation_loads_and_predicts_identically(modality, data, tmp_path):
    x = data[modality][:16]
    aug = build_augmentation(aug_cfg(1.0, IMAGE_OPS, SERIES_OPS), modality, seed=0)
    model = keras.Sequential(
        [keras.Input(shape=x.shape[1:]), aug, keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, np.zeros(len(x)))  # the augmentation runs in a compiled train step
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    loaded_aug = loaded.get_layer("augmentation")
    assert [type(layer) for layer in loaded_aug.layers] == [type(layer) for layer in aug.layers]
    # ops, magnitudes and seeds survive (Keras does not save seed-generator progress, so the
    # loaded pipeline restarts its random streams like a freshly built one)
    fresh = build_augmentation(aug_cfg(1.0, IMAGE_OPS, SERIES_OPS), modality, seed=0)
    np.testing.assert_array_equal(run(loaded_aug, x), run(fresh, x))


def test_building_augmentation_leaves_global_rng_untouched():
    def fresh_kernel(build_between) -> np.ndarray:
        keras.utils.set_random_seed(0)
        build_between()
        dense = keras.layers.Dense(8)
        dense.build((None, 16))
        return dense.kernel.numpy()

    def build_all():
        for modality in MODALITIES:
            build_augmentation(aug_cfg(1.0, IMAGE_OPS, SERIES_OPS), modality, seed=0)

    baseline = fresh_kernel(lambda: None)
    np.testing.assert_array_equal(fresh_kernel(build_all), baseline)
    # the check is sensitive: a seedless Keras augmentation layer does draw from the global RNG
    assert not np.array_equal(fresh_kernel(lambda: keras.layers.RandomFlip()), baseline)


# --- config errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "modality", "match"),
    [
        (aug_cfg(1.5), "image", r"aug\.strength=1\.5 is outside \[0, 1\]; accepted: a number"),
        (aug_cfg(-0.1), "series", r"aug\.strength=-0\.1 is outside \[0, 1\]"),
        (aug_cfg("strong"), "image", r"aug\.strength='strong' is not a number; accepted"),
        (aug_cfg(True), "image", r"aug\.strength=True is not a number"),
        (aug_cfg(0.5), "audio", r"modality 'audio' .*accepted: image, series"),
        (aug_cfg(0.5, ["warp"]), "image", r"unknown aug op 'warp'.*accepted: flip, rotation"),
        (
            aug_cfg(0.5, ["jitter"]),
            "image",
            r"aug op 'jitter' works on series data, but the dataset is image",
        ),
        (
            aug_cfg(0.5, series=["rotation"]),
            "image",
            r"aug op 'rotation' works on image data, but is listed in aug\.ops\.series",
        ),
        (aug_cfg(0.5, ["flip", "flip"]), "image", r"'flip' is listed twice"),
        (
            aug_cfg(0.5, fill_mode="mirror"),
            "image",
            r"aug\.fill_mode='mirror' .*accepted: constant, reflect, wrap, nearest",
        ),
        (
            OmegaConf.create({"strength": 0.5, "ops": {"image": []}, "fill_mode": "constant"}),
            "image",
            r"aug\.ops\.series=None is not a list",
        ),
        (
            OmegaConf.create({"strength": 0.5, "ops": {"image": [], "series": [], "text": []}}),
            "image",
            r"aug\.ops has unknown key 'text'",
        ),
    ],
)
def test_config_errors_are_one_line_config_errors(cfg, modality, match):
    for call in (lambda: resolve_ops(cfg, modality), lambda: build_augmentation(cfg, modality, 0)):
        with pytest.raises(ConfigError, match=match) as info:
            call()
        assert "\n" not in str(info.value)


def test_non_integer_seed_is_a_config_error():
    with pytest.raises(ConfigError, match=r"seed='0' is not an integer") as info:
        build_augmentation(aug_cfg(0.5, ["flip"]), "image", seed="0")
    assert "\n" not in str(info.value)
