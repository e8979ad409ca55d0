"""What a sweep shows while it runs: a live display on a terminal, one plain line per job elsewhere.

On a terminal (stdout a TTY, as rich detects it: `TTY_COMPATIBLE` and `FORCE_COLOR` are
honoured), a multirun under Hydra's basic launcher draws two live lines with rich: the sweep
(jobs done of total, elapsed, an ETA from the jobs so far) and the running job (its folds, epoch
and current validation accuracy). Each finished job's plain line is printed above them, so the
scrollback holds the same lines as a log. Everywhere else (a pipe, a log file, CI, and every
launcher worker: joblib, Ray, SLURM) nothing is drawn: each job prints its plain line, in one
write, so workers sharing a terminal do not garble each other. `sweep.progress=plain` turns
the live display off.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from src.errors import ConfigError

MODES = ("auto", "plain")
Logs = Sequence[dict[str, float] | None]


def check_mode(mode: Any) -> str:
    """`sweep.progress`, checked: `auto` (live on a terminal) or `plain`."""
    if mode not in MODES:
        raise ConfigError(f"sweep.progress={mode!r} is not allowed; accepted: {', '.join(MODES)}")
    return mode


def clock(seconds: float | None) -> str:
    """`0:42`, `12:05` or `3:02:10`; `?` when unknown."""
    if seconds is None or seconds != seconds:
        return "?"
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fold_span(folds: Sequence[int], n_folds: int) -> str:
    """`fold 3/5`, or `folds 1-5/5` for folds trained together (shown from 1)."""
    if len(folds) == 1:
        return f"fold {folds[0] + 1}/{n_folds}"
    return f"folds {folds[0] + 1}-{folds[-1] + 1}/{n_folds}"


def val_summary(logs: Logs, key: str = "val_accuracy") -> str:
    """The folds' current validation accuracy: one value, or the mean and range of several."""
    values = [entry[key] for entry in logs if entry is not None and key in entry]
    if not values:
        return ""
    if len(values) == 1:
        return f"{key} {values[0]:.3f}"
    low, high = f"{min(values):.3f}", f"{max(values):.3f}"
    mean = f"{sum(values) / len(values):.3f}"
    return f"{key} {mean}" if low == high else f"{key} {mean} ({low}-{high})"


