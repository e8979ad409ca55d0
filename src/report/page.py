"""report.html: the report as one page to open, self-contained (no server, no network).

The verdicts come first, in words; then the comparison table styled with pandas' Styler (each
verdict its colour, the paired difference as a bar about zero, every column sortable by a click:
a few lines of inline script), the strength and across-datasets tables, the strength curves and
difference heatmaps, and each setting's augmentation preview (from its run's artifacts). Every
row links to its MLflow runs in the UI. Images are embedded as base64 PNG, so the file can be
mailed, archived or opened from the MLflow artifact store as it is.
"""

from __future__ import annotations

import base64
import html
import logging
import tempfile
from pathlib import Path

import pandas as pd

from src import stats
from src.description import best_settings
from src.report.render import compute_line, drop_single_context

log = logging.getLogger(__name__)

# what `mlflow ui` serves by default (README): links point there unless told otherwise
DEFAULT_UI = "http://127.0.0.1:5000"
VERDICT_STYLE = {
    stats.HELPS: "background-color: #cdeccd; color: #0b4f0b; font-weight: 600",
    stats.HURTS: "background-color: #f6cccc; color: #7a0f0f; font-weight: 600",
    stats.EQUIVALENT: "background-color: #d5e3f3; color: #1d3d63",
    stats.UNDECIDED: "background-color: #fbedc4; color: #5c4500",
}
NEUTRAL = "background-color: #eeeeee; color: #555555"
VERDICT_WORDS = {
    stats.HELPS: "helps: better than no augmentation",
    stats.HURTS: "hurts: worse than no augmentation",
    stats.EQUIVALENT: "equivalent: within the margin of no augmentation",
    stats.UNDECIDED: "undecided: these seeds cannot tell",
}
SETTING = ["dataset", "model", "context", "aug", "strength"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em; }
th, td { padding: 0.3em 0.6em; border-bottom: 1px solid #e4e4e4; text-align: right;
         white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #aaa; font-size: 0.8em; }
table.sortable th.asc::after { content: " \\2191"; color: #222; }
table.sortable th.desc::after { content: " \\2193"; color: #222; }
td.text, th.text { text-align: left; }
ul.verdicts li { margin: 0.3em 0; }
.badge { display: inline-block; padding: 0 0.5em; border-radius: 0.6em; }
.figures img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.previews { display: flex; flex-wrap: wrap; gap: 1em; }
.previews figure { margin: 0; max-width: 440px; }
.previews img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.9em; }
.wide { overflow-x: auto; max-width: 100%; }
"""

# click a column's header to sort by it (numbers as numbers, blanks last), again to reverse
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = !th.classList.contains("asc");
      table.querySelectorAll("thead th").forEach(function (h) {
        h.classList.remove("asc", "desc"); });
      th.classList.add(up ? "asc" : "desc");
      function key(row) {
        var cell = row.cells[column], text = cell ? cell.textContent.trim() : "";
        var number = parseFloat(text.replace("\\u2212", "-"));
        return text === "" ? null : (isNaN(number) || !/^[-+\\u2212.\\d]/.test(text)
          ? text.toLowerCase() : number);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null) return 1; if (y === null) return -1;
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def ui_base(tracking_uri: str, ui_url: str | None = None) -> str:
    """Where the MLflow UI is: `ui_url`, a tracking server's own URL, else `mlflow ui`'s."""
    if ui_url:
        return ui_url.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return DEFAULT_UI


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def png(path: Path | str | bytes, alt: str) -> str:
    """An <img> with the PNG inside it."""
    data = path if isinstance(path, bytes) else Path(path).read_bytes()
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _verdict_css(value: object) -> str:
    """A verdict's colours; for a list of them (strengths' above_best), the most telling one."""
    text = str(value)
    if text in VERDICT_STYLE:
        return VERDICT_STYLE[text]
    for verdict in (stats.HURTS, stats.HELPS, stats.UNDECIDED, stats.EQUIVALENT):
        if verdict in text:
            return VERDICT_STYLE[verdict]
    return NEUTRAL if text else ""


def _front(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The comparison's columns for reading: the setting, then its verdict and difference."""
    first = ["dataset", "model", "context", "aug", "strength", "verdict", "diff", "ci_low",
             "ci_high", f"{metric}_mean", "baseline_mean", "p_holm", "p_tost_holm", "runs",
             "folds"]  # fmt: skip
    front = [c for c in first if c in frame]
    return frame[front + [c for c in frame.columns if c not in front]]


def _number_format(frame: pd.DataFrame) -> dict[str, object]:
    """p-values in 2 significant digits (small ones stay visible), other floats in 4 places."""
    formats: dict[str, object] = {}
    for column in frame.columns:
        if not pd.api.types.is_float_dtype(frame[column]):
            continue
        if column.startswith("p_"):
            formats[column] = lambda v: "" if pd.isna(v) else f"{v:.2g}"
        elif column == "strength" or column.endswith("strength") or column == "too_strong_from":
            formats[column] = lambda v: "" if pd.isna(v) else f"{v:g}"
        else:
            formats[column] = lambda v: "" if pd.isna(v) else f"{v:.4f}"
    return formats


def styled(frame: pd.DataFrame, table_id: str, links: list[str] | None = None) -> str:
    """A table as Styler renders it: verdict colours, `diff` as a bar about 0, sortable.

    `links`: per row, the HTML of its runs' links, in a column `runs in MLflow`.
    """
    frame = frame.reset_index(drop=True).copy()
    if links is not None:  # beside what the row is: the setting, or the run's name
        after = [c for c in ("strength", "run_name") if c in frame]
        at = frame.columns.get_loc(after[0]) + 1 if after else len(frame.columns)
        frame.insert(at, "runs in MLflow", links)
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    styler = frame.style.hide(axis="index").format(_number_format(frame), na_rep="")
    styler = styler.set_table_attributes('class="sortable"').set_uuid(table_id)  # T_<id>
    for column in ("verdict", "above_best"):
        if column in frame:
            styler = styler.map(_verdict_css, subset=[column])
    if "diff" in frame and frame["diff"].notna().any():
        limit = float(frame["diff"].abs().max()) or 1.0
        styler = styler.bar(subset=["diff"], align="zero", color=["#e8a0a0", "#9fd49f"],
                            vmin=-limit, vmax=limit, height=70, width=90)  # fmt: skip
    if text_columns:
        styler = styler.set_properties(subset=text_columns, **{"text-align": "left"})
    return f"<div class='wide' id='{table_id}'>{styler.to_html()}</div>"


def _setting_runs(table: pd.DataFrame, row: pd.Series) -> list[tuple[str, str]]:
    """The finished runs of one comparison row, one per seed: (run id, label)."""
    finished = table[table.status == "FINISHED"]
    match = finished
    for key in SETTING:
        if key in row and key in finished:
            match = match[match[key] == row[key]]
    match = match.sort_values(["seed", "start_time"]).drop_duplicates("config_hash", keep="last")
    return [(r.run_id, f"seed {int(r.seed)}" if pd.notna(r.seed) else "run")
            for r in match.itertuples()]  # fmt: skip


def _links(base: str, experiments: dict[str, str], runs: list[tuple[str, str]]) -> str:
    """Links to runs in the MLflow UI, each labelled (its seed)."""
    return " ".join(
        f'<a href="{html.escape(run_url(base, experiments.get(r, "0"), r))}" '
        f'title="run {html.escape(r)}">{html.escape(label)}</a>'
        for r, label in runs
    )


def _label(row: pd.Series, several: bool) -> str:
    """`heavy at strength 1`, with the dataset and model when the report has several."""
    what = f"<b>{html.escape(str(row['aug']))}</b> at strength {row['strength']:g}"
    if several:
        what = f"{html.escape(str(row['dataset']))} / {html.escape(str(row['model']))}: {what}"
    return what


def verdict_summary(report, several: bool) -> str:
    """The verdicts in words, strongest first within each verdict; the best setting first."""
    comparison = report.comparison
    metric = report.metric
    parts = []
    if comparison.empty:
        return "<p>No setting could be compared with a baseline (see below).</p>"
    bests = {(b["dataset"], b["model"]): b for b in best_settings(report)}
    for (dataset, model), rows in comparison.groupby(["dataset", "model"], sort=True):
        best = bests[(dataset, model)]
        heading = f"{html.escape(str(dataset))} / {html.escape(str(model))}"
        if best["baseline_best"]:
            lead = (f"Best: <b>no augmentation</b> ({metric} {best['baseline_mean']:.4f}); no "
                    "setting beat it.")  # fmt: skip
        else:
            lead = (f"Best: {_label(best, False)}, {metric} {best['mean']:.4f} against "
                    f"{best['baseline_mean']:.4f} without augmentation "
                    f"({best['verdict']}).")  # fmt: skip
        items = []
        order = {stats.HELPS: 0, stats.HURTS: 1, stats.EQUIVALENT: 2, stats.UNDECIDED: 3}
        ranked = rows.assign(_o=rows.verdict.map(order).fillna(4), _d=-rows["diff"].abs())
        for _, row in ranked.sort_values(["_o", "_d"]).iterrows():
            verdict = str(row["verdict"])
            badge = (f'<span class="badge" style="{_verdict_css(verdict)}">'
                     f"{html.escape(verdict)}</span>")  # fmt: skip
            interval = f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
            more, seeds = "", row.get("more_seeds")
            if verdict == stats.UNDECIDED and pd.notna(seeds):
                more = (f"; about {seeds:g} more seeds would decide it" if seeds != float("inf")
                        else "; more seeds would not decide it (more folds might)")  # fmt: skip
            items.append(f"<li>{badge} {_label(row, several)}: diff {row['diff']:+.4f} "
                         f"{interval}, p_holm {row['p_holm']:.2g}{more}</li>")  # fmt: skip
        parts.append(f"<h3>{heading}</h3><p>{lead}</p><ul class='verdicts'>{''.join(items)}</ul>")
    words = "; ".join(f"<b>{k}</b> {html.escape(v.split(': ', 1)[1])}"
                      for k, v in VERDICT_WORDS.items())  # fmt: skip
    parts.append(
        f"<p class='note'>diff: {metric} of the setting minus the baseline's, paired by "
        f"seed and fold, with its 95% interval; margin ±{report.margin:g}. {words}.</p>"
    )
    return "".join(parts)


def previews(report, table: pd.DataFrame, several: bool) -> str:
    """Each compared setting's augmentation preview, from the artifacts of its first run."""
    import mlflow

    figures = []
    with tempfile.TemporaryDirectory() as folder:
        for _, row in report.comparison.iterrows():
            runs = _setting_runs(table, row)
            if not runs:
                continue
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=runs[0][0], artifact_path="augmentation_preview.png", dst_path=folder
                )
            except Exception as err:  # a run without the plot (an old one): the others still
                log.info("no augmentation preview for run %s: %s", runs[0][0], err)
                continue
            caption = _label(row, several)
            figures.append(f"<figure>{png(path, 'augmentation preview')}"
                           f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip
            Path(path).unlink()
    if not figures:
        return ""
    return ("<h2>What each setting does to the training images</h2><p class='note'>Originals "
            "next to the augmented versions, drawn as training draws them.</p>"
            f"<div class='previews'>{''.join(figures)}</div>")  # fmt: skip


def render(report, selection, table: pd.DataFrame, out: Path, tracking_uri: str,
           ui_url: str | None = None) -> Path:  # fmt: skip
    """Write `out/report.html` from the report, the runs' table and the figures in `out`."""
    base = ui_base(tracking_uri, ui_url)
    runs = selection.runs
    experiments = dict(zip(runs["run_id"], runs["experiment_id"].astype(str), strict=True))
    several = report.comparison.groupby(["dataset", "model"]).ngroups > 1 if len(
        report.comparison) else False  # fmt: skip
    sections = [f"<h1>augsweep report: {html.escape(report.metric)}</h1>",
                f"<p>Runs: {html.escape(selection.description)}.</p>"]  # fmt: skip
    compute = compute_line(selection.runs)
    if compute:
        sections.append(f"<p class='note'>{html.escape(compute)}</p>")
    sections += ["<h2>Verdicts</h2>", verdict_summary(report, several)]
    if not report.comparison.empty:
        shown = _front(drop_single_context(report.comparison), report.metric)
        links = [_links(base, experiments, _setting_runs(table, row))
                 for _, row in report.comparison.iterrows()]  # fmt: skip
        sections += ["<h2>Against the no-augmentation baseline</h2>",
                     "<p class='note'>Click a column's name to sort by it. Links open the runs "
                     f"in the MLflow UI at {html.escape(base)} (python -m src.report --ui-url "
                     "for another).</p>",
                     styled(shown, "comparison", links)]  # fmt: skip
    if not report.strengths.empty:
        sections += [
            "<h2>Strength per augmentation type</h2>",
            styled(drop_single_context(report.strengths), "strengths"),
            "<p class='note'>above_best: each strength above the best and its verdict "
            "against the best; too_strong_from: the lowest of them that hurts.</p>",
        ]
    if not report.across.empty:
        sections += ["<h2>Across datasets</h2>", styled(report.across, "across")]
    figures = sorted(out.glob("strength_curves_*.png")) + sorted(
        out.glob("difference_heatmap_*.png"))  # fmt: skip
    if figures:
        sections.append("<h2>Strength curves and heatmaps</h2><div class='figures'>"
                        + "".join(png(p, p.stem) for p in figures) + "</div>")  # fmt: skip
    if not report.comparison.empty:
        sections.append(previews(report, table, several))
    if report.messages:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in report.messages)
        sections.append(f"<h2>Not compared</h2><ul>{items}</ul>")
    if not report.not_finished.empty:
        frame = report.not_finished
        opened = [_links(base, experiments, [(r, "open")]) for r in frame.run_id]
        sections += [
            "<h2>Failed, killed or running runs (left out of every number)</h2>",
            styled(frame, "not_finished", opened),
        ]
    body = "\n".join(s for s in sections if s)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>augsweep report: {html.escape(report.metric)}</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n<script>{SORT_SCRIPT}</script>"
            "</body></html>\n")  # fmt: skip
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
