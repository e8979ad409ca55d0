"""The label-safety audit on real data: what it logs, that its reference never sees validation or
test data, that it changes nothing else, and that it sees a flipped 6 becoming something else."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from mlflow.tracking import MlflowClient
from scipy import stats as scipy_stats

from src import audit, engine, report, stats
from src.augment.preview import mistakes_figure, mosaic_tiles
from src.cv import split
from src.data import Dataset
from src.report import audit as audit_report
from src.tracking import config_hash
from src.train import prepare, run
from tests.test_engine import fold_record
from tests.test_report import fake_job
from tests.test_report import sweep_parent as sweep_parent  # a fixture

CLASSES = [f"class_{c}" for c in range(10)]


def test_a_job_logs_its_audit_per_fold_and_as_means_with_its_mistakes(make_cfg):
    audit._WEIGHTS.clear()
    result = run(make_cfg("aug=rotation", "aug.strength=1", "data.subset=200"))
    client = MlflowClient()
    metrics = client.get_run(result.run_id).data.metrics
    for k in range(2):
        clean = metrics[f"fold{k}/audit/clean_accuracy"]
        augmented = metrics[f"fold{k}/audit/augmented_accuracy"]
        assert metrics[f"fold{k}/audit/label_drop"] == pytest.approx(clean - augmented)
        for c in CLASSES:
            assert -1 <= metrics[f"fold{k}/audit/label_drop/{c}"] <= 1
    per_class = [f"label_drop/{c}" for c in CLASSES]
    for key in ("clean_accuracy", "augmented_accuracy", "label_drop", *per_class):
        assert metrics[f"audit/{key}"] == pytest.approx(
            np.mean([metrics[f"fold{k}/audit/{key}"] for k in range(2)])
        )
    assert result.metrics["audit/label_drop"] == metrics["audit/label_drop"]
    assert metrics["audit/reference_time_s"] > 0 and metrics["audit/score_time_s"] > 0
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert "audit_mistakes.png" in artifacts


def test_the_audit_is_off_with_sweep_audit_false_and_changes_nothing_else(make_cfg):
    """sweep.audit is not part of the config hash, so it must not change what the job
    computes: folds one at a time (the audit runs between them), every curve and score equal."""
    common = ["aug=rotation", "data.subset=200", "train.parallel_folds=false", "sweep.rerun=true"]
    on, off = (prepare(make_cfg(*common, f"sweep.audit={flag}"))[0] for flag in ("true", "false"))
    assert config_hash(on) == config_hash(off)
    audited = run(make_cfg(*common, "sweep.audit=true")).run_id
    plain = run(make_cfg(*common, "sweep.audit=false")).run_id
    record = fold_record(audited, 2)
    assert {k: v for k, v in record.items() if "/audit/" not in k} == fold_record(plain, 2)
    assert "fold1/audit/label_drop" in record
    client = MlflowClient()
    assert not [k for k in client.get_run(plain).data.metrics if "audit" in k]
    assert "audit_mistakes.png" not in {a.path for a in client.list_artifacts(plain)}


def test_a_reference_is_trained_once_per_fold_config_and_process(make_cfg):
    """Two jobs of one sweep with other augmentations: the second job's audit takes the
    references from the cache (no training) and so gets the same clean accuracy; other folds
    (another seed) get references of their own."""
    tf.config.experimental.enable_op_determinism()
    audit._WEIGHTS.clear()
    audits = {}
    for aug, seed in (("rotation", 0), ("zoom", 0), ("zoom", 1)):
        job, data = prepare(make_cfg(f"aug={aug}", "data.subset=200", f"seed={seed}"))
        folds = list(split(job.cv, data.y_train, job.seed))
        audits[aug, seed] = audit.audit_group(job, data, folds, engine.Spec.of(job, data), 2)
    assert all(a.seconds["reference"] > 0 for a in audits["rotation", 0])
    assert all(a.seconds["reference"] == 0 for a in audits["zoom", 0])
    assert all(a.seconds["reference"] > 0 for a in audits["zoom", 1])
    for first, second in zip(audits["rotation", 0], audits["zoom", 0], strict=True):
        assert first.metrics["clean_accuracy"] == second.metrics["clean_accuracy"]
        assert first.metrics["augmented_accuracy"] != second.metrics["augmented_accuracy"]
    assert len(audit._WEIGHTS) == 4


def test_the_reference_never_sees_validation_or_test_data(make_cfg, monkeypatch):
    """Per fold, the fold's validation rows and the whole test split set to NaN: every array the
    audit hands to a pipeline or to the reference program is free of NaN, the reference's
    weights stay finite, and the audit's numbers are those of the untouched data."""
    cfg = make_cfg("aug=vertical_flip", "aug.strength=1", "data.subset=200", "train.epochs=3")
    job, data = prepare(cfg)
    tf.config.experimental.enable_op_determinism()  # as run() does for the job
    spec = engine.Spec.of(job, data)
    seen: list[bool] = []
    pipeline, predict = Dataset.pipeline, engine.Program.predict

    def watched_pipeline(self, x, y, **kwargs):
        seen.append(bool(np.isnan(np.asarray(x, np.float32)).any()))
        return pipeline(self, x, y, **kwargs)

    def watched_predict(self, inputs):
        seen.extend(bool(np.isnan(i).any()) for i in inputs if isinstance(i, np.ndarray))
        return predict(self, inputs)

    for fold in split(job.cv, data.y_train, job.seed):
        audit._WEIGHTS.clear()
        (clean,) = audit.audit_group(job, data, [fold], spec, 1)
        poisoned = np.array(data.x_train)
        poisoned[fold.val] = np.nan
        hidden = dataclasses.replace(
            data, x_train=poisoned, x_test=np.full_like(data.x_test, np.nan)
        )
        audit._WEIGHTS.clear()
        seen.clear()
        with monkeypatch.context() as patch:
            patch.setattr(Dataset, "pipeline", watched_pipeline)
            patch.setattr(engine.Program, "predict", watched_predict)
            (blind,) = audit.audit_group(job, hidden, [fold], spec, 1)
        assert seen and not any(seen)
        weights = next(iter(audit._WEIGHTS.values()))
        assert all(np.isfinite(w).all() for w in weights)
        assert blind.metrics == clean.metrics
        np.testing.assert_array_equal(blind.mistakes[1], clean.mistakes[1])


