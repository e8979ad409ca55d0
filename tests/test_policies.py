"""Augmentation policies on real images and series: RandAugment, TrivialAugment, AugMix and the
series RandAugment, their magnitude (aug.strength), their N (aug.num_ops) and aug.exclude."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf

from src.augment import OPS, aug_label, build_augmentation, policy_ops, resolve_ops
from src.augment.policies import (
    IMAGE_POLICY_OPS,
    POLICY_OPS,
    AugMix,
    RandAugment,
    SeriesRandAugment,
    TrivialAugment,
    policy_table,
)
from src.errors import ConfigError
from tests.conftest import CONF, ROOT

STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SERIES_OPS = [name for name, op in OPS.items() if op.modality == "series"]


@pytest.fixture
def digits(digits) -> np.ndarray:
    """The first 256 of conftest's digits: on these, each op changes every image it is drawn for
    (test_each_image_gets_exactly_n_ops_measured_on_digits); some later digit is left as it was
    by one op at strength 0.5."""
    return digits[:256]


def out(layer, x, training=True) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, training=training))


def change(layer, x) -> float:
    return float(np.abs(out(layer, x) - x).mean())


class Recorded(RandAugment):
    """RandAugment that records its draws, or replays given ones (the instrument of the tests:
    which op each image got in each of its N slots, and at which magnitude)."""

    def __init__(self, *args, replay=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.replay, self.drawn = replay, None

    def _distinct(self, n, k):
        if self.replay is not None:
            return tf.constant(self.replay[0])
        idx = super()._distinct(n, k)
        self.drawn = [idx.numpy(), []]
        return idx

    def _magnitudes(self, idx, uniform):
        if self.replay is not None:
            m = self.replay[1][self._slot]
            self._slot += 1
            return tf.constant(m)
        m = super()._magnitudes(idx, uniform)
        self.drawn[1].append(m.numpy())
        return m

    def augment(self, x):
        self._slot = 0
        return super().augment(x)


def test_the_policy_table_is_the_readme_and_every_op_is_in_a_paper_list():
    assert policy_table() in (ROOT / "README.md").read_text()
    assert set(POLICY_OPS["randaugment"]) == set(IMAGE_POLICY_OPS) - {"identity"}
    assert POLICY_OPS["trivialaugment"][0] == "identity"
    # AugMix's paper leaves out what overlaps ImageNet-C's corruptions
    assert not {"brightness", "color", "contrast", "sharpness"} & set(POLICY_OPS["augmix"])


@pytest.mark.parametrize("cls", [RandAugment, TrivialAugment, AugMix])
def test_strength_zero_is_the_identity(cls, digits, photos):
    for x in (digits, photos):
        np.testing.assert_array_equal(out(cls(0.0, seed=1), x), x)


@pytest.mark.parametrize("name", list(IMAGE_POLICY_OPS))
def test_every_op_at_magnitude_zero_is_the_identity(name, photos):
    """The kernels themselves, not only the layers' short cut at strength 0 (float rounding)."""
    layer = RandAugment(1.0, num_ops=1, ops=[name]) if name != "identity" else TrivialAugment(1.0)
    layer.build(photos.shape)
    idx = tf.fill((len(photos),), layer.active.index(name))
    got = layer.apply(tf.constant(photos), idx, tf.zeros(len(photos))).numpy()
    np.testing.assert_allclose(got, photos, atol=1e-6)


