"""Config resolution: an aug config (conf/aug/*.yaml) checked and read against `OPS`.

`resolve_ops` gives the (op, magnitude) pairs a config applies to a modality;
`resolved_entries` gives them with the builders of their seeded layers (`src.augment.build`).
The whole config is checked at once, with one `ConfigError` per bad key, so a bad config fails
before training. One job resolves the same config several times (its checks, its audit, each
fold's plan): `resolved_entries` caches the resolution per config content and modality.

`aug.policy` (randaugment, trivialaugment, augmix: `src.augment.policies`) adds a policy after
the listed ops: it draws per sample which of its ops to apply, at `aug.strength` as the
magnitude, `aug.num_ops` of them; `aug.exclude` leaves ops out of the policy (or, without a
policy, out of the op list).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
from omegaconf import OmegaConf

from src.augment.idg import idg_layers
from src.augment.keras_policies import KERAS_POLICY_OPS, keras_policy
from src.augment.layers import TrainingOnly
from src.augment.policies import (
    IMAGE_POLICY_LAYERS,
    POLICIES,
    POLICY_OPS,
    SERIES_POLICIES,
    SeriesRandAugment,
)
from src.augment.registry import MODALITIES, OPS, Op, fill_mode, op_names
from src.checks import check_choice, check_int, is_number, refuse
from src.errors import ConfigError
from src.schema import aug_with_defaults

PLACEMENTS: tuple[str, ...] = ("model", "dataset")
# who implements a policy: augsweep's layers, or Keras's own (RandAugment and AugMix, images)
IMPLEMENTATIONS: tuple[str, ...] = ("augsweep", "keras")
# a policy's N when its config gives none: the papers' (RandAugment 2, AugMix's depth 1..3)
DEFAULT_NUM_OPS = {"randaugment": 2, "trivialaugment": 1, "augmix": 3}


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


def placement(aug_cfg: Any) -> str:
    """Where the per-sample ops run: `model` (front layers) or `dataset` (tf.data map)."""
    return check_choice("aug.placement", aug_with_defaults(aug_cfg)["placement"], PLACEMENTS,
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
        raise ConfigError(f"unknown aug op {name!r} in {where}; accepted: {op_names()}")
    op = OPS[name]
    if op.modality != modality and key in ("", modality):
        listed = f" (listed in {where}; {modality} ops: {op_names(modality)})" if key else ""
        raise ConfigError(
            f"aug op {name!r} works on {op.modality} data, but the dataset is {modality}{listed}"
        )
    if key and op.modality != key:
        raise ConfigError(
            f"aug op {name!r} works on {op.modality} data, but is listed in {where}; "
            f"accepted there: {op_names(key)}"
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


def _resolve(aug_cfg: Any, modality: str) -> list[Entry]:
    """Every item of the config that applies to this modality, checked; all others checked too."""
    if modality not in MODALITIES:
        raise ConfigError(
            f"data modality {modality!r} is not supported by augmentation; "
            f"accepted: {', '.join(MODALITIES)}"
        )
    strength = _strength(aug_cfg)
    fill_mode(aug_cfg)
    placement(aug_cfg)
    if OmegaConf.is_config(aug_cfg) and OmegaConf.is_missing(aug_cfg, "ops"):
        raise ConfigError(
            f"aug.ops is not set; accepted: a list of ops for the data's modality "
            f"({op_names(modality)}), e.g. aug.ops=[rotation,{{name:zoom,magnitude:0.1}}]"
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
                f"({op_names(key)}), possibly empty"
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
                f"is {modality}; accepted for {modality}: aug.ops with {op_names(modality)}"
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
    aug_cfg = aug_with_defaults(aug_cfg)
    policy = aug_cfg.get("policy")
    if policy not in POLICIES:
        raise ConfigError(
            f"aug.policy={policy!r} is not supported; accepted: {', '.join(POLICIES)}"
        )
    implementation = aug_cfg["implementation"]
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


def _policy_entry(aug_cfg: Any, modality: str, strength: float) -> Entry:
    """The policy of the config, checked, as an entry that builds its seeded layer."""
    policy = aug_cfg.get("policy")
    kept = policy_ops(aug_cfg, modality)
    implementation = aug_cfg["implementation"]
    num_ops = check_int("aug.num_ops", aug_cfg.get("num_ops", DEFAULT_NUM_OPS[policy]), 1)
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
        options["num_chains"] = check_int("aug.num_chains", aug_cfg["num_chains"], 1)
        alpha = aug_cfg["alpha"]
        if not (is_number(alpha) and 0 < alpha < math.inf):
            raise refuse("aug.alpha", alpha, "a number > 0")
        options["alpha"] = float(alpha)
    exclude = _exclude(aug_cfg)

    def build(seed: int) -> keras.layers.Layer:
        if implementation == "keras":
            return keras_policy(policy, strength, num_ops, exclude, seed, **options)
        if modality == "series":
            return SeriesRandAugment(strength, num_ops, kept, seed=seed, name=policy)
        cls = IMAGE_POLICY_LAYERS[policy]
        return cls(strength, num_ops=num_ops, ops=kept, fill_mode=fill_mode(aug_cfg),
                   seed=seed, name=policy, **options)  # fmt: skip

    return Entry(policy, strength, build)


def aug_label(aug_cfg: Any) -> str:
    """The aug's name as runs are tagged and reported: a policy's N and exclusions in it, so
    `randaugment_n2` and `randaugment_n3` are two settings (e.g. `randaugment_n2-solarize`)."""
    aug_cfg = aug_with_defaults(aug_cfg)
    name = str(aug_cfg.get("name"))
    policy = aug_cfg.get("policy")
    if policy is not None and policy != "trivialaugment":
        name += f"_n{aug_cfg.get('num_ops', DEFAULT_NUM_OPS.get(policy, ''))}"
    exclude = aug_cfg.get("exclude") or []
    if exclude:
        name += "-" + "-".join(sorted(str(n) for n in exclude))
    if "implementation" in aug_cfg.keys() and aug_cfg["implementation"] != "augsweep":
        name += f"_{aug_cfg['implementation']}"  # a policy's (no other aug has the key)
    return name


def resolved_entries(aug_cfg: Any, modality: str) -> list[Entry]:
    """`aug.ops` (and policy, target, idg) resolved for this modality, magnitude-0 ops dropped.

    Cached per config content: a config is resolved once, from a read-only copy, so the layers
    built later see the config as it was checked. A config that cannot be written as JSON (a
    plain mapping with odd values) or that fails to resolve is not cached: errors are raised
    from the config as given.
    """
    aug_cfg = aug_with_defaults(aug_cfg)
    key = _key(aug_cfg)
    if key is None:
        return _resolve(aug_cfg, modality)
    return list(_cached(key, modality))


def _key(aug_cfg: Any) -> str | None:
    """The config's content as sorted JSON (interpolations resolved, `???` kept), or None."""
    if not OmegaConf.is_config(aug_cfg):
        return None
    try:
        return json.dumps(OmegaConf.to_container(aug_cfg, resolve=True), sort_keys=True)
    except Exception:  # an interpolation that does not resolve, a value JSON cannot hold
        return None


@functools.lru_cache(maxsize=128)
def _cached(key: str, modality: str) -> tuple[Entry, ...]:
    aug_cfg = OmegaConf.create(json.loads(key))
    OmegaConf.set_readonly(aug_cfg, True)
    return tuple(_resolve(aug_cfg, modality))


def resolve_ops(aug_cfg: Any, modality: str) -> list[tuple[str, float]]:
    """(op name, magnitude) pairs the config applies to this modality; magnitude-0 ops dropped.

    The whole config is validated (strength, fill_mode, placement, op lists), so a bad config
    fails on any dataset, before training starts.
    """
    return [(e.name, e.magnitude) for e in resolved_entries(aug_cfg, modality)]
