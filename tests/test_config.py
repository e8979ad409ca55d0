"""The composed config: the public keys, what each choice composes to, and bad names and values."""

from __future__ import annotations

import pytest
from omegaconf import ListConfig, OmegaConf, open_dict, read_write

from src.config import check_cli, check_job, choices
from src.errors import ConfigError
from src.models import resolve_model_cfg

PUBLIC_KEYS = [
    "data.name",
    "data.path",
    "model.name",
    "aug.name",
    "aug.strength",
    "cv.folds",
    "cv.repeats",
    "train.epochs",
    "train.batch_size",
    "tracking.uri",
    "tracking.experiment",
    "seed",
    "train.deterministic",
    "sweep.rerun",
    "sweep.heartbeat_s",
    "sweep.dead_after_s",
    "sweep.adaptive.max_seeds",
    "sweep.adaptive.margin",
    "sweep.audit",
    "train.parallel_folds",
    "train.early_stopping",
    "train.reduce_lr",
    "tracking.log_model",
    "sweep.progress",
    "sweep.report",
]


def test_defaults_compose_to_the_documented_values(make_cfg):
    cfg = make_cfg()
    for key in PUBLIC_KEYS:
        assert OmegaConf.select(cfg, key, default="absent") != "absent", key
    assert cfg.data.path is None  # digits ships with scikit-learn
    assert cfg.data.name == "digits" and cfg.data.modality == "image"
    assert cfg.model.name == "auto"
    assert (cfg.aug.name, cfg.aug.strength) == ("light", 0.25)
    assert cfg.tracking.experiment == "augsweep" and cfg.tracking.uri is None
    assert cfg.seed == 0 and cfg.cv.repeats == 1
    assert cfg.train.deterministic is True and cfg.sweep.rerun is False
    assert cfg.sweep.audit is True
    assert (cfg.sweep.heartbeat_s, cfg.sweep.dead_after_s) == (30, 600)
    assert (cfg.tracking.log_model, cfg.sweep.progress, cfg.sweep.report) == ("none", "auto", True)
    # the shrinking overrides of the test fixture
    assert (cfg.train.epochs, cfg.cv.folds) == (2, 2)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["aug=none"],
            {"aug.strength": 0.0, "aug.modality_ops.image": [], "aug.modality_ops.series": []},
        ),
        (
            ["aug=heavy"],
            {
                "aug.strength": 1.0,
                "aug.modality_ops.image": ["flip", "rotation", "zoom", "contrast"],
                "aug.modality_ops.series": ["jitter", "scaling"],
            },
        ),
        (["aug=medium", "aug.strength=0.8"], {"aug.strength": 0.8, "aug.name": "medium"}),
        (
            ["aug=randaugment"],
            {
                "aug.policy": "randaugment",
                "aug.strength": 0.5,
                "aug.num_ops": 2,
                "aug.exclude": [],
                "aug.ops": [],
                "aug.placement": "model",
            },
        ),  # fmt: skip
        (
            ["aug=augmix", "aug.exclude=[solarize]"],
            {
                "aug.policy": "augmix",
                "aug.strength": 0.3,
                "aug.num_ops": 3,
                "aug.num_chains": 3,
                "aug.alpha": 1.0,
                "aug.exclude": ["solarize"],
            },
        ),  # fmt: skip
        (["aug=trivialaugment"], {"aug.policy": "trivialaugment", "aug.strength": 1.0}),
        (["sweep.audit=false"], {"sweep.audit": False}),
        (["data=gunpoint"], {"data.modality": "series", "data.ucr_name": "GunPoint"}),
        (["data=japanese_vowels"], {"data.ucr_name": "JapaneseVowels"}),
        (["data=image_folder", "data.path=/x"], {"data.image_size": [64, 64], "data.path": "/x"}),
        (["model=lstm", "data=basic_motions"], {"model.units": 50, "data.name": "basic_motions"}),
        (["model=cnn"], {"model.filters": [32, 64], "model.dense_units": 128}),
        (["cv.folds=3", "cv.repeats=2", "seed=7"], {"cv.folds": 3, "cv.repeats": 2, "seed": 7}),
        (
            ["tracking.experiment=mine", "train.epochs=5"],
            {"tracking.experiment": "mine", "train.epochs": 5},
        ),
    ],
)
def test_overrides_compose(make_cfg, overrides, expected):
    cfg = make_cfg(*overrides)
    for key, value in expected.items():
        actual = OmegaConf.select(cfg, key)
        if isinstance(actual, ListConfig):
            actual = list(actual)
        assert actual == value, key


