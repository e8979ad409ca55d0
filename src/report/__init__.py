"""The report: where augmentation helps and where it hurts, read back from MLflow.

`python -m src.report` (src/report/cli.py) runs its parts in order:

- `selection`: the job runs of one or more sweeps (or of a filter), one row per run, and each
  run's per-fold scores;
- `comparison`: every setting paired fold by fold with its no-augmentation baseline, a verdict
  each (src/stats.py), the strength summary and the across-datasets table;
- `audit`: whether the label-safety audit (src/audit.py) saw the measured harm coming;
- `render`: the tables as CSV, Markdown, LaTeX and HTML, the figures, and report.md;
- `page`: report.html, the report as one self-contained page.

The names other modules use are imported here, so `from src import report` gives them.
"""

from src.report.cli import main
from src.report.comparison import METRICS, Report, across_datasets, compare
from src.report.render import duration, export, summary_markdown
from src.report.selection import ADAPTIVE_TAG, ReportError, Selection, select, tidy

__all__ = [
    "ADAPTIVE_TAG",
    "METRICS",
    "Report",
    "ReportError",
    "Selection",
    "across_datasets",
    "compare",
    "duration",
    "export",
    "main",
    "select",
    "summary_markdown",
    "tidy",
]
