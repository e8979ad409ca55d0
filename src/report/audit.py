"""The report's audit part: did the label-safety audit (`src.audit`) see the measured harm coming?

Per setting of the comparison table, `audit_label_drop` is the mean over its runs of the runs'
`audit/label_drop` (clean minus augmented accuracy of a reference model trained without
augmentation, on the folds' training parts), and the measured harm is minus `diff` (baseline
minus setting). Over the settings that have both, the report gives their Pearson and Spearman
correlations, and per setting whether the audit flagged it (label drop above the margin) and
what the comparison found: harm predicted (flagged, hurts), harm missed (hurts, not flagged),
false alarm (flagged, but equivalent or helps), no harm and none predicted, or, for undecided
settings, flagged or not and still open.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from src import stats

COLUMN = "audit_label_drop"
PREDICTED, MISSED, FALSE_ALARM, QUIET = (
    "harm predicted",
    "harm missed",
    "false alarm",
    "no harm, none predicted",
)
OPEN_FLAGGED, OPEN = "flagged, undecided", "not flagged, undecided"


def agreement(comparison: pd.DataFrame, margin: float) -> pd.DataFrame:
    """One row per setting with an audit: its label drop, the measured harm, and the outcome."""
    columns = ["dataset", "model", "context", "aug", "strength", COLUMN, "harm", "verdict",
               "outcome"]  # fmt: skip
    if comparison.empty or COLUMN not in comparison or comparison[COLUMN].isna().all():
        return pd.DataFrame(columns=columns)
    rows = comparison[comparison[COLUMN].notna()].copy()
    rows["harm"] = -rows["diff"]
    flagged = rows[COLUMN] > margin
    hurts = rows.verdict == stats.HURTS
    open_ = rows.verdict == stats.UNDECIDED
    rows["outcome"] = np.select(
        [flagged & hurts, ~flagged & hurts, flagged & open_, open_, flagged],
        [PREDICTED, MISSED, OPEN_FLAGGED, OPEN, FALSE_ALARM],
        QUIET,
    )
    return rows[columns].reset_index(drop=True)


def correlation(rows: pd.DataFrame) -> dict[str, float]:
    """Pearson r and Spearman rho (with their p-values) of label drop against harm; NaN when
    fewer than 3 settings or either is constant."""
    x, y = rows[COLUMN].to_numpy(float), rows["harm"].to_numpy(float)
    nan = float("nan")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"n": len(x), "pearson": nan, "pearson_p": nan, "spearman": nan, "spearman_p": nan}
    pearson, spearman = scipy_stats.pearsonr(x, y), scipy_stats.spearmanr(x, y)
    return {
        "n": len(x),
        "pearson": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
    }


def _listed(rows: pd.DataFrame, outcome: str) -> str:
    chosen = rows[rows.outcome == outcome]
    if chosen.empty:
        return "none"
    return ", ".join(
        f"{r.aug} {r.strength:g} ({r.dataset}/{r.model}: drop {r[COLUMN]:.3f}, harm {r.harm:+.3f})"
        for _, r in chosen.iterrows()
    )


def markdown(rows: pd.DataFrame, margin: float) -> str:
    """report.md's section: the correlation, then where the audit predicted the harm and not."""
    if rows.empty:
        return ""
    c = correlation(rows)
    if np.isnan(c["pearson"]):
        said = f"{c['n']} settings: too few, or no spread, for a correlation."
    else:
        said = (
            f"Over {c['n']} settings, label drop and measured harm (baseline minus setting) "
            f"correlate with Pearson r = {c['pearson']:.2f} (p = {c['pearson_p']:.2g}) and "
            f"Spearman rho = {c['spearman']:.2f} (p = {c['spearman_p']:.2g})."
        )
    return "\n".join(
        [
            "## Label-safety audit against the measured harm\n",
            "audit_label_drop: a reference model trained without augmentation on each fold's "
            "training part, its accuracy on those samples minus its accuracy on them augmented "
            f"(mean over folds and runs). Flagged: label drop above the margin ({margin:g}).\n",
            said + "\n",
            f"- {PREDICTED} (flagged, and hurts): {_listed(rows, PREDICTED)}",
            f"- {MISSED} (hurts, not flagged): {_listed(rows, MISSED)}",
            f"- {FALSE_ALARM} (flagged, but equivalent or helps): {_listed(rows, FALSE_ALARM)}",
            f"- {OPEN_FLAGGED} (flagged, the comparison still open): "
            f"{_listed(rows, OPEN_FLAGGED)}\n",
        ]
    )
