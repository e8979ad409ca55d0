"""The training engine against a plain Keras script, per job, side by side in one run.

    python -m benchmarks.engine [--repeats 2] [--only digits-cnn,gunpoint-lstm,gunpoint-cnn1d]

Three jobs, each 5 stratified folds of the training portion, then the test split scored:
- digits-cnn: digits, the CNN of conf/model/cnn.yaml, `aug=light` (rotation 0.0625, zoom 0.125
  as Keras layers in the model), 30 epochs, batch 64;
- gunpoint-lstm: GunPoint, LSTM(50), `aug=light` (jitter: Gaussian noise, std 0.125), 100
  epochs, batch 64;
- gunpoint-cnn1d: GunPoint, conf/model/cnn1d.yaml, `aug=light`, 100 epochs, batch 64.

Variants, each job in a fresh process (imports not counted; the first job of a process pays
for building and tracing, as every job of a new sweep does):
- plain: what a Keras user writes: `StratifiedKFold`, a new `keras.Sequential` per fold with the
  augmentation layers in front (`RandomRotation` + `RandomZoom`, or `GaussianNoise`),
  `model.fit(x, y, validation_data=...)` with validation every epoch, `model.predict`;
- serial: augsweep's engine one fold at a time (`train.parallel_folds=false`): one program of one
  copy, built once, each fold restores its seeded weights;
- parallel: augsweep's engine with the 5 folds trained together (`train.parallel_folds=true`).
augsweep's jobs run through `src.train.run` into a temporary SQLite store (every param, curve,
plot and artifact of a real run), with `sweep.audit=false`: the engine against the plain script
(what the label-safety audit adds is `python -m benchmarks.audit_cost`). Reported per job: wall
seconds, seconds per fold-epoch (time in the epochs / folds x epochs), and seconds per fold
outside the epochs (job wall time minus the time in epochs, over the folds; the first epoch,
which traces, counts as an epoch).
Medians over --repeats, the variants alternating. Results: benchmarks/results/engine.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDS = 5
JOBS = {
    "digits-cnn": {"data": "digits", "model": "cnn", "epochs": 30},
    "gunpoint-lstm": {"data": "gunpoint", "model": "lstm", "epochs": 100},
    "gunpoint-cnn1d": {"data": "gunpoint", "model": "cnn1d", "epochs": 100},
}
VARIANTS = ("plain", "serial", "parallel")
BATCH = 64


def config(job: dict, extra: list[str]):
    """The job's composed augsweep config."""
    from hydra import compose, initialize_config_dir

    from src.config import CONF_DIR

    overrides = [f"data={job['data']}", f"model={job['model']}", "aug=light",
                 f"train.epochs={job['epochs']}", f"cv.folds={FOLDS}", f"train.batch_size={BATCH}",
                 *extra]  # fmt: skip
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def plain_model(name: str, input_shape: tuple[int, ...], n_classes: int):
    """The job's network as a user writes it, augmentation layers at the front."""
    import keras

    layers = keras.layers
    if name == "cnn":
        body = [
            layers.RandomRotation(0.0625, fill_mode="constant"),
            layers.RandomZoom(0.125, fill_mode="constant"),
            layers.Conv2D(32, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
        ]
    elif name == "lstm":
        body = [layers.GaussianNoise(0.125), layers.LSTM(50)]
    else:
        body = [layers.GaussianNoise(0.125)]
        for filters in (32, 64, 32):
            body += [
                layers.Conv1D(filters, 5, padding="same"),
                layers.BatchNormalization(momentum=0.9),
                layers.Activation("relu"),
            ]
        body.append(layers.GlobalAveragePooling1D())
    if n_classes == 2:
        head, loss = layers.Dense(1, activation="sigmoid"), "binary_crossentropy"
    else:
        head, loss = (
            layers.Dense(n_classes, activation="softmax"),
            "sparse_categorical_crossentropy",
        )
    model = keras.Sequential([keras.Input(input_shape), *body, head])
    model.compile("adam", loss, metrics=["accuracy"])
    return model


def plain(job: dict) -> dict[str, float]:
    """The job as a plain Keras script: seconds of the job and of its epochs."""
    import keras
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from src.data import load_dataset

    data = load_dataset(config(job, []).data)  # the same training portion and test split
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    epoch_times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.started)

    start = time.perf_counter()
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(x, y)
    for k, (train, val) in enumerate(folds):
        keras.backend.clear_session()
        keras.utils.set_random_seed(k)
        model = plain_model(job["model"], data.input_shape, data.n_classes)
        model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=job["epochs"],
                  batch_size=BATCH, verbose=0, callbacks=[Clock()])  # fmt: skip
        model.predict(x[val], verbose=0)
        model.predict(np.asarray(data.x_test), verbose=0)
    return {"job_s": time.perf_counter() - start, "epochs_s": sum(epoch_times)}


