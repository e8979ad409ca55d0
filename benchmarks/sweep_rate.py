"""Jobs per hour of the default sweep, as a user runs it.

    python -m benchmarks.sweep_rate

Runs the README's main job, `python -m src.sweep -m aug=light,heavy` (digits CNN, 5 folds x 30
epochs a job), --sweeps times into a temporary store, and reads each job's wall_time_s back from
MLflow. Jobs per hour counts the whole command (process start, imports, Hydra, the parent run);
the in-process rate counts only the jobs. Results: benchmarks/results/sweep_rate.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

from benchmarks.machine import write

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=2)
    args = parser.parse_args()
    walls, jobs = [], []
    for _ in range(args.sweeps):
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            command = [
                sys.executable,
                "-m",
                "src.sweep",
                "-m",
                "aug=light,heavy",
                f"tracking.uri={uri}",
                f"hydra.sweep.dir={tmp}/sweep",
            ]
            start = time.perf_counter()
            subprocess.run(
                command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            walls.append(time.perf_counter() - start)
            mlflow.set_tracking_uri(uri)
            runs = mlflow.search_runs(
                experiment_names=["augsweep"], filter_string="tags.`augsweep.role` = 'job'"
            )
            jobs.append(runs["metrics.wall_time_s"].tolist())
    wall = statistics.median(walls)
    per_job = statistics.median(t for sweep in jobs for t in sweep)
    n = len(jobs[0])
    markdown = (
        "# Default sweep rate\n\n"
        f"`python -m benchmarks.sweep_rate`: `python -m src.sweep -m aug=light,heavy` ({n} jobs, "
        f"digits CNN, 5 folds x 30 epochs), {args.sweeps} times; medians.\n\n"
        "| | value |\n|---|---|\n"
        f"| whole command, seconds | {wall:.1f} |\n"
        f"| one job (wall_time_s), seconds | {per_job:.1f} |\n"
        f"| jobs per hour, whole command | {n / wall * 3600:.0f} |\n"
        f"| jobs per hour, in-process (long sweeps) | {3600 / per_job:.0f} |\n"
    )
    write("sweep_rate", {"command_s": walls, "job_s": jobs}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