@pytest.mark.parametrize("group", ["data", "model", "aug", "cv", "train", "tracking"])
def test_every_choice_composes(make_cfg, group):
    for choice in choices(group):
        extra = ["data.path=/somewhere"] if choice in ("image_folder", "series_file") else []
        cfg = make_cfg(f"{group}={choice}", *extra)
        assert len(cfg[group]) > 0
        if group in ("data", "model", "aug"):
            assert cfg[group].name == choice


def test_auto_model_fits_the_modality(make_cfg):
    assert resolve_model_cfg(make_cfg().model, "image").name == "cnn"
    lstm = resolve_model_cfg(make_cfg("data=gunpoint").model, "series")
    assert (lstm.name, lstm.units) == ("lstm", 50)


def test_model_of_the_wrong_modality_is_an_error(make_cfg):
    message = r"model 'lstm' needs series data, but the dataset is image"
    with pytest.raises(ConfigError, match=message):
        resolve_model_cfg(make_cfg("model=lstm").model, "image")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data=mnist"], r"unknown dataset data='mnist'; accepted: arrow_head, basic_motions, d"),
        (["-m", "data=digits,cifar"], r"unknown dataset data='cifar'; accepted: .*gunpoint"),
        (["model=vgg"], r"unknown model model='vgg'; accepted: auto, cnn, cnn1d, fcn, lstm, resn"),
        (
            ["-m", "aug=light,extreme"],
            r"unknown augmentation aug='extreme'; accepted: augmix, blur, .*heavy, idg",
        ),
    ],
)
def test_unknown_names_on_the_command_line(args, message):
    with pytest.raises(ConfigError, match=message) as err:
        check_cli(args)
    assert "\n" not in str(err.value)


