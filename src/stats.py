"""Paired comparison of per-fold scores: tests, Holm, the four verdicts, and a sequential rule.

Cross-validation folds share most of their training data, so fold-by-fold differences are
correlated and the plain paired t-test is over-confident. Every test here uses the corrected
resampled t statistic of Nadeau and Bengio (Machine Learning 52, 2003): the variance of the mean
of n paired differences is s^2 * (1/n + n_val/n_train) instead of s^2 / n, with
n_val/n_train = 1/(k - 1) for k-fold cross-validation, on n - 1 degrees of freedom (pooled over
seeds and repeats as in Bouckaert and Frank, PAKDD 2004). The second term does not shrink with
more seeds: the interval's half-width has a floor of about z * s / sqrt(k - 1).

The four verdicts of one setting against its baseline, at ALPHA over a whole table:
- helps / hurts: the two-sided test of "no difference" rejects, Holm over the table's
  difference p-values;
- equivalent: TOST (Schuirmann 1987) shows the effect lies within +-margin: both one-sided
  tests, of "effect <= -margin" and of "effect >= +margin", reject; p_tost is the larger of
  their two p-values, Holm over the table's p_tost values (a second family, also at ALPHA);
- undecided: neither. When both hold (a real effect smaller than the margin), helps / hurts.
When every fold moved by the same amount the t statistic has no spread; each one-sided test
is then the exact sign test, 1/2^n (the two-sided test 2/2^n).

Adaptive seeds (a `Design` with max_seeds) make the number of looks depend on the data: a
setting stops getting seeds once decided, which inflates the error rates of the tests above if
they are simply repeated. The sequential rule is alpha spending over at most max_seeds looks,
one per seed, with a Bonferroni (union) bound across looks: look l of R spends the share
w_l = 1/2 at the last look and 1/(2(R - 1)) at each earlier one, so a test at level a rejects at
look l when that look's own p-value (the corrected t-test, or the sign test, above) is at most
a * w_l. By the union bound the chance of ever rejecting a true hypothesis is at most
sum_l a * w_l = a, whatever decides when to stop and however the looks are correlated; it needs
only that each look's p-value is valid, which the corrected t statistic already assumes, so its
few degrees of freedom (2 with 3 folds and one seed) are used exactly. Each test's repeated
p-value (Jennison and Turnbull 2000, chapter 9) is min over looks of p_l / w_l; Holm over the
repeated p-values of a table keeps both families' error rates. With one look it is the ordinary
p-value. Lan-DeMets boundaries (O'Brien-Fleming spending on the information fractions, with
the Brownian-motion correlation between looks) were tried first and rejected: the looks share
the dataset's draw and re-estimate s each time, so they are less correlated than Brownian
motion assumes, and in simulation they let through more false helps / hurts than alpha (the
README's statistics section). tests/test_stats.py checks this rule by simulation.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

ALPHA = 0.05
MARGIN = 0.01  # of the metric: 0.01 is one point of accuracy
HELPS, HURTS, EQUIVALENT, UNDECIDED = "helps", "hurts", "equivalent", "undecided"
TOO_FEW = "no verdict: fewer than 2 paired folds"
SAME = 1e-12  # differences spanning less than this all moved by the same amount (up to rounding)
MAX_MORE_SEEDS = 1000  # a fixed design's estimate of additional seeds stops looking here


@dataclass(frozen=True)
class Comparison:
    """Mean of the paired differences, its 95% interval and the two-sided p-value."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    p_value: float


def _summary(diffs: np.ndarray) -> tuple[int, float, float, bool]:
    """n, mean, standard deviation (ddof 1) and whether every fold moved by the same amount."""
    n = len(diffs)
    if n < 2:
        return n, float(diffs.mean()) if n else float("nan"), float("nan"), False
    return n, float(diffs.mean()), float(diffs.std(ddof=1)), bool(np.ptp(diffs) <= SAME)


def one_sided_p(n, excess, sd, same, ratio: float) -> np.ndarray:
    """p-value of "effect <= shift" against "effect > shift", elementwise.

    `excess` is the mean paired difference minus shift (shift 0: helps; -margin: TOST's lower
    test), `sd` the folds' standard deviation, `same` whether every fold moved by the same
    amount (then the exact sign test, 1/2^n, or 1 when the common value is not above shift),
    `ratio` n_val/n_train. NaN for fewer than 2 folds.
    """
    n, excess, sd = (np.asarray(x, dtype=float) for x in (n, excess, sd))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = excess / (sd * np.sqrt(1 / n + ratio))
        p = special.stdtr(n - 1, -t)
    p = np.where(same, np.where(excess > 0, 0.5**n, 1.0), p)
    return np.where(n >= 2, p, np.nan)


