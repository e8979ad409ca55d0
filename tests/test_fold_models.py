"""tracking.log_model: the fold models in MLflow, loaded back, predicting what the engine did."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from src import tracking
from src.data import load_dataset
from src.errors import ConfigError
from src.train import engine, labels, prepare, run

TINY = ("data.subset=100", "train.epochs=1", "aug=heavy")  # heavy: augmentation layers in the model


def logged_models(run_id: str) -> dict[str, mlflow.entities.LoggedModel]:
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    return {m.name: m for m in found if m.source_run_id == run_id}


def test_every_fold_model_loads_and_predicts_what_the_engine_predicted(make_cfg):
    cfg = make_cfg(*TINY, "tracking.log_model=all")
    result = run(cfg)
    client = MlflowClient()
    finished = client.get_run(result.run_id)
    models = logged_models(result.run_id)
    assert sorted(models) == ["fold0", "fold1"]
    outputs = {o.model_id for o in finished.outputs.model_outputs}
    assert outputs == {m.model_id for m in models.values()}  # the runs table's Models column
    job, data = prepare(cfg)
    # the engine's own predictions: the program still holds both folds' trained weights
    program = engine.PROGRAMS.program
    engine_probs = program.predict([data.x_test, data.x_test])
    for fold in (0, 1):
        model = models[f"fold{fold}"]
        assert model.params["fold"] == str(fold) and model.tags["augsweep.log_model"] == "all"
        uri = f"models:/{model.model_id}"
        info = mlflow.models.get_model_info(uri)
        (spec,) = info.signature.inputs.inputs
        assert spec.shape == (-1, 8, 8, 1) and spec.type == np.dtype("float32")
        assert info.signature.outputs.inputs[0].shape == (-1, 10)
        assert info.saved_input_example_info["type"] == "ndarray"
        loaded = mlflow.keras.load_model(uri)
        # no augmentation in the logged model: the network's layers after the augmentation
        names = [type(layer).__name__ for layer in loaded.layers]
        trained = [type(layer).__name__ for layer in program.networks[fold].layers]
        assert trained[0] == "Sequential" and names == trained[1:]  # the augmentation stack
        first = loaded.predict(data.x_test, verbose=0)
        np.testing.assert_array_equal(first, loaded.predict(data.x_test, verbose=0))  # no random op
        np.testing.assert_array_equal(loaded(data.x_test).numpy(),
                                      loaded(data.x_test, training=False).numpy())  # fmt: skip
        np.testing.assert_allclose(first, engine_probs[fold], rtol=1e-5, atol=1e-6)
        assert (labels(first) == labels(engine_probs[fold])).all()
        accuracy = float((labels(first) == data.y_test).mean())
        assert accuracy == pytest.approx(finished.data.metrics[f"fold{fold}/final_test_accuracy"])
    # training-time augmentation is still in the engine's network: it changes a batch there
    x = data.x_test[:16]
    noisy = program.networks[0].layers[0](x, training=True)
    assert not np.allclose(np.asarray(noisy), x)
    # the dataset inputs of the same run
    contexts = {t.value for i in finished.inputs.dataset_inputs for t in i.tags
                if t.key == "mlflow.data.context"}  # fmt: skip
    assert contexts == {"training", "testing"}
    # where models go does not change what a job computes
    assert tracking.config_hash(job) == tracking.config_hash(prepare(make_cfg(*TINY))[0])


def test_the_best_fold_is_logged_as_model_across_groups_of_folds(make_cfg):
    # one fold at a time: the best fold's weights are kept before the next fold resets its slot
    result = run(make_cfg(*TINY, "tracking.log_model=best_fold", "train.parallel_folds=false",
                          "optimize_metric=val_f1_macro_mean"))  # fmt: skip
    metrics = MlflowClient().get_run(result.run_id).data.metrics
    scores = [metrics[f"fold{k}/final_val_f1_macro"] for k in (0, 1)]
    best = int(np.argmax(scores))  # argmax: the lowest fold on a tie
    (model,) = logged_models(result.run_id).values()
    assert model.name == "model" and model.params["fold"] == str(best)
    assert model.params["chosen_by"] == "val_f1_macro"
    data = load_dataset(make_cfg(*TINY).data)
    loaded = mlflow.keras.load_model(f"runs:/{result.run_id}/model")
    predicted = labels(loaded.predict(data.x_test, verbose=0))
    assert float((predicted == data.y_test).mean()) == pytest.approx(
        metrics[f"fold{best}/final_test_accuracy"]
    )


def test_no_model_by_default_and_a_bad_value_is_one_line_before_training(make_cfg):
    assert make_cfg().tracking.log_model == "none"
    for value, shown in (("best", "'best'"), ("true", "True"), ("null", "None")):
        with pytest.raises(ConfigError) as err:
            run(make_cfg(*TINY, f"tracking.log_model={value}"))
        assert str(err.value) == (
            f"tracking.log_model={shown} is not allowed; accepted: none, best_fold, all"
        )
    failed = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert len(failed) == 3
    assert all(r.info.status == "FAILED" and not r.data.metrics for r in failed)  # none trained
