"""The config schema (src/schema.py) and the shared value checks (src/checks.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from src.checks import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    finite,
    is_int,
    is_number,
    refuse,
)
from src.errors import ConfigError
from src.schema import SCHEMAS

CONF = Path(__file__).resolve().parent.parent / "conf"
AUG_FILES = sorted(p.stem for p in (CONF / "aug").glob("*.yaml"))


@pytest.mark.parametrize("name", AUG_FILES)
def test_every_aug_file_extends_a_schema_and_gets_what_it_had(make_cfg, name):
    """What every conf/aug file wrote before the schema supplied it: fill_mode constant,
    placement model, fused true; and no key beyond its schema's."""
    own = yaml.safe_load((CONF / "aug" / f"{name}.yaml").read_text())
    (parent,) = [d for d in own["defaults"] if d != "_self_"]
    kind = parent.removeprefix("/schema/aug/").removesuffix("@_here_")
    aug = make_cfg(f"aug={name}").aug
    assert (aug.fill_mode, aug.placement, aug.fused) == ("constant", "model", True)
    assert OmegaConf.get_type(aug) is SCHEMAS["aug"][kind]
    assert set(own) - {"defaults"} <= set(aug.keys())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["aug=heavy"], {"ops": None, "strength": 1.0}),
        (["aug=randaugment"], {"exclude": [], "implementation": "augsweep", "num_ops": 2}),
        (["aug=trivialaugment"], {"exclude": [], "ops": [], "num_ops": 1}),
        (["aug=augmix"], {"num_chains": 3, "alpha": 1.0, "implementation": "augsweep"}),
        (["aug=custom"], {"ops": [], "kwargs": {}}),
        (["aug=idg"], {"ops": []}),
        (["aug=heavy", "aug.placement=dataset", "aug.fused=false"],
         {"placement": "dataset", "fused": False}),
    ],
)  # fmt: skip
def test_schema_defaults_compose(make_cfg, overrides, expected):
    aug = OmegaConf.to_container(make_cfg(*overrides).aug)
    assert {key: aug[key] for key in expected} == expected


def test_schema_keeps_missing_values_missing(make_cfg):
    """`???` in a file that extends a schema stays a value the user must give."""
    assert OmegaConf.is_missing(make_cfg("aug=combo").aug, "ops")
    assert OmegaConf.is_missing(make_cfg("aug=custom").aug, "target")
    assert OmegaConf.is_missing(make_cfg("data=image_folder").data, "path")
    assert OmegaConf.is_missing(make_cfg("data=series_file").data, "path")


def test_schema_data_and_cv_defaults(make_cfg):
    data = make_cfg("data=gunpoint").data
    assert (data.path, data.subset, data.split_seed, data.ucr_name) == (None, None, 0, "GunPoint")
    folder = make_cfg("data=image_folder", "data.path=x").data
    assert (folder.color_mode, folder.cache, folder.test_size) == ("rgb", "auto", 0.2)
    assert list(folder.image_size) == [64, 64]
    cv = make_cfg().cv  # SMALL sets cv.folds=2
    assert cv.repeats == 1


def test_schema_rejects_unknown_keys_but_appends(make_cfg):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        make_cfg("aug.fil_mode=reflect")
    assert list(make_cfg("aug=heavy", "+aug.exclude=[flip]").aug.exclude) == ["flip"]


@pytest.mark.parametrize(
    ("value", "integer", "number"),
    [(0, True, True), (7, True, True), (-3, True, True), (True, False, False),
     (False, False, False), (1.0, False, True), (math.nan, False, True), ("7", False, False),
     (None, False, False)],
)  # fmt: skip
def test_is_int_and_is_number(value, integer, number):
    assert is_int(value) is integer
    assert is_number(value) is number


def test_finite():
    assert finite(1.5) and finite(0)
    assert not finite(math.nan) and not finite(math.inf) and not finite(True)


def test_refuse_message():
    err = refuse("train.epochs", True, "an integer >= 1")
    assert isinstance(err, ConfigError)
    assert str(err) == "train.epochs=True is not allowed; accepted: an integer >= 1"


def test_check_int():
    assert check_int("cv.folds", 5, 2) == 5
    for bad in (True, 1, 2.0, "3", None):
        with pytest.raises(ConfigError, match=r"^cv\.folds=.* is not allowed; accepted: an "
                                               r"integer >= 2$"):  # fmt: skip
            check_int("cv.folds", bad, 2)


def test_check_positive():
    assert check_positive("train.learning_rate", 0.1) == 0.1
    assert check_positive("sweep.heartbeat_s", math.inf, "seconds > 0") == math.inf
    for bad in (0, -1, math.nan, True, "1", None):
        with pytest.raises(ConfigError, match=r"accepted: seconds > 0$"):
            check_positive("sweep.heartbeat_s", bad, "seconds > 0")


def test_check_bool():
    assert check_bool("sweep.audit", False) is False
    for bad in (0, 1, "true", None):
        with pytest.raises(ConfigError, match=r"^sweep\.audit=.* accepted: true, false$"):
            check_bool("sweep.audit", bad)


def test_check_choice():
    assert check_choice("aug.placement", "dataset", ("model", "dataset")) == "dataset"
    with pytest.raises(ConfigError) as err:
        check_choice("aug.placement", "gpu", ("model", "dataset"), "supported")
    assert str(err.value) == "aug.placement='gpu' is not supported; accepted: model, dataset"
    with pytest.raises(ConfigError, match="accepted: model, dataset"):
        check_choice("aug.placement", ["model"], ("model", "dataset"))