def test_a_reference_recipe_watches_its_training_loss_not_the_validation_loss(make_cfg):
    cfg = make_cfg("data=gunpoint", "model=fcn", "train=fcn")
    job, _ = prepare(cfg)
    ref = audit.reference_job(job)
    assert job.train.early_stopping.monitor == "val_loss"
    assert ref.train.early_stopping.monitor == "loss" and ref.train.reduce_lr.monitor == "loss"
    assert ref.aug.name == "none" and not ref.aug.ops and job.aug.name == "light"


def test_mixed_labels_are_scored_against_their_dominant_class():
    soft = np.array([[0.7, 0.3, 0.0], [0.2, 0.0, 0.8]], np.float32)
    assert audit._targets(soft).tolist() == [0, 2]
    assert audit._targets(np.array([[0.4], [0.6]], np.float32)).tolist() == [0, 1]
    assert audit._targets(np.array([3, 1])).tolist() == [3, 1]


def test_the_mistakes_figure_shows_originals_over_augmented_with_label_and_reading(
    digits, gunpoint
):
    x = digits[:3]
    flipped = x[:, ::-1]
    fig = mistakes_figure(x, flipped, np.array([0, 1, 2]), np.array([8, 7, 5]),
                          tuple("0123456789"), "image", "digits")  # fmt: skip
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["0 read as 8", "1 read as 7", "2 read as 5"]
    shown, augmented = mosaic_tiles(fig, (8, 8, 1), 3)
    np.testing.assert_array_equal(shown, x)
    np.testing.assert_array_equal(augmented, flipped)
    plt.close(fig)
    series = mistakes_figure(gunpoint[:2], -gunpoint[:2], np.array([0, 1]), np.array([1, 0]),
                             ("1", "2"), "series", "gunpoint")  # fmt: skip
    assert [a.get_title() for a in series.axes] == ["1 read as 2", "2 read as 1"]
    plt.close(series)


