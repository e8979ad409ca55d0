"""What a user sees after a real small sweep: its output off a terminal, what it recorded in
MLflow (datasets, models, the parent's description, the report), the MLflow UI in a real
headless Chromium, and report.html opened from disk.

One sweep for the module (digits, 2 folds, 2 epochs, aug=none,light,heavy, the best fold's
model logged). `mlflow ui` is started on 127.0.0.1 on a free port, Chromium is driven over its
DevTools pipe (tests/browser.py); both are stopped at the end, also when a test fails.
Screenshots are kept in the module's temporary folder, `<pytest basetemp>/ui0/screenshots/`
(pytest keeps the last three runs' folders), and their paths are printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient
from PIL import Image

from src.data import load_dataset
from src.description import NOTE_TAG
from tests import browser
from tests.conftest import CONF, ROOT
from tests.test_report import free_port

pytestmark = pytest.mark.slow
SWEEP = ["data.subset=200", "cv.folds=2", "train.epochs=2", "train.batch_size=32",
         "aug=none,light,heavy", "tracking.log_model=best_fold"]  # fmt: skip
CHILDREN = {"digits/cnn/none/s0/seed0", "digits/cnn/light/s0.25/seed0", "digits/cnn/heavy/s1/seed0"}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """The real sweep command, its output a pipe (as in CI or a log file), on a fresh store."""
    folder = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "src.sweep", "-m", *SWEEP, f"tracking.uri={uri}",
         f"hydra.sweep.dir={folder / 'sweep'}", f"hydra.run.dir={folder / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("augsweep")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags["augsweep.role"] == "sweep"]
    children = {r.info.run_name: r for r in runs if r.data.tags["augsweep.role"] == "job"}
    (folder / "screenshots").mkdir()
    return {"folder": folder, "uri": uri, "done": done, "client": client, "parent": parent,
            "children": children, "experiment_id": experiment.experiment_id}  # fmt: skip


def test_off_a_terminal_each_job_prints_one_plain_line(made):
    out = made["done"].stdout
    assert "\x1b" not in out and "\r" not in out  # nothing drawn
    lines = out.splitlines()
    for num, aug in enumerate(("none", "light", "heavy"), start=1):
        mine = [line for line in lines if line.startswith(f"[{num}/3] aug={aug}: ")]
        assert len(mine) == 1 and re.fullmatch(
            rf"\[{num}/3\] aug={aug}: val_accuracy_mean=\d\.\d{{3}} \(\d+\.\d s\)", mine[0]
        ), lines
    parent = made["parent"].info.run_id
    assert (f"augsweep: sweep done: 3 finished, 0 failed, 0 skipped (already in the store); "
            f"parent run {parent}") in lines  # fmt: skip
    report = made["folder"] / "sweep" / "report"
    assert any(line.startswith("augsweep: wrote ") and f"open {report / 'report.html'}" in line
               for line in lines)  # fmt: skip


def test_datasets_models_and_the_description_are_in_the_store(made):
    client, children = made["client"], made["children"]
    assert set(children) == CHILDREN
    digests = {}
    for name, run in children.items():
        inputs = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
                  for i in client.get_run(run.info.run_id).inputs.dataset_inputs}  # fmt: skip
        assert set(inputs) == {"training", "testing"}
        assert {d.name for d in inputs.values()} == {"digits"}
        digests[name] = (inputs["training"].digest, inputs["testing"].digest)
    assert len(set(digests.values())) == 1  # the same data for every setting, the same digest
    (training, testing) = next(iter(digests.values()))
    assert training != testing
    # the best fold's model of each job, loaded back, scores what the run recorded
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        data = load_dataset(compose("config", overrides=["data.subset=200"]).data)
    GlobalHydra.instance().clear()
    mlflow.set_tracking_uri(made["uri"])
    for run in children.values():
        metrics = run.data.metrics
        best = int(np.argmax([metrics[f"fold{k}/final_val_accuracy"] for k in (0, 1)]))
        loaded = mlflow.keras.load_model(f"runs:/{run.info.run_id}/model")
        probs = loaded.predict(data.x_test, verbose=0)
        np.testing.assert_array_equal(probs, loaded.predict(data.x_test, verbose=0))
        accuracy = float((probs.argmax(-1) == data.y_test).mean())
        assert accuracy == pytest.approx(metrics[f"fold{best}/final_test_accuracy"])
    note = client.get_run(made["parent"].info.run_id).data.tags[NOTE_TAG]
    assert note.startswith("augsweep sweep. **3 jobs**: 3 finished, 0 failed, 0 skipped")
    assert "**Best by val_accuracy**" in note and "`report/report.md`" in note
    logged = {a.path for a in client.list_artifacts(made["parent"].info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/comparison.csv"} <= logged


@pytest.fixture(scope="module")
def ui(made) -> Iterator[str]:
    """`mlflow ui` over the sweep's store, on 127.0.0.1 and a free port; stopped at the end."""
    port = free_port()
    log_path = made["folder"] / "mlflow-ui.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", made["uri"],
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=made["folder"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
                        if response.read() == b"OK":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"mlflow ui did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(1)
            yield base
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=30)