class Plain:
    """One line per job, nothing drawn: what non-terminals and launcher workers get."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out

    def job_started(self, label: str) -> None:
        """A job begins; `label` is what its progress line starts with."""

    def folds(self, folds: Sequence[int], n_folds: int, epochs: int) -> None:
        """These folds (indices) of `n_folds` start training together for up to `epochs`."""

    def epoch(self, epoch: int, logs: Logs) -> None:
        """Epoch `epoch` (from 0) ended; the logs of each fold training now (None: stopped)."""

    def job_done(self, line: str, seconds: float, outcome: str = "finished") -> None:
        """The job ended (`finished`, `failed`, or `skipped`: found in the store) with its
        progress line."""
        out = self.out or sys.stdout
        out.write(line + "\n")  # one write: lines of workers sharing a stream stay whole
        out.flush()

    def close(self) -> None:
        """Stop drawing (nothing to stop here)."""


class Live(Plain):
    """The live two-line display (rich) of a sweep in this process, or of one job.

    `total`: jobs in the sweep (None: unknown, e.g. an optuna sweeper; 0: a single run, no
    sweep line). `console`: rich's Console to draw on (tests pass one writing to a buffer).
    """

    def __init__(
        self,
        total: int | None,
        console: Any = None,
        auto_refresh: bool = True,
    ) -> None:
        from rich.console import Console
        from rich.live import Live as RichLive

        self.console = console or Console()
        self.total = total
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.durations: list[float] = []  # of the jobs that trained
        self.label: str | None = None
        self.job_started_at: float | None = None
        self.fold_text = ""
        self.val_text = ""
        self.epochs = 0
        self.n_folds = 0
        self.group: list[int] = []
        self.epochs_done = 0  # fold-epochs of the job so far, of n_folds * epochs
        self._group_base = 0
        self._lock = threading.Lock()
        self.live = RichLive(
            console=self.console,
            get_renderable=self.render,
            auto_refresh=auto_refresh,
            refresh_per_second=4,
            transient=False,
        )
        self.live.start()
        self._streams = _redirect_log_handlers()
        atexit.register(self.close)
        self.closed = False

    # -- what the hooks record ----------------------------------------------------------
    def job_started(self, label: str) -> None:
        with self._lock:
            self.label, self.job_started_at = label, time.monotonic()
            self.fold_text = self.val_text = ""
            self.epochs = self.n_folds = self.epochs_done = self._group_base = 0
            self.group = []

    def folds(self, folds: Sequence[int], n_folds: int, epochs: int) -> None:
        with self._lock:
            self.group, self.n_folds, self.epochs = list(folds), n_folds, epochs
            self._group_base = self.epochs_done
            self.fold_text = f"{fold_span(self.group, n_folds)} epoch 0/{epochs}"
            self.val_text = ""

    def epoch(self, epoch: int, logs: Logs) -> None:
        with self._lock:
            # a fold that stopped early counts as done for the rest of the group's epochs
            self.epochs_done = self._group_base + (epoch + 1) * len(self.group)
            span = fold_span(self.group, self.n_folds)
            self.fold_text = f"{span} epoch {epoch + 1}/{self.epochs}"
            self.val_text = val_summary(logs)

    def job_done(self, line: str, seconds: float, outcome: str = "finished") -> None:
        with self._lock:
            self.done += 1
            self.failed += outcome == "failed"
            self.skipped += outcome == "skipped"
            if outcome == "finished":
                self.durations.append(seconds)
            self.label = self.job_started_at = None
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if getattr(self, "closed", True):
            return
        self.closed = True
        self.live.stop()
        _restore_log_handlers(self._streams)
        atexit.unregister(self.close)

    # -- estimates ------------------------------------------------------------------------
    def job_fraction(self) -> float | None:
        """How far the running job's training is, 0..1 (None before its first fold)."""
        if not self.n_folds or not self.epochs:
            return None
        return min(self.epochs_done / (self.n_folds * self.epochs), 1.0)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left: the jobs to go times the mean time of the jobs that trained so far
        (before any has: the running job's own pace), less what the running job has done."""
        if not self.total:
            return None
        now = time.monotonic() if now is None else now
        left = self.total - self.done
        if left <= 0:
            return 0.0
        running = self.job_started_at is not None
        fraction = self.job_fraction() if running else None
        per_job = sum(self.durations) / len(self.durations) if self.durations else None
        if per_job is None:
            if not fraction:
                return None
            per_job = (now - self.job_started_at) / fraction
        if running:
            current = per_job * (1 - fraction) if fraction is not None else per_job
            current = max(current, per_job - (now - self.job_started_at), 0.0)
            return current + per_job * (left - 1)
        return per_job * left

    # -- drawing --------------------------------------------------------------------------
    def render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            now = time.monotonic()
            grid = Table.grid(padding=(0, 1))
            for _ in range(4):
                grid.add_column(no_wrap=True)
            if self.total != 0:
                counts = f"{self.done}/{self.total if self.total else '?'} jobs"
                extra = [f"{n} {what}" for n, what in ((self.failed, "failed"),
                         (self.skipped, "skipped")) if n]  # fmt: skip
                if extra:
                    counts += f" ({', '.join(extra)})"
                timing = f"elapsed {clock(now - self.started)}"
                if self.total:
                    timing += f"  ETA {clock(self.eta(now))}"
                bar = ProgressBar(total=self.total or None, completed=self.done, width=24)
                grid.add_row(Text("sweep", style="bold"), bar, Text(counts), Text(timing))
            if self.label is not None:
                fraction = self.job_fraction()
                bar = ProgressBar(total=1.0 if fraction is not None else None,
                                  completed=fraction or 0.0, width=24)  # fmt: skip
                what = "  ".join(t for t in (self.fold_text or "starting", self.val_text) if t)
                took = clock(now - (self.job_started_at or now))
                grid.add_row(Text(self.label, overflow="ellipsis"), bar, Text(what), Text(took))
            return Group(grid)


# the live display of the multirun running in this process (set by the sweep callback)
_SWEEP: Live | None = None


def start_sweep(total: int | None, mode: str = "auto", launcher: str = "") -> None:
    """On a terminal, under the basic launcher (jobs in this process), start drawing the sweep.

    Other launchers run jobs in worker processes, which print plain lines to the same stream:
    a live display there would be torn by them.
    """
    global _SWEEP
    end_sweep()
    if check_mode(mode) == "plain" or not launcher.endswith("BasicLauncher"):
        return
    if not is_terminal():
        return
    # TensorFlow writes to the terminal's file descriptor when it is first imported: before
    # the display, not through it
    import src.train  # noqa: F401

    _SWEEP = Live(total)


def end_sweep() -> None:
    """Stop drawing the sweep (its last state stays on the screen)."""
    global _SWEEP
    if _SWEEP is not None:
        _SWEEP.close()
        _SWEEP = None


def for_job(multirun: bool, mode: str = "auto") -> Plain:
    """The display a job reports to: its sweep's live display in this process, a job-only live
    display for a single run on a terminal, else plain lines (also in every launcher worker)."""
    if _SWEEP is not None and not _SWEEP.closed:
        return _SWEEP
    if multirun or mode == "plain" or not is_terminal():
        return Plain()
    return Live(0)


def is_terminal() -> bool:
    """Whether stdout is a terminal that can redraw lines (rich's test, which honours
    TTY_COMPATIBLE and FORCE_COLOR), and not TERM=dumb."""
    from rich.console import Console

    console = Console(file=sys.stdout)
    return console.is_terminal and not console.is_dumb_terminal


def _redirect_log_handlers() -> list[tuple[logging.StreamHandler, IO[str]]]:
    """Log handlers made before the display write to the real stdout/stderr, past rich's
    redirection, and would tear the display: point them at the redirected streams."""
    moved = []
    real = {id(sys.__stdout__): sys.stdout, id(sys.__stderr__): sys.stderr}
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in real:
                target = real[id(handler.stream)]
                if target is not handler.stream:
                    moved.append((handler, handler.stream))
                    handler.setStream(target)
    return moved


def _restore_log_handlers(moved: list[tuple[logging.StreamHandler, IO[str]]]) -> None:
    for handler, stream in moved:
        handler.setStream(stream)
