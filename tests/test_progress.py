"""What a sweep shows while it runs: the live display on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import time

import pytest
from rich.console import Console

from src import progress
from src.errors import ConfigError
from tests.conftest import ROOT
from tests.test_sweep import command

ESCAPE = re.compile(r"\x1b\[")


class Writes(io.StringIO):
    """A stream that records each write call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_plain_lines_are_one_write_each_and_nothing_else():
    out = Writes()
    plain = progress.Plain(out)
    plain.job_started("[1/2] aug=none")
    plain.folds([0, 1], 2, 3)
    plain.epoch(0, [{"val_accuracy": 0.5}, None])
    plain.job_done("[1/2] aug=none: val_accuracy_mean=0.500 (1.0 s)", 1.0)
    plain.close()
    assert out.calls == ["[1/2] aug=none: val_accuracy_mean=0.500 (1.0 s)\n"]


@pytest.mark.parametrize(
    ("folds", "logs", "span", "val"),
    [
        ([2], [{"val_accuracy": 0.8125}], "fold 3/5", "val_accuracy 0.812"),
        ([0, 1, 2], [{"val_accuracy": 0.8}, {"val_accuracy": 0.9}, None], "folds 1-3/5",
         "val_accuracy 0.850 (0.800-0.900)"),
        ([0, 1], [{"val_accuracy": 0.5}, {"val_accuracy": 0.5}], "folds 1-2/5",
         "val_accuracy 0.500"),
        ([0, 1], [None, None], "folds 1-2/5", ""),
    ],
)  # fmt: skip
def test_fold_and_validation_text(folds, logs, span, val):
    assert progress.fold_span(folds, 5) == span
    assert progress.val_summary(logs) == val


def test_clock():
    assert [progress.clock(s) for s in (0, 42.4, 725, 10_930, None, float("nan"))] == [
        "0:00", "0:42", "12:05", "3:02:10", "?", "?"]  # fmt: skip


def live(total: int | None) -> tuple[progress.Live, Console]:
    console = Console(file=io.StringIO(), force_terminal=True, width=140, record=True)
    return progress.Live(total, console=console, auto_refresh=False), console


def rendered(display: progress.Live) -> str:
    console = Console(file=io.StringIO(), width=140, record=True)
    console.print(display.render())
    return console.export_text()


