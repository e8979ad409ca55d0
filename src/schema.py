"""The config schema: one dataclass per kind of choice of each group, in Hydra's ConfigStore.

A YAML file of a group extends its schema (Hydra's "extending configs"):

    # conf/aug/flip.yaml
    defaults:
      - /schema/aug/ops@_here_
      - _self_
    name: flip
    ops: [flip]

so a default shared by many files (`fill_mode: constant`, `placement: model`, `fused: true`) is
written once, here, and a key that no schema names is an error at composition. Fields whose
values users give are typed `Any`: OmegaConf would coerce `"7"` to 7 or reject `true` in its own
words, where src/checks.py's checks reject them with the key, the value and what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# ---------------------------------------------------------------------------------------- aug


@dataclass
class AugConfig:
    """Every augmentation: named ops at a strength (src/augment resolves and checks them)."""

    name: str = MISSING
    strength: Any = MISSING  # 0..1, scales every op's magnitude (table in src/augment)
    ops: Any = MISSING  # a list of op names or {name: op, magnitude: m}
    fill_mode: Any = "constant"  # for rotation/zoom: constant (0), reflect, wrap, nearest
    placement: Any = "model"  # model: layers at the front of the Sequential; dataset: tf.data map
    fused: Any = True  # geometric image ops: one resampling per batch (false: one per op)


@dataclass
class PresetAugConfig(AugConfig):
    """A preset: one op list per data modality, unless `aug.ops=[...]` replaces them."""

    ops: Any = None  # a list here replaces the per-modality choice of modality_ops
    modality_ops: Any = field(default_factory=lambda: {"image": [], "series": []})


@dataclass
class PolicyAugConfig(AugConfig):
    """A policy (RandAugment, TrivialAugment, AugMix): N ops drawn per sample at a magnitude."""

    policy: Any = MISSING
    num_ops: Any = MISSING  # N: ops drawn per sample (AugMix: the deepest chain)
    exclude: Any = field(default_factory=list)  # ops left out of the policy
    ops: Any = field(default_factory=list)  # ops applied before the policy, e.g. [flip]


@dataclass
class KerasPolicyAugConfig(PolicyAugConfig):
    """A policy Keras ships too: `implementation: keras` runs Keras's own layer."""

    implementation: Any = "augsweep"


@dataclass
class AugMixAugConfig(KerasPolicyAugConfig):
    num_chains: Any = 3  # chains mixed per image (the paper's width)
    alpha: Any = 1.0  # Dirichlet and Beta parameter of the mixing weights


@dataclass
class CustomAugConfig(AugConfig):
    """The user's own Keras layer class or batch function (`aug.target`)."""

    ops: Any = field(default_factory=list)  # built-in ops to apply as well
    target: Any = MISSING  # dotted path of a keras.layers.Layer subclass or a function
    kwargs: Any = field(default_factory=dict)  # constructor arguments of a layer class


@dataclass
class IdgAugConfig(AugConfig):
    """ImageDataGenerator keywords, in its units (src/augment/idg.py maps them to layers)."""

    ops: Any = field(default_factory=list)
    idg: Any = field(default_factory=dict)


# --------------------------------------------------------------------------------------- data


@dataclass
class DataConfig:
    name: str = MISSING
    modality: str = MISSING  # image | series
    path: Any = None
    subset: Any = None  # int: keep only this many training samples, stratified
    split_seed: Any = 0  # seed for the hold-out split and the subset


@dataclass
class UcrDataConfig(DataConfig):
    """A UCR/UEA set shipped with aeon, on its official train/test split."""

    ucr_name: str = MISSING


@dataclass
class ImageDataConfig(DataConfig):
    image_size: Any = None  # null = native size; [H, W] resizes
    test_size: Any = 0.2  # stratified hold-out test split (0 = none)


@dataclass
class ImageFolderDataConfig(ImageDataConfig):
    path: Any = MISSING  # a directory with one subfolder per class
    color_mode: Any = "rgb"  # rgb | grayscale
    # auto: decode once into memory if the pixels take <= 1/4 of free memory, else read files
    # every epoch; memory | none force one or the other
    cache: Any = "auto"


@dataclass
class SeriesFileDataConfig(DataConfig):
    path: Any = MISSING  # .npz, .csv or .ts
    test_path: Any = None  # optional separate test file; else a hold-out of test_size
    label_column: Any = "label"  # CSV only
    test_size: Any = 0.2


# ---------------------------------------------------------------------------------- cv, train


@dataclass
class CvConfig:
    """StratifiedKFold over the training portion, repeated with different split seeds."""

    folds: Any = 5
    repeats: Any = 1


SCHEMAS: dict[str, dict[str, type]] = {
    "aug": {
        "ops": AugConfig,
        "preset": PresetAugConfig,
        "policy": PolicyAugConfig,
        "keras_policy": KerasPolicyAugConfig,
        "augmix": AugMixAugConfig,
        "custom": CustomAugConfig,
        "idg": IdgAugConfig,
    },
    "data": {
        "ucr": UcrDataConfig,
        "image": ImageDataConfig,
        "image_folder": ImageFolderDataConfig,
        "series_file": SeriesFileDataConfig,
    },
    "cv": {"cv": CvConfig},
}


def register() -> None:
    """Store every schema as `schema/<group>/<name>`: a group of its own, so `aug=preset` is
    no choice, while conf/aug/light.yaml extends it with `- /schema/aug/preset@_here_`."""
    store = ConfigStore.instance()
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)
