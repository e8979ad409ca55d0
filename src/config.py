"""Checks of user input that run before Hydra composes or any job trains."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from src.checks import check_bool, check_choice, check_int, check_positive, is_int
from src.errors import ConfigError
from src.progress import check_mode

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
# groups whose choice is a file name; `experiment` presets are checked the same way
GROUPS = ("data", "model", "aug", "cv", "train", "tracking", "experiment")
GROUP_NAMES = {"data": "dataset", "model": "model", "aug": "augmentation"}


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_cli(args: Sequence[str]) -> list[tuple[str, str]]:
    """Reject an unknown `group=name` (also inside a sweep list) before a multirun starts.

    Hydra would find it only when it reaches that job, after the others have trained.
    Returns the (group, choice) pairs it checked.
    """
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # malformed overrides: Hydra's own parser reports them
        return []
    checked = []
    for override in parsed:
        group = override.key_or_group.lstrip("+~")
        if group not in GROUPS or override.is_delete():
            continue
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        for value in values:
            if value not in choices(group) and not (group == "experiment" and value == "null"):
                what = GROUP_NAMES.get(group, group)
                raise ConfigError(
                    f"unknown {what} {group}={value!r}; accepted: {', '.join(choices(group))}"
                )
            checked.append((group, value))
    return checked


def check_job(cfg: DictConfig) -> None:
    """Config values that no other module owns."""
    for key in ("train.epochs", "train.batch_size"):
        check_int(key, OmegaConf.select(cfg, key), 1)
    check_int("seed", cfg.seed, 0)
    for key in ("sweep.rerun", "sweep.audit", "train.deterministic", "train.mixed_precision",
                "train.jit_compile"):  # fmt: skip
        check_bool(key, OmegaConf.select(cfg, key))
    for key in ("sweep.heartbeat_s", "sweep.dead_after_s"):
        check_positive(key, OmegaConf.select(cfg, key), "seconds > 0")
    if cfg.sweep.dead_after_s <= 2 * cfg.sweep.heartbeat_s:
        raise ConfigError(
            f"sweep.dead_after_s={cfg.sweep.dead_after_s} is not allowed with "
            f"sweep.heartbeat_s={cfg.sweep.heartbeat_s}; accepted: more than twice the heartbeat"
        )
    check_mode(cfg.sweep.progress)
    check_log_model(cfg.tracking.log_model)
    folds = cfg.train.parallel_folds
    if not (folds in ("auto", True, False) or (is_int(folds) and folds >= 1)):
        raise ConfigError(
            f"train.parallel_folds={folds!r} is not allowed; accepted: auto, true, false, or an "
            "integer >= 1 (folds trained together)"
        )
    for key, callback in (("early_stopping", "EarlyStopping"), ("reduce_lr", "ReduceLROnPlateau")):
        check_callback(cfg.train, key, callback)
    if cfg.train.clipnorm is not None:
        check_positive("train.clipnorm", cfg.train.clipnorm, "null or a number > 0")
    check_positive("train.learning_rate", cfg.train.learning_rate)
    if cfg.train.jit_compile and cfg.train.deterministic:
        raise ConfigError(
            "train.jit_compile=true has no effect with train.deterministic=true (Keras turns XLA "
            "off under op determinism); accepted: train.deterministic=false with it"
        )


def check_job_on_data(
    cfg: DictConfig, model_cfg: DictConfig, modality: str, ops: Sequence[Any]
) -> None:
    """Config values that are allowed or not by what the job found once its data was loaded:
    its `modality`, the `ops` its augmentation applies (`resolve_ops`, so `aug.placement` is
    checked) and its concrete model config (`resolve_model_cfg`: `model=auto`'s choice)."""
    if cfg.train.jit_compile and ops and cfg.aug.placement == "model":
        raise ConfigError(
            "train.jit_compile=true is not supported with aug.placement=model: TensorFlow cannot "
            "XLA-compile the augmentation layers; accepted: aug.placement=dataset (augmentation "
            "in tf.data, the model compiled)"
        )
    standardize = model_cfg.get("standardize", False)  # only some models have the key
    if not isinstance(standardize, bool) or (standardize and modality != "series"):
        accepted = "true, false" if modality == "series" else "false (series only)"
        raise ConfigError(f"model.standardize={standardize!r} is not allowed for "
                          f"{modality} data; accepted: {accepted}")  # fmt: skip


# tracking.log_model: which trained fold models a job logs (src/train/fold_models.py)
LOG_MODEL = ("none", "best_fold", "all")


def check_log_model(value: object) -> str:
    """`tracking.log_model`: none, best_fold or all."""
    return check_choice("tracking.log_model", value, LOG_MODEL)


def check_callback(train_cfg: DictConfig, key: str, name: str) -> None:
    """`train.<key>`: null, or the keyword arguments of Keras's callback `name`."""
    value = train_cfg.get(key)
    if value is None:
        return
    if not isinstance(value, DictConfig):
        raise ConfigError(
            f"train.{key}={value!r} is not allowed; accepted: null or a mapping of "
            f"keras.callbacks.{name} arguments"
        )
    import keras  # only jobs that set a recipe pay for the import here

    try:
        getattr(keras.callbacks, name)(**OmegaConf.to_container(value, resolve=True))
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"train.{key}={OmegaConf.to_container(value)} is not allowed ({err}); accepted: "
            f"keras.callbacks.{name} arguments"
        ) from None
