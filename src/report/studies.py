"""`python -m src.report.studies`: one grid's verdicts in two studies, side by side.

    python -m src.report.studies experiments/digits_image_ops experiments/faces_image_ops \\
        --out experiments/faces_image_ops/against_digits.md

Each study folder holds the comparison.csv its report exported. The settings both ran (the same
augmentation at the same strength) are joined, one row each: the verdict, the difference from
the study's own baseline and the label-safety audit's label drop in either study, and whether
the verdict changed. For a change, `audit_saw` says whether the audit's label drop moved with
the measured effect: a larger drop in the study where the setting fares worse against its
baseline (a lower diff), a smaller drop where it fares better.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from src import stats

KEYS = ["aug", "strength"]
VERDICTS = (stats.HELPS, stats.EQUIVALENT, stats.UNDECIDED, stats.HURTS)


class StudiesError(ValueError):
    """A study folder without a comparison table of the current report."""


def read(folder: Path) -> pd.DataFrame:
    path = folder / "comparison.csv"
    if not path.is_file():
        raise StudiesError(f"{folder}: no comparison.csv; accepted: a folder a report wrote")
    table = pd.read_csv(path)
    missing = {"verdict", "diff", *KEYS} - set(table.columns)
    unknown = set() if missing else set(table.verdict) - set(VERDICTS)
    if missing or unknown:
        bad = f"columns {', '.join(sorted(missing))}" if missing else f"verdicts {sorted(unknown)}"
        raise StudiesError(f"{path}: {bad} not of the current report; accepted verdicts: "
                           f"{', '.join(VERDICTS)}")  # fmt: skip
    if "audit_label_drop" not in table:
        table["audit_label_drop"] = float("nan")
    if table.duplicated(KEYS).any():  # several datasets or models: one study is one of each
        raise StudiesError(f"{path}: several rows per augmentation and strength; accepted: one "
                           "dataset and model per study")  # fmt: skip
    return table[[*KEYS, "verdict", "diff", "audit_label_drop"]]


def side_by_side(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The settings both studies ran, with `change` ("first -> second" where the verdicts
    differ, else "") and `audit_saw` (for a change: "yes" where the label drop moved opposite
    to diff, "no" where it did not, "no audit" where a study has no label drop)."""
    both = first.merge(second, on=KEYS, suffixes=("_1", "_2")).sort_values(KEYS)
    changed = both.verdict_1 != both.verdict_2
    both["change"] = (both.verdict_1 + " -> " + both.verdict_2).where(changed, "")
    effect = both.diff_2 - both.diff_1
    drop = both.audit_label_drop_2 - both.audit_label_drop_1
    saw = ((effect < 0) & (drop > 0)) | ((effect > 0) & (drop < 0))
    both["audit_saw"] = saw.map({True: "yes", False: "no"}).where(changed, "")
    both.loc[changed & drop.isna(), "audit_saw"] = "no audit"
    return both.reset_index(drop=True)


def markdown(both: pd.DataFrame, names: tuple[str, str]) -> str:
    a, b = names
    changed = both[both.change != ""]
    lines = [
        f"# {a} against {b}: the same settings, verdict by verdict",
        "",
        f"`python -m src.report.studies {' '.join(names)}`",
        "",
        f"{len(both)} settings in both; {len(changed)} change verdict, the audit's label drop "
        f"moving with the effect for {(changed.audit_saw == 'yes').sum()} of them. diff: the "
        "setting minus its own study's baseline. audit_saw: for a change, whether the label "
        "drop is larger in the study where diff is lower (or smaller where it is higher).",
        "",
        "| aug | strength | verdict, "
        + a
        + " | diff | label drop | verdict, "
        + b
        + " | diff | label drop | change | audit_saw |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in both.itertuples():
        lines.append(
            f"| {r.aug} | {r.strength:g} | {r.verdict_1} | {r.diff_1:+.4f} | "
            f"{r.audit_label_drop_1:.3f} | {r.verdict_2} | {r.diff_2:+.4f} | "
            f"{r.audit_label_drop_2:.3f} | {r.change} | {r.audit_saw} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    about = __doc__.splitlines()[0].split(": ", 1)[1]
    parser = argparse.ArgumentParser(prog="python -m src.report.studies", description=about)
    parser.add_argument("first", type=Path, help="a study folder (its comparison.csv)")
    parser.add_argument("second", type=Path, help="another study folder")
    parser.add_argument("--out", type=Path, help="write the table here (default: print it)")
    args = parser.parse_args(argv)
    try:
        both = side_by_side(read(args.first), read(args.second))
    except StudiesError as error:
        print(f"augsweep: error: {error}", file=sys.stderr)
        return 2
    text = markdown(both, (str(args.first), str(args.second)))
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
