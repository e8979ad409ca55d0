"""Where augmentation runs: in the model or in the tf.data pipeline, and batch mixing in a run."""

from __future__ import annotations

import keras
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src.augment.plan import Plan
from src.data import load_dataset
from src.train import run


def augmented_change(plan: Plan, data, placement: str) -> float:
    """Mean absolute change training batches get, measured where the plan applies it."""
    x, y = data.x_train[:512], data.y_train[:512]
    batches = data.pipeline(x, y, batch_size=64)
    if placement == "dataset":
        out = np.concatenate([b.numpy() for b, _ in plan.training(batches)])
    else:
        out = np.concatenate([keras.ops.convert_to_numpy(plan.in_model(b, training=True))
                              for b, _ in batches])  # fmt: skip
    return float(np.abs(out - x).mean())


@pytest.mark.parametrize(("data", "aug"), [("digits", "heavy"), ("gunpoint", "heavy")])
def test_both_placements_give_the_same_augmentation(make_cfg, data, aug):
    in_model = make_cfg(f"data={data}", f"aug={aug}")
    in_data = make_cfg(f"data={data}", f"aug={aug}", "aug.placement=dataset")
    dataset = load_dataset(in_model.data)
    model_plan = Plan.build(in_model.aug, dataset.modality, dataset.n_classes, seed=0)
    data_plan = Plan.build(in_data.aug, dataset.modality, dataset.n_classes, seed=0)
    assert model_plan.in_model is not None and data_plan.in_model is None
    change_model = augmented_change(model_plan, dataset, "model")
    change_data = augmented_change(data_plan, dataset, "dataset")
    assert change_model > 0.01
    assert change_data == pytest.approx(change_model, rel=0.1)


def test_dataset_placement_keeps_augmentation_out_of_the_saved_model(make_cfg):
    run(make_cfg("aug=heavy", "aug.placement=dataset", "data.subset=200"))
    (found,) = MlflowClient().search_runs([mlflow.get_experiment_by_name("augsweep").experiment_id])
    assert found.info.status == "FINISHED" and found.data.params["aug.placement"] == "dataset"
    summary = mlflow.artifacts.load_text(f"runs:/{found.info.run_id}/model_summary.txt")
    assert "augmentation" not in summary and "conv2d" in summary.lower()
    assert 0 <= found.data.metrics["val_accuracy_mean"] <= 1


@pytest.mark.parametrize("aug", ["mixup", "cutmix"])
def test_mixing_trains_on_soft_labels_and_scores_on_hard_ones(make_cfg, aug):
    cfg = make_cfg(f"aug={aug}", "aug.strength=1", "data.subset=200")
    dataset = load_dataset(cfg.data)
    plan = Plan.build(cfg.aug, "image", dataset.n_classes, seed=0)
    x, y = next(iter(plan.training(dataset.pipeline(dataset.x_train, dataset.y_train,
                                                    batch_size=64))))  # fmt: skip
    assert y.shape == (64, 10)
    np.testing.assert_allclose(y.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert (y.numpy().max(axis=1) < 1).any()  # some labels really are mixed
    run(cfg)
    (found,) = MlflowClient().search_runs([mlflow.get_experiment_by_name("augsweep").experiment_id])
    assert found.info.status == "FINISHED"
    assert 0 <= found.data.metrics["val_accuracy_mean"] <= 1
    artifacts = {a.path for a in MlflowClient().list_artifacts(found.info.run_id)}
    assert "augmentation_preview.png" in artifacts


def test_mixing_with_a_binary_head_uses_a_soft_probability(make_cfg, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in (0, 1):  # a real two-class image folder
        (tmp_path / f"d{label}").mkdir()
        for i in np.flatnonzero(digits.target == label)[:20]:
            Image.fromarray((digits.images[i] * 15).astype("uint8")).save(
                tmp_path / f"d{label}" / f"{i}.png"
            )
    cfg = make_cfg("data=image_folder", f"data.path={tmp_path}", "data.image_size=[16,16]",
                   "aug=mixup", "aug.strength=1")  # fmt: skip
    dataset = load_dataset(cfg.data)
    plan = Plan.build(cfg.aug, "image", dataset.n_classes, seed=0)
    _, y = next(iter(plan.training(dataset.pipeline(dataset.x_train, dataset.y_train,
                                                    batch_size=32))))  # fmt: skip
    assert y.shape[1] == 1 and float(y.numpy().min()) >= 0 and float(y.numpy().max()) <= 1
    assert run(cfg).metrics["val_accuracy_mean"] >= 0