class Clock:
    """Stands in for the `time` module in src.progress: seconds pass when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_live_display_shows_jobs_elapsed_eta_fold_epoch_and_validation_accuracy(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "time", clock)  # however slow this machine, no second passes
    display, console = live(4)
    try:
        clock.now += 20
        display.job_started("[1/4] aug=none")
        clock.now += 10  # the job has run 10 s, the sweep 30 s
        display.folds([0, 1], 2, 5)
        display.epoch(1, [{"val_accuracy": 0.75}, {"val_accuracy": 0.85}])
        text = rendered(display)
        assert "sweep" in text and "0/4 jobs" in text and "elapsed 0:30" in text
        assert "[1/4] aug=none" in text and "folds 1-2/2 epoch 2/5" in text
        assert "val_accuracy 0.800 (0.750-0.850)" in text and "0:10" in text
        # no job done yet: its own pace, 10 s for 2 of 5 epochs, so 25 s a job
        assert display.eta() == 15 + 3 * 25
        assert "ETA 1:30" in text
        display.job_done("[1/4] aug=none: val_accuracy_mean=0.800 (20.0 s)", 20.0)
        display.job_started("[2/4] aug=light")
        display.job_done("[2/4] aug=light: skipped, already FINISHED as run x: v", 0.0, "skipped")
        display.job_started("[3/4] aug=heavy")
        display.job_done("[3/4] aug=heavy: FAILED ValueError: x (2.0 s)", 2.0, "failed")
        # the trained job's 20 s, not the skipped or failed ones, for the one left
        assert display.eta() == pytest.approx(20)
        text = rendered(display)
        assert "3/4 jobs (1 failed, 1 skipped)" in text and "ETA 0:20" in text
        assert "[3/4]" not in text  # no job running
    finally:
        display.close()
    printed = console.export_text()
    for line in ("[1/4] aug=none: val_accuracy_mean=0.800 (20.0 s)",
                 "[3/4] aug=heavy: FAILED ValueError: x (2.0 s)"):  # fmt: skip
        assert line in printed
    assert display.closed
    display.close()  # twice is harmless (atexit may call it again)


def test_a_single_run_shows_its_job_line_only_and_an_unknown_total_no_eta():
    single, _ = live(0)
    unknown, _ = live(None)
    try:
        single.job_started("aug=heavy")
        single.folds([0], 3, 2)
        text = rendered(single)
        assert "aug=heavy" in text and "fold 1/3 epoch 0/2" in text and "sweep" not in text
        unknown.job_done("[1/?] aug=none: val_accuracy_mean=0.5 (1.0 s)", 1.0)
        text = rendered(unknown)
        assert "1/? jobs" in text and "ETA" not in text and unknown.eta() is None
    finally:
        single.close()
        unknown.close()


def test_no_live_display_off_a_terminal_in_workers_or_when_asked(monkeypatch):
    # pytest's captured stdout is no terminal
    assert not progress.is_terminal()
    assert type(progress.for_job(multirun=False)) is progress.Plain
    progress.start_sweep(3, "auto", "hydra._internal.core_plugins.basic_launcher.BasicLauncher")
    assert progress._SWEEP is None
    monkeypatch.setattr(progress, "is_terminal", lambda: True)
    # a job of a multirun in a process with no sweep display is a launcher's worker
    assert type(progress.for_job(multirun=True)) is progress.Plain
    assert type(progress.for_job(multirun=False, mode="plain")) is progress.Plain
    for launcher in ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                     "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"):  # fmt: skip
        progress.start_sweep(3, "auto", launcher)
        assert progress._SWEEP is None
    progress.start_sweep(3, "plain", "hydra._internal.core_plugins.basic_launcher.BasicLauncher")
    assert progress._SWEEP is None


def test_a_bad_progress_mode_is_the_one_line_config_error(make_cfg):
    with pytest.raises(ConfigError) as err:
        progress.check_mode("fancy")
    assert str(err.value) == "sweep.progress='fancy' is not allowed; accepted: auto, plain"
    from src.config import check_job

    with pytest.raises(ConfigError, match="sweep.progress='tqdm' is not allowed"):
        check_job(make_cfg("sweep.progress=tqdm"))


def on_a_terminal(args: list[str], columns: int = 120) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr; its status and output."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    child = subprocess.Popen(args, cwd=ROOT, stdin=terminal, stdout=terminal, stderr=terminal,
                             env=env, close_fds=True)  # fmt: skip
    os.close(terminal)
    out = b""
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif child.poll() is not None:
                break
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
        os.close(controller)
    return child.returncode, out.decode(errors="replace")


@pytest.mark.slow
def test_a_sweep_on_a_terminal_draws_jobs_eta_fold_and_epoch(tmp_path):
    status, out = on_a_terminal(
        command(tmp_path, "-m", "data.subset=200", "train.epochs=3", "aug=none,light")
    )
    assert status == 0, out[-3000:]
    assert ESCAPE.search(out)  # drawn, not printed
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert re.search(r"sweep\s+\S+\s+0/2 jobs\s+elapsed 0:\d\d\s+ETA", text)
    assert re.search(r"1/2 jobs\s+elapsed \d:\d\d\s+ETA \d:\d\d", text)
    assert re.search(r"\[1/2\] aug=none\s+\S+\s+folds 1-2/2 epoch 3/3\s+val_accuracy 0\.\d{3}",
                     text)  # fmt: skip
    assert "2/2 jobs" in text
    # every job's plain line is printed above the display, whole
    lines = re.split(r"\r\n|\r|\n", text)
    assert any(re.fullmatch(r"\[1/2\] aug=none: val_accuracy_mean=0\.\d{3} \(\d+\.\d s\)\s*", line)
               for line in lines)  # fmt: skip
    assert any(line.startswith("augsweep: sweep done: 2 finished") for line in lines)
    # the cursor is hidden while drawing and shown again once the display stops
    assert out.rindex("\x1b[?25h") > out.rindex("\x1b[?25l")
