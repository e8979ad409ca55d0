"""The report: statistics on fixed inputs, and tables recomputed from the raw per-fold metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from src import report, stats, tracking
from src.tracking.context import SweepContext
from src.train import JobResult, run
from tests.conftest import ROOT
from tests.test_sweep import command

FOLDS = 3
# runs for the report; the label-safety audit's part of it is tested in tests/test_audit.py
RUN = ("data.subset=200", "train.epochs=2", f"cv.folds={FOLDS}", "sweep.audit=false")


def corrected_t(diffs: list[float], ratio: float) -> tuple[float, float, float]:
    """Nadeau-Bengio by hand: mean, half-width of the 95% interval, two-sided p."""
    d = np.array(diffs)
    n = len(d)
    se = np.sqrt(np.var(d, ddof=1) * (1 / n + ratio))
    t = d.mean() / se
    return d.mean(), scipy_stats.t.ppf(0.975, n - 1) * se, 2 * scipy_stats.t.sf(abs(t), n - 1)


def tost_by_hand(diffs: np.ndarray, ratio: float, margin: float) -> float:
    """TOST on the corrected statistic: the larger one-sided p (sign test for equal folds)."""
    n, mean = len(diffs), diffs.mean()
    if np.ptp(diffs) <= 1e-12:
        return 0.5**n if abs(mean) < margin else 1.0
    se = np.std(diffs, ddof=1) * np.sqrt(1 / n + ratio)
    return max(scipy_stats.t.sf((mean + margin) / se, n - 1),
               scipy_stats.t.sf((margin - mean) / se, n - 1))  # fmt: skip


@pytest.mark.parametrize(
    ("diffs", "expected"),
    [
        ([0.10, 0.12, 0.09, 0.11, 0.10], stats.HELPS),  # clear improvement
        ([-0.20, -0.25, -0.18, -0.22, -0.21], stats.HURTS),  # clear harm
        ([0.01, -0.02, 0.015, -0.01, 0.004], stats.UNDECIDED),  # pure noise, too wide for 0.01
    ],
)
def test_paired_comparison_gives_the_known_answer(diffs, expected):
    result = stats.compare_paired(np.array(diffs), val_train_ratio=1 / 4)
    mean, half, p = corrected_t(diffs, 1 / 4)
    assert result.n == 5 and result.mean == pytest.approx(mean)
    assert (result.ci_low, result.ci_high) == pytest.approx((mean - half, mean + half))
    assert result.p_value == pytest.approx(p)
    assert stats.verdict(result.n, result.mean, result.p_value) == expected
    # without the correction it is the textbook paired t-test
    plain = stats.compare_paired(np.array(diffs), val_train_ratio=0)
    assert plain.p_value == pytest.approx(scipy_stats.ttest_1samp(diffs, 0).pvalue)
    # the correction widens the interval: folds share training data
    assert plain.ci_high - plain.ci_low < result.ci_high - result.ci_low


def test_noise_in_one_direction_is_not_called_significant_by_the_correction():
    diffs = [0.02, 0.01, 0.03, 0.015, 0.005]  # plain t-test: p < 0.05
    assert stats.compare_paired(np.array(diffs), 0).p_value < 0.05
    assert stats.compare_paired(np.array(diffs), 1 / 4).p_value > 0.05


def test_holm_and_too_few_folds():
    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    # Holm by hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, kept monotone
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    many = np.random.default_rng(0).uniform(0, 0.2, 40) ** 2
    expected = multipletests(many, alpha=stats.ALPHA, method="holm")[1]
    np.testing.assert_allclose(stats.holm(many), expected)
    assert stats.holm([0.5, 0.6, 0.7]).tolist() == [1.0, 1.0, 1.0]  # 1.5, 1.2, 0.7 kept monotone
    one = stats.compare_paired(np.array([0.3]), 0.25)
    assert np.isnan(one.p_value) and stats.verdict(one.n, one.mean, np.nan) == stats.TOO_FEW
    # every fold moved by the same amount: no spread for a t-test, so the exact sign test
    constant = stats.compare_paired(np.array([-0.1, -0.1, -0.1]), 0.5)
    assert constant.p_value == 0.25
    assert (constant.ci_low, constant.ci_high) == pytest.approx((-0.1, -0.1))
    assert stats.verdict(3, constant.mean, constant.p_value) == stats.UNDECIDED
    # equal up to rounding, as one test series out of 370 gained in each of 3 folds
    rounded = np.array([0.9243243243243243, 0.9270270270270270, 0.9216216216216216]) - np.array(
        [0.9216216216216216, 0.9243243243243243, 0.9189189189189189]
    )
    assert np.ptp(rounded) > 0 and stats.compare_paired(rounded, 0.5).p_value == 0.25
    eight = stats.compare_paired(np.full(8, -0.1), 1 / 7)
    assert eight.p_value == pytest.approx(2 / 2**8)
    assert stats.verdict(8, eight.mean, eight.p_value) == stats.HURTS
    assert stats.compare_paired(np.zeros(4), 1 / 3).p_value == 1.0


@pytest.fixture
def sweep_parent():
    """A parent run, as the sweep callback makes it."""
    experiment_id = tracking.setup(tracking_cfg())
    return MlflowClient().create_run(experiment_id, tags={"augsweep.role": "sweep"}).info.run_id


def run_in(parent: str, cfg) -> JobResult:
    """A job of the sweep `parent`, as src.sweep runs it."""
    return run(cfg, sweep=SweepContext(parent))


def tracking_cfg():
    from omegaconf import OmegaConf

    return OmegaConf.create({"uri": None, "experiment": "augsweep"})


def fold_values(client, run_id, score="val_accuracy"):
    metrics = client.get_run(run_id).data.metrics
    return np.array([metrics[f"fold{k}/final_{score}"] for k in range(FOLDS)])


def test_exported_numbers_equal_a_recomputation_from_the_store(make_cfg, sweep_parent, tmp_path):
    base = run_in(sweep_parent, make_cfg(*RUN, "aug=none")).run_id
    rotated = {s: run_in(sweep_parent, make_cfg(*RUN, "aug=rotation", f"aug.strength={s}")).run_id
               for s in (0.5, 1)}  # fmt: skip
    with pytest.raises(Exception, match="does not exist"):
        run_in(sweep_parent, make_cfg(*RUN, "data=series_file", f"data.path={tmp_path}/gone.npz"))
    out = tmp_path / "report"
    out.mkdir()  # an earlier report's plot and the user's own file
    (out / "strength_curves_gunpoint_lstm.png").write_bytes(b"old")
    (out / "README.md").write_text("mine")
    assert report.main(["--out", str(out), "--metric", "val_accuracy"]) == 0
    assert not (out / "strength_curves_gunpoint_lstm.png").exists()
    assert (out / "README.md").read_text() == "mine"

    client = MlflowClient()
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.aug) == ["rotation", "rotation"] and list(table.strength) == [0.5, 1.0]
    p_values = []
    for row in table.itertuples():
        ours, theirs = fold_values(client, rotated[row.strength]), fold_values(client, base)
        mean, half, p = corrected_t(list(ours - theirs), 1 / (FOLDS - 1))
        assert (row.runs, row.folds, row.paired_folds) == (1, FOLDS, FOLDS)
        assert row.val_accuracy_mean == pytest.approx(ours.mean())
        assert row.val_accuracy_std == pytest.approx(ours.std(ddof=1))
        assert row.baseline_mean == pytest.approx(theirs.mean())
        assert row.diff == pytest.approx(mean)
        assert (row.ci_low, row.ci_high) == pytest.approx((mean - half, mean + half))
        assert row.p_value == pytest.approx(p)
        assert row.p_tost == pytest.approx(tost_by_hand(ours - theirs, 1 / (FOLDS - 1), 0.01))
        assert row.margin == stats.MARGIN and row.half_width == pytest.approx(half)
        assert row.gap_mean == pytest.approx(
            fold_values(client, rotated[row.strength], "gap").mean()
        )
        p_values.append(p)
    np.testing.assert_allclose(table.p_holm, np.minimum(1, np.maximum.accumulate(
        np.sort(p_values) * [2, 1]))[np.argsort(np.argsort(p_values))])  # fmt: skip
    np.testing.assert_allclose(table.p_tost_holm, stats.holm(table.p_tost))
    assert set(table.verdict) <= {stats.HELPS, stats.HURTS, stats.EQUIVALENT, stats.UNDECIDED}
    # every export format, the figures, and the same files on the sweep's parent run
    files = {p.name for p in out.iterdir()} - {"README.md"}
    for name in ("comparison", "strengths"):
        assert {f"{name}.{ext}" for ext in ("csv", "md", "tex", "html")} <= files
    assert {"strength_curves_digits_cnn.png", "difference_heatmap_digits_cnn.png"} <= files
    latex = (out / "comparison.tex").read_text()
    assert "\\begin{tabular}" in latex and "val\\_accuracy\\_mean" in latex  # escaped for LaTeX
    assert "<table" in (out / "comparison.html").read_text()
    logged = {a.path for a in client.list_artifacts(sweep_parent, "report")}
    assert {f"report/{f}" for f in files} == logged
    # the failed run is listed apart, never averaged in
    apart = pd.read_csv(out / "not_finished.csv")
    assert list(apart.status) == ["FAILED"] and "gone.npz" in apart.error[0]
    text = (out / "report.md").read_text()
    assert "## Failed, killed or running runs" in text and "gone.npz" in text
    # what the three finished runs cost, from their wall_time_s (the failed run is left out)
    finished = [client.get_run(r) for r in (base, *rotated.values())]
    seconds = sum(r.data.metrics["wall_time_s"] for r in finished)
    assert f"Compute: 3 finished runs, {report.duration(seconds)} of job wall time" in text
    assert (report.duration(59.6), report.duration(750), report.duration(11_700)) == (
        "60 s", "12.5 min", "3.25 h")  # fmt: skip


def fake_job(client, experiment_id, parent, aug, strength, seed, scores):
    """A finished job run as the sweep logs one (tags, cv.folds, per-fold scores), untrained."""
    tags = {"augsweep.role": "job", "mlflow.parentRunId": parent, "dataset": "digits",
            "model": "cnn", "aug": aug, "strength": str(strength), "seed": str(seed),
            "config_hash": f"{aug}-{strength}-{seed}"}  # fmt: skip
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    client.log_param(run_id, "cv.folds", len(scores))
    for fold, value in enumerate(scores):
        client.log_metric(run_id, f"fold{fold}/final_val_accuracy", float(value))
    client.set_terminated(run_id)
    return run_id


def test_an_adaptive_sweep_is_replayed_seed_by_seed(sweep_parent, tmp_path, capsys):
    """The parent's max_seeds tag makes the report replay the sequential rule; a margin
    reaches every table."""
    client = MlflowClient()
    experiment_id = client.get_run(sweep_parent).info.experiment_id
    client.set_tag(sweep_parent, report.ADAPTIVE_TAG, "3")
    rng = np.random.default_rng(0)
    base = {seed: 0.9 + rng.normal(0, 0.01, 5) for seed in range(3)}
    for seed in range(3):
        fake_job(client, experiment_id, sweep_parent, "none", 0, seed, base[seed])
    harm = np.array([0, 0.01, 0, 0.02, 0.01]) - 0.3  # decided in round 1: 0.3 worse
    fake_job(client, experiment_id, sweep_parent, "blur", 1, 0, base[0] + harm)
    small = {seed: base[seed] + rng.normal(0, 0.004, 5) for seed in range(3)}  # three rounds
    for seed in range(3):
        fake_job(client, experiment_id, sweep_parent, "blur", 0.5, seed, small[seed])
    assert report.main(["--out", str(tmp_path / "r"), "--margin", "0.02"]) == 0
    table = pd.read_csv(tmp_path / "r" / "comparison.csv").set_index("strength")
    rounds = {1.0: [harm], 0.5: [small[s] - base[s] for s in range(3)]}
    replay = stats.decide(rounds, 1 / 4, margin=0.02, max_seeds=3).decisions
    for strength, decision in replay.items():
        row = table.loc[strength]
        assert row.verdict == decision.verdict and row.margin == 0.02
        assert (row.p_value, row.p_tost_holm) == pytest.approx(
            (decision.p_value, decision.p_tost_holm)
        )
        assert (row.ci_low, row.half_width) == pytest.approx((decision.ci_low, decision.half_width))
    assert table.loc[1.0].verdict == stats.HURTS and table.loc[1.0].runs == 1
    # the repeated p of the first look is p / (1/4): a quarter of the level at each of 2 looks
    one = stats.compare_paired(rounds[1.0][0], 1 / 4).p_value
    assert table.loc[1.0].p_value == pytest.approx(min(1, one / 0.25))
    strengths = pd.read_csv(tmp_path / "r" / "strengths.csv")
    assert strengths.margin.tolist() == [0.02] and strengths.too_strong_from.tolist() == [1.0]
    assert strengths.above_best[0].endswith("1 hurts")
    text = (tmp_path / "r" / "report.md").read_text()
    assert "Adaptive design, at most 3 seeds" in text and "Margin: ±0.02 val_accuracy" in text
    for name in ("**helps** / **hurts**", "**equivalent**", "**undecided**"):
        assert f"- {name}: " in text
    # a design that allows fewer seeds than the store holds is refused, in one line
    capsys.readouterr()
    assert report.main(["--out", str(tmp_path / "r2"), "--max-seeds", "2"]) == 2
    assert "3 seeds, more than max_seeds=2; pass --max-seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report.main(["--margin", "0"])
    assert "accepted: a margin > 0" in capsys.readouterr().err


def test_a_sweep_without_baseline_says_how_to_add_one(make_cfg, sweep_parent, tmp_path, capsys):
    run_in(sweep_parent, make_cfg(*RUN, "aug=rotation", "aug.strength=1"))
    assert report.main(["--out", str(tmp_path / "r")]) == 1
    printed = capsys.readouterr().out
    assert ("no baseline for digits/cnn (aug=rotation): add aug=none to the sweep, e.g. "
            "python -m src.sweep -m aug=none,rotation") in printed  # fmt: skip
    assert not (tmp_path / "r" / "comparison.csv").exists()


def test_unpaired_seeds_are_not_compared(make_cfg, sweep_parent, tmp_path, capsys):
    run_in(sweep_parent, make_cfg(*RUN, "aug=none", "seed=0"))
    run_in(sweep_parent, make_cfg(*RUN, "aug=rotation", "seed=1"))
    assert report.main(["--out", str(tmp_path / "r")]) == 1
    assert ("no baseline with the same seed and config for digits/cnn (aug=rotation, seed 1): "
            "add aug=none with seed=1 to the sweep") in capsys.readouterr().out  # fmt: skip
    assert not (tmp_path / "r" / "comparison.csv").exists()


def test_bad_selection_is_one_line(tmp_path, capsys, mlflow_store):
    assert report.main([]) == 2
    assert capsys.readouterr().err == (
        f"augsweep: error: no MLflow store at {mlflow_store}; run a sweep first\n"
    )
    tracking.setup(tracking_cfg())
    capsys.readouterr()
    assert report.main(["--experiment", "nope"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"augsweep: error: no experiment 'nope' in {mlflow_store}"
    )
    assert report.main([]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "augsweep: error: no sweep in experiment 'augsweep'; run one first, e.g. "
        "python -m src.sweep -m aug=none,light,heavy"
    )
    with pytest.raises(SystemExit):
        report.main(["--metric", "accuracy"])
    assert "invalid choice: 'accuracy'" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest(base: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if path.startswith("/api/") else raw.decode()


@pytest.mark.slow
def test_absurd_augmentation_hurts_and_a_real_server_serves_the_report(tmp_path, mlflow_store):
    done = subprocess.run(command(tmp_path, "-m", "aug=none,heavy", "data.subset=400",
                                  "train.epochs=8", "cv.folds=4"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    made = subprocess.run([sys.executable, "-m", "src.report", "--out", str(tmp_path / "rep")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    (row,) = pd.read_csv(tmp_path / "rep" / "comparison.csv").itertuples()
    assert (row.aug, row.strength, row.folds) == ("heavy", 1.0, 4)
    assert row.verdict == "hurts" and row.ci_high < 0

    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", mlflow_store,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert rest(base, "/health") == "OK"
                break
            except (urllib.error.URLError, ConnectionError):
                started = time.monotonic() < deadline and server.poll() is None
                assert started, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        experiment = rest(base, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=augsweep")
        experiment_id = experiment["experiment"]["experiment_id"]
        found = rest(base, "/api/2.0/mlflow/runs/search",
                     {"experiment_ids": [experiment_id]})["runs"]  # fmt: skip
        tags = [{t["key"]: t["value"] for t in r["data"]["tags"]} for r in found]
        (parent,) = [r for r, t in zip(found, tags, strict=True)
                     if t["augsweep.role"] == "sweep"]  # fmt: skip
        parent_id = parent["info"]["run_id"]
        children = [(r, t) for r, t in zip(found, tags, strict=True) if t["augsweep.role"] == "job"]
        assert sorted(t["aug"] for _, t in children) == ["heavy", "none"]
        for child, child_tags in children:
            run_id = child["info"]["run_id"]
            assert child["info"]["status"] == "FINISHED"
            assert child_tags["mlflow.parentRunId"] == parent_id
            history = rest(base, f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}"
                                 "&metric_key=fold3/val_accuracy")["metrics"]  # fmt: skip
            assert sorted(m["step"] for m in history) == list(range(8))
            listed = rest(base, f"/api/2.0/mlflow/artifacts/list?run_id={run_id}")["files"]
            assert "augmentation_preview.png" in {f["path"] for f in listed}
        listed = rest(base, f"/api/2.0/mlflow/artifacts/list?run_id={parent_id}&path=report")
        served = {f["path"] for f in listed["files"]}
        assert {"report/comparison.csv", "report/report.md",
                "report/strength_curves_digits_cnn.png"} <= served  # fmt: skip
        csv = rest(base, f"/get-artifact?path=report/comparison.csv&run_uuid={parent_id}")
        assert csv == (tmp_path / "rep" / "comparison.csv").read_text()
        # the report read through the server (mlflow.search_runs over REST, not SQL) agrees
        remote = subprocess.run([sys.executable, "-m", "src.report", "--tracking-uri", base,
                                 "--out", str(tmp_path / "remote")],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert remote.returncode == 0, remote.stderr[-3000:]
        assert (tmp_path / "remote" / "comparison.csv").read_text() == csv
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def test_strength_curves_have_a_panel_per_type_with_the_table_values():
    from matplotlib.colors import to_rgba

    from src import plots

    rows = pd.DataFrame({
        "aug": ["rotation", "rotation", "flip", "heavy"],
        "strength": [0.5, 1.0, 1.0, 1.0],
        "val_accuracy_mean": [0.95, 0.90, 0.97, 0.70],
        "val_accuracy_std": [0.01, 0.02, 0.01, 0.05],
        "verdict": ["equivalent", "hurts", "undecided", "hurts"],
    })  # fmt: skip
    baseline = pd.Series({"mean": 0.98, "std": 0.01})
    fig = plots.strength_curves(rows, baseline, "val_accuracy", "digits / cnn")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["flip", "heavy", "rotation"]
    rotation = shown[2]
    line = rotation.get_lines()[1]  # after the baseline's mean
    assert list(line.get_xdata()) == [0.0, 0.5, 1.0]  # strength 0 is the baseline
    assert list(line.get_ydata()) == [0.98, 0.95, 0.90]
    (points,) = rotation.collections[-1:]
    white, blue = to_rgba("white"), to_rgba("tab:blue")
    assert [tuple(c) for c in points.get_facecolors()] == [white, blue]  # filled: significant
    band = rotation.patches[0]
    assert (band.get_y(), band.get_y() + band.get_height()) == pytest.approx((0.97, 0.99))
    assert shown[0].get_shared_y_axes().joined(shown[0], shown[2])
    plt.close(fig)


def test_across_datasets_counts_directions_and_tests_them_by_signed_rank():
    rows = [  # (dataset, model, aug, strength, diff, verdict)
        *[(d, "lstm", "jitter", 0.2, x, stats.UNDECIDED)
          for d, x in zip("abcde", [0.01, 0.02, 0.03, 0.04, 0.05], strict=True)],
        *[(d, "lstm", "jitter", 1.0, x, v)
          for d, x, v in zip("abcde", [-0.3, 0.01, -0.02, 0.0, -0.1],
                             [stats.HURTS, stats.EQUIVALENT, *[stats.UNDECIDED] * 3],
                             strict=True)],
        ("a", "cnn1d", "jitter", 0.2, 0.1, stats.HELPS),  # one dataset: no direction to test
    ]  # fmt: skip
    comparison = pd.DataFrame(rows, columns=["dataset", "model", "aug", "strength", "diff",
                                             "verdict"])  # fmt: skip
    table = report.across_datasets(comparison).set_index(["model", "strength"])
    same_way = table.loc[("lstm", 0.2)]
    assert (same_way.datasets, same_way.better, same_way.worse) == (5, 5, 0)
    assert same_way.mean_diff == pytest.approx(0.03) and same_way.median_diff == pytest.approx(0.03)
    assert same_way.p_wilcoxon == pytest.approx(2 / 2**5)  # exact: the smallest 5 can give
    mixed = table.loc[("lstm", 1.0)]
    assert (mixed.better, mixed.worse, mixed.helps, mixed.hurts) == (1, 3, 0, 1)
    assert (mixed.equivalent, mixed.undecided, mixed.margin) == (1, 3, stats.MARGIN)
    assert mixed.median_diff == pytest.approx(-0.02)
    # the zero is dropped; ranks of |-0.3, 0.01, -0.02, -0.1| = 4, 1, 2, 3: W+ = 1 of 16 sign sets
    assert mixed.p_wilcoxon == pytest.approx(2 * 2 / 2**4)
    lone = table.loc[("cnn1d", 0.2)]
    assert (lone.datasets, lone.helps) == (1, 1) and np.isnan(lone.p_wilcoxon)
    assert report.across_datasets(comparison[comparison.dataset == "a"]).empty
