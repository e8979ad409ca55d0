"""What the label-safety audit costs: an in-process sweep with `sweep.audit=true` and `false`.

    python -m benchmarks.audit_cost [--repeats 2] [--epochs 30] [--folds 5] [--subset N]

The sweep: digits, the CNN, --folds folds, --epochs epochs, batch 64, the jobs `aug=light`,
`aug=heavy`, `aug=randaugment` one after another in one fresh process (as `python -m src.sweep
-m aug=light,heavy,randaugment` runs them), once with the audit and once without, alternating,
imports not counted. The first audited job trains the folds' reference networks (one no-
augmentation training per fold); later jobs of the process take them from the cache and only
score their augmented training samples (one pass, no gradients) and draw the mistakes grid.
Reported per job: wall seconds with and without the audit and their difference (two wall times
of a shared machine: noisy), and the audit's own timers, `audit/reference_time_s` and
`audit/score_time_s` (the cost measured directly; the mistakes grid, about 0.1 s, is outside
them); medians over --repeats. The same validation accuracy with and without the audit is
checked: the audit changes nothing else.
Results: benchmarks/results/audit_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ("light", "heavy", "randaugment")


def sweep(args: argparse.Namespace, audit: bool, store: str) -> list[dict[str, float]]:
    """The jobs in this process: per job its wall seconds and audit times."""
    from hydra import compose, initialize_config_dir

    from src.config import CONF_DIR
    from src.train import run

    figures = []
    for aug in JOBS:
        overrides = [f"aug={aug}", f"train.epochs={args.epochs}", f"cv.folds={args.folds}",
                     "train.batch_size=64", f"sweep.audit={str(audit).lower()}",
                     "sweep.rerun=true", f"tracking.uri=sqlite:///{store}/mlflow.db"]  # fmt: skip
        if args.subset:
            overrides.append(f"data.subset={args.subset}")
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        start = time.perf_counter()
        metrics = run(cfg).metrics
        figures.append(
            {
                "aug": aug,
                "job_s": time.perf_counter() - start,
                "reference_s": metrics.get("audit/reference_time_s", 0.0),
                "score_s": metrics.get("audit/score_time_s", 0.0),
                "label_drop": metrics.get("audit/label_drop", float("nan")),
                "val_accuracy": metrics["val_accuracy_mean"],
            }
        )
    return figures


def measure(args: argparse.Namespace, audit: bool) -> list[dict[str, float]]:
    """One sweep in a fresh process."""
    with tempfile.TemporaryDirectory() as store:
        command = [sys.executable, "-m", "benchmarks.audit_cost", "--child", store,
                   "--epochs", str(args.epochs), "--folds", str(args.folds),
                   "--subset", str(args.subset or 0), *(["--audit"] if audit else [])]  # fmt: skip
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"audit={audit} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--subset", type=int, default=0, help="data.subset (0: all 1437)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--audit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(sweep(args, args.audit, args.child)))
        return
    from benchmarks.machine import write

    runs: dict[str, list[list[dict[str, float]]]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for key, audit in (("on", True), ("off", False)):
            runs[key].append(measure(args, audit))
            print(key, runs[key][-1], flush=True)

    def median(key: str, i: int, field: str) -> float:
        return statistics.median(sweep[i][field] for sweep in runs[key])

    rows, summary = [], {}
    for i, aug in enumerate(JOBS):
        on, off = median("on", i, "job_s"), median("off", i, "job_s")
        reference, score = median("on", i, "reference_s"), median("on", i, "score_s")
        summary[aug] = {"audit_on_s": on, "audit_off_s": off, "extra_s": on - off,
                        "reference_time_s": reference, "score_time_s": score,
                        "label_drop": median("on", i, "label_drop")}  # fmt: skip
        extra = f"{on - off:+.1f} ({(on - off) / off:+.0%})"
        drop = summary[aug]["label_drop"]
        rows.append(f"| {aug} | {off:.1f} | {on:.1f} | {extra} | {reference:.1f} | {score:.2f} "
                    f"| {drop:.3f} |")  # fmt: skip
    total_on = sum(s["audit_on_s"] for s in summary.values())
    total_off = sum(s["audit_off_s"] for s in summary.values())
    own = sum(s["reference_time_s"] + s["score_time_s"] for s in summary.values())
    same = all(
        on["val_accuracy"] == off["val_accuracy"]
        for sweep_on, sweep_off in zip(runs["on"], runs["off"], strict=True)
        for on, off in zip(sweep_on, sweep_off, strict=True)
    )
    command = (f"python -m benchmarks.audit_cost --repeats {args.repeats} "
               f"--epochs {args.epochs} --folds {args.folds}"
               + (f" --subset {args.subset}" if args.subset else ""))  # fmt: skip
    markdown = (
        "# Label-safety audit cost\n\n"
        f"`{command}`: digits, CNN, {args.folds} folds, {args.epochs} epochs, the jobs in one "
        f"fresh process per sweep, medians of {args.repeats}.\n\n"
        "| job (in sweep order) | audit off s | audit on s | extra | reference_time_s | "
        "score_time_s | label_drop |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nWhole sweep: {total_off:.1f} s without the audit, {total_on:.1f} s with it "
        f"({(total_on - total_off) / total_off:+.0%}); the audit's own timers: {own:.1f} s "
        f"({own / total_on:.0%} of the audited sweep). Validation accuracy of every job the same "
        f"with and without the audit: {'yes' if same else 'NO'}.\n"
    )
    write("audit_cost", {"args": vars(args), "runs": runs, "summary": summary}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
