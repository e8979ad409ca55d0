"""A job's setting before training: its checked, resolved config (data paths made absolute) and
its run name, and what a job gives back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from src.augment import aug_label, resolve_ops
from src.config import check_job, check_job_on_data
from src.cv import check_cv
from src.data import Dataset, load_dataset
from src.models import AUTO_MODEL, resolve_model_cfg
from src.tracking import context
from src.tracking.context import SweepContext


@dataclass
class JobResult:
    """What a job gives back: its run, its aggregate metrics, and why it skipped training."""

    run_id: str
    metrics: dict[str, float]
    skipped: str | None = None  # None when it trained


def run_name(cfg: DictConfig) -> str:
    """Readable run name, e.g. digits/cnn/heavy/s0.8/seed0."""
    model = cfg.model.name
    if model == "auto":
        model = AUTO_MODEL.get(cfg.data.get("modality"), model)
    strength = cfg.aug.strength
    strength = f"{strength:g}" if isinstance(strength, int | float) else strength
    return f"{cfg.data.name}/{model}/{aug_label(cfg.aug)}/s{strength}/seed{cfg.seed}"


def absolute_data_paths(cfg: DictConfig, sweep: SweepContext | None = None) -> DictConfig:
    """`data.path` and `data.test_path` made absolute from the directory the command started in
    (the `sweep`'s, for a job of a multirun).

    A launcher worker (Ray, SLURM) runs the job in a directory of its own; a relative path
    means the launching directory. On other machines that path must be on a shared filesystem.
    """
    relative = {
        key: cfg.data[key]
        for key in ("path", "test_path")
        if key in cfg.data
        and not OmegaConf.is_missing(cfg.data, key)
        and isinstance(cfg.data[key], str)
        and cfg.data[key]
        and not Path(cfg.data[key]).is_absolute()
    }
    if not relative:
        return cfg
    cfg = cfg.copy()
    with open_dict(cfg):
        for key, value in relative.items():
            cfg.data[key] = str(context.launch_dir(sweep) / value)
    return cfg


def prepare(cfg: DictConfig, sweep: SweepContext | None = None) -> tuple[DictConfig, Dataset]:
    """Check everything and load the data, before any training: the job's resolved config."""
    check_job(cfg)
    cfg = absolute_data_paths(cfg, sweep)
    data = load_dataset(cfg.data)
    ops = resolve_ops(cfg.aug, data.modality)
    model_cfg = resolve_model_cfg(cfg.model, data.modality)
    check_job_on_data(cfg, model_cfg, data.modality, ops)
    check_cv(cfg.cv, data.y_train, data.classes)
    job = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    job.model = model_cfg
    # one spelling per experiment: aug.strength=1 and =1.0 are the same job, and so is every
    # strength of a config that applies nothing (aug=none, or strength 0)
    job.aug.strength = float(job.aug.strength) if ops else 0.0
    return job, data
