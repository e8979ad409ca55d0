"""Every series op against the code of the survey it follows, on real series; and the
ImageDataGenerator keywords that tests/test_presets.py does not compare with ImageDataGenerator.

Series: B. K. Iwana and S. Uchida, "An empirical survey of data augmentation for time series
classification with neural networks", PLOS ONE 16(7): e0254841 (2021). Their functions, copied
below, run at the survey's setting (their defaults) on GunPoint as our loader gives it (the UCR
archive's series, each z-normalised), and so do our ops at the strength the strength table maps
that setting to, and with the survey's own parameters as `aug.ops` keys. The statistics of the
change (mean absolute change per value; for the ops that move values in time, how far they move,
read off a ramp) must agree within 15% over 1000 draws.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.preprocessing.image import ImageDataGenerator
from omegaconf import OmegaConf
from scipy.interpolate import CubicSpline
from sklearn.datasets import load_sample_images

from src.augment import OPS, build_augmentation, resolve_ops
from src.augment import series as series_ops
from src.augment.idg import idg_layers
from src.data.series import ucr
from src.errors import ConfigError

# --- the reference ------------------------------------------------------------------------------
# Copied from uchidalab/time_series_augmentation, utils/augmentation.py, commit
# 656318d18c0945080c969ce2bf839760880b8d30 (2022-01-20), licensed under the Apache License,
# Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0); unchanged except for whitespace, the
# noqa markers, the tqdm import (left out) and `permutation`, which indexes its splits with a
# permutation: their `np.random.permutation(splits)` makes an array of the splits, which current
# numpy refuses when the splits differ in length.
# fmt: off


def jitter(x, sigma=0.03):
    # https://arxiv.org/pdf/1706.00527.pdf
    return x + np.random.normal(loc=0., scale=sigma, size=x.shape)

def scaling(x, sigma=0.1):
    # https://arxiv.org/pdf/1706.00527.pdf
    factor = np.random.normal(loc=1., scale=sigma, size=(x.shape[0],x.shape[2]))
    return np.multiply(x, factor[:,np.newaxis,:])

def rotation(x):
    flip = np.random.choice([-1, 1], size=(x.shape[0],x.shape[2]))
    rotate_axis = np.arange(x.shape[2])
    np.random.shuffle(rotate_axis)
    return flip[:,np.newaxis,:] * x[:,:,rotate_axis]

def permutation(x, max_segments=5, seg_mode="equal"):
    orig_steps = np.arange(x.shape[1])

    num_segs = np.random.randint(1, max_segments, size=(x.shape[0]))

    ret = np.zeros_like(x)
    for i, pat in enumerate(x):
        if num_segs[i] > 1:
            if seg_mode == "random":
                split_points = np.random.choice(x.shape[1]-2, num_segs[i]-1, replace=False)
                split_points.sort()
                splits = np.split(orig_steps, split_points)
            else:
                splits = np.array_split(orig_steps, num_segs[i])
            # changed: was np.concatenate(np.random.permutation(splits)).ravel()
            warp = np.concatenate([splits[j] for j in np.random.permutation(len(splits))]).ravel()
            ret[i] = pat[warp]
        else:
            ret[i] = pat
    return ret

def magnitude_warp(x, sigma=0.2, knot=4):
    from scipy.interpolate import CubicSpline
    orig_steps = np.arange(x.shape[1])

    random_warps = np.random.normal(loc=1.0, scale=sigma, size=(x.shape[0], knot+2, x.shape[2]))
    warp_steps = (np.ones((x.shape[2],1))*(np.linspace(0, x.shape[1]-1., num=knot+2))).T
    ret = np.zeros_like(x)
    for i, pat in enumerate(x):
        warper = np.array([CubicSpline(warp_steps[:,dim], random_warps[i,:,dim])(orig_steps) for dim in range(x.shape[2])]).T  # noqa: E501
        ret[i] = pat * warper

    return ret

def time_warp(x, sigma=0.2, knot=4):
    from scipy.interpolate import CubicSpline
    orig_steps = np.arange(x.shape[1])

    random_warps = np.random.normal(loc=1.0, scale=sigma, size=(x.shape[0], knot+2, x.shape[2]))
    warp_steps = (np.ones((x.shape[2],1))*(np.linspace(0, x.shape[1]-1., num=knot+2))).T

    ret = np.zeros_like(x)
    for i, pat in enumerate(x):
        for dim in range(x.shape[2]):
            time_warp = CubicSpline(warp_steps[:,dim], warp_steps[:,dim] * random_warps[i,:,dim])(orig_steps)  # noqa: E501
            scale = (x.shape[1]-1)/time_warp[-1]
            ret[i,:,dim] = np.interp(orig_steps, np.clip(scale*time_warp, 0, x.shape[1]-1), pat[:,dim]).T  # noqa: E501
    return ret

def window_slice(x, reduce_ratio=0.9):
    # https://halshs.archives-ouvertes.fr/halshs-01357973/document
    target_len = np.ceil(reduce_ratio*x.shape[1]).astype(int)
    if target_len >= x.shape[1]:
        return x
    starts = np.random.randint(low=0, high=x.shape[1]-target_len, size=(x.shape[0])).astype(int)
    ends = (target_len + starts).astype(int)

    ret = np.zeros_like(x)
    for i, pat in enumerate(x):
        for dim in range(x.shape[2]):
            ret[i,:,dim] = np.interp(np.linspace(0, target_len, num=x.shape[1]), np.arange(target_len), pat[starts[i]:ends[i],dim]).T  # noqa: E501
    return ret

def window_warp(x, window_ratio=0.1, scales=[0.5, 2.]):  # noqa: B006
    # https://halshs.archives-ouvertes.fr/halshs-01357973/document
    warp_scales = np.random.choice(scales, x.shape[0])
    warp_size = np.ceil(window_ratio*x.shape[1]).astype(int)
    window_steps = np.arange(warp_size)

    window_starts = np.random.randint(low=1, high=x.shape[1]-warp_size-1, size=(x.shape[0])).astype(int)  # noqa: E501
    window_ends = (window_starts + warp_size).astype(int)

    ret = np.zeros_like(x)
    for i, pat in enumerate(x):
        for dim in range(x.shape[2]):
            start_seg = pat[:window_starts[i],dim]
            window_seg = np.interp(np.linspace(0, warp_size-1, num=int(warp_size*warp_scales[i])), window_steps, pat[window_starts[i]:window_ends[i],dim])  # noqa: E501
            end_seg = pat[window_ends[i]:,dim]
            warped = np.concatenate((start_seg, window_seg, end_seg))
            ret[i,:,dim] = np.interp(np.arange(x.shape[1]), np.linspace(0, x.shape[1]-1., num=warped.size), warped).T  # noqa: E501
    return ret


# fmt: on
# --- end of the reference -----------------------------------------------------------------------

REFERENCE = {
    "jitter": jitter, "scaling": scaling, "magnitude_warp": magnitude_warp,
    "time_warp": time_warp, "window_slice": window_slice, "window_warp": window_warp,
    "permutation": permutation, "channel_rotation": rotation,
}  # fmt: skip
MOVES_IN_TIME = ("time_warp", "window_slice", "window_warp", "permutation")
DRAWS = 20  # passes over GunPoint's 50 training series: 1000 draws
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def gunpoint() -> np.ndarray:
    return ucr({"name": "gunpoint"}).x_train


@pytest.fixture(scope="module")
def motions() -> np.ndarray:
    return ucr({"name": "basic_motions"}).x_train


@pytest.fixture(autouse=True)
def seeded_numpy():
    """The reference draws from numpy's global generator: seeded here, restored afterwards."""
    state = np.random.get_state()
    np.random.seed(0)
    yield
    np.random.set_state(state)


