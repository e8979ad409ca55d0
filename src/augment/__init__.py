"""Data augmentation: the op/strength table and the Keras layers built from an aug config.

`OPS` is the single source of truth for what each op does and how hard it pushes: an op's
magnitude is `aug.strength` (0..1) times its magnitude at strength 1, unless an entry of
`aug.ops` gives its own `magnitude` or, for a series op, the arguments of its reference function
in Iwana & Uchida's code (`{name: time_warp, sigma: 0.2}`, see `Literature`). `plan` turns a
config (conf/aug/*.yaml) into the layers that augment training batches, in the model
(`aug.placement=model`) or in the tf.data pipeline (`dataset`); batch-mixing ops (mixup, cutmix)
always run in the pipeline, since they mix labels. Add an op by adding an `Op` to `OPS`.

`aug.policy` (randaugment, trivialaugment, augmix: `src.augment.policies`) adds a policy after
the listed ops: it draws per sample which of its ops to apply, at `aug.strength` as the
magnitude, `aug.num_ops` of them; `aug.exclude` leaves ops out of the policy (or, without a
policy, out of the op list).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from omegaconf import OmegaConf

from src.augment import image
from src.augment.fused import GEOMETRIC, PHOTOMETRIC, FusedGeometry, FusedPhotometric
from src.augment.idg import idg_layers
from src.augment.keras_policies import KERAS_POLICY_OPS, keras_policy
from src.augment.layers import (
    BrightnessScale,
    ChannelShift,
    Jitter,
    RandomApply,
    Scaling,
    TrainingOnly,
)
from src.augment.policies import (
    IMAGE_POLICY_LAYERS,
    POLICIES,
    POLICY_OPS,
    SERIES_POLICIES,
    SeriesRandAugment,
)
from src.augment.series import (
    ChannelRotation,
    MagnitudeWarp,
    Permutation,
    TimeWarp,
    WindowSlice,
    WindowWarp,
)
from src.checks import check_choice, check_int, finite, is_int, is_number, refuse
from src.errors import ConfigError

__all__ = [
    "FILL_MODES", "IMPLEMENTATIONS", "MODALITIES", "OPS", "PLACEMENTS", "BrightnessScale",
    "ChannelShift", "Jitter", "Op", "RandomApply", "Scaling", "TrainingOnly", "aug_label",
    "build_augmentation", "build_mixing", "placement", "policy_ops", "resolve_ops",
    "strength_table",
]  # fmt: skip

MODALITIES: tuple[str, ...] = ("image", "series")
FILL_MODES: tuple[str, ...] = ("constant", "reflect", "wrap", "nearest")
PLACEMENTS: tuple[str, ...] = ("model", "dataset")
# who implements a policy: augsweep's layers, or Keras's own (RandAugment and AugMix, images)
IMPLEMENTATIONS: tuple[str, ...] = ("augsweep", "keras")
# a policy's N when its config gives none: the papers' (RandAugment 2, AugMix's depth 1..3)
DEFAULT_NUM_OPS = {"randaugment": 2, "trivialaugment": 1, "augmix": 3}

# Keras's RandomFlip flips an image with probability 0.5; RandomApply scales that down.
_KERAS_FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class Param:
    """One argument of a reference function: its default (the survey's setting) and range."""

    default: Any  # a number, or a tuple of numbers for a list argument
    low: float
    high: float = math.inf
    integer: bool = False

    def accepts(self, value: Any) -> bool:
        if not isinstance(self.default, tuple):
            return self._number(value)
        is_list = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
        return is_list and all(self._number(v) for v in value)

    def _number(self, v: Any) -> bool:
        return (
            finite(v)
            and self.low <= v <= self.high and (not self.integer or v == int(v))
        )  # fmt: skip

    def accepted(self) -> str:
        kind = "an integer" if self.integer else "a number"
        span = f">= {self.low:g}" if self.high == math.inf else f"in [{self.low:g}, {self.high:g}]"
        what = f"{kind} {span}"
        if isinstance(self.default, tuple):
            what = f"a non-empty list of numbers {span}"
        return f"{what}; the survey's {_literal(self.default)}"


def _literal(value: Any) -> str:
    return f"[{', '.join(f'{v:g}' for v in value)}]" if isinstance(value, tuple) else f"{value:g}"


@dataclass(frozen=True)
class Literature:
    """A series op as its reference function parameterises it (Iwana & Uchida 2021, the code of
    their survey: uchidalab/time_series_augmentation, `utils/augmentation.py`).

    An `aug.ops` entry that gives any of `params` means that function called with them (its other
    arguments at their defaults, the survey's setting), e.g. `{name: time_warp, sigma: 0.2}`;
    `aug.strength` then only turns it on (> 0) or off (0), as with `magnitude`.

    Attributes:
        function: the reference function, as the survey's code calls it.
        params: its arguments, with their defaults and accepted ranges.
        convert: those arguments -> (the op's magnitude, other layer arguments).
        strength: the `aug.strength` that changes a series as much as the survey's setting does
            (tests/test_op_reference.py measures it on GunPoint), None when no strength does.
        note: why, or how the parameters map.
    """

    function: str
    params: Mapping[str, Param]
    convert: Callable[..., tuple[float, dict[str, Any]]]
    strength: float | None
    note: str = ""

    def cell(self) -> str:
        """The strength table's cell: the survey's setting -> the strength that gives it."""
        setting = ", ".join(f"`{k}` {_literal(p.default)}" for k, p in self.params.items())
        strength = "none" if self.strength is None else f"{self.strength:g}"
        return f"{setting} → {strength}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Op:
    """One augmentation op: what data it fits, how strong it is at strength 1, how to build it.

    Attributes:
        modality: "image" or "series".
        max_magnitude: the op's magnitude at strength 1 (magnitude = strength * max_magnitude).
        meaning: what the magnitude measures, for docs and run logs.
        build: (magnitude > 0, seed, aug config, **layer arguments) -> a seeded Keras layer.
        mixing: the op mixes samples and their labels (soft labels), so it runs in tf.data.
        literature: the op's reference parameterisation, for series ops.
    """

    modality: str
    max_magnitude: float
    meaning: str
    build: Callable[..., keras.layers.Layer]
    mixing: bool = False
    literature: Literature | None = None


def _flip(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    rate = min(1.0, magnitude / _KERAS_FLIP_PROBABILITY)
    inner = keras.layers.RandomFlip("horizontal", seed=seed)
    return RandomApply(inner, rate=rate, seed=seed, name="flip")


def _rotation(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomRotation(
        magnitude, fill_mode=_fill_mode(aug_cfg), seed=seed, name="rotation"
    )


def _zoom(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    return keras.layers.RandomZoom(magnitude, fill_mode=_fill_mode(aug_cfg), seed=seed, name="zoom")


def _contrast(magnitude: float, seed: int, aug_cfg: Any) -> keras.layers.Layer:
    # (m, m), not m: Keras turns a single float m into factors U(1, 1 + m), contrast only raised
    return keras.layers.RandomContrast(
        (magnitude, magnitude), value_range=(0, 1), seed=seed, name="contrast"
    )


def _series_layer(cls: type) -> Callable[..., keras.layers.Layer]:
    return lambda magnitude, seed, aug_cfg, **options: cls(magnitude, seed=seed, **options)


def _series_op(cls: type, top: float, meaning: str, literature: Literature) -> Op:
    return Op("series", top, meaning, _series_layer(cls), literature=literature)


# The survey's settings are the reference functions' defaults. Their strength here is measured
# on GunPoint in tests/test_op_reference.py (mean absolute change per value within 15%).
_SIGMA = {"sigma": Param(0.2, 0.0)}
_KNOTS = {**_SIGMA, "knot": Param(4, 1, 1000, integer=True)}


def _image_op(builder: Callable) -> Callable[[float, int, Any], keras.layers.Layer]:
    return lambda magnitude, seed, aug_cfg: builder(magnitude, seed, _fill_mode(aug_cfg))


OPS: dict[str, Op] = {
    "flip": Op("image", 0.5, "probability an image is flipped left-right", _flip),
    "rotation": Op(
        "image", 0.25, "max rotation as a fraction of a full turn (0.25 = ±90°)", _rotation
    ),
    "zoom": Op("image", 0.5, "max zoom in/out as a fraction of image size", _zoom),
    "contrast": Op("image", 0.9, "max contrast factor change (factor in [1-m, 1+m])", _contrast),
    **{
        name: Op("image", top, meaning, _image_op(build), mixing=name in image.MIXING)
        for name, (top, meaning, build) in image.IMAGE_OPS.items()
    },
    "jitter": _series_op(
        Jitter, 0.5, "std of additive Gaussian noise (series are z-normalised)",
        Literature("jitter", {"sigma": Param(0.03, 0.0)}, lambda sigma: (sigma, {}), 0.06,
                   "sigma = 0.5 strength"),
    ),
    "scaling": _series_op(
        Scaling, 0.5, "std of a multiplicative factor ~ N(1, σ) per series and channel",
        Literature("scaling", {"sigma": Param(0.1, 0.0)}, lambda sigma: (sigma, {}), 0.2),
    ),
    "magnitude_warp": _series_op(
        MagnitudeWarp, 0.5,
        "std of the knots ~ N(1, σ) of the cubic spline (4 inner knots) multiplying the series",
        Literature("magnitude_warp", _KNOTS, lambda sigma, knot: (sigma, {"knots": knot}), 0.4),
    ),
    "time_warp": _series_op(
        TimeWarp, 0.5,
        "std of the knots ~ N(1, σ) of a smooth speed curve that resamples time (the survey's σ "
        "multiplies time positions instead)",
        Literature("time_warp", _KNOTS,
                   lambda sigma, knot: (sigma, {"knots": knot, "mode": "position"}), None,
                   "strength 1 changes GunPoint by 0.29 per value, the survey's setting by 0.47"),
    ),
    "window_slice": _series_op(
        WindowSlice, 0.5, "fraction of the series cut away before the rest is stretched back",
        Literature("window_slice", {"reduce_ratio": Param(0.9, 0.01, 1.0)},
                   lambda reduce_ratio: (round(1.0 - reduce_ratio, 12), {}), 0.2,
                   "reduce_ratio = 1 - 0.5 strength"),
    ),
    "window_warp": _series_op(
        WindowWarp, 0.5, "fraction of the series in the window sped up or slowed down (x0.5 or x2)",
        Literature("window_warp",
                   {"window_ratio": Param(0.1, 0.0, 1.0), "scales": Param((0.5, 2.0), 0.01, 100)},
                   lambda window_ratio, scales: (window_ratio, {"scales": tuple(scales)}), 0.2),
    ),
    "permutation": _series_op(
        Permutation, 8.0, "max number of segments whose order is shuffled (1 = unchanged)",
        Literature("permutation", {"max_segments": Param(5, 2, 10_001, integer=True)},
                   lambda max_segments: (max_segments - 1.0, {}), 0.5,
                   "it draws 1 to max_segments - 1 segments"),
    ),
    "channel_rotation": _series_op(
        ChannelRotation, math.pi,
        "max rotation angle (radians) mixing channels; univariate: sign flip with p = angle/π",
        Literature("rotation", {"flip": Param(0.5, 0.0, 1.0)},
                   lambda flip: (flip * math.pi, {"mode": "flip_shuffle"}), 0.5,
                   "univariate; multivariate none: it negates and shuffles channels"),
    ),
}  # fmt: skip


def strength_table() -> str:
    """The strength table as Markdown, so the README can be regenerated from `OPS`."""
    rows = [
        "| op | modality | magnitude at strength 1 | meaning | the survey's setting → strength |",
        "|---|---|---|---|---|",
    ]
    for name, op in OPS.items():
        cell = op.literature.cell() if op.literature else ""
        rows.append(f"| {name} | {op.modality} | {op.max_magnitude:g} | {op.meaning} | {cell} |")
    return "\n".join(rows)


def _names(modality: str | None = None) -> str:
    return ", ".join(n for n, op in OPS.items() if modality is None or op.modality == modality)


def _strength(aug_cfg: Any) -> float:
    strength = aug_cfg.get("strength")
    if not is_number(strength):
        raise ConfigError(
            f"aug.strength={strength!r} is not a number; "
            "accepted: a number from 0 (no augmentation) to 1 (strongest)"
        )
    if not 0 <= strength <= 1:
        raise ConfigError(
            f"aug.strength={strength!r} is outside [0, 1]; "
            "accepted: a number from 0 (no augmentation) to 1 (strongest)"
        )
    return float(strength)


def _fill_mode(aug_cfg: Any) -> str:
    return check_choice("aug.fill_mode", aug_cfg.get("fill_mode", "constant"), FILL_MODES,
                        "supported")  # fmt: skip


def placement(aug_cfg: Any) -> str:
    """Where the per-sample ops run: `model` (front layers) or `dataset` (tf.data map)."""
    return check_choice("aug.placement", aug_cfg.get("placement", "model"), PLACEMENTS,
                        "supported")  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One resolved item of `aug.ops`: an op at a magnitude, or a user's own augmentation."""

    name: str
    magnitude: float
    build: Callable[[int], keras.layers.Layer]  # seed -> layer
    mixing: bool = False


def _user_entry(item: Any, where: str, strength: float) -> Entry:
    """`target: dotted.path` (+ `kwargs`): a Keras layer class or a batch function."""
    from hydra.utils import get_object

    if OmegaConf.is_config(item) and OmegaConf.is_missing(item, "target"):
        raise ConfigError(
            f"{where}.target is not set; accepted: the dotted path of a Keras layer class or "
            "of a function batch -> batch, e.g. aug.target=mypackage.augment.random_brightness"
        )
    target = item["target"]
    try:
        obj = get_object(target)
    except Exception as err:
        raise ConfigError(
            f"{where}.target={target!r} cannot be imported ({type(err).__name__}); accepted: "
            "the dotted path of a Keras layer class or of a function batch -> batch"
        ) from None
    kwargs = dict(item.get("kwargs") or {})
    if isinstance(obj, type) and issubclass(obj, keras.layers.Layer):

        def build(seed: int) -> keras.layers.Layer:
            takes_seed = "seed" in inspect.signature(obj).parameters
            return obj(**kwargs, **({"seed": seed} if takes_seed and "seed" not in kwargs else {}))

    elif callable(obj) and not isinstance(obj, type):

        def build(seed: int) -> keras.layers.Layer:
            return TrainingOnly(target)

    else:
        raise ConfigError(
            f"{where}.target={target!r} is a {type(obj).__name__}; accepted: a Keras layer class "
            "or a function batch -> batch"
        )
    return Entry(target, strength, build)


def _entry(item: Any, key: str, modality: str, strength: float, aug_cfg: Any) -> Entry:
    where = f"aug.ops.{key}" if key else "aug.ops"
    if isinstance(item, Mapping) and "target" in item:
        return _user_entry(item, where, strength)
    name = item.get("name") if isinstance(item, Mapping) else item
    if not isinstance(name, str) or name not in OPS:
        raise ConfigError(f"unknown aug op {name!r} in {where}; accepted: {_names()}")
    op = OPS[name]
    if op.modality != modality and key in ("", modality):
        listed = f" (listed in {where}; {modality} ops: {_names(modality)})" if key else ""
        raise ConfigError(
            f"aug op {name!r} works on {op.modality} data, but the dataset is {modality}{listed}"
        )
    if key and op.modality != key:
        raise ConfigError(
            f"aug op {name!r} works on {op.modality} data, but is listed in {where}; "
            f"accepted there: {_names(key)}"
        )
    magnitude = strength * op.max_magnitude
    options = _options(item, where, name, op)
    kwargs: dict[str, Any] = {}
    own = item.get("magnitude") if isinstance(item, Mapping) else None
    if own is not None:
        if not is_number(own) or own < 0:
            raise ConfigError(
                f"{where} op {name!r} has magnitude={own!r}; accepted: a number >= 0 "
                f"({op.meaning}; {op.max_magnitude:g} at strength 1)"
            )
        magnitude = float(own) * (strength > 0)  # strength 0 is always the identity
    elif options:
        magnitude, kwargs = op.literature.convert(**options)
        magnitude = float(magnitude) * (strength > 0)
    return Entry(
        name, magnitude, lambda seed: op.build(magnitude, seed, aug_cfg, **kwargs), op.mixing
    )


def _options(item: Any, where: str, name: str, op: Op) -> dict[str, Any]:
    """The reference function's arguments an `aug.ops` entry gives, with the others' defaults;
    {} when it gives none. Unknown keys are an error."""
    if not isinstance(item, Mapping):
        return {}
    params = op.literature.params if op.literature else {}
    accepted = ["name", "magnitude", *params]
    unknown = [key for key in item if key not in accepted]
    if unknown:
        raise ConfigError(
            f"{where} op {name!r} has unknown key {unknown[0]!r}; accepted: {', '.join(accepted)}"
        )
    given = {key: item[key] for key in params if key in item}
    if not given:
        return {}
    if item.get("magnitude") is not None:
        raise ConfigError(
            f"{where} op {name!r} has magnitude={item['magnitude']!r} and "
            f"{next(iter(given))}={next(iter(given.values()))!r}; accepted: one of magnitude "
            f"(ours) or {', '.join(params)} (Iwana & Uchida's {op.literature.function})"
        )
    values = {key: param.default for key, param in params.items()}
    for key, value in given.items():
        value = OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
        if not params[key].accepts(value):
            raise ConfigError(
                f"{where} op {name!r} has {key}={value!r}; accepted: {params[key].accepted()}"
            )
        values[key] = value
    return values


def _entries(aug_cfg: Any, modality: str) -> list[Entry]:
    """Every item of the config that applies to this modality, checked; all others checked too."""
    if modality not in MODALITIES:
        raise ConfigError(
            f"data modality {modality!r} is not supported by augmentation; "
            f"accepted: {', '.join(MODALITIES)}"
        )
    strength = _strength(aug_cfg)
    _fill_mode(aug_cfg)
    placement(aug_cfg)
    if OmegaConf.is_config(aug_cfg) and OmegaConf.is_missing(aug_cfg, "ops"):
        raise ConfigError(
            f"aug.ops is not set; accepted: a list of ops for the data's modality "
            f"({_names(modality)}), e.g. aug.ops=[rotation,{{name:zoom,magnitude:0.1}}]"
        )
    ops = aug_cfg.get("ops")
    if ops is None:  # presets: one list per modality, unless `aug.ops=[...]` replaces them
        ops = aug_cfg.get("modality_ops")
    if isinstance(ops, Sequence) and not isinstance(ops, str):
        lists = {"": list(ops)}
    elif isinstance(ops, Mapping):
        extra = [key for key in ops if key not in MODALITIES]
        if extra:
            raise ConfigError(
                f"aug.ops has unknown key {extra[0]!r}; accepted keys: {', '.join(MODALITIES)}"
            )
        lists = {key: ops.get(key) for key in MODALITIES}
    else:
        raise ConfigError(
            f"aug.ops={ops!r} is not supported; accepted: a list of ops for the dataset's "
            "modality, or aug.ops.image and aug.ops.series lists"
        )
    found: dict[str, list[Entry]] = {}
    for key, items in lists.items():
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise ConfigError(
                f"aug.ops.{key}={items!r} is not a list; accepted: a list of {key} op names "
                f"({_names(key)}), possibly empty"
            )
        entries = [_entry(item, key, modality, strength, aug_cfg) for item in items]
        names = [e.name for e in entries]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            where = f"aug.ops.{key}" if key else "aug.ops"
            raise ConfigError(
                f"aug op {twice!r} is listed twice in {where}; accepted: each op once"
            )
        found[key] = entries
    entries = found.get("", found.get(modality, []))
    if aug_cfg.get("policy") is None:
        entries = _without(entries, _exclude(aug_cfg), [e.name for e in entries], "the op list")
    if "target" in aug_cfg.keys():  # keys(): a DictConfig hides a missing "???" from `in`
        entries.append(_user_entry(aug_cfg, "aug", strength))
    if aug_cfg.get("idg"):
        idg = aug_cfg.idg
        idg = OmegaConf.to_container(idg) if OmegaConf.is_config(idg) else dict(idg)
        if modality != "image":
            raise ConfigError(
                f"aug.idg (ImageDataGenerator keywords) works on image data, but the dataset "
                f"is {modality}; accepted for {modality}: aug.ops with {_names(modality)}"
            )
        if idg_layers(idg, strength, 0):  # checked now, built seeded later
            entries.append(
                Entry("idg", strength, lambda seed: keras.Sequential(
                    idg_layers(idg, strength, seed), name="idg"))
            )  # fmt: skip
    if aug_cfg.get("policy") is not None:
        entries.append(_policy_entry(aug_cfg, modality, strength))
    return [e for e in entries if e.magnitude > 0]


def _exclude(aug_cfg: Any) -> list[str]:
    """`aug.exclude`: a list of op names (possibly empty)."""
    exclude = aug_cfg.get("exclude") or []
    exclude = OmegaConf.to_object(exclude) if OmegaConf.is_config(exclude) else exclude
    if not isinstance(exclude, list) or not all(isinstance(n, str) for n in exclude):
        raise ConfigError(
            f"aug.exclude={exclude!r} is not a list of op names; accepted: a list such as "
            "[solarize, equalize], possibly empty"
        )
    return exclude


def _without(entries: list, exclude: list[str], names: list[str], what: str) -> list:
    """`entries` (or names) without those `aug.exclude` names; an unknown name is an error."""
    for name in exclude:
        if name not in names:
            raise ConfigError(
                f"unknown op {name!r} in aug.exclude, not one of {what}; "
                f"accepted: {', '.join(names) or 'none (nothing to exclude)'}"
            )
    return [e for e in entries if (e if isinstance(e, str) else e.name) not in exclude]


def policy_ops(aug_cfg: Any, modality: str) -> list[str]:
    """The ops a config's policy draws from for this modality, `aug.exclude` removed."""
    policy, implementation = aug_cfg.get("policy"), aug_cfg.get("implementation", "augsweep")
    if policy not in POLICIES:
        raise ConfigError(
            f"aug.policy={policy!r} is not supported; accepted: {', '.join(POLICIES)}"
        )
    if implementation not in IMPLEMENTATIONS:
        raise ConfigError(
            f"aug.implementation={implementation!r} is not supported; "
            f"accepted: {', '.join(IMPLEMENTATIONS)}"
        )
    if modality == "series" and policy not in SERIES_POLICIES:
        raise ConfigError(
            f"aug.policy={policy!r} works on image data, but the dataset is series; accepted "
            f"for series: {', '.join(SERIES_POLICIES)}"
        )
    if implementation == "keras" and (modality != "image" or policy not in KERAS_POLICY_OPS):
        raise ConfigError(
            f"aug.implementation='keras' has no {policy} for {modality} data (Keras ships "
            f"{', '.join(KERAS_POLICY_OPS)} for images); accepted: augsweep"
        )
    if implementation == "keras":
        accepted = KERAS_POLICY_OPS[policy]
    elif modality == "series":
        accepted = [name for name, op in OPS.items() if op.modality == "series"]
    else:
        accepted = POLICY_OPS[policy]
    what = f"the ops of {policy} ({implementation}) on {modality} data"
    kept = _without(accepted, _exclude(aug_cfg), accepted, what)
    if not kept:
        raise ConfigError(
            f"aug.exclude={_exclude(aug_cfg)} leaves no op of {policy}; accepted: a list that "
            f"keeps at least one of {', '.join(accepted)}"
        )
    return kept


def _count(aug_cfg: Any, key: str, default: int) -> int:
    return check_int(f"aug.{key}", aug_cfg.get(key, default), 1)


def _policy_entry(aug_cfg: Any, modality: str, strength: float) -> Entry:
    """The policy of the config, checked, as an entry that builds its seeded layer."""
    policy = aug_cfg.get("policy")
    kept = policy_ops(aug_cfg, modality)
    implementation = aug_cfg.get("implementation", "augsweep")
    num_ops = _count(aug_cfg, "num_ops", DEFAULT_NUM_OPS[policy])
    if policy == "trivialaugment" and num_ops != 1:
        raise ConfigError(
            f"aug.num_ops={num_ops} is not allowed with aug.policy=trivialaugment (one op per "
            "image, by definition); accepted: 1, or aug=randaugment for N ops"
        )
    if policy == "randaugment" and implementation == "augsweep" and num_ops > len(kept):
        raise ConfigError(
            f"aug.num_ops={num_ops} is more than the {len(kept)} ops of randaugment on "
            f"{modality} data left by aug.exclude; accepted: 1 to {len(kept)}"
        )
    options: dict[str, Any] = {}
    if policy == "augmix":
        options["num_chains"] = _count(aug_cfg, "num_chains", 3)
        alpha = aug_cfg.get("alpha", 1.0)
        if not (is_number(alpha) and 0 < alpha < math.inf):
            raise refuse("aug.alpha", alpha, "a number > 0")
        options["alpha"] = float(alpha)
    exclude = _exclude(aug_cfg)

    def build(seed: int) -> keras.layers.Layer:
        if implementation == "keras":
            return keras_policy(policy, strength, num_ops, exclude, seed, aug_cfg)
        if modality == "series":
            return SeriesRandAugment(strength, num_ops, kept, seed=seed, name=policy)
        cls = IMAGE_POLICY_LAYERS[policy]
        return cls(strength, num_ops=num_ops, ops=kept, fill_mode=_fill_mode(aug_cfg),
                   seed=seed, name=policy, **options)  # fmt: skip

    return Entry(policy, strength, build)


def aug_label(aug_cfg: Any) -> str:
    """The aug's name as runs are tagged and reported: a policy's N and exclusions in it, so
    `randaugment_n2` and `randaugment_n3` are two settings (e.g. `randaugment_n2-solarize`)."""
    name = str(aug_cfg.get("name"))
    policy = aug_cfg.get("policy")
    if policy is not None and policy != "trivialaugment":
        name += f"_n{aug_cfg.get('num_ops', DEFAULT_NUM_OPS.get(policy, ''))}"
    exclude = aug_cfg.get("exclude") or []
    if exclude:
        name += "-" + "-".join(sorted(str(n) for n in exclude))
    if aug_cfg.get("implementation", "augsweep") != "augsweep":
        name += f"_{aug_cfg.get('implementation')}"
    return name


def resolve_ops(aug_cfg: Any, modality: str) -> list[tuple[str, float]]:
    """(op name, magnitude) pairs the config applies to this modality; magnitude-0 ops dropped.

    The whole config is validated (strength, fill_mode, placement, op lists), so a bad config
    fails on any dataset, before training starts.
    """
    return [(e.name, e.magnitude) for e in _entries(aug_cfg, modality)]


def _check_seed(seed: Any) -> None:
    if not is_int(seed):
        raise ConfigError(f"seed={seed!r} is not an integer; accepted: an integer such as 0")


def build_augmentation(aug_cfg: Any, modality: str, seed: int) -> keras.Sequential | None:
    """A `keras.Sequential(name="augmentation")` of the per-sample ops, or None when none apply.

    Layer i gets the explicit seed `seed + i`, so building never draws from Keras's global RNG:
    models built with and without augmentation get identical initial weights. Mixing ops are
    left out: `build_mixing` builds them.
    """
    _check_seed(seed)
    entries = [e for e in _entries(aug_cfg, modality) if not e.mixing]
    if not entries:
        return None
    layers = [e.build(seed + i) for i, e in enumerate(entries)]
    if aug_cfg.get("fused", True):
        layers = _fuse(entries, layers, _fill_mode(aug_cfg), seed)
    return keras.Sequential(layers, name="augmentation")


_FAMILY = {**dict.fromkeys(GEOMETRIC, "geometric"), **dict.fromkeys(PHOTOMETRIC, "photometric")}


def _fuse(
    entries: list[Entry], layers: list[keras.layers.Layer], fill_mode: str, seed: int
) -> list[keras.layers.Layer]:
    """Runs of two or more consecutive geometric ops become one `FusedGeometry` layer, runs of
    photometric ops one `FusedPhotometric`.

    A single op keeps its own layer, so `aug=<op>` ablations are Keras's own op.
    """
    out: list[keras.layers.Layer] = []
    run: list[int] = []

    def family(entry: Entry) -> str | None:
        return _FAMILY.get(entry.name)

    def close() -> None:
        if len(run) > 1:
            fused = [(entries[i].name, entries[i].magnitude) for i in run]
            name = "fused_" + "_".join(n for n, _ in fused)
            if family(entries[run[0]]) == "geometric":
                out.append(FusedGeometry(fused, fill_mode, seed=seed + run[0], name=name))
            else:
                out.append(FusedPhotometric(fused, seed=seed + run[0], name=name))
        else:
            out.extend(layers[i] for i in run)
        run.clear()

    for i, entry in enumerate(entries):
        if run and family(entry) != family(entries[run[0]]):
            close()
        if family(entry) is not None:
            run.append(i)
        else:
            out.append(layers[i])
    close()
    return out


def build_mixing(aug_cfg: Any, modality: str, seed: int) -> keras.layers.Layer | None:
    """The batch-mixing op (mixup or cutmix) of the config, or None."""
    _check_seed(seed)
    mixing = [e for e in _entries(aug_cfg, modality) if e.mixing]
    if len(mixing) > 1:
        raise ConfigError(
            f"aug.ops has {len(mixing)} batch-mixing ops ({', '.join(e.name for e in mixing)}); "
            f"accepted: at most one of {', '.join(image.MIXING)}"
        )
    return mixing[0].build(seed + 1000) if mixing else None