@pytest.fixture(scope="module")
def chromium(made) -> Iterator[browser.Chromium]:
    """Headless Chromium (installed with apt-get when missing and this process may)."""
    binary = browser.install()
    if binary is None:
        pytest.skip(
            "no chromium, and it could not be installed (apt-get absent or not root); "
            "install Debian's chromium (apt-get install -y chromium) to run this test"
        )
    page = browser.Chromium(binary, made["folder"] / "chromium-profile")
    try:
        yield page
    finally:
        page.close()


def shot(page: browser.Chromium, made: dict, name: str, full_page: bool = False) -> Path:
    path = page.screenshot(made["folder"] / "screenshots" / f"{name}.png", full_page=full_page)
    print(f"screenshot: {path}")
    with Image.open(path) as image:  # something was drawn, not a blank page
        assert image.size[0] >= 800 and len(image.convert("L").getcolors(256)) > 10
    return path


def test_the_mlflow_ui_shows_the_child_runs_their_metrics_and_the_report(made, ui, chromium):
    experiment, parent = made["experiment_id"], made["parent"].info.run_id
    # as the README says: the experiment opens on the GenAI overview; switch to Model training
    chromium.open(f"{ui}/#/experiments/{experiment}")
    chromium.wait_for(chromium.by_text("Model training"), what="the Model training switch")
    chromium.click(chromium.by_text("Model training"))
    chromium.wait_for(
        "location.href.includes('workflowType=machine_learning') && "
        "document.body.innerText.includes('sweep 20')",
        what="the sweep's run",
    )
    # the parent row folds its jobs away: open it with the button beside its name
    names = " && ".join(f"document.body.innerText.includes({name!r})" for name in CHILDREN)
    if not chromium.evaluate(names):
        chromium.click(
            "[...document.querySelectorAll('a')].find(a => a.textContent"
            ".startsWith('sweep ')).closest('.ag-cell-value').querySelector('button')"
        )
    chromium.wait_for(names, what="the child runs")
    text = chromium.text()
    training = next(iter(made["children"].values())).inputs.dataset_inputs
    assert "Dataset" in text and "Models" in text
    for dataset in training:  # the Dataset column: name (digest) and context
        assert f"digits ({dataset.dataset.digest})" in text
    assert "Training" in text and "Testing" in text
    shot(chromium, made, "runs")
    # the README's chart: test_accuracy_mean against aug.strength, in the chart view
    chromium.open(f"{ui}/#/experiments/{experiment}/runs?workflowType=machine_learning"
                  "&compareRunsMode=CHART")  # fmt: skip
    chromium.wait_for(f"{names} && document.body.innerText.includes('Add chart')", what="charts")
    chromium.click(chromium.by_text("Add chart"))
    chromium.wait_for(chromium.by_text("Scatter chart"), what="the chart types")
    chromium.click(chromium.by_text("Scatter chart"))
    for axis, value in enumerate(("aug.strength", "test_accuracy_mean")):
        select = f"document.querySelectorAll('[role=dialog] input[role=combobox]')[{axis}]"
        option = ("[...document.querySelectorAll('.du-bois-light-select-item-option')].find("
                  f"o => o.textContent.trim() === {value!r})")  # fmt: skip
        chromium.wait_for(select, what=f"axis {axis}")
        chromium.click(select)
        chromium.call("Input.insertText", {"text": value})
        chromium.wait_for(option, what=f"{value} among the axis's choices")
        chromium.click(option)
    chromium.click("[...document.querySelectorAll('[role=dialog] button')].find("
                   "b => b.innerText.trim() === 'Add chart')")  # fmt: skip
    chromium.wait_for(
        "!document.querySelector('[role=dialog]') && document.body.innerText"
        ".includes('aug.strength vs. test_accuracy_mean')",
        what="the new chart",
    )
    chromium.evaluate("[...document.querySelectorAll('*')].find(e => e.textContent.trim() === "
                      "'aug.strength vs. test_accuracy_mean').scrollIntoView()")  # fmt: skip
    shot(chromium, made, "chart_test_accuracy_by_strength")
    # a child run's page: its metrics with their values
    child = made["children"]["digits/cnn/heavy/s1/seed0"]
    chromium.open(f"{ui}/#/experiments/{experiment}/runs/{child.info.run_id}")
    chromium.wait_for("document.body.innerText.includes('val_accuracy_mean')", what="metrics")
    text = chromium.text()
    for key in ("val_accuracy_mean", "test_accuracy_mean", "fold1/final_val_accuracy"):
        assert key in text and repr(child.data.metrics[key]) in text, key
    assert "Parameters" in text and "aug.strength" in text
    shot(chromium, made, "child_run")
    # the parent's page: its description, its children
    chromium.open(f"{ui}/#/experiments/{experiment}/runs/{parent}")
    chromium.wait_for("document.body.innerText.includes('Best by')", what="the description")
    chromium.wait_for(names, what="the parent's child runs")  # listed once they have loaded
    text = chromium.text()
    assert "3 jobs: 3 finished, 0 failed, 0 skipped" in text and "report/report.md" in text
    shot(chromium, made, "sweep_run")
    # the report, rendered by the artifact viewer, beside report.html
    chromium.open(f"{ui}/#/experiments/{experiment}/runs/{parent}/artifacts/report/report.md")
    chromium.wait_for("document.body.innerText.includes('Against the no-augmentation baseline')",
                      what="report.md in the artifact viewer")  # fmt: skip
    text = chromium.text()
    assert "report.html" in text and "comparison.csv" in text and "augsweep report" in text
    shot(chromium, made, "report_artifact")


