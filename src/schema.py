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

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict, read_write

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


@dataclass
class TrainConfig:
    """A training recipe: conf/train/default.yaml is these defaults, the other recipes of
    conf/train/ change some. Callback arguments (`early_stopping`, `reduce_lr`) are free
    mappings: a key they do not have is added with `+train.early_stopping.<key>=...`."""

    name: str = MISSING
    epochs: Any = 30
    batch_size: Any = 64
    learning_rate: Any = 0.001  # Adam
    clipnorm: Any = None  # Adam's gradient clipping: null, or the largest gradient norm per var
    verbose: Any = 0  # 0 silent; 1 or 2: one line per epoch and fold with its scores
    deterministic: Any = True  # TensorFlow op determinism: the same seed gives the same metrics
    mixed_precision: Any = False  # float16 compute, float32 weights and head: for GPUs
    jit_compile: Any = False  # XLA-compile the train step: for GPUs (may need deterministic: false)
    # the folds of a job trained together as one program: auto (where python -m benchmarks.engine
    # found it faster), true (all folds), false (one at a time), or N (N folds at a time)
    parallel_folds: Any = "auto"
    # per fold, decided on the fold's validation part (never the test split): null, or the
    # arguments of keras.callbacks.EarlyStopping, e.g. {monitor: val_loss, patience: 50,
    # restore_best_weights: true}
    early_stopping: Any = None
    # per fold: null, or the arguments of keras.callbacks.ReduceLROnPlateau, e.g.
    # {monitor: loss, factor: 0.5, patience: 50, min_lr: 0.0001}
    reduce_lr: Any = None


# -------------------------------------------------------------------------------------- model


@dataclass
class ModelConfig:
    """A network of src/models.py (`BUILDERS`); `auto` picks the modality's at run time."""

    name: str = MISSING


@dataclass
class CnnModelConfig(ModelConfig):
    filters: Any = MISSING  # Conv2D filters per block (each block: Conv2D, MaxPooling2D)
    kernel_size: Any = MISSING
    dense_units: Any = MISSING
    dropout: Any = 0.0  # before the head


@dataclass
class LstmModelConfig(ModelConfig):
    units: Any = MISSING
    dropout: Any = 0.0
    # series: standardise each channel with the mean and std of the fold's training part
    standardize: Any = MISSING


@dataclass
class ConvSeriesModelConfig(ModelConfig):
    """The 1-D convolutional networks: [Conv1D-BatchNorm-ReLU] blocks, GlobalAveragePooling1D.

    `batchnorm_momentum`: Keras's default (and Fawaz et al.'s) is 0.99, over thousands of epochs.
    In a short training the weights move fast and 0.99 averages the batch statistics over the
    last ~100 steps, so inference normalises with stale ones (on a small UCR set the model then
    predicts one class at evaluation); 0.9 averages over ~10 steps."""

    filters: Any = MISSING
    batchnorm_momentum: Any = 0.9


@dataclass
class PublishedSeriesModelConfig(ConvSeriesModelConfig):
    """FCN and ResNet as Fawaz et al. 2019 build them: one kernel size per block."""

    kernel_sizes: Any = MISSING


@dataclass
class Cnn1dModelConfig(ConvSeriesModelConfig):
    kernel_size: Any = MISSING
    dropout: Any = 0.0


# ----------------------------------------------------------------------------------- tracking


@dataclass
class TrackingConfig:
    # MLflow store. null = $MLFLOW_TRACKING_URI when set, else the embedded SQLite store
    # mlruns/mlflow.db (artifacts in mlruns/artifacts), relative to the directory the command
    # runs in
    uri: Any = None
    experiment: Any = "augsweep"
    # the trained Keras model of each job in MLflow (mlflow.keras, without the augmentation
    # layers): none, best_fold (the fold with the best validation score, as `model`) or all
    # (`fold<k>`)
    log_model: Any = "none"


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
    "train": {"train": TrainConfig},
    "model": {
        "model": ModelConfig,
        "cnn": CnnModelConfig,
        "lstm": LstmModelConfig,
        "published_series": PublishedSeriesModelConfig,
        "cnn1d": Cnn1dModelConfig,
    },
    "tracking": {"tracking": TrackingConfig},
}


def load_choice(path: str | Path) -> DictConfig:
    """A group's YAML file as Hydra composes it, for code that reads one outside composition
    (`model=auto` picks conf/model/<cnn|lstm>.yaml at run time): its schema, named in its
    defaults list, merged with the file's own keys."""
    loaded = OmegaConf.load(path)
    defaults = loaded.pop("defaults", [])
    schemas = [d for d in defaults if isinstance(d, str) and d.startswith("/schema/")]
    if len(schemas) != 1:
        raise ValueError(f"{path}: expected one /schema/<group>/<kind>@_here_ in its defaults")
    _, _, group, kind = schemas[0].split("@")[0].split("/")
    return OmegaConf.merge(OmegaConf.structured(SCHEMAS[group][kind]), loaded)


def with_defaults(schema: type, cfg: Any) -> Any:
    """`cfg`, a config of one group, with the defaults of `schema` for the keys it lacks (or,
    in a DictConfig, leaves `???`, as `.get(key, default)` read them).

    A composed config has them all (its file extends its schema) and comes back as it is; one
    made outside composition (a test's `OmegaConf.create({...})`, the JSON a dataset is cached
    by) gets them here, so code reads each key the schema defaults where the schema writes it.
    A `???` field of the schema is no default: a config without it still lacks it. A DictConfig
    comes back a DictConfig (a copy), a mapping a dict.
    """
    config = OmegaConf.is_config(cfg)
    lacking = {}
    for f in dataclasses.fields(schema):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if isinstance(default, str) and default == MISSING:
            continue
        if f.name not in cfg.keys() or (config and OmegaConf.is_missing(cfg, f.name)):
            lacking[f.name] = default
    if not lacking:
        return cfg
    if not config:
        return {**cfg, **lacking}
    filled = cfg.copy()
    with read_write(filled), open_dict(filled):
        for key, value in lacking.items():
            filled[key] = value
    return filled


def aug_with_defaults(aug_cfg: Any) -> Any:
    """`aug_cfg` with the defaults of its kind's schema (`with_defaults`): a policy's (AugMix's
    for `policy: augmix`; `implementation` for every policy), else those of every aug."""
    policy = aug_cfg.get("policy")
    if policy is None:
        return with_defaults(AugConfig, aug_cfg)
    return with_defaults(AugMixAugConfig if policy == "augmix" else KerasPolicyAugConfig, aug_cfg)


def register() -> None:
    """Store every schema as `schema/<group>/<name>`: a group of its own, so `aug=preset` is
    no choice, while conf/aug/light.yaml extends it with `- /schema/aug/preset@_here_`."""
    store = ConfigStore.instance()
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)