@pytest.mark.slow
def test_vertical_flips_change_sixes_and_nines_but_not_zeros_and_eights(make_cfg):
    """Real training on all 1437 digits, 2 folds: a reference trained without flips reads a
    6 turned upside down as something else, and a 0 or an 8 still as itself."""
    audit._WEIGHTS.clear()
    cfg = make_cfg("aug=vertical_flip", "aug.strength=1", "train.epochs=20", "train.batch_size=64")
    metrics = run(cfg).metrics
    drop = {c: metrics[f"audit/label_drop/class_{c}"] for c in range(10)}
    assert metrics["audit/clean_accuracy"] > 0.97
    assert min(drop[6], drop[9]) > max(drop[0], drop[8]) + 0.2, drop


def test_the_report_has_the_audit_column_its_plot_and_the_correlation_with_harm(
    sweep_parent, tmp_path
):
    """Settings whose audit label drop goes with their harm: the report's correlation is
    scipy's over those settings, and each setting's outcome follows its flag and verdict."""
    client = MlflowClient()
    experiment_id = client.get_run(sweep_parent).info.experiment_id
    rng = np.random.default_rng(1)
    base = 0.95 + rng.normal(0, 0.003, 5)
    fake_job(client, experiment_id, sweep_parent, "none", 0, 0, base)
    settings = {  # (aug, strength): (harm, audit label drop)
        ("vertical_flip", 0.5): (0.10, 0.20), ("vertical_flip", 1.0): (0.25, 0.40),
        ("rotation", 0.5): (0.0, 0.003), ("rotation", 1.0): (0.12, 0.004),
        ("randaugment_n2", 0.5): (0.001, 0.05),
    }  # fmt: skip
    # one seed of 5 folds with a large spread: the comparison cannot tell
    wide = fake_job(client, experiment_id, sweep_parent, "translation", 1.0, 0,
                    base - np.array([0.08, -0.06, 0.05, -0.04, 0.02]))  # fmt: skip
    client.log_metric(wide, "audit/label_drop", 0.3)
    for (aug, strength), (harm, drop) in settings.items():
        run_id = fake_job(client, experiment_id, sweep_parent, aug, strength, 0,
                          base - harm + rng.normal(0, 0.003, 5))  # fmt: skip
        client.log_metric(run_id, "audit/label_drop", drop)
    assert report.main(["--out", str(tmp_path / "r")]) == 0
    table = pd.read_csv(tmp_path / "r" / "comparison.csv").set_index(["aug", "strength"])
    for key, (_, drop) in settings.items():
        assert table.loc[key, "audit_label_drop"] == pytest.approx(drop)
    agreement = pd.read_csv(tmp_path / "r" / "audit.csv").set_index(["aug", "strength"])
    assert agreement.loc[("vertical_flip", 1.0), "outcome"] == audit_report.PREDICTED
    assert agreement.loc[("rotation", 1.0), "outcome"] == audit_report.MISSED
    verdicts = table["verdict"]
    assert verdicts[("randaugment_n2", 0.5)] == verdicts[("rotation", 0.5)] == stats.EQUIVALENT
    assert agreement.loc[("randaugment_n2", 0.5), "outcome"] == audit_report.FALSE_ALARM
    assert agreement.loc[("rotation", 0.5), "outcome"] == audit_report.QUIET
    assert verdicts[("translation", 1.0)] == stats.UNDECIDED
    assert agreement.loc[("translation", 1.0), "outcome"] == audit_report.OPEN_FLAGGED
    harm = -table["diff"].to_numpy()
    r = scipy_stats.pearsonr(table["audit_label_drop"], harm).statistic
    rho = scipy_stats.spearmanr(table["audit_label_drop"], harm).statistic
    text = (tmp_path / "r" / "report.md").read_text()
    assert "## Label-safety audit against the measured harm" in text
    assert f"Pearson r = {r:.2f}" in text and f"Spearman rho = {rho:.2f}" in text
    assert "harm missed (hurts, not flagged): rotation 1" in text
    assert (tmp_path / "r" / "label_drop_digits_cnn.png").exists()
    assert "audit_label_drop" in text.split("## Label-safety audit")[0]  # the verdict table


