"""Reference test accuracies of FCN and ResNet from Fawaz et al. 2019 (hfawaz/dl-4-tsc).

    python -m benchmarks.reference.fawaz2019 RESULTS_DIR > benchmarks/reference/fawaz2019.csv

RESULTS_DIR holds the repository's `results-ucr-128.csv` (UCR 2018, 5 iterations per dataset)
and `results-mts.csv` (Baydogan's MTS archive, 10 iterations), one row per classifier, dataset
and iteration with the test accuracy of that run. Writes, per classifier and dataset, the mean
and sample std (ddof=1) of the accuracy over the iterations and their number, as CSV on stdout.
A dataset absent from both files (BasicMotions) is left out and named on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

FILES = ("results-ucr-128.csv", "results-mts.csv")
CLASSIFIERS = ("fcn", "resnet")
DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "JapaneseVowels", "BasicMotions")


def reference(results_dir: Path) -> pd.DataFrame:
    """One row per (classifier, dataset, archive): mean, std and count of the test accuracy."""
    runs = pd.concat([pd.read_csv(results_dir / name) for name in FILES], ignore_index=True)
    runs = runs[runs.classifier_name.isin(CLASSIFIERS) & runs.dataset_name.isin(DATASETS)]
    table = (
        runs.groupby(["classifier_name", "dataset_name", "archive_name"])
        .accuracy.agg(accuracy_mean="mean", accuracy_std="std", iterations="count")
        .reset_index()
    )
    table["dataset_name"] = pd.Categorical(table.dataset_name, categories=DATASETS)
    return table.sort_values(["dataset_name", "classifier_name"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="dl-4-tsc's results/ folder")
    table = reference(parser.parse_args(argv).results_dir)
    missing = sorted(set(DATASETS) - set(table.dataset_name))
    if missing:
        print(f"not in the results files: {', '.join(missing)}", file=sys.stderr)
    table.to_csv(sys.stdout, index=False, float_format="%.4f", lineterminator="\n")


if __name__ == "__main__":
    main()
