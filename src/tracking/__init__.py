"""Everything augsweep keeps in MLflow.

- `store`: which store (its URI), checked writable, set up; run listings through all pages.
- `job`: the run of one job, its params and config hash.
- `context`: the sweep a job belongs to, and how it reaches the job's process.
- `resume`: what a sweep finds already in the store (finished jobs, dead runs).
- `runs`: job runs read back as one frame, for the report.
- `tags`: the names of the tags written on runs.

The names most modules use are here too: `from src import tracking; tracking.setup(...)`.
"""

from src.tracking.context import SweepContext, varying
from src.tracking.job import (
    SEMANTICS_VERSION,
    UNHASHED,
    config_hash,
    flatten,
    hydra_overrides,
    job_run,
    stop_on_sigterm,
)
from src.tracking.store import (
    STORE_ACCEPTED,
    check_store,
    search_all,
    setup,
    store_errors,
    tracking_uri,
)

__all__ = [
    "SEMANTICS_VERSION",
    "STORE_ACCEPTED",
    "UNHASHED",
    "SweepContext",
    "check_store",
    "config_hash",
    "flatten",
    "hydra_overrides",
    "job_run",
    "search_all",
    "setup",
    "stop_on_sigterm",
    "store_errors",
    "tracking_uri",
    "varying",
]