def test_report_html_opened_from_disk_renders_its_tables_and_images(made, chromium):
    page = made["folder"] / "sweep" / "report" / "report.html"
    chromium.open(page.as_uri())
    chromium.wait_for("document.readyState === 'complete' && [...document.images].every("
                      "i => i.complete)", what="report.html and its images")  # fmt: skip
    sizes = chromium.evaluate("[...document.images].map(i => [i.naturalWidth, i.naturalHeight])")
    assert len(sizes) >= 4 and all(w > 50 and h > 50 for w, h in sizes)  # decoded, not broken
    rows = chromium.evaluate("document.querySelectorAll('#comparison tbody tr').length")
    assert rows == 2  # light and heavy against none
    headings = chromium.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
    assert headings[0] == "Verdicts" and "Against the no-augmentation baseline" in headings
    # a click on a column's name sorts by it, a second click the other way
    column = "[...document.querySelectorAll('#comparison thead th')].findIndex(h => " \
             "h.textContent.trim() === 'diff')"  # fmt: skip
    index = chromium.evaluate(column)
    values = (f"[...document.querySelectorAll('#comparison tbody tr')].map(r => "
              f"parseFloat(r.cells[{index}].textContent))")  # fmt: skip
    header = f"document.querySelectorAll('#comparison thead th')[{index}]"
    chromium.evaluate(f"{header}.click()")
    ascending = chromium.evaluate(values)
    chromium.evaluate(f"{header}.click()")
    descending = chromium.evaluate(values)
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
    links = chromium.evaluate("[...document.querySelectorAll('#comparison a')].map(a => a.href)")
    for name in ("digits/cnn/light/s0.25/seed0", "digits/cnn/heavy/s1/seed0"):
        run_id = made["children"][name].info.run_id
        assert any(link.endswith(f"/#/experiments/{made['experiment_id']}/runs/{run_id}")
                   for link in links)  # fmt: skip
    shot(chromium, made, "report_html", full_page=True)
