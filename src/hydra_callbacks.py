"""Hydra callback: one parent MLflow run per multirun, with its grid, counts and summary (the
Keras callbacks are in src/train/callbacks.py).

A round of an adaptive sweep (src/adaptive.py) is a multirun whose jobs join the adaptive
sweep's parent run instead: that sweep starts and ends its parent around all its rounds.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow.entities import Metric, Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import progress
from src.description import describe_sweep
from src.errors import ConfigError, stop_reason
from src.study import with_grid
from src.tracking import context, resume, tags
from src.tracking.context import Round, SweepContext, varying
from src.tracking.store import search_all, setup, store_errors, tracking_uri

log = logging.getLogger(__name__)
COUNTED = ("FINISHED", "FAILED", "KILLED")


def grid(overrides: list[str]) -> tuple[int | None, list[str]]:
    """Jobs in the basic sweeper's grid (None if it cannot expand it), and the swept keys.

    The basic sweeper runs the cartesian product of every sweep override's values: counted
    here with Hydra's public override parser.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None, []
    sweeps = [o for o in parsed if o.is_sweep_override()]
    swept = [o.get_key_element() for o in sweeps]
    try:
        return math.prod(len(list(o.sweep_string_iterator())) for o in sweeps), swept
    except Exception:  # e.g. interval sweeps of the optuna sweeper, globs
        return None, swept


def with_sweeper_params(config: DictConfig) -> list[str]:
    """The command line's overrides plus the grid a config (an experiment preset) gives in
    `hydra.sweeper.params`, as the basic sweeper combines them: the command line wins."""
    return with_grid(list(config.hydra.overrides.task), config.hydra.sweeper.get("params") or {})


def summary(
    children: list[Run], skipped: dict[str, str], swept: list[str]
) -> tuple[dict[str, int], list[str]]:
    """Counts of the sweep's jobs by outcome, and a line per failed job (its swept values)."""
    statuses = [child.info.status for child in children]
    counts = {status.lower(): statuses.count(status) for status in COUNTED}
    counts["skipped"] = len(skipped)
    failed = []
    for child in sorted(children, key=lambda c: c.info.start_time):
        if child.info.status == "FAILED":
            found = child.data.tags
            what = " ".join(varying(found.get(tags.OVERRIDES, "").split(), swept))
            failed.append(f"{what or child.info.run_name}: {found.get(tags.ERROR, '?')}")
    return counts, failed


class SweepCallback(Callback):
    """One parent MLflow run per Hydra multirun; every job becomes its child run.

    Jobs find the parent, the store and the directory the sweep started in in its
    `SweepContext` (src/tracking/context.py says how it reaches their processes). Dead runs
    left RUNNING by an earlier, killed sweep are marked KILLED before the new one starts.

    The parent's heartbeat, and for a round of an adaptive sweep when it started, are the
    callback's own, left out when a launcher pickles it to its workers.
    """

    _heartbeat: resume.Heartbeat | None = None
    # a round joined: when it started (ms) and the parent's skipped tags before it
    _since: tuple[int, frozenset[str]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("_heartbeat", "_since")}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        context.end()  # an earlier sweep's, in this process, is not this one's
        uri = tracking_uri(config.tracking)
        joined = context.joined_round()
        try:  # a store that cannot be written stops the sweep here, before any job
            progress.check_mode(config.sweep.progress)
            experiment_id = setup(config.tracking)
            with store_errors(uri):
                if joined:
                    run_id, size, swept = self._join_parent(config, experiment_id, joined)
                    self._since = self._round_start(run_id)
                else:
                    run_id, size, swept = self._start_parent(config, experiment_id)
        except ConfigError as err:
            print(f"augsweep: error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        sweep = SweepContext(
            parent_run_id=run_id,
            tracking_uri=uri,
            cwd=os.getcwd(),
            size=size,
            swept=swept,
            metric=str(config.get("optimize_metric") or "val_accuracy_mean"),
            round=joined.number if joined else None,
        )
        context.begin(sweep)
        context.to_ray_workers(config, sweep)
        if not joined:  # a joined parent beats in the adaptive sweep's process
            self._heartbeat = resume.Heartbeat(run_id, config.sweep.heartbeat_s).__enter__()
        log.info("sweep parent run %s in %s", run_id, uri)
        launcher = str((config.hydra.get("launcher") or {}).get("_target_", ""))
        progress.start_sweep(size, config.sweep.progress, launcher)

    @staticmethod
    def _start_parent(config: DictConfig, experiment_id: str) -> tuple[str, int | None, list[str]]:
        """Mark the dead runs of earlier sweeps KILLED, then create this sweep's parent run."""
        resume.reap(experiment_id, config.sweep.dead_after_s)
        overrides = with_sweeper_params(config)
        size, swept = grid(overrides)
        run_id = start_parent(experiment_id, overrides, str(config.hydra.sweep.dir))
        if size is not None:
            MlflowClient().log_metric(run_id, "jobs_total", size)
        return run_id, size, swept

    @staticmethod
    def _join_parent(
        config: DictConfig, experiment_id: str, joined: Round
    ) -> tuple[str, int | None, list[str]]:
        """A round of an adaptive sweep: its jobs become children of that sweep's parent run."""
        resume.reap(experiment_id, config.sweep.dead_after_s)
        size, swept = grid(with_sweeper_params(config))
        return joined.parent_run_id, size, joined.swept or swept

    @staticmethod
    def _round_start(parent: str) -> tuple[int, frozenset[str]]:
        """When a round starts and what the parent had skipped before: the round's counts are
        its own."""
        found = MlflowClient().get_run(parent).data.tags
        skipped = frozenset(k for k in found if k.startswith(tags.SKIPPED_PREFIX))
        return int(time.time() * 1000), skipped

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        progress.end_sweep()  # its last state stays on the screen, above the summary
        joined = context.joined_round()
        if self._heartbeat is not None:
            self._heartbeat.__exit__()
            self._heartbeat = None
        counts, failed, parent = end_sweep(since=self._since)
        if parent is None:
            return
        what = f"adaptive round {joined.number}" if joined else "sweep"
        print(
            f"augsweep: {what} done: {counts['finished']} finished, {counts['failed']} failed, "
            f"{counts['skipped']} skipped (already in the store); parent run {parent}",
            flush=True,
        )
        for line in failed:
            print(f"augsweep: failed: {line}", flush=True)
        # a study reports once over all its grids, an adaptive sweep after its last round
        if not joined and context.study_grid() is None and config.sweep.report:
            sweep_report(config, parent)
        if failed:
            raise SystemExit(1)