def augsweep(job: dict, parallel: bool, store: str) -> dict[str, float]:
    """The job through `src.train.run`: seconds of the job and of its epochs, from the run."""
    from src.train import run

    cfg = config(job, [f"train.parallel_folds={str(parallel).lower()}", "sweep.rerun=true",
                       "sweep.audit=false",
                       f"tracking.uri=sqlite:///{store}/mlflow.db"])  # fmt: skip
    start = time.perf_counter()
    metrics = run(cfg).metrics
    job_s = time.perf_counter() - start
    return {
        "job_s": job_s,
        "epochs_s": metrics["fit_time_s_mean"] * FOLDS,
        "first_epoch_s": metrics["first_epoch_time_s_mean"],
        "val_accuracy": metrics["val_accuracy_mean"],
    }


def measure(name: str, variant: str) -> dict[str, float]:
    """One job of one variant in a fresh process; its figures."""
    with tempfile.TemporaryDirectory() as store:
        command = [sys.executable, "-m", "benchmarks.engine", "--child", name, variant, store]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{name} {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(name: str, variant: str, store: str) -> None:
    job = JOBS[name]
    figures = plain(job) if variant == "plain" else augsweep(job, variant == "parallel", store)
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=",".join(JOBS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from benchmarks.machine import write

    names = args.only.split(",")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        n: {v: [] for v in VARIANTS} for n in names
    }
    for _ in range(args.repeats):
        for name in names:
            for variant in VARIANTS:
                runs[name][variant].append(measure(name, variant))
                print(name, variant, runs[name][variant][-1], flush=True)
    rows, summary = [], {}
    for name in names:
        epochs = JOBS[name]["epochs"]
        plain_s = statistics.median(r["job_s"] for r in runs[name]["plain"])
        for variant in VARIANTS:
            figures = runs[name][variant]
            job_s = statistics.median(r["job_s"] for r in figures)
            per_epoch = statistics.median(r["epochs_s"] / (FOLDS * epochs) for r in figures)
            outside = statistics.median((r["job_s"] - r["epochs_s"]) / FOLDS for r in figures)
            first = statistics.median(r.get("first_epoch_s", float("nan")) for r in figures)
            summary[f"{name}/{variant}"] = {"job_s": job_s, "fold_epoch_s": per_epoch,
                                            "outside_per_fold_s": outside,
                                            "ratio_to_plain": job_s / plain_s}  # fmt: skip
            rows.append(f"| {name} | {variant} | {job_s:.1f} | {job_s / plain_s:.2f} | "
                        f"{per_epoch * 1000:.1f} | {outside:.2f} | {first:.2f} |")  # fmt: skip
    targets = {"digits-cnn": 0.33, "gunpoint-lstm": 0.25, "gunpoint-cnn1d": 0.25}
    met = []
    for name in names:
        ratio = summary[f"{name}/parallel"]["ratio_to_plain"]
        outside = summary[f"{name}/parallel"]["outside_per_fold_s"]
        met.append(
            f"- {name}: parallel {ratio:.2f}x the plain script (target <= {targets[name]}: "
            f"{'met' if ratio <= targets[name] else 'NOT met'}); outside the epochs "
            f"{outside:.2f} s per fold (target < 0.3: {'met' if outside < 0.3 else 'NOT met'})"
        )
    markdown = (
        "# Training engine\n\n"
        f"`python -m benchmarks.engine --repeats {args.repeats}`: 5 folds per job, each job in a "
        f"fresh process, medians of {args.repeats}.\n\n"
        "| job | variant | s per job | vs plain | ms per fold-epoch | s per fold outside "
        "the epochs | first epoch s (traces) |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(met)
        + "\n"
    )
    write("engine", {"repeats": args.repeats, "runs": runs, "summary": summary}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
