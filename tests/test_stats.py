"""The four verdicts and the sequential rule: known answers on fixed inputs, and simulations.

The simulations need no training: per-fold paired differences are drawn as effect + sd * (a
part shared by every fold of the setting + a part shared by the folds of one seed + fold
noise), with the correlation between folds of one seed 1/k, the correlation the Nadeau-Bengio
correction assumes, and sd calibrated to the spread of the first published studies' paired
differences (DIGITS_SD, SERIES_SD below). "dataset": the shared part carries all of it, the
model under which the corrected t statistic is exact; "seed": none of it, seeds independent
(the correction is then conservative). Print the rates with

    .venv/bin/python -m pytest tests/test_stats.py -k simulated -s
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import ttost_paired

from src import stats

REPS = 20_000  # simulated single settings: the Monte-Carlo sd of a rate of 0.05 is 0.0015
TABLES = 4_000  # simulated tables of TABLE settings, for the family-wise rates
TABLE = 10


def tolerance(reps: int, rate: float = stats.ALPHA) -> float:
    """Three Monte-Carlo standard deviations of an estimated rate."""
    return 3 * np.sqrt(rate * (1 - rate) / reps)


# The spread (sd over folds) of one fold's paired difference in the studies' first runs, read
# back from their comparison.csv intervals (fixed designs, plain corrected t intervals:
# half = t_{n-1} * s * sqrt(1/n + 1/(k-1)), the median over settings): study 1 as published in
# commit a8ce52d (digits, 5 folds x 3 seeds) and study 2 in f4f2488 (the UCR series, 3 folds,
# `git show f4f2488:experiments/series_ops/comparison.csv`). Kept as
# numbers: the re-run studies' intervals are repeated intervals of the adaptive design, wider
# than a plain t interval, so the same formula would no longer read their spread.
DIGITS_SD, SERIES_SD = 0.00673, 0.0289
# (k folds, sd of one fold's difference, margin): digits at the default margin, and the UCR
# series (3 folds), where the floor of the corrected interval, z * s / sqrt(k - 1) = 0.034,
# leaves equivalence at 0.01 out of reach: margin 0.05 there
SCENARIOS = {
    "digits": (5, DIGITS_SD / np.sqrt(1 - 1 / 5), stats.MARGIN),
    "series": (3, SERIES_SD / np.sqrt(1 - 1 / 3), 0.05),
}
MAX_SEEDS = 5


def draw(rng, reps, settings, seeds, folds, effect, sd, shared) -> np.ndarray:
    """Paired differences (reps, settings, seeds, folds), fold correlation 1/folds.

    `shared` is the part of that correlation common to all seeds: 1/folds (dataset) or 0.
    """
    rho = 1 / folds
    common = rng.standard_normal((reps, settings, 1, 1)) * np.sqrt(shared)
    seed = rng.standard_normal((reps, settings, seeds, 1)) * np.sqrt(rho - shared)
    noise = rng.standard_normal((reps, settings, seeds, folds)) * np.sqrt(1 - rho)
    return effect + sd * (common + seed + noise)


def looks(diffs: np.ndarray):
    """Per seed, the cumulative n, mean, sd and 'all folds moved the same' of the folds."""
    *lead, seeds, k = diffs.shape
    flat = diffs.reshape(*lead, seeds * k)
    ends = k * np.arange(1, seeds + 1) - 1
    n = np.broadcast_to(ends + 1.0, (*lead, seeds))
    mean = np.cumsum(flat, axis=-1)[..., ends] / n
    square = np.cumsum(flat**2, axis=-1)[..., ends]
    sd = np.sqrt(np.maximum(square - n * mean**2, 0) / (n - 1))
    spread = np.maximum.accumulate(flat, -1) - np.minimum.accumulate(flat, -1)
    return n, mean, sd, spread[..., ends] <= stats.SAME


def adaptive(diffs: np.ndarray, margin: float, max_seeds: int | None):
    """The adaptive sweep, vectorised over tables: round after round, a seed more for the
    settings stats.table_verdicts leaves undecided. A fixed design (None) pools all seeds.

    Returns the final verdicts (reps, settings) and the seeds each setting used.
    """
    folds = diffs.shape[-1]
    design = stats.Design(1 / (folds - 1), folds, max_seeds)
    n, mean, sd, same = looks(diffs)
    if max_seeds is None:
        n, mean, sd, same = (x[..., -1:] for x in (n, mean, sd, same))
    taken = np.zeros(diffs.shape[:2], int)
    active = np.ones(diffs.shape[:2], bool)
    for look in range(n.shape[-1]):
        taken = np.where(active, look + 1, taken)
        seen = np.arange(n.shape[-1]) < taken[..., None]
        shown, avg, spread = (np.where(seen, x, np.nan) for x in (n, mean, sd))
        sides = [stats.repeated_p(shown, x, spread, same & seen, design)
                 for x in (avg, -avg, avg + margin, margin - avg)]  # fmt: skip
        table = stats.table_verdicts(*sides)
        active = (table.verdict == stats.UNDECIDED) & (taken < n.shape[-1])
        if not active.any():
            break
    if max_seeds is None:
        taken = np.full(taken.shape, diffs.shape[2])
    return table.verdict, taken


def rate(verdicts: np.ndarray, *names: str, family: bool = False) -> float:
    """Share of settings (or, family=True, of tables with at least one) given these verdicts."""
    hit = np.isin(verdicts, names)
    return float((hit.any(axis=-1) if family else hit).mean())


# --- known answers ---------------------------------------------------------------------------


def test_tost_gives_the_known_answer():
    diffs = np.array([0.002, -0.001, 0.003, 0.0, 0.001])  # mean 0.001, variance 2.5e-6
    # by hand: se = sqrt(2.5e-6 * (1/5 + 1/4)) = 0.003 / (2 sqrt 2); the upper test is the
    # binding one, t = (0.01 - 0.001) / se = 6 sqrt 2 on 4 degrees of freedom
    assert stats.tost_paired(diffs, 1 / 4, 0.01) == pytest.approx(
        scipy_stats.t.sf(6 * np.sqrt(2), 4)
    )
    assert stats.tost_paired(diffs, 1 / 4, 0.01) == pytest.approx(0.000528782307915, rel=1e-9)
    # without the correction it is statsmodels' paired TOST
    base = np.array([0.91, 0.93, 0.90, 0.92, 0.94])
    expected = ttost_paired(base + diffs, base, -0.01, 0.01)[0]
    assert stats.tost_paired(diffs, 0, 0.01) == pytest.approx(expected)
    noisy = np.random.default_rng(3).normal(0.004, 0.01, 12)
    for margin in (0.005, 0.01, 0.02):
        expected = ttost_paired(base.mean() + noisy, np.full(12, base.mean()), -margin, margin)
        assert stats.tost_paired(noisy, 0, margin) == pytest.approx(expected[0])
    # TOST at alpha is the 1 - 2 alpha interval inside the margin
    n, mean = 12, noisy.mean()
    half = scipy_stats.t.ppf(1 - stats.ALPHA, n - 1) * noisy.std(ddof=1) * np.sqrt(1 / n + 0.5)
    for margin in (abs(mean) + half - 1e-4, abs(mean) + half + 1e-4):
        inside = abs(mean) + half < margin
        assert (stats.tost_paired(noisy, 0.5, margin) < stats.ALPHA) == inside


def test_identical_folds_get_the_exact_sign_test_for_tost_too():
    # every fold moved by the same amount: each one-sided test is the sign test, 1/2^n
    assert stats.tost_paired(np.zeros(3), 0.5) == 0.125
    assert stats.tost_paired(np.full(5, 0.004), 0.25) == 1 / 32
    assert stats.tost_paired(np.full(5, 0.02), 0.25) == 1.0  # outside the margin
    assert stats.tost_paired(np.full(5, -0.01), 0.25) == 1.0  # on it: not inside
    assert np.isnan(stats.tost_paired(np.array([0.0]), 0.25))
    alone = stats.decide({"same": [np.zeros(5)]}, 1 / 4).decisions["same"]
    assert (alone.verdict, alone.p_tost, alone.p_value) == (stats.EQUIVALENT, 1 / 32, 1.0)
    three = stats.decide({"same": [np.zeros(3)]}, 1 / 2).decisions["same"]
    assert (three.verdict, three.p_tost, three.half_width) == (stats.UNDECIDED, 0.125, 0.0)
    # the sign test needs 5 folds for 1/32 < 0.05: one more seed of 3 folds (n = 6)
    assert three.more_seeds == 1
    # 5 folds all -0.1: 2/32 = 0.0625, not yet hurts; 10 such folds would be (2/1024)
    harm = stats.decide({"harm": [np.full(5, -0.1)]}, 1 / 4).decisions["harm"]
    assert (harm.verdict, harm.p_value, harm.more_seeds) == (stats.UNDECIDED, 0.0625, 1)


def brute_more_seeds(diffs, k, margin, level_diff, level_tost):
    """Seeds of k folds to add before the fixed-design tests decide, mean and sd kept."""
    n, mean, sd = len(diffs), diffs.mean(), diffs.std(ddof=1)
    for extra in range(1, 2000):
        m = n + extra * k
        se = sd * np.sqrt(1 / m + 1 / (k - 1))
        if abs(mean) >= scipy_stats.t.ppf(1 - level_diff / 2, m - 1) * se:
            return extra
        if margin - abs(mean) >= scipy_stats.t.ppf(1 - level_tost, m - 1) * se:
            return extra
    return np.inf


def test_four_way_verdicts_of_a_fixed_table():
    k = 5
    table = {
        "harm": [np.array([-0.20, -0.25, -0.18, -0.22, -0.21])],
        "flat": [np.array([0.002, -0.001, 0.003, 0.0, 0.001])],
        "wide": [np.array([0.008, -0.01, 0.009, -0.006, 0.003])],
        "small": [np.array([0.004, 0.005, 0.0045, 0.0052, 0.0048]),
                  np.array([0.0047, 0.0049, 0.0051, 0.0044, 0.005])],
        "lone": [np.array([0.3])],
    }  # fmt: skip
    plan = stats.decide(table, 1 / (k - 1))
    got = plan.decisions
    names = ["harm", "flat", "wide", "small"]
    pooled = {name: np.concatenate(table[name]) for name in names}
    p = [stats.compare_paired(pooled[name], 1 / 4).p_value for name in names]
    tost = [stats.tost_paired(pooled[name], 1 / 4) for name in names]
    # Holm by hand over the four settings that have a test (lone has one fold)
    for name, expected in zip(names, stats.holm(p), strict=True):
        assert got[name].p_holm == pytest.approx(expected)
    for name, expected in zip(names, stats.holm(tost), strict=True):
        assert got[name].p_tost_holm == pytest.approx(expected)
    assert {name: d.verdict for name, d in got.items()} == {
        "harm": stats.HURTS,
        "flat": stats.EQUIVALENT,
        "wide": stats.UNDECIDED,
        "small": stats.HELPS,  # a real effect smaller than the margin: both shown, helps wins
        "lone": stats.TOO_FEW,
    }
    assert got["small"].p_tost_holm < stats.ALPHA
    for name in names:  # the interval is the fixed-design t interval
        fixed = stats.compare_paired(pooled[name], 1 / 4)
        assert (got[name].ci_low, got[name].ci_high) == pytest.approx((fixed.ci_low, fixed.ci_high))
        assert got[name].half_width == pytest.approx((fixed.ci_high - fixed.ci_low) / 2)
        assert got[name].seeds == len(table[name]) and got[name].n == len(pooled[name])
    # undecided: the estimate at the level Holm would give it next (3 of 4 differences are
    # not shown: harm is; 2 of 4 equivalences are not: flat and small are)
    expected = brute_more_seeds(pooled["wide"], k, stats.MARGIN, stats.ALPHA / 3, stats.ALPHA / 2)
    assert got["wide"].more_seeds == expected == 6
    assert np.isnan(got["harm"].more_seeds) and np.isnan(got["lone"].more_seeds)
    assert plan.more == () and plan.done  # a fixed design asks for nothing
    # a spread whose floor z * s / sqrt(k - 1) exceeds the margin can never be decided
    noisy = {"noisy": [np.array([0.01, -0.02, 0.015, -0.01, 0.004])]}  # s = 0.0145
    assert stats.decide(noisy, 1 / 4).decisions["noisy"].more_seeds == np.inf
    assert stats.verdict(5, -0.1, 0.01, 0.01) == stats.HURTS
    assert stats.verdict(5, 0.0, 0.2, 0.01) == stats.EQUIVALENT
    assert stats.verdict(5, 0.0, 0.2) == stats.UNDECIDED


def test_the_sequential_rule_spends_half_at_the_last_look():
    rng = np.random.default_rng(5)
    seeds = [rng.normal(-0.01, 0.01, 5) for _ in range(3)]
    # one look allowed: the fixed design exactly, except that no seed may be added
    single = stats.decide({"s": seeds[:1]}, 1 / 4, max_seeds=1).decisions["s"]
    fixed = stats.decide({"s": seeds[:1]}, 1 / 4).decisions["s"]
    assert replace(single, more_seeds=fixed.more_seeds) == fixed
    assert (single.verdict, single.more_seeds, fixed.more_seeds) == (stats.UNDECIDED, np.inf, 3)
    # three of at most four looks: look l rejects at level a when p_l <= a * w_l, w = 1/6,
    # 1/6, 1/6 (the last, 1/2, is not reached yet): repeated p = min over looks of p_l / w_l
    got = stats.decide({"s": seeds}, 1 / 4, max_seeds=4).decisions["s"]
    sides = []
    for sign in (1, -1):
        p = [scipy_stats.t.sf(sign * stats.compare_paired(np.concatenate(seeds[: i + 1]), 1 / 4)
                              .mean / corrected_se(np.concatenate(seeds[: i + 1]), 1 / 4),
                              5 * (i + 1) - 1) for i in range(3)]  # fmt: skip
        sides.append(min(1.0, min(pl * 6 for pl in p)))
    assert got.p_value == pytest.approx(min(1.0, 2 * min(sides)))
    # the repeated interval at look 3 uses level alpha / 6
    pooled = np.concatenate(seeds)
    half = scipy_stats.t.ppf(1 - stats.ALPHA / 12, 14) * corrected_se(pooled, 1 / 4)
    assert got.half_width == pytest.approx(half)
    assert stats.Design(0.25, 5, 4).share(np.arange(4)).tolist() == [1 / 6, 1 / 6, 1 / 6, 0.5]
    with pytest.raises(ValueError, match="more than max_seeds=2"):
        stats.decide({"s": seeds}, 1 / 4, max_seeds=2)
    with pytest.raises(ValueError, match="accepted: margin > 0"):
        stats.decide({"s": seeds}, 1 / 4, margin=0)


def corrected_se(diffs: np.ndarray, ratio: float) -> float:
    return float(diffs.std(ddof=1) * np.sqrt(1 / len(diffs) + ratio))


def test_the_simulation_runs_the_same_rule_as_decide():
    """Round by round, decide() on the data so far gives the simulation's verdicts."""
    k, sd, margin = SCENARIOS["digits"]
    rng = np.random.default_rng(7)
    diffs = draw(rng, 6, 4, MAX_SEEDS, k, np.array([0.0, 0.01, -0.03, 0.004])[:, None, None],
                 sd, 1 / k)  # fmt: skip
    verdicts, taken = adaptive(diffs, margin, MAX_SEEDS)
    for rep in range(len(diffs)):
        seeds = np.ones(4, int)
        earlier: dict = {}
        while True:
            rounds = {s: list(diffs[rep, s, : seeds[s]]) for s in range(4)}
            plan = stats.decide(rounds, 1 / (k - 1), margin=margin, max_seeds=MAX_SEEDS)
            for s, verdict in earlier.items():  # a decided setting stays decided
                assert plan.decisions[s].verdict == verdict
            earlier = {s: d.verdict for s, d in plan.decisions.items() if d.verdict != "undecided"}
            if plan.done:
                break
            for s in plan.more:
                seeds[s] += 1
        assert [plan.decisions[s].verdict for s in range(4)] == list(verdicts[rep])
        assert seeds.tolist() == taken[rep].tolist()