def sweep_report(config: DictConfig, parent: str, out: str | None = None) -> int:
    """The report of the sweep that just ended, written beside its Hydra outputs (`out`, else
    `<hydra.sweep.dir>/report`) and logged on its parent run (`sweep.report`); one line says
    where it is. Its exit code; a report that fails never fails the sweep."""
    from src import report  # pandas, scipy, matplotlib: only now

    score = str(config.get("optimize_metric") or "").removesuffix("_mean")
    out = out or os.path.join(str(config.hydra.sweep.dir), "report")
    args = ["--experiment", config.tracking.experiment, "--sweep", parent, "--quiet",
            "--tracking-uri", tracking_uri(config.tracking), "--out", out]  # fmt: skip
    if score in report.METRICS:
        args += ["--metric", score]
    try:
        code = report.main(args)
    except Exception as err:
        log.warning("the sweep's report could not be made: %s", err)
        code = 2
    if code == 2:
        print(f"augsweep: the report was not made; python -m src.report --sweep {parent}",
              flush=True)  # fmt: skip
    return code


def start_parent(
    experiment_id: str, overrides: list[str], sweep_dir: str, more: dict[str, str] | None = None
) -> str:
    """Create a sweep's parent run (RUNNING, carrying this process: see resume.is_dead)."""
    grid = context.study_grid()
    run = MlflowClient().create_run(
        experiment_id,
        run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
        tags={
            tags.ROLE: tags.ROLE_SWEEP,
            tags.COMMAND: " ".join(["python", "-m", "src.sweep", *sys.argv[1:]]),
            tags.OVERRIDES: " ".join(overrides),
            tags.SWEEP_DIR: sweep_dir,
            **(grid.tags() if grid is not None else {}),
            **resume.identity_tags(),
            **(more or {}),
        },
    )
    return run.info.run_id


def end_sweep(
    stop: KeyboardInterrupt | None = None, since: tuple[int, frozenset[str]] | None = None
) -> tuple[dict[str, int], list[str], str | None]:
    """End the running sweep's parent run with its counts: FINISHED, FAILED when a job failed,
    KILLED with the reason when `stop` (Ctrl-C, SIGTERM) ended the sweep. Returns the counts,
    a line per failed job and the parent's id (None outside a sweep).

    A round of an adaptive sweep leaves the parent running (the adaptive sweep ends it) and
    counts only its own jobs (those since `since`: see `outcome`)."""
    sweep = context.end()
    if sweep is None:
        return {}, [], None
    parent = sweep.parent_run_id
    if sweep.round is not None:
        return (*outcome(parent, sweep.swept, since), parent)
    return (*finish_parent(parent, sweep.swept, stop, sweep.metric), parent)


def outcome(
    parent: str, swept: list[str], since: tuple[int, frozenset[str]] | None = None
) -> tuple[dict[str, int], list[str]]:
    """The counts and failed-job lines of a parent run's jobs; with `since` (a start time in
    ms and the skipped tags then), only of those started or skipped after it."""
    run = MlflowClient().get_run(parent)
    children = search_all([run.info.experiment_id], f"tags.`{tags.PARENT}` = '{parent}'")
    started, before = since or (0, frozenset())
    children = [c for c in children if c.info.start_time >= started]
    skipped = {
        k: v
        for k, v in run.data.tags.items()
        if k.startswith(tags.SKIPPED_PREFIX) and k not in before
    }
    return summary(children, skipped, swept)


def finish_parent(
    parent: str,
    swept: list[str],
    stop: KeyboardInterrupt | None = None,
    metric: str | None = None,
) -> tuple[dict[str, int], list[str]]:
    """Log a parent run's job counts and description (the best job by `metric`) and end it:
    KILLED by `stop`, FAILED when a job failed, else FINISHED. Returns the counts and a line
    per failed job."""
    counts, failed = outcome(parent, swept)
    client = MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(parent, metrics=[Metric(f"jobs_{k}", v, now, 0) for k, v in counts.items()])
    try:
        describe_sweep(parent, counts, swept, metric or "val_accuracy_mean")
    except Exception as err:  # the description is a convenience: the run still ends
        log.warning("the sweep's description could not be written: %s", err)
    if stop is not None:
        client.set_tag(parent, tags.KILLED, stop_reason(stop))
    client.set_terminated(parent, "KILLED" if stop else "FAILED" if failed else "FINISHED")
    return counts, failed
