"""A real small cross-validated run, recorded in a real SQLite MLflow store and read back."""

from __future__ import annotations

from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from tensorflow.python.framework.config import is_op_determinism_enabled

from src.augment import build_augmentation
from src.cv import split
from src.data import load_dataset
from src.errors import ConfigError
from src.models import Adam, build_model, resolve_model_cfg
from src.train import run

EPOCH_CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")
FOLD_SCORES = ("train_accuracy", "val_accuracy", "val_balanced_accuracy", "val_f1_macro", "gap")
TEST_SCORES = ("test_accuracy", "test_balanced_accuracy", "test_f1_macro")


def only_run(client: MlflowClient):
    (experiment,) = [e for e in client.search_experiments() if e.name == "augsweep"]
    (found,) = client.search_runs([experiment.experiment_id])
    return found


def test_digits_run_records_config_metrics_and_artifacts(make_cfg, tmp_path):
    cfg = make_cfg("aug=heavy", "aug.strength=0.8", "data.subset=200", "seed=3")
    returned = run(cfg).metrics

    client = MlflowClient()
    found = only_run(client)
    assert found.info.status == "FINISHED"
    assert found.info.run_name == "digits/cnn/heavy/s0.8/seed3"
    params, tags, metrics = found.data.params, found.data.tags, found.data.metrics
    # params: the flattened, resolved config, with `model=auto` resolved to the CNN
    assert params["data.name"] == "digits" and params["data.subset"] == "200"
    assert params["model.name"] == "cnn" and params["model.filters"] == "[32, 64]"
    assert params["aug.strength"] == "0.8" and params["cv.folds"] == "2"
    assert params["train.epochs"] == "2" and params["seed"] == "3"
    assert {k: tags[k] for k in ("dataset", "modality", "model", "aug", "strength", "seed")} == {
        "dataset": "digits",
        "modality": "image",
        "model": "cnn",
        "aug": "heavy",
        "strength": "0.8",
        "seed": "3",
    }
    assert len(tags["config_hash"]) == 16 and "augsweep.overrides" in tags
    assert "mlflow.parentRunId" not in tags  # a single run is a plain run

    # per-fold final scores, and their mean and std
    for name in (*FOLD_SCORES, *TEST_SCORES, "fit_time_s"):
        per_fold = [metrics[f"fold{k}/final_{name}"] for k in range(2)]
        assert metrics[f"{name}_mean"] == pytest.approx(np.mean(per_fold))
        assert metrics[f"{name}_std"] == pytest.approx(np.std(per_fold, ddof=1))
        assert returned[f"{name}_mean"] == pytest.approx(metrics[f"{name}_mean"])
    for k in range(2):
        assert 0.0 <= metrics[f"fold{k}/final_val_accuracy"] <= 1.0
        assert metrics[f"fold{k}/final_gap"] == pytest.approx(
            metrics[f"fold{k}/final_train_accuracy"] - metrics[f"fold{k}/final_val_accuracy"]
        )
    assert metrics["wall_time_s"] > metrics["fit_time_s_mean"]

    # per-epoch curves for every fold, one point per epoch
    for k in range(2):
        for curve in EPOCH_CURVES:
            history = client.get_metric_history(found.info.run_id, f"fold{k}/{curve}")
            assert sorted(m.step for m in history) == [0, 1]
        last = max(
            client.get_metric_history(found.info.run_id, f"fold{k}/val_accuracy"),
            key=lambda m: m.step,
        )
        # Keras's last-epoch validation accuracy is the fold's final model's accuracy
        assert last.value == pytest.approx(metrics[f"fold{k}/final_val_accuracy"], abs=1e-6)

    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {
        "config.yaml",
        "model_summary.txt",
        "learning_curves.png",
        "confusion_matrix.png",
        "augmentation_preview.png",
    } <= artifacts
    run_uri = f"runs:/{found.info.run_id}"
    logged = yaml.safe_load(mlflow.artifacts.load_text(f"{run_uri}/config.yaml"))
    assert logged["aug"]["strength"] == 0.8 and logged["model"]["name"] == "cnn"
    summary = mlflow.artifacts.load_text(f"{run_uri}/model_summary.txt")
    assert "augmentation" in summary and "conv2d" in summary.lower()
    png = Path(mlflow.artifacts.download_artifacts(f"{run_uri}/learning_curves.png")).read_bytes()
    assert png.startswith(b"\x89PNG")