def test_known_names_and_value_overrides_pass_the_command_line_check():
    checked = check_cli(["-m", "aug=light,heavy", "data=gunpoint", "aug.strength=0.5", "seed=1"])
    assert checked == [("aug", "light"), ("aug", "heavy"), ("data", "gunpoint")]
    checked = check_cli(["--multirun", "data=digits", "model=auto", "experiment=null"])
    assert checked == [("data", "digits"), ("model", "auto"), ("experiment", "null")]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=0", r"train.epochs=0 is not allowed; accepted: an integer >= 1"),
        ("train.batch_size=-4", r"train.batch_size=-4 .*an integer >= 1"),
        ("seed=-1", r"seed=-1 is not allowed; accepted: an integer >= 0"),
        ("train.learning_rate=0", r"train.learning_rate=0 .*a number > 0"),
        ("sweep.rerun=maybe", r"^sweep.rerun='maybe' is not allowed; accepted: true, false$"),
        ("sweep.audit=1", r"^sweep.audit=1 is not allowed; accepted: true, false$"),
        ("train.deterministic=1", r"^train.deterministic=1 is not allowed; accepted: true, false$"),
        ("sweep.heartbeat_s=0", r"^sweep.heartbeat_s=0 is not allowed; accepted: seconds > 0$"),
        (
            "sweep.dead_after_s=45",
            r"^sweep.dead_after_s=45 is not allowed with sweep.heartbeat_s="
            r"30; accepted: more than twice the heartbeat$",
        ),  # fmt: skip
    ],
)
def test_bad_job_values(make_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        check_job(make_cfg(override))


def test_readme_documents_the_strength_table_in_code():
    from src.augment import strength_table
    from tests.conftest import ROOT

    assert strength_table() in (ROOT / "README.md").read_text()


def test_an_experiment_preset_sits_at_the_root_and_brings_its_grids():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from src.hydra_callbacks import grid
    from src.study import grid_args, study_of
    from tests.conftest import CONF

    args = ["-m", "experiment=digits_image_ops", "seed=0"]
    preset = CONF / "experiment" / "digits_image_ops.yaml"
    # Hydra reads the package header on line 1 only; the command that runs the preset follows it
    assert preset.read_text().splitlines()[:2] == [
        "# @package _global_",
        "# python -m src.sweep -m experiment=digits_image_ops hydra/launcher=joblib "
        "hydra.launcher.n_jobs=2",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", args[1:], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert (cfg.data.name, cfg.model.name, cfg.cv.folds) == ("digits", "cnn", 5)
    assert cfg.tracking.experiment == "study_digits"
    name, study_cfg = study_of(args)
    assert name == "digits_image_ops"
    grids = study_cfg.sweep.study.grids
    assert list(grids) == ["ops_by_strength", "recipes", "randaugment", "policies"]
    assert (study_cfg.sweep.adaptive.max_seeds, study_cfg.sweep.adaptive.margin) == (5, 0.01)
    sizes = {}
    for label, params in grids.items():
        overrides = grid_args(args, params, f"out/{label}")
        assert overrides[-1] == f"hydra.sweep.dir=out/{label}"
        sizes[label], swept = grid([o for o in overrides if o != "-m"])
        assert "seed" not in swept  # adaptive: the rounds add seeds
    # every op at 4 strengths and aug=none; RandAugment's magnitudes 0 (off) to 1 x N 1 to 3
    assert sizes == {"ops_by_strength": 14 * 4, "recipes": 6, "randaugment": 5 * 3, "policies": 3}
    assert study_cfg.sweep.study.report.out == "experiments/digits_image_ops"
    # a study is several sweeps: without -m it is refused before anything runs
    with pytest.raises(ConfigError, match="a study of 4 sweeps; run it with -m"):
        study_of(args[1:])


SERIES_STUDIES = {
    # study: (grid sizes, data of every job, the survey's strength of each op it runs)
    "series_ops": (
        {f"{m}_{g}": n for m in ("fcn", "lstm") for g, n in
         (("scale_warp_slice", 5 * 4), ("perm_rot_timewarp", 4 * 4), ("jitter", 2 * 4))},
        {"italy_power_demand"},
        {"scaling": 0.2, "magnitude_warp": 0.4, "window_slice": 0.2, "window_warp": 0.2,
         "permutation": 0.5, "channel_rotation": 0.5, "jitter": 0.06},
    ),
    "series_noise": (
        {f"{m}_{g}": n for m in ("fcn", "lstm")
         for g, n in (("classic_noise", 3 * 2), ("jitter", 3 * 2 * 3))},
        {"italy_power_demand", "japanese_vowels", "basic_motions"},
        {"jitter": 0.06},
    ),
}  # fmt: skip


@pytest.mark.parametrize("study", SERIES_STUDIES)
def test_a_series_study_pairs_each_model_with_its_recipe_and_runs_the_survey_strengths(study):
    """Every job of a series study trains the FCN with train=fcn_fast or the LSTM with
    train=lstm, decides on test accuracy, and each op's grid holds the strength that matches
    its setting in Iwana and Uchida's survey (the registry's Literature.strength)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from src.augment.registry import OPS
    from src.hydra_callbacks import grid
    from src.study import grid_args, study_of
    from tests.conftest import CONF

    sizes, datasets, survey = SERIES_STUDIES[study]
    args = ["-m", f"experiment={study}"]
    assert (CONF / "experiment" / f"{study}.yaml").read_text().splitlines()[1] == (
        f"# python -m src.sweep -m experiment={study} hydra/launcher=joblib hydra.launcher.n_jobs=2"
    )
    _, cfg = study_of(args)
    assert (cfg.cv.folds, cfg.sweep.audit, cfg.sweep.adaptive.metric) == (5, False, "test_accuracy")
    assert cfg.sweep.study.report.metric == "test_accuracy"
    strengths: dict[str, set[float]] = {}
    pairs, seen_data = set(), set()
    for label, params in cfg.sweep.study.grids.items():
        overrides = [o for o in grid_args(args, params, f"out/{label}") if o != "-m"]
        assert grid(overrides)[0] == sizes.pop(label), label
        parsed = OverridesParser.create().parse_overrides(overrides)
        values = {o.get_key_element(): [str(v) for v in o.sweep_string_iterator()]
                  if o.is_sweep_override() else [o.value()] for o in parsed}  # fmt: skip
        for op in values["aug"]:
            strengths.setdefault(op, set()).update(map(float, values.get("aug.strength", [])))
        # one job of the grid, composed: its model and recipe
        first = [f"{k}={v[0]}" for k, v in values.items() if not k.startswith("hydra.")]
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(CONF), version_base="1.3"):
            job = compose("config", first)
        GlobalHydra.instance().clear()
        pairs.add((job.model.name, job.train.name))
        seen_data.update(values.get("data", [job.data.name]))
    assert sizes == {}
    assert pairs == {("fcn", "fcn_fast"), ("lstm", "lstm")}
    assert seen_data == datasets
    for op, strength in survey.items():
        assert OPS[op].literature.strength == strength
        assert strength in strengths[op], op
    if study == "series_ops":  # every series op, at 4 strengths each
        series = {name for name, op in OPS.items() if op.modality == "series"}
        assert set(strengths) - {"none"} == series
        assert all(len(strengths[op]) == 4 for op in series)


def test_a_preset_grid_in_hydra_sweeper_params_is_counted():
    """A user's preset may give its grid as hydra.sweeper.params; the command line wins."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from src.hydra_callbacks import grid, with_sweeper_params
    from tests.conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    GlobalHydra.instance().clear()
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.overrides.task = ["aug=none,rotation"]
        cfg.hydra.sweeper.params = {"seed": "0,1,2", "aug": "none,flip,zoom"}
    assert with_sweeper_params(cfg) == ["aug=none,rotation", "seed=0,1,2"]
    assert grid(with_sweeper_params(cfg)) == (6, ["aug", "seed"])
