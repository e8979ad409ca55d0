"""Which runs a report reads: one or more sweeps', or a filter's, from MLflow, as one table.

`select` finds the job runs; `tidy` turns mlflow.search_runs' wide frame into one row per run
and each run's per-fold scores, the two things src/report/comparison.py pairs and tests.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from src.tracking import UNHASHED
from src.tracking import tags as tag_names
from src.tracking.runs import search

FOLD_METRIC = re.compile(r"^metrics\.fold(\d+)/final_(.+)$")
# config keys that do not make two runs incomparable: the augmentation itself, the seed (paired
# on), and the keys left out of the config hash
NOT_CONTEXT = ("aug.", "seed", *UNHASHED)
ROLE = f"tags.`{tag_names.ROLE}`"  # in a search filter
# set on a sweep's parent run by an adaptive sweep: its max_seeds, so the report replays the
# sequential rule the rounds were decided by (src/stats.py); absent: a fixed design
ADAPTIVE_TAG = f"{tag_names.ADAPTIVE_PREFIX}max_seeds"
MARGIN_TAG = f"{tag_names.ADAPTIVE_PREFIX}margin"  # and the margin they were decided at


class ReportError(Exception):
    """Nothing to report, said in one line."""


@dataclass
class Selection:
    runs: pd.DataFrame  # one row per job run, as mlflow.search_runs gives them
    sweep_ids: tuple[str, ...]  # the sweeps' parent runs (none for --filter)
    description: str
    max_seeds: int | None = None  # the adaptive design's, from the parents' ADAPTIVE_TAG
    margins: tuple[float, ...] = ()  # the adaptive rounds' margins, from the parents' MARGIN_TAG


def select(
    experiment: str,
    sweeps: str | list[str] | None = None,
    filter_string: str | None = None,
) -> Selection:
    """The job runs to report: a filter's, one or more sweeps', or by default the latest
    sweep's.

    A sweep's runs are its children plus the earlier runs it reused instead of training again;
    a run two sweeps share counts once.
    """
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        raise ReportError(f"no experiment {experiment!r} in {mlflow.get_tracking_uri()}")
    experiment_id = found.experiment_id
    if filter_string:
        runs = mlflow.search_runs(
            [experiment_id],
            filter_string=f"{ROLE} = 'job' AND {filter_string}",
            max_results=100_000,
        )
        return Selection(runs, (), f"runs of experiment {experiment!r} where {filter_string}")
    client = MlflowClient()
    if sweeps is None:
        latest = client.search_runs(
            [experiment_id],
            f"{ROLE} = 'sweep'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if not latest:
            raise ReportError(
                f"no sweep in experiment {experiment!r}; run one first, e.g. "
                "python -m src.sweep -m aug=none,light,heavy"
            )
        sweeps = latest[0].info.run_id
    sweeps = [sweeps] if isinstance(sweeps, str) else list(dict.fromkeys(sweeps))
    parts, names, designs, margins = [], [], set(), set()
    for sweep in sweeps:
        parent = client.get_run(sweep)
        parts.append(search(experiment_id, parent=sweep))
        tags = parent.data.tags
        if ADAPTIVE_TAG in tags:
            designs.add(int(tags[ADAPTIVE_TAG]))
        if MARGIN_TAG in tags:
            margins.add(float(tags[MARGIN_TAG]))
        reused = sorted(v for k, v in tags.items() if k.startswith(tag_names.SKIPPED_PREFIX))
        if reused:
            parts.append(search(experiment_id, run_ids=reused))
        names.append(f"{sweep} ({tags.get('mlflow.runName', sweep)})")
    runs = pd.concat(parts).drop_duplicates("run_id").reset_index(drop=True)
    what = f"sweep {names[0]}" if len(names) == 1 else f"sweeps {', '.join(names)}"
    design = max(designs) if designs else None
    return Selection(runs, tuple(sweeps), what, design, tuple(sorted(margins)))


def _contexts(runs: pd.DataFrame, param_columns: list[str]) -> list[str]:
    """Per run, a hash of the config that must match for two runs to be compared."""
    kept = sorted(c for c in param_columns if not c.removeprefix("params.").startswith(NOT_CONTEXT))
    names = [c.removeprefix("params.") for c in kept]
    hashes: dict[tuple, str] = {}  # a sweep's runs share a few configs: hash each once

    def context(values: tuple) -> str:
        if values not in hashes:
            config = {n: v for n, v in zip(names, values, strict=True) if pd.notna(v)}
            text = json.dumps(config, sort_keys=True)
            hashes[values] = hashlib.sha256(text.encode()).hexdigest()[:8]
        return hashes[values]

    return [context(values) for values in runs[kept].itertuples(index=False, name=None)]


# (run id, score) -> that score of the run on each fold: {fold index: value}
Folds = dict[tuple[str, str], dict[int, float]]


def tidy(runs: pd.DataFrame) -> tuple[pd.DataFrame, Folds]:
    """One row per run (what it is, its status), and each run's per-fold scores."""
    if runs.empty:
        return pd.DataFrame(), {}
    params = [c for c in runs.columns if c.startswith("params.")]

    def tag(name: str) -> pd.Series:
        column = f"tags.{name}"
        return runs[column] if column in runs else pd.Series([None] * len(runs), index=runs.index)

    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": tag("mlflow.runName"),
            "status": runs["status"],
            "start_time": runs["start_time"],
            "dataset": tag("dataset"),
            "model": tag("model"),
            "aug": tag("aug"),
            "strength": pd.to_numeric(tag("strength"), errors="coerce"),
            "seed": pd.to_numeric(tag("seed"), errors="coerce"),
            "config_hash": tag("config_hash"),
            "folds_k": pd.to_numeric(runs.get("params.cv.folds"), errors="coerce"),
            "error": tag(tag_names.ERROR),
            "overrides": tag(tag_names.OVERRIDES),
            "audit_label_drop": pd.to_numeric(
                runs.get("metrics.audit/label_drop", pd.Series(np.nan, index=runs.index))
            ),
        }
    )
    table["context"] = _contexts(runs, params)
    folds: Folds = {}
    run_ids = runs["run_id"].tolist()
    for column in sorted(runs.columns):
        match = FOLD_METRIC.match(column)
        if match:
            fold, score = int(match[1]), match[2]
            for run_id, value in zip(run_ids, runs[column].to_numpy(float).tolist(), strict=True):
                if value == value:  # not NaN
                    folds.setdefault((run_id, score), {})[fold] = value
    return table, folds