def compare_paired(diffs: np.ndarray, val_train_ratio: float) -> Comparison:
    """Corrected resampled paired t-test of per-fold differences (treatment minus baseline).

    `val_train_ratio` is n_val / n_train of one fold, 1/(k-1) for k-fold cross-validation;
    0 gives the plain paired t-test. Folds that all moved by the same amount get the exact
    sign test, 2/2^n (0.25 for 3 folds), and the interval (mean, mean).
    """
    diffs = np.asarray(diffs, dtype=float)
    n, mean, sd, same = _summary(diffs)
    if n < 2:
        return Comparison(n, mean, float("nan"), float("nan"), float("nan"))
    sides = one_sided_p([n, n], [mean, -mean], sd, same, val_train_ratio)
    p = float(min(1.0, 2 * sides.min()))
    half = 0.0 if same else float(stats.t.ppf(1 - ALPHA / 2, n - 1) * _se(sd, n, val_train_ratio))
    return Comparison(n, mean, mean - half, mean + half, p)


def tost_paired(diffs: np.ndarray, val_train_ratio: float, margin: float = MARGIN) -> float:
    """TOST p-value that the mean paired difference lies within (-margin, +margin).

    The larger of the two one-sided p-values on the corrected statistic: of "effect <= -margin"
    from (mean + margin) / se and of "effect >= margin" from (margin - mean) / se, on n - 1
    degrees of freedom (the sign test, 1/2^n, when every fold moved by the same amount).
    Below alpha exactly when the 1 - 2 alpha interval lies inside the margin.
    """
    n, mean, sd, same = _summary(np.asarray(diffs, dtype=float))
    sides = one_sided_p([n, n], [mean + margin, margin - mean], sd, same, val_train_ratio)
    return float(sides.max())


def _se(sd, n, ratio: float):
    return sd * np.sqrt(1 / np.asarray(n, dtype=float) + ratio)