def ramp_like(x: np.ndarray) -> np.ndarray:
    """Value t + 1 at step t: an op's output on it is where each step read from (plus 1)."""
    steps = np.arange(1, x.shape[1] + 1, dtype="float32")[None, :, None]
    return np.broadcast_to(steps, x.shape).copy()


def ours(op: dict, strength: float = 1.0):
    """The layers `aug.ops=[op]` builds at `strength`, as a batch -> batch function."""
    cfg = OmegaConf.create({"strength": strength, "ops": [op]})
    layers = build_augmentation(cfg, "series", seed=0)
    return lambda x: keras.ops.convert_to_numpy(layers(x, training=True))


def change(augment, x: np.ndarray, draws: int = DRAWS) -> float:
    """Mean absolute change per value over `draws` passes."""
    return float(np.mean([np.abs(augment(x) - x).mean() for _ in range(draws)]))


def theirs(name: str, **kwargs):
    return lambda x: REFERENCE[name](x.astype("float64"), **kwargs)


@pytest.mark.parametrize("name", [n for n in REFERENCE if OPS[n].literature.strength is not None])
def test_the_strength_table_maps_the_surveys_setting_to_the_same_change(name, gunpoint):
    survey = OPS[name].literature
    draws = 2 * DRAWS if name in ("permutation", "channel_rotation") else DRAWS  # noisier
    for x in (gunpoint, ramp_like(gunpoint)) if name in MOVES_IN_TIME else (gunpoint,):
        expected = change(theirs(name), x, draws)
        assert change(ours({"name": name}, survey.strength), x, draws) == pytest.approx(
            expected, rel=TOLERANCE
        )


