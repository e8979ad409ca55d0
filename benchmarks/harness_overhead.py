"""What augsweep costs on top of training: the same job as a plain Keras script and as a run.

    python -m benchmarks.harness_overhead

The job: digits (1437 training images after the 20% hold-out), the CNN of conf/model/cnn.yaml,
no augmentation, 5 stratified folds, --epochs epochs, batch 64; then the test split scored. The
plain script is what a Keras user writes: `StratifiedKFold`, `keras.Sequential`,
`model.fit(x, y, validation_data=...)`, `model.predict`. augsweep runs the same folds and
epochs through `src.train.run` (config checks, tf.data pipeline, per-epoch MLflow logging,
plots, preview, the run's params, tags and artifacts) into a temporary SQLite store. Both run
in one process, alternating, after one warm-up each; medians of --repeats.
Results: benchmarks/results/harness_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import keras
from hydra import compose, initialize_config_dir
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, train_test_split

from benchmarks.machine import write
from src.config import CONF_DIR
from src.train import run

FOLDS, BATCH = 5, 64


def plain_keras(epochs: int, seed: int = 0) -> tuple[float, float]:
    """The job as a plain Keras script; returns (wall time, summed fit time) in seconds."""
    start, fit = time.perf_counter(), 0.0
    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x_train, y_train)
    for k, (train, val) in enumerate(folds):
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed * 1000 + k)
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(64, 3, activation="relu", padding="same"),
                keras.layers.MaxPooling2D(),
                keras.layers.Flatten(),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        started = time.perf_counter()
        model.fit(x_train[train], y_train[train], validation_data=(x_train[val], y_train[val]),
                  epochs=epochs, batch_size=BATCH, verbose=0)  # fmt: skip
        fit += time.perf_counter() - started
        model.predict(x_train[val], verbose=0)
        model.predict(x_test, verbose=0)
    return time.perf_counter() - start, fit


def augsweep_job(epochs: int, store: str) -> tuple[float, float]:
    """The job through augsweep; returns (wall time, summed fit time) in seconds."""
    overrides = ["aug=none", f"train.epochs={epochs}", f"cv.folds={FOLDS}", "sweep.rerun=true",
                 f"tracking.uri=sqlite:///{store}/mlflow.db"]  # fmt: skip
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    start = time.perf_counter()
    result = run(cfg)
    return time.perf_counter() - start, result.metrics["fit_time_s_mean"] * FOLDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        plain_keras(args.epochs), augsweep_job(args.epochs, store)  # warm-up
        plain, ours = [], []
        for _ in range(args.repeats):
            plain.append(plain_keras(args.epochs))
            ours.append(augsweep_job(args.epochs, store))
    p, o = (statistics.median(w for w, _ in runs) for runs in (plain, ours))
    # what each spends outside model.fit: the harness's fixed cost is the difference
    p_out, o_out = (statistics.median(w - f for w, f in runs) for runs in (plain, ours))
    ratio, fixed = o / p, o_out - p_out
    markdown = (
        "# Harness overhead\n\n"
        f"`python -m benchmarks.harness_overhead`: digits CNN, no augmentation, {FOLDS} folds x "
        f"{args.epochs} epochs, batch {BATCH}, test split scored; median of {args.repeats}.\n\n"
        "| | seconds per job | of which outside `model.fit` |\n|---|---|---|\n"
        f"| plain Keras script | {p:.2f} | {p_out:.2f} |\n"
        f"| augsweep `run(cfg)` | {o:.2f} | {o_out:.2f} |\n\n"
        f"- Ratio augsweep / plain: {ratio:.2f} (target <= 1.10: "
        f"{'met' if ratio <= 1.10 else 'NOT met'}).\n"
        f"- Fixed cost per job (augsweep's time outside fit minus the script's): {fixed:.2f} s "
        f"(target < 1 s: {'met' if fixed < 1 else 'NOT met'}).\n"
    )
    result = {"epochs": args.epochs, "plain_wall_fit_s": plain, "augsweep_wall_fit_s": ours}
    write("harness_overhead", result, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
