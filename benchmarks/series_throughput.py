"""Time-series augmentation throughput: augsweep's series ops against tsaug, op by op.

    python -m benchmarks.series_throughput

Real data from aeon's UCR/UEA copies: GunPoint (train, 50 univariate series of length 150) and
BasicMotions (train, 40 series of 6 channels x 100 steps), in augsweep's (n, T, C) float32
layout, tiled to --series series so that a pass is long enough to time. Each augsweep op is
built as training builds it (`src.augment.build_augmentation` on an aug config at --strength,
the presets' default) and called with `training=True` inside a `tf.function`, as in the model
(`aug.placement=model`), over pre-made batches of 32 and of 256; tsaug's nearest augmenter runs
`augment(X_batch)` over the same batches as NumPy arrays. Every method is timed after a warm-up
call; the passes of all methods are interleaved and the median of --repeats passes is reported.
Ops without a tsaug equivalent are measured for augsweep alone; a 3-op pipeline row compares
jitter + scaling + time_warp with tsaug's AddNoise + TimeWarp and AddNoise + Drift + TimeWarp.
Results: benchmarks/results/series_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import tensorflow as tf
import tsaug
from aeon.datasets import load_classification
from omegaconf import OmegaConf

from benchmarks.machine import write
from src.augment import OPS, build_augmentation

BATCHES = (32, 256)
DATASETS = ("GunPoint", "BasicMotions")
KNOTS = 4  # MagnitudeWarp / TimeWarp default inner knots: knots + 2 knot values in all


@dataclass(frozen=True)
class Pair:
    """augsweep ops (applied in order) and the nearest tsaug augmenter, or None."""

    ops: tuple[str, ...]
    tsaug_name: str | None
    tsaug: Callable[[dict[str, float], int], Any] | None  # (magnitudes, T) -> augmenter
    note: str


def _speed_ratio(sigma: float) -> float:
    """Median max/min of augsweep's TimeWarp speed knots (knots + 2 values ~ N(1, sigma) >= 0.1).

    tsaug's TimeWarp gives every series the same fastest/slowest speed ratio; this is the ratio
    augsweep's speed curve has in a typical series.
    """
    knots = np.maximum(np.random.default_rng(0).normal(1.0, sigma, (100_000, KNOTS + 2)), 0.1)
    return float(np.median(knots.max(axis=1) / knots.min(axis=1)))


def _noise(m: dict[str, float], t: int) -> Any:
    return tsaug.AddNoise(scale=m["jitter"], normalize=False)


def _time_warp(m: dict[str, float], t: int) -> Any:
    # n_speed_change + 1 speed segments = augsweep's knots + 2 speed knot values
    return tsaug.TimeWarp(n_speed_change=KNOTS + 1, max_speed_ratio=_speed_ratio(m["time_warp"]))


def _drift(m: dict[str, float], t: int, key: str = "magnitude_warp") -> Any:
    return tsaug.Drift(
        max_drift=m[key], n_drift_points=KNOTS, kind="multiplicative", normalize=False
    )


def _crop(m: dict[str, float], t: int) -> Any:
    return tsaug.Crop(size=round(t * (1 - m["window_slice"])), resize=t)


PAIRS = {
    "jitter": Pair(("jitter",), "AddNoise(scale=σ, normalize=False)", _noise,
                   "same op: i.i.d. Gaussian noise, absolute std; tsaug ignores zero padding"),
    "scaling": Pair(("scaling",), None, None,
                    "no tsaug equivalent (AddNoise multiplicative is per step, Drift starts at 1)"),
    "magnitude_warp": Pair(
        ("magnitude_warp",), "Drift(max_drift=σ, kind='multiplicative', normalize=False)",
        _drift, "x·(1+drift), drift 0 at t=0, max abs drift = σ; augsweep: knots ~ N(1, σ)"),
    "time_warp": Pair(
        ("time_warp",), "TimeWarp(n_speed_change=5, max_speed_ratio=median augsweep ratio)",
        _time_warp, "tsaug: fixed max/min speed ratio, PCHIP warp, per-series scipy interp1d"),
    "window_slice": Pair(
        ("window_slice",), "Crop(size=round(T·(1-r)), resize=T)", _crop,
        "same op; tsaug crops whole steps, returns float64"),
    "window_warp": Pair(("window_warp",), None, None, "no tsaug equivalent"),
    "permutation": Pair(("permutation",), None, None, "no tsaug equivalent"),
    "channel_rotation": Pair(("channel_rotation",), None, None,
                             "no tsaug equivalent (Reverse flips time, not sign/channels)"),
    "pipeline vs AddNoise+TimeWarp": Pair(
        ("jitter", "scaling", "time_warp"), "AddNoise + TimeWarp",
        lambda m, t: _noise(m, t) + _time_warp(m, t),
        "tsaug has no scaling: it does 2 of the 3 ops"),
    "pipeline vs AddNoise+Drift+TimeWarp": Pair(
        ("jitter", "scaling", "time_warp"), "AddNoise + Drift(mult., σ_scaling) + TimeWarp",
        lambda m, t: _noise(m, t) + _drift(m, t, "scaling") + _time_warp(m, t),
        "Drift stands in for scaling (a smooth curve, not one factor: more work)"),
}  # fmt: skip


def real_series(name: str, n: int) -> np.ndarray:
    """A UCR/UEA train split in (n, T, C) float32, tiled (np.resize) to n series."""
    x, _ = load_classification(name, split="train")
    x = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)
    return np.resize(x, (n, *x.shape[1:])).astype(np.float32)


def augsweep_run(x: np.ndarray, ops: tuple[str, ...], strength: float) -> dict[int, Callable]:
    """One `tf.function` of the augmentation layers; a pass over x per batch size."""
    cfg = OmegaConf.create({"strength": strength, "ops": list(ops), "placement": "model"})
    layers = build_augmentation(cfg, "series", seed=0)
    call = tf.function(lambda b: layers(b, training=True))
    runs = {}
    for size in BATCHES:
        batches = [tf.constant(x[i : i + size]) for i in range(0, len(x), size)]

        def run(batches: list[tf.Tensor] = batches) -> int:
            for b in batches:
                out = call(b)
            _ = out.numpy()
            return len(x)

        runs[size] = run
    return runs


def tsaug_run(x: np.ndarray, augmenter: Any) -> dict[int, Callable]:
    runs = {}
    for size in BATCHES:
        batches = [x[i : i + size] for i in range(0, len(x), size)]

        def run(batches: list[np.ndarray] = batches) -> int:
            for b in batches:
                augmenter.augment(b)
            return len(x)

        runs[size] = run
    return runs


def timed(runs: dict[Any, Callable[[], int]], repeats: int) -> dict[Any, float]:
    """Series/s of each run: warm-up, then `repeats` interleaved passes, median."""
    for run in runs.values():
        run()  # tracing, thread pools, caches
    rates: dict[Any, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            count = run()
            rates[key].append(count / (time.perf_counter() - start))
    return {key: statistics.median(r) for key, r in rates.items()}


def mean_change(x: np.ndarray, out: Any) -> float:
    """Mean |augmented - original|: how hard the op pushed, to compare the mapped magnitudes."""
    return float(np.mean(np.abs(np.asarray(out, dtype=np.float64) - x)))


def bench_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    x = real_series(name, args.series)
    t, magnitudes = x.shape[1], {op: args.strength * OPS[op].max_magnitude for op in OPS}
    runs: dict[tuple[str, str, int], Callable[[], int]] = {}
    deltas: dict[str, dict[str, float]] = {}
    probe = x[:256]
    augsweep_runs: dict[tuple[str, ...], dict[int, Callable]] = {}
    for row, pair in PAIRS.items():
        if pair.ops not in augsweep_runs:  # the pipeline rows share one augsweep measurement
            augsweep_runs[pair.ops] = augsweep_run(x, pair.ops, args.strength)
            cfg = OmegaConf.create({"strength": args.strength, "ops": list(pair.ops)})
            out = build_augmentation(cfg, "series", seed=1)(tf.constant(probe), training=True)
            assert out.shape == probe.shape and np.isfinite(out.numpy()).all(), row
            deltas[row] = {"augsweep": mean_change(probe, out)}
        else:
            first = next(r for r, p in PAIRS.items() if p.ops == pair.ops)
            deltas[row] = {"augsweep": deltas[first]["augsweep"]}
        for size, run in augsweep_runs[pair.ops].items():
            runs[(row, "augsweep", size)] = run
        if pair.tsaug is not None:
            augmenter = pair.tsaug(magnitudes, t)
            out = augmenter.augment(probe)
            assert out.shape == probe.shape and np.isfinite(out).all(), row
            deltas[row]["tsaug"] = mean_change(probe, out)
            for size, run in tsaug_run(x, augmenter).items():
                runs[(row, "tsaug", size)] = run
    rates = timed(runs, args.repeats)
    rows = {}
    for row, pair in PAIRS.items():
        ours = {b: rates[(row, "augsweep", b)] for b in BATCHES}
        theirs = {b: rates[(row, "tsaug", b)] for b in BATCHES} if pair.tsaug else None
        rows[row] = {
            "augsweep_ops": list(pair.ops),
            "magnitudes": {op: magnitudes[op] for op in pair.ops},
            "tsaug": pair.tsaug_name,
            "augsweep_series_per_s": ours,
            "tsaug_series_per_s": theirs,
            "ratio": {b: ours[b] / theirs[b] for b in BATCHES} if theirs else None,
            "target_met": {b: ours[b] >= theirs[b] for b in BATCHES} if theirs else None,
            "mean_abs_change": deltas[row],
            "note": pair.note,
        }
    return {"shape": list(x.shape), "rows": rows}


def table(name: str, result: dict[str, Any]) -> str:
    n, t, c = result["shape"]
    lines = [
        f"## {name}: {n:,} series of {t} steps x {c} channel{'s' * (c > 1)}\n",
        "| op (augsweep) | tsaug | augsweep /s b32 | augsweep /s b256 | tsaug /s b32 | "
        "tsaug /s b256 | ratio b32 | ratio b256 | >= tsaug? | mean abs change augsweep / tsaug "
        "| notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, r in result["rows"].items():
        ours, theirs = r["augsweep_series_per_s"], r["tsaug_series_per_s"]
        op = row if not row.startswith("pipeline") else "jitter + scaling + time_warp"
        change = f"{r['mean_abs_change']['augsweep']:.3f}"
        if theirs is None:
            cells = ["-", "-", "-", "-", "-", "-", change]
        else:
            met = r["target_met"]
            verdict = (
                "met" if all(met.values())
                else "NOT met" if not any(met.values())
                else "; ".join(f"b{b} {'met' if met[b] else 'NOT met'}" for b in BATCHES)
            )  # fmt: skip
            cells = [
                f"{theirs[32]:,.0f}", f"{theirs[256]:,.0f}", f"{r['ratio'][32]:.2f}",
                f"{r['ratio'][256]:.2f}", verdict,
                f"{change} / {r['mean_abs_change']['tsaug']:.3f}",
            ]  # fmt: skip
            cells = [r["tsaug"], *cells]
        lines.append(
            f"| {op} | "
            + " | ".join([cells[0], f"{ours[32]:,.0f}", f"{ours[256]:,.0f}", *cells[1:], r["note"]])
            + " |"  # fmt: skip
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_240, help="tiled to this many series")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes, median reported")
    parser.add_argument("--strength", type=float, default=0.5, help="aug.strength of every op")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {name: bench_dataset(name, args) for name in DATASETS}
    magnitudes = ", ".join(
        f"{op} {args.strength * OPS[op].max_magnitude:.3g}"
        for op in OPS
        if OPS[op].modality == "series"
    )
    sigma = args.strength * OPS["time_warp"].max_magnitude
    ratios = [
        ratio
        for result in results.values()
        for r in result["rows"].values()
        if r["ratio"]
        for ratio in r["ratio"].values()
    ]
    markdown = (
        "# Time-series augmentation throughput: augsweep vs tsaug\n\n"
        f"`python -m benchmarks.series_throughput`: real UCR/UEA train splits (aeon), tiled "
        f"(repeated) to {args.series:,} series each so a pass is long enough to time. augsweep: "
        f"each op built by `build_augmentation` at aug.strength={args.strength} ({magnitudes}), "
        "called with training=True in a `tf.function` (as in the model) over pre-made tf batches; "
        f"tsaug {version('tsaug')}: `augment(X_batch)` over the same batches as float32 NumPy "
        f"arrays, seed=None (its default). Series/s, median of {args.repeats} interleaved passes "
        "after a warm-up; ratio = augsweep / tsaug at the same batch size; the target is at "
        "least tsaug's throughput. `mean abs change` is mean |augmented - original| on 256 "
        "series: how hard each side pushes with the mapped parameters.\n\n"
        + "\n".join(table(name, result) for name, result in results.items())
        + "\nOp mapping (tsaug 0.2.1 source read):\n\n"
        "- jitter = `AddNoise(scale=σ, normalize=False)`: tsaug's default `normalize=True` "
        "would scale the noise to each channel's range; augsweep's σ is absolute.\n"
        "- magnitude_warp ~ `Drift(kind='multiplicative', normalize=False, n_drift_points=4)`: "
        "Drift is additive by default; multiplicative gives x·(1+drift), a cubic spline through "
        "a random walk, shifted to 0 at t=0 and rescaled so max abs drift is exactly max_drift. "
        "augsweep multiplies by a smoothstep curve through knots ~ N(1, σ), ends included.\n"
        f"- time_warp ~ `TimeWarp(n_speed_change=5, max_speed_ratio={_speed_ratio(sigma):.2f})`: "
        "6 speeds as augsweep's 6 knots; the ratio is the median max/min of augsweep's speed "
        "knots at this σ, but tsaug gives every series exactly that ratio. tsaug interpolates "
        "each series in a Python loop (scipy interp1d).\n"
        "- window_slice = `Crop(size=round(T·(1-r)), resize=T)`: integer crop start and linear "
        "resize; augsweep's window is continuous. Crop returns float64.\n"
        "- scaling, window_warp, permutation, channel_rotation: no tsaug augmenter does these "
        "(AddNoise multiplicative is per step; Drift is 1 at t=0; Reverse reverses time); "
        "measured for augsweep only.\n"
        "- augsweep ops find each series' valid length (trailing all-zero steps are padding) and "
        "keep padding at 0; tsaug has no notion of padding. TensorFlow may use both cores; tsaug "
        "(NumPy/SciPy) mostly one.\n\n"
        f"- augsweep >= tsaug in {sum(r >= 1 for r in ratios)} of {len(ratios)} compared "
        "(dataset, row, batch size) cells. "
        f"Whole benchmark: {time.perf_counter() - started:.0f} s.\n"
    )
    write(
        "series_throughput",
        {
            "series": args.series,
            "repeats": args.repeats,
            "strength": args.strength,
            "batches": list(BATCHES),
            "tsaug": version("tsaug"),
            "aeon": version("aeon"),
            "numpy": version("numpy"),
            "scipy": version("scipy"),
            "datasets": results,
        },
        markdown,
    )
    print(markdown)


if __name__ == "__main__":
    main()