@pytest.mark.parametrize("name", list(REFERENCE))
def test_the_surveys_own_parameters_give_the_same_change(name, gunpoint, motions):
    """`{name: op, <the reference's argument>: <its default>}` is the survey's setting."""
    params = OPS[name].literature.params
    key = next(iter(params))
    entry = {"name": name, key: params[key].default}
    data = [gunpoint, ramp_like(gunpoint)] if name in MOVES_IN_TIME else [gunpoint]
    if name in ("time_warp", "channel_rotation"):  # every channel its own warp; channel shuffles
        data.append(motions)
    draws = 2 * DRAWS if name in ("permutation", "channel_rotation") else DRAWS
    for x in data:
        expected = change(theirs(name), x, draws)
        assert change(ours(entry, 0.5), x, draws) == pytest.approx(expected, rel=TOLERANCE)


def test_time_warp_at_strength_1_moves_less_than_the_surveys_sigma(gunpoint):
    """Why the table maps the survey's time warp to no strength: ours multiplies the speed."""
    assert [n for n, op in OPS.items() if op.literature and op.literature.strength is None] == [
        "time_warp"
    ]
    assert change(theirs("time_warp"), gunpoint) == pytest.approx(0.47, abs=0.03)
    assert change(ours({"name": "time_warp"}, 1.0), gunpoint) == pytest.approx(0.29, abs=0.03)


def knot_factors(monkeypatch, factors: np.ndarray) -> None:
    """Make the series layers draw exactly `factors` as their normal variates."""
    monkeypatch.setattr(
        series_ops,
        "_normal",
        lambda layer, shape, mean, stddev: tf.reshape(tf.constant(factors, tf.float32), shape),
    )


@pytest.mark.parametrize("name", ["magnitude_warp", "time_warp"])
def test_the_warps_are_the_references_given_the_same_knots(name, gunpoint, monkeypatch):
    """Drawn the same knot factors, our warps give the reference's series. For time_warp, every
    series whose warped clock increases; where it turns back, np.interp's answer depends on its
    search, ours reads the clock's running maximum (their mean change agrees, tested above)."""
    expected = REFERENCE[name](gunpoint.astype("float64"))
    np.random.seed(0)
    factors = np.random.normal(1.0, 0.2, size=(len(gunpoint), 6, 1))
    knot_factors(monkeypatch, factors)
    got = ours({"name": name, "sigma": 0.2})(gunpoint)
    error = np.abs(got - expected).max(axis=(1, 2))
    steps = np.arange(gunpoint.shape[1])
    knots = np.linspace(0, steps[-1], 6)
    clocks = [CubicSpline(knots, knots * f)(steps) for f in factors[:, :, 0]]
    clocks = [np.clip(c * steps[-1] / c[-1], 0, steps[-1]) for c in clocks]  # as the reference
    increasing = np.array([np.all(np.diff(c) >= 0) for c in clocks])
    compared = increasing if name == "time_warp" else np.ones(len(gunpoint), bool)
    assert compared.mean() > 0.5
    assert error[compared].max() < 1e-4