def test_aug_randaugment_at_strength_zero_builds_nothing_and_is_recorded_as_zero(make_cfg):
    from src.train import prepare

    cfg = make_cfg("aug=randaugment", "aug.strength=0", "data.subset=100")
    assert build_augmentation(cfg.aug, "image", seed=0) is None
    job, _ = prepare(cfg)
    assert job.aug.strength == 0.0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_each_image_gets_exactly_n_ops_measured_on_digits(n, digits):
    """Measured: with each slot's magnitude set to 0 in turn (all other draws replayed), the
    image changes for exactly N slots, i.e. N ops changed it; and the N are distinct ops.
    auto_contrast is excluded: digits already span [0, 1], so it leaves most of them as they
    are (posterize, solarize and the rest change every digit at strength 0.5)."""
    ops = [name for name in POLICY_OPS["randaugment"] if name != "auto_contrast"]
    layer = Recorded(0.5, num_ops=n, ops=ops, seed=4)
    full = out(layer, digits)
    idx, magnitudes = layer.drawn
    assert idx.shape == (len(digits), n)
    assert all(len(set(row)) == n for row in idx)  # distinct ops per image
    assert len(set(idx[:, 0])) == len(layer.active) == 11  # per image, not one draw per batch
    replayed = Recorded(0.5, num_ops=n, ops=ops, replay=(idx, magnitudes))
    np.testing.assert_array_equal(out(replayed, digits), full)  # the replay is the layer
    changed = np.zeros(len(digits), dtype=int)
    for j in range(n):
        silenced = [m if k != j else np.zeros_like(m) for k, m in enumerate(magnitudes)]
        without = out(Recorded(0.5, num_ops=n, ops=ops, replay=(idx, silenced)), digits)
        changed += np.abs(without - full).reshape(len(digits), -1).max(axis=1) > 1e-6
    assert changed.tolist() == [n] * len(digits)


def test_on_grey_images_colour_is_left_out_and_the_others_are_drawn_evenly(digits):
    layer = Recorded(0.5, num_ops=1, seed=0)
    x = np.tile(digits, (8, 1, 1, 1))  # 2048 images
    out(layer, x)
    assert "color" not in layer.active and len(layer.active) == 12
    counts = np.bincount(layer.drawn[0][:, 0], minlength=12)
    assert counts.min() > 2048 / 12 * 0.7 and counts.max() < 2048 / 12 * 1.3, counts


@pytest.mark.parametrize("cls", [RandAugment, TrivialAugment, AugMix])
def test_change_grows_with_strength(cls, digits):
    changes = [change(cls(s, seed=2), digits[:128]) for s in STRENGTHS]
    assert changes[0] == 0.0
    assert all(a < b for a, b in zip(changes, changes[1:], strict=False)), changes


@pytest.mark.parametrize("name", [n for n in IMAGE_POLICY_OPS if n != "identity"])
def test_every_op_changes_photos_more_at_higher_strength(name, photos):
    changes = [change(RandAugment(s, num_ops=1, ops=[name], seed=3), photos) for s in STRENGTHS]
    assert changes[0] == 0.0 and changes[1] > 0, changes
    assert all(a <= b + 1e-6 for a, b in zip(changes, changes[1:], strict=False)), changes
    assert changes[-1] > changes[1], changes


def test_magnitudes_are_the_table_at_m_equal_ten_strength(digits):
    """RandAugment's magnitude is fixed at strength x top (a random sign for signed ops);
    TrivialAugment's is uniform in [0, that]."""
    layer = Recorded(0.6, num_ops=2, seed=5)
    out(layer, digits)
    idx, magnitudes = layer.drawn
    tops = np.array([IMAGE_POLICY_OPS[n].top for n in layer.active])
    for j in range(2):
        np.testing.assert_allclose(np.abs(magnitudes[j]), 0.6 * tops[idx[:, j]], rtol=1e-6)
    signed = np.array([IMAGE_POLICY_OPS[n].signed for n in layer.active])[idx[:, 0]]
    assert 0.3 < np.mean(magnitudes[0][signed] < 0) < 0.7  # both signs
    trivial = TrivialAugment(0.6, seed=5)
    trivial.build(digits.shape)
    drawn = trivial._magnitudes(tf.zeros(4000, "int32") + 1, uniform=True).numpy()  # rotation
    assert np.abs(drawn).max() <= 18.0 and np.abs(drawn).mean() == pytest.approx(9.0, rel=0.05)


@pytest.mark.parametrize("cls", [RandAugment, TrivialAugment, AugMix])
def test_policy_layer_properties(cls, digits, photos, tmp_path):
    """Identity outside training; same seed same output, other seed other; shape, dtype and
    range kept; the config round-trips and a saved model reloads and predicts the same."""
    for x in (digits[:16], photos[:8]):
        np.testing.assert_array_equal(out(cls(0.7, seed=1), x, training=False), x)
        a, b, c = out(cls(0.7, seed=1), x), out(cls(0.7, seed=1), x), out(cls(0.7, seed=2), x)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        assert a.shape == x.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    layer = cls(0.7, seed=1, ops=POLICY_OPS[cls.policy][:4])
    again = cls.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((8, 8, 1)), cls(0.7, seed=1), keras.layers.Flatten(),
                              keras.layers.Dense(3)])  # fmt: skip
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(digits, verbose=0), model.predict(digits, verbose=0))


