"""The training engine: folds trained together give what folds trained one at a time give."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from mlflow.tracking import MlflowClient

from src.cv import split
from src.train import engine, fold_pipelines, fold_seed, prepare, run

CURVES = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def fold_record(run_id: str, folds: int) -> dict[str, object]:
    """A run's per-fold final scores and curves, as the store holds them (timings left out)."""
    client = MlflowClient()
    metrics = client.get_run(run_id).data.metrics
    record: dict[str, object] = {
        k: v for k, v in metrics.items() if k.startswith("fold") and "time" not in k
    }
    for k in range(folds):
        for curve in CURVES:
            history = client.get_metric_history(run_id, f"fold{k}/{curve}")
            if history:  # learning_rate: only with a schedule
                record[f"fold{k}/{curve}"] = [
                    m.value for m in sorted(history, key=lambda m: m.step)
                ]
    return record


def parallel_and_serial(make_cfg, *overrides: str, folds: int = 3) -> tuple[dict, dict]:
    records = []
    for parallel in ("true", "false"):
        # the audit's references are not what these tests compare (tests/test_audit.py)
        cfg = make_cfg(*overrides, f"cv.folds={folds}", f"train.parallel_folds={parallel}",
                       "sweep.rerun=true", "sweep.audit=false")  # fmt: skip
        records.append(fold_record(run(cfg).run_id, folds))
    return records[0], records[1]


FAST = [
    pytest.param(["aug=light", "data.subset=300"], id="digits-cnn-aug-in-model"),
    pytest.param(["data=gunpoint", "model=cnn1d", "aug=medium"], id="gunpoint-cnn1d"),
]
SLOW = [
    pytest.param(["data=gunpoint", "aug=light"], id="gunpoint-lstm", marks=pytest.mark.slow),
    pytest.param(
        ["aug=heavy", "aug.placement=dataset", "data.subset=300"],
        id="digits-aug-in-tf.data",
        marks=pytest.mark.slow,
    ),  # fmt: skip
    pytest.param(["aug=mixup", "data.subset=300"], id="digits-mixup", marks=pytest.mark.slow),
    pytest.param(
        ["aug=randaugment", "aug.num_ops=3", "data.subset=300"],
        id="digits-randaugment-in-model",
        marks=pytest.mark.slow,
    ),  # fmt: skip
    pytest.param(
        ["data=japanese_vowels", "data.subset=90", "aug=randaugment", "model=cnn1d"],
        id="padded-series-randaugment",
        marks=pytest.mark.slow,
    ),  # fmt: skip
    pytest.param(["aug=cutmix", "data.subset=300"], id="digits-cutmix", marks=pytest.mark.slow),
    pytest.param(
        ["data=japanese_vowels", "data.subset=90", "aug=heavy"],
        id="padded-series-lstm",
        marks=pytest.mark.slow,
    ),  # fmt: skip
    pytest.param(
        ["data.subset=300", "train.mixed_precision=true", "aug=heavy"],
        id="mixed-precision",
        marks=pytest.mark.slow,
    ),  # fmt: skip
]


