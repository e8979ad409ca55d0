"""report.html and the sweep's description, from a real store of recorded (untrained) runs."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from src import callbacks, description, report, stats, tracking
from src.report import page as report_html

FOLDS = 5


class Page(HTMLParser):
    """Every start tag with its attributes, in order, and the text of the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        names = [name for name, _ in attrs]
        assert len(names) == len(set(names)), f"<{tag}> repeats an attribute: {attrs}"
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def preview_png(colour: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((20, 40, 3), colour, np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def store(tmp_path):
    """A sweep's parent with a baseline, two settings of one op and a failed job, as a sweep
    records them (tags, cv.folds, per-fold scores, wall time, the preview plot)."""
    experiment_id = tracking.setup(OmegaConf.create({"uri": None, "experiment": "augsweep"}))
    client = MlflowClient()
    parent = callbacks.start_parent(experiment_id, ["aug=none,rotation"], str(tmp_path))
    rng = np.random.default_rng(1)
    base = 0.9 + rng.normal(0, 0.005, FOLDS)
    settings = {("none", 0.0): base, ("rotation", 0.5): base + 0.002 + rng.normal(0, 0.001, FOLDS),
                ("rotation", 1.0): base - 0.2 + rng.normal(0, 0.01, FOLDS)}  # fmt: skip
    runs = {}
    for (aug, strength), scores in settings.items():
        tags = {"augsweep.role": "job", "mlflow.parentRunId": parent, "dataset": "digits",
                "model": "cnn", "aug": aug, "strength": str(strength), "seed": "0",
                "config_hash": f"{aug}-{strength}", "mlflow.runName": f"digits/cnn/{aug}",
                "augsweep.overrides": f"aug={aug} aug.strength={strength}"}  # fmt: skip
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        client.log_param(run_id, "cv.folds", FOLDS)
        for fold, value in enumerate(scores):
            client.log_metric(run_id, f"fold{fold}/final_val_accuracy", float(value))
        client.log_metric(run_id, "val_accuracy_mean", float(np.mean(scores)))
        client.log_metric(run_id, "wall_time_s", 10.0)
        if aug != "none":
            path = tmp_path / "augmentation_preview.png"
            path.write_bytes(preview_png(int(strength * 200)))
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
        runs[(aug, strength)] = run_id
    failed = client.create_run(experiment_id, tags={
        "augsweep.role": "job", "mlflow.parentRunId": parent, "dataset": "digits",
        "model": "cnn", "aug": "blur", "strength": "1.0", "seed": "0", "config_hash": "blur",
        "augsweep.error": "ValueError: broken"}).info.run_id  # fmt: skip
    client.set_terminated(failed, "FAILED")
    counts, _ = callbacks.finish_parent(parent, ["aug"], metric="val_accuracy_mean")
    return {"parent": parent, "experiment_id": experiment_id, "runs": runs, "failed": failed,
            "counts": counts}  # fmt: skip


def test_the_sweep_end_describes_jobs_best_and_how_to_make_the_report(store):
    note = MlflowClient().get_run(store["parent"]).data.tags[description.NOTE_TAG]
    assert store["counts"] == {"finished": 3, "failed": 1, "killed": 0, "skipped": 0}
    assert note.startswith("augsweep sweep. **4 jobs**: 3 finished, 1 failed, 0 skipped")
    best = max(store["runs"], key=lambda k: MlflowClient().get_run(store["runs"][k])
               .data.metrics["val_accuracy_mean"])  # fmt: skip
    assert f"**Best by val_accuracy_mean**: `aug={best[0]}`" in note
    assert f"python -m src.report --sweep {store['parent']}" in note
    assert "`report/report.md`" in note


def test_report_html_is_one_self_contained_page_verdicts_first(store, tmp_path):
    out = tmp_path / "rep"
    ui = "http://mlflow.example:8080"
    assert report.main(["--out", str(out), "--quiet", "--ui-url", ui]) == 0
    text = (out / "report.html").read_text()
    page = Page(text)
    # self-contained: no stylesheet, script or image fetched from anywhere
    assert not page.all("link") and all("src" not in s for s in page.all("script"))
    images = [i["src"] for i in page.all("img")]
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:  # each one a real PNG
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # strength curves, heatmap and the two settings' previews
    assert [i["alt"] for i in page.all("img")] == [
        "strength_curves_digits_cnn", "difference_heatmap_digits_cnn", "augmentation preview",
        "augmentation preview"]  # fmt: skip
    previews = [i["src"] for i in page.all("img")][2:]
    assert base64.b64decode(previews[0].split(",", 1)[1]) == preview_png(100)  # strength 0.5
    # the verdicts first, in words, then the tables
    assert text.index("<h2>Verdicts</h2>") < text.index("id='comparison'")
    words = " ".join("".join(page.text).split())
    assert "Best: rotation at strength 0.5" in words
    assert re.search(r"hurts\s+rotation at strength 1: diff -0\.2\d{3}", words)
    tables = [t for t in page.all("table")]
    assert [t["id"] for t in tables] == ["T_comparison", "T_strengths", "T_not_finished"]
    assert all(t["class"] == "sortable" for t in tables) and "table.sortable" in text
    # verdict colours and the difference as a bar (Styler's CSS)
    hurts = report_html.VERDICT_STYLE[stats.HURTS].split(";")[0]
    assert hurts.replace(" ", "") in text.replace(" ", "")
    assert "linear-gradient" in text  # Styler.bar
    # every compared row and the failed run link to their runs in the UI
    links = [a["href"] for a in page.all("a")]
    for key in (("rotation", 0.5), ("rotation", 1.0)):
        assert f"{ui}/#/experiments/{store['experiment_id']}/runs/{store['runs'][key]}" in links
    assert f"{ui}/#/experiments/{store['experiment_id']}/runs/{store['failed']}" in links
    # logged on the sweep's parent run with the other report files
    logged = {a.path for a in MlflowClient().list_artifacts(store["parent"], "report")}
    assert {"report/report.html", "report/report.md", "report/comparison.csv"} <= logged


def test_the_report_rewrites_the_description_with_best_verdicts_and_files(store, tmp_path):
    assert report.main(["--out", str(tmp_path / "rep"), "--quiet"]) == 0
    note = MlflowClient().get_run(store["parent"]).data.tags[description.NOTE_TAG]
    lines = note.split("\n\n")
    assert lines[0] == ("augsweep sweep. **4 jobs**: 3 finished, 1 failed, 0 skipped (already "
                        "in the store).")  # fmt: skip
    assert lines[1].startswith("**Best by val_accuracy**: `aug=rotation` at strength 0.5, 0.9")
    assert "without augmentation (verdict: " in lines[1]
    assert re.search(r"rotation 1: hurts \(-0\.2\d{3}\)", lines[2])
    assert lines[3].startswith("**Report**: this run's artifacts `report/report.md`")
    assert "`report/report.html`" in lines[3]


def test_no_augmentation_best_is_said_so():
    comparison = {"dataset": ["digits"], "model": ["cnn"], "aug": ["blur"], "strength": [1.0],
                  "val_accuracy_mean": [0.8], "verdict": ["hurts"], "diff": [-0.1]}  # fmt: skip
    import pandas as pd

    fake = report.Report(pd.DataFrame(comparison), pd.DataFrame(), pd.DataFrame(),
                         pd.DataFrame({"dataset": ["digits"], "model": ["cnn"], "mean": [0.9]}),
                         pd.DataFrame(), [], "val_accuracy")  # fmt: skip
    (best,) = description.best_settings(fake)
    assert best["baseline_best"] and best["baseline_mean"] == 0.9


def test_links_point_at_a_tracking_server_or_the_local_ui():
    assert report_html.ui_base("http://host:5000/") == "http://host:5000"
    assert report_html.ui_base("sqlite:////x/mlflow.db") == report_html.DEFAULT_UI
    assert report_html.ui_base("sqlite:////x/mlflow.db", "https://ui.example/") == (
        "https://ui.example")  # fmt: skip
    assert json.loads(json.dumps(report_html.run_url("u", "1", "r"))) == "u/#/experiments/1/runs/r"