def test_policies_trace_statelessly_with_seeds(digits):
    """Inside one traced function, as the engine calls the network (stateless_call with the
    seed state threaded through): every call draws anew, and the same start state repeats."""
    model = keras.Sequential([keras.Input((8, 8, 1)), RandAugment(0.5, seed=7)])
    trainable = [v.value for v in model.trainable_variables]

    @tf.function(autograph=False)
    def step(state, x):
        return model.stateless_call(trainable, state, x, training=True)

    start = [v.value for v in model.non_trainable_variables]
    first, state = step(start, digits)
    second, _ = step(state, digits)
    again, _ = step(start, digits)
    assert not np.array_equal(first.numpy(), second.numpy())
    np.testing.assert_array_equal(first.numpy(), again.numpy())


def test_keras_randaugment_factor_is_not_a_magnitude_knob(digits):
    """Why augsweep's RandAugment is the default (src/augment/policies.py): on digits Keras's own
    changes every image at factor 0, and changes them less at factor 1 than at factor 0."""
    changes = {
        f: change(keras.layers.RandAugment(value_range=(0, 1), factor=f, seed=1), digits)
        for f in (0.0, 1.0)
    }
    assert changes[0.0] > 0.1 and changes[1.0] < changes[0.0], changes


def test_keras_implementation_builds_keras_layers_without_excluded_ops(make_cfg, digits):
    cfg = make_cfg("aug=randaugment", "aug.implementation=keras", "aug.exclude=[solarization]")
    (layer,) = build_augmentation(cfg.aug, "image", seed=0).layers
    assert (
        isinstance(layer, keras.layers.RandAugment) and "solarization" not in layer._AUGMENT_LAYERS
    )
    assert layer.factor == (0, 0.5) and layer.num_ops == 2
    assert out(layer, digits).shape == digits.shape
    augmix = make_cfg("aug=augmix", "aug.implementation=keras", "aug.exclude=[equalization]")
    (mixer,) = build_augmentation(augmix.aug, "image", seed=0).layers
    assert isinstance(mixer, keras.layers.AugMix) and "equalization" not in mixer._augment_layers
    with pytest.raises(ConfigError, match=r"'solarize' in aug.exclude.*random_shear"):
        resolve_ops(make_cfg("aug=randaugment", "aug.implementation=keras",
                             "aug.exclude=[solarize]").aug, "image")  # fmt: skip


# -- series -----------------------------------------------------------------------------------


def test_series_policy_keeps_padding_and_shape(vowels):
    """JapaneseVowels: 12 channels, lengths 7-26 zero-padded to 26. The padding stays exactly
    +0.0 and nearly every series changes inside its own length, for every N."""
    x = vowels[:64]
    # padding: the steps with no non-zero step at or after them
    later = np.cumsum(np.any(x != 0, axis=-1)[:, ::-1], axis=1)[:, ::-1]
    padding = np.broadcast_to((later == 0)[..., None], x.shape)
    assert len(set(later[:, 0])) > 5 and padding.any()  # lengths differ
    for n in (1, 2, 3):
        layer = SeriesRandAugment(0.8, num_ops=n, seed=3)
        got = out(layer, x)
        assert got.shape == x.shape
        assert np.all(got[padding] == 0) and not np.signbit(got[padding]).any()
        # an op can leave a series as it is (a permutation into 1 segment, no sign flip drawn)
        assert (np.abs(got - x).reshape(len(x), -1).max(axis=1) > 0).mean() > 0.85


def test_series_policy_strength_zero_and_training_false_are_the_identity(gunpoint):
    np.testing.assert_array_equal(out(SeriesRandAugment(0.0, seed=1), gunpoint), gunpoint)
    np.testing.assert_array_equal(out(SeriesRandAugment(1.0, seed=1), gunpoint, False), gunpoint)
    changes = [change(SeriesRandAugment(s, num_ops=2, seed=1), gunpoint) for s in STRENGTHS]
    assert all(a < b for a, b in zip(changes, changes[1:], strict=False)), changes