@pytest.mark.parametrize("overrides", FAST + SLOW)
def test_folds_trained_together_match_folds_trained_one_at_a_time(make_cfg, overrides):
    """Same seeds: each fold starts from the same weights and sees the same augmented batches
    in both engines (any difference would show in its per-epoch training loss), so with op
    determinism every recorded number is equal, curves and final scores alike."""
    parallel, serial = parallel_and_serial(make_cfg, *overrides)
    assert parallel.keys() == serial.keys()
    assert parallel == serial
    # and the folds are different models: not one fold's numbers copied into every slot
    assert parallel["fold0/loss"] != parallel["fold1/loss"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("data", ["digits", "gunpoint"])
def test_without_op_determinism_the_engines_agree_within_tolerance(make_cfg, seed, data):
    """With op determinism off, kernels may sum in another order: fold accuracies then agree
    within one validation sample per 25 (stated tolerance 0.04), on real data, over seeds."""
    subset = ["data.subset=300"] if data == "digits" else []
    parallel, serial = parallel_and_serial(
        make_cfg, f"data={data}", *subset, f"seed={seed}", "train.deterministic=false"
    )
    for k in range(3):
        a, b = parallel[f"fold{k}/final_val_accuracy"], serial[f"fold{k}/final_val_accuracy"]
        assert abs(a - b) <= 0.04, (k, a, b)


def test_unequal_folds_count_every_sample_once(make_cfg):
    """3 folds of 100 samples with batch 32: training parts of 66 and 67 samples, 3 batches
    each, but validation parts of 34 and 33; and batch 33: 2 batches for 66, 3 for 67. Every
    epoch, each slot's counts equal its fold's sizes exactly, and the padding never trains."""
    cfg = make_cfg("data.subset=100", "cv.folds=3", "train.batch_size=33", "aug=none")
    job, data = prepare(cfg)
    folds = list(split(job.cv, data.y_train, job.seed))
    sizes = sorted({len(f.train) for f in folds})
    assert sizes == [66, 67]  # the case this test is about: the batch counts differ (2 and 3)
    spec = engine.Spec.of(job, data)
    program = engine.Program(spec, [fold_seed(job, f) for f in folds])
    pipelines = [fold_pipelines(job, data, f, spec) for f in folds]
    zipped = engine._zip_padded(program._fill([p[0] for p in pipelines]))
    seen = np.zeros(len(folds), dtype=int)
    steps = 0
    for batches in zipped:
        steps += 1
        seen += [int(tf.shape(x)[0]) for x, _ in batches]
    assert steps == 3 and list(seen) == [len(f.train) for f in folds]
    before = [[w.numpy() for w in net.trainable_weights] for net in program.networks]
    program.fit([p[0] for p in pipelines], [p[1] for p in pipelines], 1, [[] for _ in folds])
    counts = program._totals.numpy()
    assert list(counts[:, 2]) == [len(f.train) for f in folds]
    assert list(counts[:, 5]) == [len(f.val) for f in folds]
    # every slot trained: its weights moved; Adam counted its real steps only
    for net, start in zip(program.networks, before, strict=True):
        assert any(
            not np.array_equal(w.numpy(), s)
            for w, s in zip(net.trainable_weights, start, strict=True)
        )
    iterations = [int(opt.iterations.numpy()) for opt in program.optimizers]
    assert iterations == [-(-len(f.train) // 33) for f in folds]


def test_a_slot_predicts_alone_while_the_others_are_idle(make_cfg):
    """`predict` with inputs for one slot only (the audit scores one fold at a time): the idle
    slots see batches of no rows, which are skipped, and the slot's probabilities are its own
    network's, batch by batch (this CNN failed on the empty batch under oneDNN on AVX-512)."""
    job, data = prepare(make_cfg("data.subset=300", "cv.folds=3", "aug=none"))
    folds = list(split(job.cv, data.y_train, job.seed))
    program = engine.Program(engine.Spec.of(job, data), [fold_seed(job, f) for f in folds])
    x = data.x_train[:100].astype("float32")
    empty = np.zeros((0, *data.input_shape), np.float32)
    for slot in range(3):
        (probs, *idle) = program.predict([empty] * slot + [x])[slot:]
        assert not idle  # one output per slot given
        expected = program.networks[slot](x, training=False).numpy()
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
        assert probs.shape == (100, 10)


def test_a_fold_that_stops_early_stops_alone(make_cfg):
    """EarlyStopping per fold (best weights restored): the folds stop at their own epochs, the
    others go on, and each fold's result is what it gets when trained alone."""
    stop = "train.early_stopping={monitor: val_loss, patience: 1, restore_best_weights: true}"
    overrides = ["data.subset=300", "train.epochs=12", "aug=heavy", stop]
    parallel, serial = parallel_and_serial(make_cfg, *overrides)
    assert parallel == serial
    trained = [parallel[f"fold{k}/final_epochs_trained"] for k in range(3)]
    assert min(trained) < 12 and len(set(trained)) > 1, trained
    for k in range(3):
        assert len(parallel[f"fold{k}/loss"]) == trained[k]
        # restored: the final model is the best epoch's, not the last one's
        best = max(parallel[f"fold{k}/val_accuracy"][i] for i in range(int(trained[k])))
        assert parallel[f"fold{k}/final_val_accuracy"] <= best + 1e-9


def test_each_fold_lowers_its_own_learning_rate(make_cfg):
    """ReduceLROnPlateau per fold: each fold's rate (its logged curve) halves at its own
    plateaus, as it does when the fold trains alone."""
    lower = "train.reduce_lr={monitor: val_loss, factor: 0.5, patience: 1}"
    overrides = ["data.subset=300", "train.epochs=10", "train.learning_rate=0.01", lower]
    parallel, serial = parallel_and_serial(make_cfg, *overrides)
    assert parallel == serial
    rates = [parallel[f"fold{k}/learning_rate"] for k in range(3)]
    assert all(r[0] == pytest.approx(0.01) for r in rates), rates
    assert any(min(r) <= 0.005 + 1e-9 for r in rates), rates  # halved at least once somewhere
    assert len({tuple(r) for r in rates}) > 1, rates  # not one schedule for every fold


def test_a_program_is_reused_by_the_next_job_with_the_same_architecture(make_cfg):
    """An in-process sweep over seeds traces once; each job still starts from its seed's
    weights (the same metrics as a job run in a fresh program)."""
    first = run(make_cfg("data.subset=300", "seed=1", "cv.folds=3", "sweep.audit=false"))
    program = engine.PROGRAMS.program
    reused = run(make_cfg("data.subset=300", "seed=2", "cv.folds=3", "sweep.audit=false"))
    assert engine.PROGRAMS.program is program  # same spec, same program, no new trace
    engine.PROGRAMS.program = None  # a fresh program for the same job
    fresh = run(
        make_cfg("data.subset=300", "seed=2", "cv.folds=3", "sweep.rerun=true", "sweep.audit=false")
    )
    assert engine.PROGRAMS.program is not program
    assert fold_record(reused.run_id, 3) == fold_record(fresh.run_id, 3)
    assert fold_record(first.run_id, 3) != fold_record(reused.run_id, 3)


@pytest.mark.slow
def test_jobs_that_augment_in_tf_data_share_a_program_and_keep_their_augmentation(make_cfg):
    """No augmentation layer in the network: aug=none and aug=heavy in tf.data trace one program,
    and the second job still trains on its own augmentation (its numbers equal a fresh
    program's, and differ from the unaugmented job's)."""
    common = ["data.subset=300", "cv.folds=3", "aug.placement=dataset", "sweep.rerun=true"]
    plain = run(make_cfg("aug=none", *common))
    program = engine.PROGRAMS.program
    heavy = run(make_cfg("aug=heavy", *common))
    assert engine.PROGRAMS.program is program
    engine.PROGRAMS.program = None
    fresh = run(make_cfg("aug=heavy", *common))
    assert fold_record(heavy.run_id, 3) == fold_record(fresh.run_id, 3)
    assert fold_record(heavy.run_id, 3)["fold0/loss"] != fold_record(plain.run_id, 3)["fold0/loss"]


@pytest.mark.parametrize(
    ("recipe", "model"),
    [
        ("fcn", "fcn"),
        pytest.param("resnet", "resnet", marks=pytest.mark.slow),
        pytest.param("lstm", "lstm", marks=pytest.mark.slow),
    ],
)
def test_training_recipes_reach_the_run(make_cfg, recipe, model):
    """conf/train/<recipe>.yaml: its keys are the job's params, its callbacks run per fold."""
    cfg = make_cfg("data=gunpoint", f"model={model}", f"train={recipe}", "train.epochs=3",
                   "cv.folds=2", "aug=none")  # fmt: skip
    result = run(cfg)
    params = MlflowClient().get_run(result.run_id).data.params
    assert params["train.name"] == recipe
    assert params["train.reduce_lr.monitor"] == "loss" and params["train.reduce_lr.factor"] == "0.5"
    assert params["train.early_stopping.restore_best_weights"] == "True"
    assert params["train.batch_size"] == str(cfg.train.batch_size)
    assert result.metrics["epochs_trained_mean"] == 3