def test_series_run_uses_lstm_and_the_official_test_split(make_cfg):
    returned = run(make_cfg("data=gunpoint", "aug=medium")).metrics
    found = only_run(MlflowClient())
    assert found.info.status == "FINISHED"
    assert found.info.run_name == "gunpoint/lstm/medium/s0.5/seed0"
    assert found.data.tags["modality"] == "series" and found.data.params["model.units"] == "50"
    # test metrics on GunPoint's official 150-series test split
    for name in TEST_SCORES:
        assert 0.0 <= found.data.metrics[f"{name}_mean"] <= 1.0
    assert returned["val_accuracy_mean"] == pytest.approx(found.data.metrics["val_accuracy_mean"])


def test_variable_length_series_train_with_masking(make_cfg):
    run(make_cfg("data=japanese_vowels", "data.subset=90", "train.epochs=1", "aug=heavy"))
    found = only_run(MlflowClient())
    assert found.info.status == "FINISHED"
    summary = mlflow.artifacts.load_text(f"runs:/{found.info.run_id}/model_summary.txt")
    assert "masking" in summary.lower()
    assert found.data.metrics["test_accuracy_mean"] > 1 / 9  # better than chance on 9 classes


def test_a_1d_cnn_learns_gunpoint(make_cfg):
    """model=cnn1d: Conv1D-BatchNorm-ReLU blocks and global average pooling, on real series."""
    result = run(
        make_cfg(
            "data=gunpoint", "model=cnn1d", "aug=none", "train.epochs=60", "train.batch_size=16"
        )
    )
    found = only_run(MlflowClient())
    assert found.info.run_name == "gunpoint/cnn1d/none/s0/seed0"
    summary = mlflow.artifacts.load_text(f"runs:/{found.info.run_id}/model_summary.txt")
    assert summary.count("Conv1D") == 3 and "GlobalAveragePooling1D" in summary
    # two classes, chance is 0.5; seeds 0-3 gave 0.73-0.86. With Keras's BatchNormalization
    # momentum (0.99) the inference statistics stay near their start and it predicts one class
    assert found.data.params["model.batchnorm_momentum"] == "0.9"
    assert result.metrics["test_accuracy_mean"] > 0.65
    with pytest.raises(ConfigError, match=r"model 'cnn1d' needs series data.*auto, cnn$"):
        run(make_cfg("model=cnn1d"))


@pytest.mark.parametrize(("overrides", "folds"), [(["data=digits"], 5), (["data=arrow_head"], 3)])
def test_folds_are_stratified_and_repeatable(make_cfg, overrides, folds):
    cfg = make_cfg(*overrides, f"cv.folds={folds}", "cv.repeats=2")
    y = load_dataset(cfg.data).y_train
    first = list(split(cfg.cv, y, seed=0))
    assert len(first) == folds * 2
    for fold in first:
        # every class's share of each validation fold matches the data within one sample
        expected = np.bincount(y) / folds
        assert np.all(np.abs(np.bincount(y[fold.val], minlength=len(expected)) - expected) <= 1)
        assert not set(fold.train) & set(fold.val)
        assert len(fold.train) + len(fold.val) == len(y)
    # the same seed gives the same folds (every aug setting sees them); repeats differ
    again = list(split(cfg.cv, y, seed=0))
    assert all(np.array_equal(a.val, b.val) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0].val, first[folds].val)
    assert not np.array_equal(first[0].val, next(split(cfg.cv, y, seed=1)).val)


@pytest.mark.parametrize("data", ["digits", "gunpoint"])
def test_predictions_at_inference_ignore_augmentation(make_cfg, data):
    cfg = make_cfg(f"data={data}", "aug=heavy")
    dataset = load_dataset(cfg.data)
    model_cfg = resolve_model_cfg(cfg.model, dataset.modality)
    augmentation = build_augmentation(cfg.aug, dataset.modality, seed=0)
    assert augmentation is not None
    model = build_model(
        model_cfg,
        dataset.input_shape,
        dataset.n_classes,
        learning_rate=1e-3,
        augmentation=augmentation,
    )
    batches = dataset.pipeline(dataset.x_train, dataset.y_train, batch_size=32)
    model.fit(
        dataset.pipeline(dataset.x_train, dataset.y_train, batch_size=32, shuffle=True),
        epochs=1,
        verbose=0,
        shuffle=False,
    )
    # the same trained layers without the augmentation in front
    plain = build_model(model_cfg, dataset.input_shape, dataset.n_classes, learning_rate=1e-3)
    plain.set_weights([w.numpy() for w in model.trainable_weights])
    with_aug, without_aug = model.predict(batches, verbose=0), plain.predict(batches, verbose=0)
    np.testing.assert_array_equal(with_aug, without_aug)
    # while training, the augmentation does change what the model sees
    x = next(iter(batches))[0]
    assert not np.allclose(augmentation(x, training=True), x)