def test_series_policy_config_round_trips_and_excludes(make_cfg, gunpoint):
    cfg = make_cfg("data=gunpoint", "aug=randaugment", "aug.exclude=[channel_rotation]")
    (layer,) = build_augmentation(cfg.aug, "series", seed=0).layers
    assert isinstance(layer, SeriesRandAugment) and layer.ops == SERIES_OPS[:-1]
    again = SeriesRandAugment.from_config(layer.get_config())
    np.testing.assert_array_equal(out(again, gunpoint), out(layer, gunpoint))


# -- config: aug=<policy>, num_ops, exclude ------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "label", "ops"),
    [
        (["aug=randaugment"], "randaugment_n2", POLICY_OPS["randaugment"]),
        (["aug=randaugment", "aug.num_ops=3", "aug.exclude=[solarize,equalize]"],
         "randaugment_n3-equalize-solarize",
         [n for n in POLICY_OPS["randaugment"] if n not in ("solarize", "equalize")]),
        (["aug=trivialaugment"], "trivialaugment", POLICY_OPS["trivialaugment"]),
        (["aug=augmix"], "augmix_n3", POLICY_OPS["augmix"]),
        (["aug=randaugment", "data=gunpoint"], "randaugment_n2", SERIES_OPS),
    ],
)  # fmt: skip
def test_policy_configs_compose_to_their_ops(make_cfg, overrides, label, ops):
    cfg = make_cfg(*overrides)
    modality = "series" if "data=gunpoint" in overrides else "image"
    assert aug_label(cfg.aug) == label and policy_ops(cfg.aug, modality) == ops
    assert resolve_ops(cfg.aug, modality) == [(cfg.aug.policy, cfg.aug.strength)]


def test_the_policy_study_grid_is_eighteen_distinct_jobs(make_cfg):
    """`-m aug=randaugment aug.strength=0,0.2,...,1 aug.num_ops=1,2,3`: every job composes,
    and every one is its own experiment (config hash) and setting of the report (aug tag);
    only strength 0 is the same computation for every N."""
    from src.callbacks import grid
    from src.config import check_cli
    from src.tracking import config_hash
    from src.train import prepare

    args = ["aug=randaugment", "aug.strength=0,0.2,0.4,0.6,0.8,1", "aug.num_ops=1,2,3"]
    assert check_cli(["-m", *args]) == [("aug", "randaugment")]
    assert grid(args) == (18, ["aug.strength", "aug.num_ops"])
    hashes, settings = set(), set()
    for n in (1, 2, 3):
        for s in STRENGTHS:
            job, _ = prepare(make_cfg("aug=randaugment", f"aug.strength={s}", f"aug.num_ops={n}",
                                      "data.subset=100"))  # fmt: skip
            hashes.add(config_hash(job))
            settings.add((aug_label(job.aug), job.aug.strength))
    assert len(hashes) == 18 and len(settings) == 18


@pytest.mark.parametrize(
    ("overrides", "modality", "message"),
    [
        (["aug=randaugment", "aug.exclude=[flip]"], "image",
         r"^unknown op 'flip' in aug.exclude, not one of the ops of randaugment \(augsweep\) on "
         r"image data; accepted: rotation, shear_x, .*, equalize$"),
        (["aug=randaugment", "aug.exclude=[rotation]"], "series",
         r"^unknown op 'rotation' in aug.exclude, .*series data; accepted: jitter, scaling, "),
        (["aug=augmix", f"aug.exclude=[{','.join(POLICY_OPS['augmix'])}]"], "image",
         r"aug.exclude=\[.*\] leaves no op of augmix; accepted: a list that keeps at least one"),
        (["aug=randaugment", "aug.num_ops=14"], "image",
         r"^aug.num_ops=14 is more than the 13 ops of randaugment on image data left by "
         r"aug.exclude; accepted: 1 to 13$"),
        (["aug=randaugment", "aug.num_ops=0"], "image", r"aug.num_ops=0 .*an integer >= 1"),
        (["aug=trivialaugment", "aug.num_ops=2"], "image",
         r"aug.num_ops=2 is not allowed with aug.policy=trivialaugment"),
        (["aug=trivialaugment"], "series",
         r"aug.policy='trivialaugment' works on image data, but the dataset is series"),
        (["aug=randaugment", "aug.implementation=keras"], "series",
         r"aug.implementation='keras' has no randaugment for series data"),
        (["aug=randaugment", "aug.exclude=solarize"], "image",
         r"aug.exclude='solarize' is not a list of op names"),
        (["aug=heavy", "+aug.exclude=[vertical_flip]"], "image",
         r"unknown op 'vertical_flip' in aug.exclude, not one of the op list; accepted: flip, "
         r"rotation, zoom, contrast$"),
    ],
)  # fmt: skip
def test_bad_policy_settings_are_one_line_config_errors(make_cfg, overrides, modality, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=message) as err:
        resolve_ops(cfg.aug, modality)
    assert "\n" not in str(err.value)