def test_label_drop_curves_plot_each_aug_from_zero():
    from src import plots

    rows = pd.DataFrame({
        "aug": ["rotation", "rotation", "flip"], "strength": [0.5, 1.0, 1.0],
        "audit_label_drop": [0.01, 0.05, 0.3], "verdict": ["equivalent", "hurts", "hurts"],
    })  # fmt: skip
    fig = plots.label_drop_curves(rows, "digits / cnn")
    (ax,) = fig.axes
    lines = {
        line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")
    }
    assert list(lines["rotation"].get_xdata()) == [0.0, 0.5, 1.0]
    assert list(lines["rotation"].get_ydata()) == [0.0, 0.01, 0.05]
    plt.close(fig)


def test_a_job_that_augments_in_tf_data_trains_its_references_in_its_own_program(make_cfg):
    """aug.placement=dataset: the network has no augmentation, so the reference has the job's
    program key and trains in the job's program (no second program); its references are the
    ones a separate program trains."""
    tf.config.experimental.enable_op_determinism()
    job, data = prepare(make_cfg("aug=rotation", "aug.placement=dataset", "data.subset=200"))
    folds = list(split(job.cv, data.y_train, job.seed))
    spec = engine.Spec.of(job, data)
    seeds = [job.seed * 1000 + f.index for f in folds]
    jobs_program = engine.PROGRAMS.get(spec, seeds)
    engine.REFERENCES.program = engine.REFERENCES.key = None
    audit._WEIGHTS.clear()
    shared = audit.audit_group(job, data, folds, spec, len(folds))
    assert engine.REFERENCES.program is None  # trained in the job's program
    assert engine.PROGRAMS.program is jobs_program
    engine.PROGRAMS.program = engine.PROGRAMS.key = None
    audit._WEIGHTS.clear()
    separate = audit.audit_group(job, data, folds, spec, len(folds))
    assert engine.REFERENCES.program is not None
    assert [a.metrics for a in shared] == [a.metrics for a in separate]


def test_the_reference_sees_the_inputs_as_the_model_sees_them(make_cfg, monkeypatch):
    """model.standardize (the LSTM's): the reference trains on, and the audit scores, each
    fold's training part standardised with that part's own statistics, as the model gets it."""
    from src.train import fold_inputs

    job, data = prepare(make_cfg("data=gunpoint", "model=lstm", "aug=jitter", "train.epochs=1"))
    assert job.model.standardize is True
    folds = list(split(job.cv, data.y_train, job.seed))
    given: list[np.ndarray] = []
    pipeline = Dataset.pipeline

    def watched(self, x, y, **kwargs):
        given.append(np.asarray(x))
        return pipeline(self, x, y, **kwargs)

    monkeypatch.setattr(Dataset, "pipeline", watched)
    audit._WEIGHTS.clear()
    audit.audit_group(job, data, folds[:1], engine.Spec.of(job, data), 1)
    expected = fold_inputs(job, data, folds[0]).train
    assert not np.allclose(expected, data.x_train[folds[0].train])  # standardising changes them
    assert given and all(np.array_equal(x, expected) for x in given)
