"""Entry point: `python -m src.sweep -m aug=light,heavy` runs one job per setting."""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src import progress
from src.adaptive import adaptive_of, run_adaptive
from src.config import check_cli
from src.errors import ConfigError, Terminated, stop_reason
from src.hydra_callbacks import end_sweep
from src.study import run_study, study_of
from src.tracking import context, stop_on_sigterm, varying

if TYPE_CHECKING:
    from src.train import JobResult

log = logging.getLogger(__name__)


def progress_line(
    num: int | None,
    size: int | None,
    overrides: list[str],
    metric: str,
    outcome: JobResult | BaseException | None,
    seconds: float,
) -> str:
    """`[3/12] aug=heavy aug.strength=0.8: val_accuracy_mean=0.912 (12.3 s)`, one per job;
    with no outcome yet, the part before the colon (the live display's job label)."""
    where = "" if num is None else f"[{num + 1}/{size or '?'}] "
    what = " ".join(overrides) or "defaults"
    if outcome is None:
        return f"{where}{what}"
    if isinstance(outcome, BaseException):
        first = str(outcome).splitlines()[0] if str(outcome) else ""
        return f"{where}{what}: FAILED {type(outcome).__name__}: {first} ({seconds:.1f} s)"
    value = outcome.metrics.get(metric)
    score = f"{metric}={value:.3f}" if value is not None else f"no {metric} yet"
    if outcome.skipped:
        return f"{where}{what}: skipped, {outcome.skipped}: {score}"
    return f"{where}{what}: {score} ({seconds:.1f} s)"


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one job; return the metric that Hydra sweepers optimise (`optimize_metric`)."""
    from src.train import run  # TensorFlow: only where jobs run, not in a study or adaptive sweep

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    sweep = context.current()  # the multirun's, passed on to the job
    overrides = varying(list(hydra_cfg.overrides.task), sweep.swept if sweep else [])
    size = sweep.size if sweep else None
    num = hydra_cfg.job.num if multirun else None
    display = progress.for_job(multirun, cfg.sweep.progress)

    def report(outcome: JobResult | BaseException) -> None:
        seconds = time.perf_counter() - started
        line = progress_line(num, size, overrides, cfg.optimize_metric, outcome,
                             seconds)  # fmt: skip
        kind = "failed" if isinstance(outcome, BaseException) else "finished"
        display.job_done(line, seconds, "skipped" if kind == "finished" and outcome.skipped
                         else kind)  # fmt: skip

    started = time.perf_counter()
    display.job_started(progress_line(num, size, overrides, "", None, 0))
    try:
        result = run(cfg, display, sweep)
    except Exception as err:
        if multirun:
            # the run is recorded FAILED; the sweep goes on and exits non-zero at its end
            report(err)
            return float("nan")
        display.close()
        if isinstance(err, ConfigError):
            print(f"augsweep: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the display goes before the sweep says why
        progress.end_sweep()
        display.close()
        raise
    report(result)
    if not multirun:
        display.close()
    return float(result.metrics.get(cfg.optimize_metric, float("nan")))


def multirun_first(args: list[str]) -> list[str]:
    """`data=gunpoint -m aug=none,light` as `-m data=gunpoint aug=none,light`.

    Hydra's argparse takes the overrides as one positional list, so overrides on both sides
    of `-m` would be refused.
    """
    flags = [a for a in args if a in ("-m", "--multirun")]
    return flags + [a for a in args if a not in flags]


def stopped(stop: KeyboardInterrupt) -> int:
    """Ctrl-C or SIGTERM: the job's run has ended KILLED; end the sweep's parent run KILLED too,
    say how to resume, and return the exit status a shell expects (128 + the signal)."""
    progress.end_sweep()
    try:
        _, _, parent = end_sweep(stop)
    except Exception as err:  # the store is gone too: the next sweep marks the parent KILLED
        log.error("the sweep's parent run could not be ended KILLED: %s", err)
        parent = None
    ended = f"the running job's run and the sweep's parent run {parent}" if parent else "its run"
    print(
        f"augsweep: {stop_reason(stop)}: {ended} ended KILLED; the same command resumes, "
        "training only what is not FINISHED",
        file=sys.stderr,
        flush=True,
    )
    return 128 + (signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.argv[1:] = multirun_first(sys.argv[1:])
    try:
        check_cli(sys.argv[1:])
        study = study_of(sys.argv[1:])
        adaptive = None if study else adaptive_of(sys.argv[1:])
    except ConfigError as err:
        print(f"augsweep: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    stop_on_sigterm()  # what SLURM and most schedulers send before they kill a job
    if study is not None:  # a preset of several grids: each its own sweep, then the report
        raise SystemExit(run_study(*study, sys.argv[1:]))
    if adaptive is not None:  # rounds of multiruns, seeds only where the verdict is open
        raise SystemExit(run_adaptive(adaptive, sys.argv[1:]))
    try:
        main()
    except KeyboardInterrupt as stop:
        raise SystemExit(stopped(stop)) from None