def test_a_bad_exclude_stops_the_job_before_it_trains(make_cfg):
    from mlflow.tracking import MlflowClient

    from src.train import run

    with pytest.raises(ConfigError, match=r"unknown op 'flipp' in aug.exclude"):
        run(make_cfg("aug=randaugment", "aug.exclude=[flipp]"))
    (found,) = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("augsweep").experiment_id]
    )
    assert found.info.status == "FAILED" and "flipp" in found.data.tags["augsweep.error"]
    assert not [k for k in found.data.metrics if k.startswith("fold")]  # nothing trained


def test_exclude_removes_ops_from_the_draws_and_from_an_op_list(make_cfg, digits):
    cfg = make_cfg("aug=randaugment", "aug.num_ops=3", "aug.exclude=[solarize,equalize,rotation]")
    (layer,) = build_augmentation(cfg.aug, "image", seed=0).layers
    recorded = Recorded(0.5, num_ops=3, ops=layer.ops, seed=1)
    out(recorded, np.tile(digits, (4, 1, 1, 1)))
    drawn = {recorded.active[i] for i in recorded.drawn[0].ravel()}
    assert drawn == set(recorded.active) and not drawn & {"solarize", "equalize", "rotation"}
    heavy = make_cfg("aug=heavy", "+aug.exclude=[flip]")
    assert [n for n, _ in resolve_ops(heavy.aug, "image")] == ["rotation", "zoom", "contrast"]


def test_shipped_policy_yamls_say_their_placement_and_command(make_cfg):
    for name in ("randaugment", "trivialaugment", "augmix"):
        cfg = make_cfg(f"aug={name}").aug  # placement: the schema's default, model
        text = (CONF / "aug" / f"{name}.yaml").read_text()
        assert cfg.policy == name and cfg.placement == "model"
        assert f"python -m src.sweep -m aug=none,{name} aug.strength=" in text


@pytest.mark.parametrize(
    ("overrides", "modality"),
    [(["aug=randaugment", "aug.strength=1"], "image"), (["aug=trivialaugment"], "image"),
     (["aug=augmix", "aug.strength=1"], "image"), (["aug=randaugment", "data=gunpoint"], "series")],
)  # fmt: skip
def test_the_run_preview_draws_what_the_policy_does(
    make_cfg, overrides, modality, digits, gunpoint
):
    """A run's augmentation_preview.png comes from the job's plan (src.train.log_preview): its
    augmented row is the policy's output on the originals, seeded as training is."""
    from src.augment.plan import Plan
    from src.augment.preview import mosaic_tiles, preview_figure

    cfg = make_cfg(*overrides)
    x = digits[:8] if modality == "image" else gunpoint[:8]
    plan = Plan.build(cfg.aug, modality, n_classes=10, seed=3)
    expected = Plan.build(cfg.aug, modality, n_classes=10, seed=3).preview(x)
    assert not np.allclose(expected, x)
    fig = preview_figure(x, plan.preview, modality, "preview")
    if modality == "image":
        _, shown = mosaic_tiles(fig, x.shape[1:], len(x))
        np.testing.assert_allclose(shown, np.clip(expected, 0, 1))
    else:
        drawn = np.stack([ax.get_lines()[1].get_ydata() for ax in fig.axes])
        np.testing.assert_allclose(drawn, expected[..., 0])
    plt.close(fig)
