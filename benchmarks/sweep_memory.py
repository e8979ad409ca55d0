"""RSS of one sweep process after 1, 10 and 50 in-process jobs (Hydra's basic launcher).

    python -m benchmarks.sweep_memory            # 50 jobs: aug=light,heavy x seed=range(25)

It runs the real `python -m src.sweep -m ...` on digits (2 folds, 2 epochs a job, so 50 jobs
take minutes) into a temporary store, with a Hydra callback that records the process's RSS
after every job; twice, side by side: with the folds of a job trained together
(`train.parallel_folds=true`) and one at a time (`false`). Consecutive jobs alternate between
two augmentations, so every job builds and traces a new program (the worst case for memory).
Results: benchmarks/results/sweep_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from hydra.experimental.callback import Callback

from benchmarks.machine import write

ROOT = Path(__file__).resolve().parent.parent
LOG_ENV = "AUGSWEEP_BENCH_RSS_LOG"
VARIANTS = {
    "folds together": ["train.parallel_folds=true"],
    "one fold at a time": ["train.parallel_folds=false"],
}


class RssAfterJob(Callback):
    """Appends {job, rss_mb} to the file named by $AUGSWEEP_BENCH_RSS_LOG after every job."""

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        rss = psutil.Process().memory_info().rss / 2**20
        with open(os.environ[LOG_ENV], "a") as log:
            log.write(json.dumps({"job": config.hydra.job.num + 1, "rss_mb": rss}) + "\n")


def sweep_rss(seeds: int, extra: list[str]) -> tuple[dict[int, float], float]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "rss.jsonl"
        overrides = [
            "-m", "aug=light,heavy", f"seed=range({seeds})", "cv.folds=2", "train.epochs=2",
            f"hydra.sweep.dir={tmp}/sweep", f"tracking.uri=sqlite:///{tmp}/mlflow.db",
            "+hydra.callbacks.rss._target_=benchmarks.sweep_memory.RssAfterJob", *extra,
        ]  # fmt: skip
        env = {**os.environ, LOG_ENV: str(log)}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "src.sweep", *overrides], cwd=ROOT, check=True,
                       env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        seconds = time.perf_counter() - started
        rows = [json.loads(line) for line in log.read_text().splitlines()]
    return {row["job"]: round(row["rss_mb"], 1) for row in rows}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=25, help="jobs = 2 x seeds")
    args = parser.parse_args()
    results = {name: sweep_rss(args.seeds, extra) for name, extra in VARIANTS.items()}
    jobs = 2 * args.seeds
    marks = sorted({n for n in (1, 10, 50, jobs) if n <= jobs})
    header = " | ".join(VARIANTS)
    rows = "\n".join(
        f"| {n} | " + " | ".join(f"{rss[n]:.0f}" for rss, _ in results.values()) + " |"
        for n in marks
    )
    per_job = {
        name: (rss[jobs] - rss[min(10, jobs)]) / max(jobs - 10, 1)
        for name, (rss, _) in results.items()
    }
    markdown = (
        f"# Sweep memory: RSS after in-process jobs\n\n"
        f"`python -m benchmarks.sweep_memory`: {jobs} jobs in one process (digits CNN, "
        f"aug=light,heavy x {args.seeds} seeds, 2 folds x 2 epochs a job), RSS in MB after each "
        f"job, folds trained together and one at a time.\n\n"
        f"| jobs done | {header} |\n|---|{'---|' * len(VARIANTS)}\n{rows}\n\n"
        + "".join(
            f"- {name}: {per_job[name]:+.2f} MB per job after job 10; sweep took "
            f"{results[name][1]:.0f} s\n"
            for name in VARIANTS
        )
    )
    out = write(
        "sweep_memory",
        {name: {"seconds": s, "rss_mb": rss} for name, (rss, s) in results.items()},
        markdown,
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
