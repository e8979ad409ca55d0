"""Job runs read back from the MLflow store: one row per run, the frame `mlflow.search_runs` gives.

`mlflow.search_runs` builds a Run entity per run through SQLAlchemy's ORM, which is slow over
a large store (benchmarks/README.md, the report over 10,000 runs). On a database store (SQLite,
PostgreSQL, MySQL) `search` reads the four tables a run is made of (runs, params, tags,
latest_metrics) with one query each and pivots them into the same frame. Any other store (an
MLflow server over http, a file store) goes through `mlflow.search_runs`. tests/test_runs.py
holds the two paths equal.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlflow
import pandas as pd

DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
# DB-API paramstyles this module can write placeholders for
PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}
INFO = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
CHUNK = 500  # run ids per IN (...) list


def is_database(uri: str) -> bool:
    """Whether an MLflow tracking URI is a database store (sqlite:///..., postgresql://...)."""
    return uri.split(":", 1)[0].split("+", 1)[0] in DATABASES


def search(
    experiment_id: str, *, parent: str | None = None, run_ids: Sequence[str] = ()
) -> pd.DataFrame:
    """The active runs of an experiment that are children of `parent`, or that have these ids."""
    if (parent is None) == (not run_ids):
        raise ValueError("give either parent or run_ids")
    uri = mlflow.get_tracking_uri()
    if not is_database(uri):
        return _mlflow_search(experiment_id, parent, run_ids)
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        mark = PLACEHOLDER.get(engine.dialect.paramstyle)
        if mark is None:
            return _mlflow_search(experiment_id, parent, run_ids)
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            if parent is not None:
                return _read(cursor, mark, experiment_id, "key = 'mlflow.parentRunId'", [parent])
            ids = list(dict.fromkeys(run_ids))
            chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
            return _concat([_read(cursor, mark, experiment_id, None, chunk) for chunk in chunks])
        finally:
            connection.close()
    finally:
        engine.dispose()


def _mlflow_search(experiment_id: str, parent: str | None, run_ids: Sequence[str]) -> pd.DataFrame:
    def found(filter_string: str) -> pd.DataFrame:
        return mlflow.search_runs([experiment_id], filter_string=filter_string, max_results=100_000)

    if parent is not None:
        return found(f"tags.mlflow.parentRunId = '{parent}'")
    ids = list(dict.fromkeys(run_ids))
    return _concat(
        [
            found(f"attributes.run_id IN ({', '.join(repr(i) for i in ids[s : s + 100])})")
            for s in range(0, len(ids), 100)
        ]
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of several queries' runs; an empty one would turn typed columns to object."""
    return pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)


def _read(cursor, mark: str, experiment_id: str, parent_tag: str | None, values: list[str]):
    """One query per table over the selected runs, pivoted to one row per run."""
    if parent_tag is not None:  # children: the runs with tag mlflow.parentRunId = values[0]
        chosen = f"SELECT run_uuid FROM tags WHERE {parent_tag} AND value = {mark}"
    else:
        chosen = ", ".join([mark] * len(values))
    where = (
        f"run_uuid IN (SELECT run_uuid FROM runs WHERE experiment_id = {mark} "
        f"AND lifecycle_stage = 'active' AND run_uuid IN ({chosen}))"
    )
    args = (int(experiment_id), *values)

    def rows(columns: str, table: str) -> list[tuple]:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {where}", args)
        return cursor.fetchall()

    info = pd.DataFrame(
        rows("run_uuid, experiment_id, status, artifact_uri, start_time, end_time", "runs"),
        columns=INFO,
    )
    info["experiment_id"] = info["experiment_id"].astype(str)
    for column in ("start_time", "end_time"):
        info[column] = pd.to_datetime(pd.to_numeric(info[column]), unit="ms", utc=True)
    parts = [info.set_index("run_id")]
    for prefix, table in (("metrics.", "latest_metrics"), ("params.", "params"), ("tags.", "tags")):
        is_metric = prefix == "metrics."
        long = pd.DataFrame(
            rows(f"run_uuid, key, value{', is_nan' if is_metric else ''}", table),
            columns=["run_id", "key", "value", "is_nan"][: 4 if is_metric else 3],
            dtype=object,  # typed once pivoted: fewer values
        )
        if is_metric:
            value = long["value"].astype(float)
            long["value"] = value.mask(long.pop("is_nan").astype(bool))
        wide = long.pivot(index="run_id", columns="key", values="value").reindex(info.run_id)
        if not is_metric:  # strings, missing None, typed as pandas types a column of them
            wide = wide.where(wide.notna(), None).infer_objects()
        parts.append(wide.sort_index(axis=1).add_prefix(prefix))
    frame = pd.concat(parts, axis=1).reset_index(names="run_id")
    frame.columns.name = None
    return frame.sort_values(["start_time", "run_id"], ascending=[False, True], ignore_index=True)