# --- simulations -----------------------------------------------------------------------------


@pytest.mark.parametrize("shared", ["dataset", "seed"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_simulated_error_rates_stay_at_alpha_under_optional_stopping(scenario, shared):
    k, sd, margin = SCENARIOS[scenario]
    common = 1 / k if shared == "dataset" else 0.0
    rng = np.random.default_rng(11)
    rows = []
    for design, seeds in ((MAX_SEEDS, MAX_SEEDS), (None, 3)):
        # no effect: false helps / hurts, per setting and per table of 10 (Holm)
        one, used = adaptive(draw(rng, REPS, 1, seeds, k, 0.0, sd, common), margin, design)
        table, _ = adaptive(draw(rng, TABLES, TABLE, seeds, k, 0.0, sd, common), margin, design)
        false_diff = rate(one, stats.HELPS, stats.HURTS)
        family_diff = rate(table, stats.HELPS, stats.HURTS, family=True)
        # an effect of exactly the margin, either way (the hardest case for a false
        # equivalence), and 1.5 margins
        signs = np.where(rng.random((REPS, 1, 1, 1)) < 0.5, -1, 1)
        edge, _ = adaptive(draw(rng, REPS, 1, seeds, k, signs * margin, sd, common), margin,
                           design)  # fmt: skip
        beyond, _ = adaptive(draw(rng, REPS, 1, seeds, k, 1.5 * margin, sd, common), margin,
                             design)  # fmt: skip
        signs = np.where(rng.random((TABLES, TABLE, 1, 1)) < 0.5, -1, 1)
        edges, _ = adaptive(draw(rng, TABLES, TABLE, seeds, k, signs * margin, sd, common),
                            margin, design)  # fmt: skip
        false_equivalent = rate(edge, stats.EQUIVALENT)
        family_equivalent = rate(edges, stats.EQUIVALENT, family=True)
        rows.append((design, false_diff, family_diff, false_equivalent,
                     rate(beyond, stats.EQUIVALENT), family_equivalent, used.mean()))  # fmt: skip
        assert false_diff <= stats.ALPHA + tolerance(REPS)
        assert family_diff <= stats.ALPHA + tolerance(TABLES)
        assert false_equivalent <= stats.ALPHA + tolerance(REPS)
        assert family_equivalent <= stats.ALPHA + tolerance(TABLES)
    print(f"\n{scenario} (k={k}, sd={sd:.4f}, margin={margin}), shared part: {shared}")
    for design, *rates, seeds in rows:
        name = f"adaptive, max_seeds={design}" if design else "fixed, 3 seeds"
        print(f"  {name}: no effect: false helps/hurts {rates[0]:.4f} per setting, "
              f"{rates[1]:.4f} per table of {TABLE}; effect = margin: false equivalent "
              f"{rates[2]:.4f} per setting, {rates[4]:.4f} per table; effect = 1.5 margins: "
              f"{rates[3]:.4f}; mean seeds under no effect {seeds:.2f}")  # fmt: skip


# power at a stated effect: (scenario, effect, verdict, floor under the adaptive design)
POWER = [
    ("digits", 0.02, stats.HELPS, 0.95),  # 2 points of accuracy, 5 folds
    ("digits", 0.01, stats.HELPS, 0.5),  # 1 point
    ("digits", 0.0, stats.EQUIVALENT, 0.4),  # no effect shown within the margin
    ("series", 0.1, stats.HELPS, 0.8),  # 10 points, 3 folds (s = 0.03)
    ("series", 0.0, stats.EQUIVALENT, 0.1),  # within 0.05
]


@pytest.mark.parametrize(("scenario", "effect", "wanted", "floor"), POWER)
def test_simulated_power(scenario, effect, wanted, floor):
    k, sd, margin = SCENARIOS[scenario]
    rng = np.random.default_rng(13)
    diffs = draw(rng, REPS, 1, MAX_SEEDS, k, effect, sd, 1 / k)
    adaptive_verdicts, used = adaptive(diffs, margin, MAX_SEEDS)
    fixed_verdicts, _ = adaptive(diffs, margin, None)
    power, fixed = rate(adaptive_verdicts, wanted), rate(fixed_verdicts, wanted)
    print(f"\n{scenario} (k={k}, margin={margin}), effect {effect}: P({wanted}) = {power:.3f} "
          f"adaptive (max_seeds={MAX_SEEDS}, mean seeds {used.mean():.2f}), {fixed:.3f} fixed "
          f"with {MAX_SEEDS} seeds")  # fmt: skip
    assert power >= floor
    assert used.mean() <= MAX_SEEDS