@pytest.mark.parametrize(
    ("entry", "layer_config"),
    [
        ({"name": "jitter", "sigma": 0.03}, {"stddev": 0.03}),
        ({"name": "scaling", "sigma": 0.1}, {"stddev": 0.1}),
        ({"name": "magnitude_warp", "knot": 6}, {"sigma": 0.2, "knots": 6}),
        ({"name": "time_warp", "sigma": 0.2}, {"sigma": 0.2, "knots": 4, "mode": "position"}),
        ({"name": "window_slice", "reduce_ratio": 0.9}, {"ratio": 0.1}),
        ({"name": "window_warp", "window_ratio": 0.2, "scales": [0.25, 4]},
         {"ratio": 0.2, "scales": [0.25, 4.0]}),
        ({"name": "permutation", "max_segments": 5}, {"max_segments": 4.0}),
        ({"name": "channel_rotation", "flip": 0.5}, {"angle": math.pi / 2, "mode": "flip_shuffle"}),
    ],
    ids=lambda v: v["name"] if "name" in v else "",
)  # fmt: skip
def test_survey_keys_build_the_layer_they_mean(entry, layer_config, make_cfg):
    ops = "[{" + ",".join(f"{k}:{v}".replace(" ", "") for k, v in entry.items()) + "}]"
    cfg = make_cfg("data=gunpoint", "aug=combo", f"aug.ops={ops}")
    (layer,) = build_augmentation(cfg.aug, "series", seed=0).layers
    assert layer.get_config().items() >= layer_config.items()
    zero = OmegaConf.merge(cfg.aug, {"strength": 0.0})
    assert resolve_ops(zero, "series") == []  # strength 0 still turns it off


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "time_warp", "sigm": 0.2},
         r"aug.ops op 'time_warp' has unknown key 'sigm'; accepted: name, magnitude, sigma, knot"),
        ({"name": "time_warp", "sigma": 0.2, "magnitude": 0.1},
         r"has magnitude=0.1 and sigma=0.2; accepted: one of magnitude \(ours\) or sigma, knot"),
        ({"name": "time_warp", "sigma": -0.2}, r"has sigma=-0.2; accepted: a number >= 0"),
        ({"name": "magnitude_warp", "knot": 2.5}, r"knot=2.5; accepted: an integer in \[1, 1000\]"),
        ({"name": "window_warp", "scales": []}, r"scales=\[\]; accepted: a non-empty list"),
        ({"name": "permutation", "max_segments": 1}, r"max_segments=1; accepted: an integer in"),
        ({"name": "window_slice", "reduce_ratio": True}, r"reduce_ratio=True; accepted: a number"),
    ],
)  # fmt: skip
def test_bad_survey_keys_are_config_errors(entry, message):
    with pytest.raises(ConfigError, match=message):
        resolve_ops(OmegaConf.create({"strength": 0.5, "ops": [entry]}), "series")


def test_image_ops_take_no_survey_keys():
    cfg = OmegaConf.create({"strength": 0.5, "ops": [{"name": "zoom", "sigma": 0.1}]})
    with pytest.raises(ConfigError, match=r"'zoom' has unknown key 'sigma'; accepted: name, mag"):
        resolve_ops(cfg, "image")


# --- image ops: the ImageDataGenerator keywords not compared elsewhere ---------------------------

IDG_WARNING = "ignore:Please import `affine_transform`:DeprecationWarning"  # IDG's own import


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """48 real 48x48 RGB crops of scikit-learn's two sample photos, in [0, 1]."""
    crops = [photo[r : r + 192, c : c + 192] for photo in load_sample_images().images
             for r in range(0, 224, 48) for c in range(0, 448, 96)]  # fmt: skip
    return tf.image.resize(np.stack(crops).astype("float32") / 255.0, (48, 48)).numpy()[:48]


def idg(kwargs: dict):
    generator = ImageDataGenerator(**kwargs)
    return lambda x: np.stack([generator.random_transform(img * 255.0) / 255.0 for img in x])


@pytest.mark.filterwarnings(IDG_WARNING)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"brightness_range": [0.5, 1.5]},
        {"rotation_range": 40, "fill_mode": "constant"},
        {"zoom_range": [0.7, 1.0], "fill_mode": "reflect"},
    ],
    ids=["brightness_range", "rotation_constant", "zoom_in_reflect"],
)
def test_idg_keywords_change_photos_as_image_data_generator_does(kwargs, photos):
    layers = keras.Sequential(idg_layers(kwargs, 1.0, seed=0))
    expected = change(idg(kwargs), photos, draws=4)
    assert expected > 0.01
    ours_change = change(lambda x: keras.ops.convert_to_numpy(layers(x, training=True)), photos, 4)
    assert ours_change == pytest.approx(expected, rel=0.2)


@pytest.mark.parametrize("key", ["horizontal_flip", "vertical_flip"])
def test_idg_flips_half_the_images_as_image_data_generator_does(key, photos):
    axis = 2 if key == "horizontal_flip" else 1
    layers = keras.Sequential(idg_layers({key: True}, 1.0, seed=0))
    for augment in (
        idg({key: True}),
        lambda x: keras.ops.convert_to_numpy(layers(x, training=True)),
    ):
        out = np.concatenate([augment(photos) for _ in range(8)])
        x = np.concatenate([photos] * 8)
        flipped = np.all(np.abs(out - np.flip(x, axis)) < 1e-4, axis=(1, 2, 3))
        kept = np.all(np.abs(out - x) < 1e-4, axis=(1, 2, 3))
        assert np.all(flipped | kept)
        assert abs(flipped.mean() - 0.5) < 4 * math.sqrt(0.25 / len(x))
