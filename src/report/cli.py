"""`python -m src.report`: where augmentation helps and where it hurts, read back from MLflow.

    python -m src.report                      # the latest sweep in experiment `augsweep`
    python -m src.report --sweep <parent run id> --metric val_f1_macro --out reports/mine
    python -m src.report --filter "tags.dataset = 'gunpoint'"

Every setting is compared fold by fold with its no-augmentation baseline and gets one of four
verdicts (src/report/comparison.py); this is the command line around src/report's parts: select
the runs, compare, write the files, log them on the sweeps' parent runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from src import stats
from src.description import describe_report
from src.report import page
from src.report.comparison import METRICS, compare
from src.report.render import export, summary_markdown
from src.report.selection import ADAPTIVE_TAG, MARGIN_TAG, ReportError, select, tidy
from src.tracking import tracking_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.report", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("--experiment", default="augsweep", help="MLflow experiment name")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else mlruns/")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--sweep", nargs="+", help="the parent run id of one or more sweeps (default: the latest)"
    )
    which.add_argument("--filter", help="an MLflow filter string over the job runs instead")
    parser.add_argument(
        "--metric",
        default="val_accuracy",
        choices=METRICS,
        help="per-fold score to compare (default: val_accuracy)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: reports/<sweep>)")
    parser.add_argument(
        "--margin",
        type=float,
        help="equivalence margin in units of the metric (default: an adaptive sweep's, its tag "
        f"{MARGIN_TAG}, else {stats.MARGIN:g})",
    )
    parser.add_argument(
        "--max-seeds",
        type=int,
        help="replay an adaptive sweep's sequential rule with this max_seeds "
        f"(default: the sweep's tag {ADAPTIVE_TAG}, else a fixed design)",
    )
    parser.add_argument("--ui-url", help="the MLflow UI report.html links runs to (default: a "
                        f"tracking server's URL, else {page.DEFAULT_UI})")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="print only where the files went")
    args = parser.parse_args(argv)
    bad_margin = args.margin is not None and not args.margin > 0
    if bad_margin or (args.max_seeds is not None and args.max_seeds < 1):
        parser.error(f"--margin={args.margin} --max-seeds={args.max_seeds}; accepted: "
                     "a margin > 0, max seeds >= 1")  # fmt: skip
    uri = tracking_uri({"uri": args.tracking_uri})
    mlflow.set_tracking_uri(uri)
    try:
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise ReportError(f"no MLflow store at {uri}; run a sweep first")
        selection = select(args.experiment, args.sweep, args.filter)
        table, folds = tidy(selection.runs)
        if table.empty:
            raise ReportError(f"no job runs in {selection.description}")
        max_seeds = args.max_seeds or selection.max_seeds
        if args.margin is None and len(selection.margins) > 1:
            margins = ", ".join(f"{m:g}" for m in selection.margins)
            raise ReportError(f"{selection.description} decided their rounds at margins "
                              f"{margins}; pass --margin")  # fmt: skip
        margin = args.margin or (selection.margins or [stats.MARGIN])[0]
        try:
            report = compare(table, folds, args.metric, margin, max_seeds)
        except ValueError as err:  # a setting with more seeds than the design allows
            raise ReportError(f"{err}; pass --max-seeds with the sweep's max_seeds") from None
    except (ReportError, mlflow.exceptions.MlflowException) as err:
        print(f"augsweep: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    out = args.out or Path("reports") / (
        f"sweep-{selection.sweep_ids[0]}" if selection.sweep_ids else "selection"
    )
    written = export(report, out)
    text = summary_markdown(report, selection)
    (out / "report.md").write_text(text)
    written.append(out / "report.md")
    written.append(page.render(report, selection, table, out, uri, args.ui_url))
    if selection.sweep_ids:  # the report's own files, not whatever else is in `out`
        with tempfile.TemporaryDirectory() as staging:
            for path in written:
                shutil.copy2(path, staging)
            for sweep_id in selection.sweep_ids:
                MlflowClient().log_artifacts(sweep_id, staging, artifact_path="report")
        for sweep_id in selection.sweep_ids:
            describe_report(sweep_id, report)
    if not args.quiet:
        print(text)
    logged = f" and to runs {', '.join(selection.sweep_ids)} (artifacts/report)"
    print(f"augsweep: wrote {len(written)} files to {out}{logged if selection.sweep_ids else ''}; "
          f"open {out / 'report.html'}")  # fmt: skip
    if report.comparison.empty:
        return 1
    return 0