def test_initial_weights_do_not_depend_on_the_augmentation(make_cfg):
    """Settings are compared fold by fold: same seed, same starting weights, aug or not."""
    cfg = make_cfg()
    model_cfg = resolve_model_cfg(cfg.model, "image")
    weights = []
    for aug_cfg in (make_cfg("aug=none").aug, make_cfg("aug=heavy").aug):
        keras.utils.set_random_seed(5)
        aug = build_augmentation(aug_cfg, "image", seed=5)
        model = build_model(model_cfg, (8, 8, 1), 10, learning_rate=1e-3, augmentation=aug)
        weights.append([w.numpy() for w in model.trainable_weights])  # the CNN's own
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("data", ["digits", "gunpoint"])
def test_our_adam_trains_exactly_like_keras_adam(make_cfg, data):
    """The leak-free Adam changes memory, not arithmetic: identical losses and weights."""
    cfg = make_cfg(f"data={data}", "data.subset=120" if data == "digits" else "seed=0")
    dataset = load_dataset(cfg.data)
    model_cfg = resolve_model_cfg(cfg.model, dataset.modality)
    results = []
    for optimizer in (keras.optimizers.Adam, Adam):
        keras.backend.clear_session()
        keras.utils.set_random_seed(3)
        model = build_model(model_cfg, dataset.input_shape, dataset.n_classes, learning_rate=1e-3)
        model.compile(optimizer=optimizer(1e-3), loss=model.loss, metrics=["accuracy"])
        batches = dataset.pipeline(dataset.x_train, dataset.y_train, batch_size=32)
        history = model.fit(batches, epochs=3, verbose=0, shuffle=False).history
        results.append((history["loss"], [w.numpy() for w in model.weights]))
    (keras_loss, keras_weights), (ours_loss, ours_weights) = results
    assert type(model.optimizer) is Adam and keras_loss[2] < keras_loss[0]
    assert keras_loss == ours_loss
    for a, b in zip(keras_weights, ours_weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mixed_precision_and_xla_options_reach_the_model(make_cfg):
    run(make_cfg("data.subset=200", "train.epochs=1"))  # deterministic, the default
    assert is_op_determinism_enabled()
    cfg = make_cfg("data.subset=200", "train.epochs=1", "train.mixed_precision=true",
                   "train.jit_compile=true", "train.deterministic=false", "aug=heavy",
                   "aug.placement=dataset")  # fmt: skip
    result = run(cfg)
    found = MlflowClient().get_run(result.run_id)
    assert found.info.status == "FINISHED"
    assert found.data.params["train.mixed_precision"] == "True"
    assert found.data.params["train.jit_compile"] == "True"
    assert 0.1 < result.metrics["val_accuracy_mean"] <= 1
    assert not is_op_determinism_enabled()  # an earlier deterministic job does not leak
    dataset = load_dataset(cfg.data)
    model = build_model(resolve_model_cfg(cfg.model, "image"), dataset.input_shape,
                        dataset.n_classes, learning_rate=1e-3, mixed_precision=True,
                        jit_compile=True)  # fmt: skip
    conv = next(layer for layer in model.layers if "conv" in layer.name)
    assert (conv.compute_dtype, conv.variable_dtype) == ("float16", "float32")
    assert model.layers[-1].compute_dtype == "float32" and model.jit_compile is True
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    with pytest.raises(ConfigError, match="^train.jit_compile=true is not supported with aug"):
        run(make_cfg("train.jit_compile=true", "train.deterministic=false", "aug=heavy"))
    with pytest.raises(ConfigError, match="^train.jit_compile=true has no effect with train.det"):
        run(make_cfg("train.jit_compile=true", "aug=none"))


def test_lfw_faces_train_well_above_chance_with_flips(make_cfg):
    """Faces against non-faces: a short real training of the CNN, flips in the model."""
    result = run(make_cfg("data=lfw_faces", "aug=flip", "train.epochs=12", "cv.folds=2"))
    assert result.metrics["val_accuracy_mean"] > 0.85  # chance: 0.5 (two balanced classes)
    assert result.metrics["test_accuracy_mean"] > 0.85
    tags = mlflow.get_run(result.run_id).data.tags
    assert (tags["dataset"], tags["modality"], tags["aug"]) == ("lfw_faces", "image", "flip")
