"""The sweep a job belongs to, and how it travels from the sweep's process to the job's.

The sweep callback (src/hydra_callbacks.py) makes one `SweepContext` per multirun: the parent
run, the store, the directory the sweep started in, its grid. A job may run in another process
(joblib, submitit) or on another machine (Ray), so the context travels as the environment
variable SWEEP_ENV, which child processes inherit and `to_ray_workers` hands to Ray's workers.
This module alone reads and writes it; everything else gets the context as an argument.

An adaptive sweep (src/adaptive.py) runs its rounds as `python -m src.sweep` processes that
join its parent run: the `Round` travels to them as ROUND_ENV the same way. A study
(src/study.py) runs each grid as a `python -m src.sweep` process: its `StudyGrid` travels as
STUDY_ENV.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

SWEEP_ENV = "AUGSWEEP_SWEEP"
ROUND_ENV = "AUGSWEEP_ROUND"
STUDY_ENV = "AUGSWEEP_STUDY"


@dataclass(frozen=True)
class SweepContext:
    """What a job of a multirun needs to know about its sweep."""

    parent_run_id: str
    tracking_uri: str | None = None  # the store the sweep records to
    cwd: str | None = None  # where the sweep was started: relative data paths mean it
    size: int | None = None  # jobs in the grid, None when it cannot be counted
    swept: list[str] = field(default_factory=list)  # the keys the grid varies
    metric: str = "val_accuracy_mean"  # the sweep's optimize_metric
    round: int | None = None  # the adaptive round the multirun is, None outside one

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> SweepContext:
        return cls(**json.loads(text))


def launch_dir(context: SweepContext | None) -> Path:
    """The directory the command was started in: relative paths in the config are from here."""
    return Path((context.cwd if context is not None else None) or os.getcwd())


def begin(context: SweepContext) -> None:
    """This process runs `context`'s jobs, and so do the processes it starts from now on."""
    os.environ[SWEEP_ENV] = context.to_json()


def current() -> SweepContext | None:
    """The multirun this process's jobs belong to; None outside one."""
    text = os.environ.get(SWEEP_ENV)
    return SweepContext.from_json(text) if text else None


def end() -> SweepContext | None:
    """The multirun is over: the context it had (None when none), no longer passed on."""
    text = os.environ.pop(SWEEP_ENV, None)
    return SweepContext.from_json(text) if text else None


def to_ray_workers(config: DictConfig, context: SweepContext) -> None:
    """Under hydra/launcher=ray, the context for the jobs, set in ray.init's runtime_env:
    workers of a cluster started beforehand do not inherit the sweep's environment.

    The launcher is made from this config after the callback's on_multirun_start. Also sets
    `init.object_store_memory: null` unless given: hydra-ray-launcher 1.2.2 otherwise passes
    78,643,200 to ray.init, which Ray refuses when joining an existing cluster
    (facebookresearch/hydra#2893).
    """
    launcher = config.hydra.get("launcher") or {}
    if not str(launcher.get("_target_", "")).endswith(".RayLauncher"):
        return
    init = "hydra.launcher.ray.init"
    with read_write(config.hydra), open_dict(config.hydra):
        OmegaConf.update(config, f"{init}.runtime_env.env_vars.{SWEEP_ENV}", context.to_json(),
                         force_add=True)  # fmt: skip
        if OmegaConf.select(config, f"{init}.object_store_memory", default="absent") == "absent":
            OmegaConf.update(config, f"{init}.object_store_memory", None, force_add=True)


@dataclass(frozen=True)
class Round:
    """A round of an adaptive sweep: the parent run its multirun joins, its number (1, 2, ...)
    and the keys its progress lines show."""

    parent_run_id: str
    number: int
    swept: list[str] = field(default_factory=list)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of the round's `python -m src.sweep` process: `base` (this
        process's by default) and the round."""
        text = json.dumps({"parent_run_id": self.parent_run_id, "round": self.number,
                           "swept": self.swept})  # fmt: skip
        return {**(os.environ if base is None else base), ROUND_ENV: text}


def joined_round() -> Round | None:
    """The adaptive round this process's multirun is; None when it is a sweep of its own."""
    found: dict[str, Any] = json.loads(os.environ.get(ROUND_ENV) or "{}")
    if not found:
        return None
    return Round(found["parent_run_id"], found["round"], found.get("swept") or [])


@dataclass(frozen=True)
class StudyGrid:
    """The grid of a study a sweep runs: the study, the grid's label, and the id of the run of
    the study command, which tags the grids' parent runs so its report finds them alone."""

    study: str
    grid: str
    study_id: str

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of the grid's `python -m src.sweep` process: `base` (this process's
        by default) and the grid."""
        return {**(os.environ if base is None else base), STUDY_ENV: json.dumps(asdict(self))}

    def tags(self) -> dict[str, str]:
        """Tags for the grid's parent run: `<study>/<grid>` and the study command's run."""
        from src.tracking import tags

        return {tags.STUDY: f"{self.study}/{self.grid}", tags.STUDY_ID: self.study_id}


def study_grid() -> StudyGrid | None:
    """The study grid this process's multirun is; None when it is no study's."""
    found: dict[str, Any] = json.loads(os.environ.get(STUDY_ENV) or "{}")
    return StudyGrid(**found) if found else None


def varying(overrides: Iterable[str], swept: Iterable[str]) -> list[str]:
    """The overrides of the keys a sweep varies; all of them when it varies none."""
    swept = list(swept)
    if not swept:
        return list(overrides)
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]