def signed_rank(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-dataset differences (Demsar, JMLR 2006).

    Exact for small samples; zero differences are dropped. NaN with fewer than two non-zero
    differences. Five datasets all moving the same way give p = 2/32 = 0.0625: five datasets
    can show a direction, never a significant one.
    """
    diffs = np.asarray(diffs, dtype=float)
    diffs = diffs[~np.isnan(diffs) & (diffs != 0)]
    if len(diffs) < 2:
        return float("nan")
    return float(stats.wilcoxon(diffs).pvalue)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values along the last axis, over those that have one (NaN stays NaN).

    The i-th smallest of m p-values times (m - i), made non-decreasing, at most 1; the family
    is rejected where the adjusted value is below alpha. Written out rather than statsmodels'
    multipletests, which calls gc.collect() on every Holm call: slow with a large report's runs
    in memory (benchmarks/README.md, the report over 10,000 runs; tests/test_report.py checks
    this against statsmodels). A 2-D array is one family per row (the simulations).
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    present = (~np.isnan(p)).sum(axis=-1, keepdims=True)
    factors = present - np.arange(p.shape[-1])
    adjusted = np.minimum(np.fmax.accumulate(ranked * factors, axis=-1), 1.0)
    out = np.empty_like(p)
    np.put_along_axis(out, order, np.where(np.isnan(ranked), np.nan, adjusted), axis=-1)
    return out


def verdict(n: int, mean: float, p_adjusted: float, p_tost_adjusted: float = np.nan) -> str:
    """The four-way verdict from the Holm-adjusted difference and TOST p-values (ALPHA each).

    helps / hurts (by the sign of the mean) when the difference is shown, else equivalent when
    TOST is, else undecided; no verdict with fewer than 2 paired folds.
    """
    if n < 2 or np.isnan(p_adjusted):
        return TOO_FEW
    if p_adjusted < ALPHA:
        return HELPS if mean > 0 else HURTS
    return EQUIVALENT if p_tost_adjusted < ALPHA else UNDECIDED


# --- the sequential design ------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """When the looks fall: one per seed, `folds` paired folds each, at most `max_seeds`.

    `ratio` is n_val/n_train (1/(k-1)); max_seeds None (or 1) is a fixed design, one look
    at all the data, where every p-value is the ordinary one.
    """

    ratio: float
    folds: int = 1
    max_seeds: int | None = None

    def share(self, look) -> np.ndarray:
        """The share of each test's level spent at look `look` (0-based): half at the last
        look, the other half evenly over the earlier ones; all of it with one look."""
        looks = self.max_seeds or 1
        look = np.asarray(look)
        if looks == 1:
            return np.ones(look.shape)
        return np.where(look == looks - 1, 0.5, 0.5 / (looks - 1))


def repeated_p(n, excess, sd, same, design: Design) -> np.ndarray:
    """Repeated p-value of one one-sided test over the looks on the last axis (NaN: no look).

    Arguments as one_sided_p, one entry per look (cumulative over the seeds so far). Look l
    rejects at level a when its own p-value is at most a * share(l), so the repeated p-value,
    the smallest level rejected at some look so far, is min over looks of p_l / share(l).
    """
    p = np.atleast_1d(one_sided_p(n, excess, sd, same, design.ratio))
    return np.minimum(1.0, np.fmin.reduce(p / design.share(np.arange(p.shape[-1])), axis=-1))


@dataclass(frozen=True)
class TableVerdicts:
    """The four-way verdicts of a table's settings (last axis), with their p-values."""

    verdict: np.ndarray
    p_value: np.ndarray  # two-sided difference: 2 * the smaller one-sided repeated p
    p_holm: np.ndarray
    p_tost: np.ndarray  # the larger of TOST's two one-sided repeated p-values
    p_tost_holm: np.ndarray


def table_verdicts(plus, minus, lower, upper, alpha: float = ALPHA) -> TableVerdicts:
    """Verdicts from the four one-sided (repeated) p-values of every setting of a table.

    plus / minus: effect > 0 / < 0; lower / upper: TOST's effect > -margin / < +margin.
    Holm over the last axis, once for the difference p-values and once for the TOST ones,
    each at alpha: helps / hurts when the difference is shown (the side of the smaller
    one-sided p), else equivalent when TOST is, else undecided; TOO_FEW where plus is NaN.
    """
    p_value = np.minimum(1.0, 2 * np.fmin(plus, minus))
    p_tost = np.fmax(lower, upper)
    p_holm, p_tost_holm = holm(p_value), holm(p_tost)
    chosen = np.select(
        [np.isnan(p_holm), (p_holm < alpha) & (plus < minus), p_holm < alpha,
         p_tost_holm < alpha],
        [TOO_FEW, HELPS, HURTS, EQUIVALENT], UNDECIDED,
    )  # fmt: skip
    return TableVerdicts(chosen.astype(object), p_value, p_holm, p_tost, p_tost_holm)


@dataclass(frozen=True)
class Decision:
    """One setting after the seeds so far."""

    verdict: str
    seeds: int  # looks (rounds) so far
    n: int  # paired folds so far
    mean: float
    ci_low: float  # fixed design: the 1 - alpha t interval; adaptive: the repeated one
    ci_high: float
    half_width: float  # (ci_high - ci_low) / 2
    p_value: float
    p_holm: float
    p_tost: float
    p_tost_holm: float
    more_seeds: float  # undecided: estimated additional seeds to decide (inf: not within reach)


@dataclass(frozen=True)
class Plan:
    """Every setting's decision, and the settings that should get another seed."""

    decisions: dict[Hashable, Decision]
    more: tuple[Hashable, ...]  # undecided with fewer than max_seeds seeds (adaptive only)

    @property
    def done(self) -> bool:
        return not self.more


def decide(
    rounds: Mapping[Hashable, Sequence[Sequence[float]]],
    ratio: float | Mapping[Hashable, float],
    margin: float = MARGIN,
    max_seeds: int | None = None,
    alpha: float = ALPHA,
) -> Plan:
    """The verdict of every setting of a table, and which settings need another seed.

    Args:
        rounds: per setting (any hashable key), its per-fold paired differences (setting
            minus its baseline, same seed and fold) of each seed so far, in the order the seeds
            were run; every seed's folds are one look.
        ratio: n_val/n_train, 1/(k-1) for k-fold CV; one for all or one per setting.
        margin: the equivalence margin, in units of the metric (> 0).
        max_seeds: None: a fixed design (all seeds pooled into one look). N >= 1: the adaptive
            group-sequential design with at most N seeds; a setting may not have more.
        alpha: the level of each family (differences and equivalences), in (0, 1).

    The adaptive sweep calls it after every round with everything so far; a decided setting
    stays decided (repeated p-values only fall), and `Plan.more` lists the settings to give
    the next seed. The report calls it once the same way, so it replays the same decisions.
    """
    if margin <= 0 or not 0 < alpha < 1 or (max_seeds is not None and max_seeds < 1):
        raise ValueError(f"margin={margin} alpha={alpha} max_seeds={max_seeds}; accepted: "
                         "margin > 0, 0 < alpha < 1, max_seeds >= 1 or None")  # fmt: skip
    keys = list(rounds)
    ratios = {k: ratio[k] if isinstance(ratio, Mapping) else ratio for k in keys}
    looks, designs, seeds = {}, {}, {}
    for key in keys:
        parts = [np.asarray(r, dtype=float).ravel() for r in rounds[key]]
        parts = [r for r in parts if len(r)]
        seeds[key] = len(parts)
        if max_seeds is not None and len(parts) > max_seeds:
            raise ValueError(f"{key}: {len(parts)} seeds, more than max_seeds={max_seeds}")
        per_seed = int(np.median([len(r) for r in parts])) if parts else 1
        designs[key] = Design(ratios[key], per_seed, max_seeds)
        if max_seeds is None:
            parts = [np.concatenate(parts)] if parts else []
        cumulative = [_summary(np.concatenate(parts[: i + 1])) for i in range(len(parts))]
        looks[key] = cumulative or [(0, float("nan"), float("nan"), False)]
    sides = np.full((4, len(keys)), np.nan)
    for i, key in enumerate(keys):
        n, mean, sd, same = (np.array(c, dtype=float) for c in zip(*looks[key], strict=True))
        same = same.astype(bool)
        for j, excess in enumerate((mean, -mean, mean + margin, margin - mean)):
            sides[j, i] = repeated_p(n, excess, sd, same, designs[key])[()]
    table = table_verdicts(*sides, alpha=alpha)
    open_diff = max(1, int(np.sum(table.p_holm >= alpha)))
    open_tost = max(1, int(np.sum(table.p_tost_holm >= alpha)))
    decisions, more = {}, []
    for i, key in enumerate(keys):
        n, mean, sd, same = looks[key][-1]
        design, look = designs[key], len(looks[key]) - 1
        half = _half_width(design, look, n, sd, same, alpha) if n >= 2 else float("nan")
        chosen = str(table.verdict[i])
        extra = float("nan")
        if chosen == UNDECIDED:
            extra = _more_seeds(design, seeds[key], looks[key][-1], margin, alpha / open_diff,
                                alpha / open_tost, sides[2, i], sides[3, i])  # fmt: skip
            if max_seeds is not None and seeds[key] < max_seeds:
                more.append(key)
        decisions[key] = Decision(
            chosen, seeds[key], n, mean, mean - half, mean + half, half, float(table.p_value[i]),
            float(table.p_holm[i]), float(table.p_tost[i]), float(table.p_tost_holm[i]), extra,
        )  # fmt: skip
    return Plan(decisions, tuple(more))


def _half_width(design: Design, look: int, n: int, sd: float, same: bool, alpha: float) -> float:
    """Half-width of the 1 - alpha interval: the t interval, or the repeated one at this look
    (level alpha * share, valid at every look at once by the same union bound)."""
    if same:
        return 0.0
    level = alpha * float(design.share(look))
    return float(stats.t.ppf(1 - level / 2, n - 1) * _se(sd, n, design.ratio))


def _more_seeds(design, seeds, last, margin, level_diff, level_tost, lower, upper) -> float:
    """Additional seeds after which the rule would decide, if mean and spread stayed as seen.

    The first x >= 1 at which, with n + x * folds paired folds, the difference test's p falls
    to level_diff / 2 * share (the side of the mean), or both TOST p-values to level_tost *
    share (a side already shown counts); share is 1 in a fixed design. inf when none does
    within max_seeds (adaptive) or MAX_MORE_SEEDS (fixed).
    """
    n, mean, sd, same = last
    last_seed = MAX_MORE_SEEDS + seeds if design.max_seeds is None else design.max_seeds
    steps = np.arange(1, last_seed - seeds + 1)
    if not len(steps):
        return float("inf")
    count = n + steps * design.folds
    share = design.share(seeds - 1 + steps) if design.max_seeds else 1.0
    shown = [
        one_sided_p(count, excess, sd, same, design.ratio) <= level * share
        for excess, level in ((abs(mean), level_diff / 2), (margin + mean, level_tost),
                              (margin - mean, level_tost))
    ]  # fmt: skip
    decided = shown[0] | ((shown[1] | (lower <= level_tost)) & (shown[2] | (upper <= level_tost)))
    return float(steps[np.argmax(decided)]) if decided.any() else float("inf")
