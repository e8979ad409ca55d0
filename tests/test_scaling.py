"""Input scaling fitted on a fold's training part: real UCR/UEA series, through the real config."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from aeon.datasets import load_classification

from src.cv import split
from src.data.scaling import Standardizer
from src.train import fold_inputs, prepare, run


def test_basic_motions_channels_are_standardised_with_the_training_part_only(make_cfg):
    job, data = prepare(make_cfg("data=basic_motions", "model=lstm"))
    assert job.model.standardize is True  # conf/model/lstm.yaml
    fold = next(split(job.cv, data.y_train, job.seed))
    parts = fold_inputs(job, data, fold)
    raw = data.x_train[fold.train]
    assert raw.std(axis=(0, 1)).max() > 5  # the accelerometer channels are far from unit scale
    np.testing.assert_allclose(parts.train.mean(axis=(0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(parts.train.std(axis=(0, 1)), 1.0, atol=1e-4)
    # validation and test are scaled with the training part's statistics, not their own
    mean, std = raw.mean(axis=(0, 1)), raw.std(axis=(0, 1))
    np.testing.assert_allclose(parts.val, (data.x_train[fold.val] - mean) / std, atol=1e-4)
    np.testing.assert_allclose(parts.test, (data.x_test - mean) / std, atol=1e-4)
    assert not np.allclose(parts.val.mean(axis=(0, 1)), 0.0, atol=1e-3)
    assert parts.train.dtype == parts.val.dtype == parts.test.dtype == np.float32


def test_the_statistics_never_depend_on_validation_or_test_data():
    x, _ = load_classification("BasicMotions", split="train")
    x = np.transpose(x, (0, 2, 1)).astype("float32")
    fitted = Standardizer.fit(x[:30], padded=False)
    changed = x.copy()
    changed[30:] *= 100.0  # "validation / test" rows: what they hold does not move the statistics
    again = Standardizer.fit(changed[:30], padded=False)
    np.testing.assert_array_equal(fitted.mean, again.mean)
    np.testing.assert_array_equal(fitted.std, again.std)


def test_padding_stays_zero_and_counts_in_no_statistic(vowels):
    scale = Standardizer.fit(vowels, padded=True)
    real = np.any(vowels != 0, axis=-1)
    assert (~real).sum() > 1000  # JapaneseVowels: 7 to 26 steps padded to the longest
    np.testing.assert_allclose(scale.mean, vowels[real].mean(axis=0), rtol=1e-5, atol=1e-6)
    out = scale(vowels)
    assert np.all(out[~real] == 0.0)
    np.testing.assert_allclose(out[real].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[real].std(axis=0), 1.0, atol=1e-4)


def test_a_constant_channel_is_centred_not_divided_by_zero():
    x = np.stack([np.linspace(-1, 1, 40).reshape(4, 10), np.full((4, 10), 3.0)], axis=-1)
    out = Standardizer.fit(x, padded=False)(x)
    assert np.all(np.isfinite(out)) and np.all(out[..., 1] == 0.0)


def test_models_without_the_key_see_the_raw_series(make_cfg):
    job, data = prepare(make_cfg("data=basic_motions", "model=cnn1d"))
    fold = next(split(job.cv, data.y_train, job.seed))
    parts = fold_inputs(job, data, fold)
    np.testing.assert_array_equal(parts.train, data.x_train[fold.train])
    assert parts.test is data.x_test


@pytest.mark.parametrize("standardize", ["true", "false"])
def test_the_setting_is_a_logged_param(make_cfg, standardize):
    result = run(make_cfg("data=basic_motions", "model=lstm", f"model.standardize={standardize}",
                          "train.epochs=1", "sweep.audit=false"))  # fmt: skip
    params = mlflow.get_run(result.run_id).data.params
    assert params["model.standardize"] == standardize.capitalize()
