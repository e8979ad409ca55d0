"""Entry point: `python -m src.sweep -m aug=light,heavy` runs one job per setting."""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.config import check_cli
from src.errors import ConfigError
from src.train import run

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Run one job; return the metric that Hydra sweepers optimise (`optimize_metric`)."""
    try:
        return run(cfg)[cfg.optimize_metric]
    except Exception as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # the run is recorded FAILED; the sweep goes on and exits non-zero at its end
            log.error("job failed: %s: %s", type(err).__name__, err)
            return float("nan")
        if isinstance(err, ConfigError):
            print(f"augsweep: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        raise


if __name__ == "__main__":
    try:
        check_cli(sys.argv[1:])
    except ConfigError as err:
        print(f"augsweep: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    main()
