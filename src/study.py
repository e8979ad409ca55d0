"""Studies: an experiment preset that runs several sweep grids in turn, then the report.

A study's question often needs more than one cartesian grid (every op by strength, and the
recipes at their own strengths), which Hydra's basic sweeper cannot express in one multirun.
A preset with `sweep.study` is run by `python -m src.sweep -m experiment=NAME` as one
multirun per grid (each with its parent run; finished jobs of earlier runs are reused), then
`python -m src.report --sweep <the grids' parent runs>`, written to `sweep.study.report.out`:
the runs the grids trained or reused, and no other run of the experiment.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from src.config import CONF_DIR
from src.errors import ConfigError, Terminated, stop_reason
from src.tracking import context

PRESET_KEY = "experiment"  # presets are `# @package _global_`: they set keys of every group


def _preset_name(args: list[str]) -> str | None:
    for arg in args:
        if arg.startswith(f"{PRESET_KEY}="):
            return arg.split("=", 1)[1]
    return None


def override_key(arg: str) -> str:
    """The key an override sets: `aug.strength` of `+aug.strength=1`."""
    return arg.split("=", 1)[0].lstrip("+~")


def study_of(args: list[str]) -> tuple[str, DictConfig] | None:
    """The preset's name and the root config it composes to (tracking, sweep.study), when the
    command runs a study preset; the command's tracking.* and sweep.* overrides are applied.

    None inside one of the study's own grid sweeps, and for presets that are one grid.
    """
    name = _preset_name(args)
    if name is None or context.study_grid() is not None:
        return None
    path = CONF_DIR / "experiment" / f"{name}.yaml"
    if not path.exists() or OmegaConf.select(OmegaConf.load(path), "sweep.study") is None:
        return None  # check_cli reports unknown presets
    kept = [a for a in args if ("=" in a or a.startswith("~"))  # ~key deletes, e.g. a grid
            and override_key(a).split(".")[0] in ("tracking", "sweep")]  # fmt: skip
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"{PRESET_KEY}={name}", *kept])
    GlobalHydra.instance().clear()
    study = cfg.sweep.study
    if not study.get("grids"):
        raise ConfigError(f"experiment={name}: sweep.study.grids is empty; accepted: named grids")
    if "-m" not in args and "--multirun" not in args:
        raise ConfigError(
            f"experiment={name} is a study of {len(study.grids)} sweeps; run it with -m: "
            f"python -m src.sweep -m experiment={name}"
        )
    return name, cfg


def with_grid(overrides: list[str], grid: Mapping[str, Any]) -> list[str]:
    """Overrides plus a grid's `key=values`, combined as Hydra's basic sweeper combines the
    command line with `hydra.sweeper.params`: a key on the command line wins."""
    given = {override_key(o) for o in overrides if "=" in o}
    return [*overrides, *(f"{key}={value}" for key, value in grid.items() if key not in given)]


def grid_args(args: list[str], grid: DictConfig, sweep_dir: str) -> list[str]:
    """The command's arguments plus one grid's sweep overrides, its Hydra outputs in
    `sweep_dir`."""
    others = [a for a in args if override_key(a) != "hydra.sweep.dir"]
    return [*with_grid(others, grid), f"hydra.sweep.dir={sweep_dir}"]


def sweep_dir(args: list[str], name: str) -> str:
    """Where the command's Hydra outputs go: its `hydra.sweep.dir`, else one per start."""
    given = [a.split("=", 1)[1] for a in args if override_key(a) == "hydra.sweep.dir"]
    return given[-1] if given else time.strftime(f"multirun/%Y-%m-%d/%H-%M-%S-{name}")


def run_sweep(args: list[str], env: dict[str, str]) -> int:
    """`python -m src.sweep ARGS` in a process of its own; its exit code.

    Ctrl-C reaches it too (one process group): it ends its runs KILLED and is waited for
    (subprocess.run would kill it at once), then the KeyboardInterrupt goes on. SIGTERM
    (Terminated) reaches only this process, which passes it on.
    """
    with subprocess.Popen([sys.executable, "-m", "src.sweep", *args], env=env) as sweep:
        try:
            return sweep.wait()
        except KeyboardInterrupt as stop:
            if isinstance(stop, Terminated):
                sweep.send_signal(signal.SIGTERM)
            sweep.wait()
            raise


def run_study(name: str, cfg: DictConfig, args: list[str]) -> int:
    """Each grid as its own `python -m src.sweep` process, then the report; the exit code."""
    from mlflow.tracking import MlflowClient  # MLflow and pandas: only once a study runs

    from src import report
    from src.tracking import tags
    from src.tracking.store import search_all, tracking_uri

    study = cfg.sweep.study
    base = sweep_dir(args, name)
    study_id = uuid.uuid4().hex
    codes = []
    started = time.perf_counter()
    for k, (label, grid) in enumerate(study.grids.items(), start=1):
        print(f"augsweep: study {name}: grid {k}/{len(study.grids)} ({label})", flush=True)
        env = context.StudyGrid(name, label, study_id).env()
        try:
            code = run_sweep(grid_args(args, grid, f"{base}/{label}"), env)
        except KeyboardInterrupt as stop:  # the grid's sweep has ended its runs KILLED
            print(f"augsweep: study {name} {stop_reason(stop)}; the same command resumes it",
                  file=sys.stderr, flush=True)  # fmt: skip
            return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)
        if code == 2:  # bad input: nothing trained, the next grid would say the same
            return 2
        codes.append(code)
    minutes = (time.perf_counter() - started) / 60
    print(f"augsweep: study {name}: {len(codes)} sweeps in {minutes:.1f} min", flush=True)
    uri = tracking_uri(cfg.tracking)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    parents = search_all([experiment.experiment_id], f"tags.`{tags.STUDY_ID}` = '{study_id}'",
                         order_by=["attributes.start_time ASC"], client=client)  # fmt: skip
    out = Path(study.get("report", {}).get("out") or f"reports/{name}")
    report_args = ["--experiment", cfg.tracking.experiment, "--out", str(out)]
    report_args += ["--tracking-uri", uri, "--sweep", *(p.info.run_id for p in parents)]
    report_args += ["--metric", study.get("report", {}).get("metric") or "val_accuracy"]
    report_args += ["--margin", f"{cfg.sweep.adaptive.margin:g}"]  # the rounds' margin
    return max([*codes, report.main(report_args)])
