"""The README's default sweep as a whole command, this checkout against an earlier commit.

    python -m benchmarks.default_sweep [--baseline-ref 9baf30a] [--repeats 2]

Runs `python -m src.sweep -m aug=light,heavy` (digits CNN, 5 folds x 30 epochs, two jobs) as a
user does, each time into a fresh temporary store: from this checkout, and from a temporary git
worktree of --baseline-ref (default: the last commit before the fold-parallel engine), with the
same Python environment, alternating. Reports the command's wall time (process start, imports,
Hydra, both jobs) and each job's validation accuracy. Results: benchmarks/results/default_sweep.*
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
BASELINE = "9baf30a"  # the engine that built, compiled and traced a new model per fold


def sweep(cwd: Path) -> tuple[float, dict[str, float]]:
    """One default sweep from `cwd`: seconds, and val_accuracy_mean per aug."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        command = [sys.executable, "-m", "src.sweep", "-m", "aug=light,heavy",
                   f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/multirun"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        runs = _runs(uri)
    return seconds, runs


def _runs(uri: str) -> dict[str, float]:
    """val_accuracy_mean of each job of the sweep in the store at `uri`, by aug."""
    mlflow.set_tracking_uri(uri)
    frame = mlflow.search_runs(experiment_names=["augsweep"])
    jobs = frame[frame["tags.augsweep.role"] == "job"]
    return dict(zip(jobs["tags.aug"], jobs["metrics.val_accuracy_mean"], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", default=BASELINE)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.baseline_ref],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        try:
            results: dict[str, list] = {"baseline": [], "this checkout": []}
            for _ in range(args.repeats):
                results["baseline"].append(sweep(old))
                results["this checkout"].append(sweep(ROOT))
                print({k: v[-1] for k, v in results.items()}, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           check=False, capture_output=True)  # fmt: skip
    rows = []
    medians = {}
    for name, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        medians[name] = seconds
        accs = {aug: statistics.median(r[aug] for _, r in runs) for aug in ("light", "heavy")}
        rows.append(f"| {name} | {seconds:.1f} | {accs['light']:.3f} | {accs['heavy']:.3f} |")
    speedup = medians["baseline"] / medians["this checkout"]
    markdown = (
        "# Default sweep as a command\n\n"
        f"`python -m benchmarks.default_sweep --baseline-ref {args.baseline_ref} --repeats "
        f"{args.repeats}`: `python -m src.sweep -m aug=light,heavy`, fresh store each time, "
        f"median of {args.repeats}.\n\n"
        "| code | seconds per command | light val_accuracy_mean | heavy val_accuracy_mean |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"- Speed-up: {speedup:.2f}x (target >= 3: {'met' if speedup >= 3 else 'NOT met'}).\n"
    )
    write("default_sweep", {"baseline_ref": args.baseline_ref,
                            "runs": {k: [[s, r] for s, r in v] for k, v in results.items()}},
          markdown)  # fmt: skip
    print(markdown)


if __name__ == "__main__":
    main()
