"""The machine and library versions a benchmark ran on, and how its results are written."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def describe() -> dict[str, Any]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        # other work on the machine when the results were written (timings move with it)
        "load_average_1min": round(os.getloadavg()[0], 2),
        **{
            p: version(p)
            for p in ("tensorflow-cpu", "keras", "mlflow", "hydra-core")
            if _installed(p)
        },  # fmt: skip
    }


def _installed(package: str) -> bool:
    try:
        version(package)
    except Exception:
        return False
    return True


def write(name: str, result: dict[str, Any], markdown: str) -> Path:
    """benchmarks/results/<name>.json and .md, each with the machine it ran on."""
    RESULTS.mkdir(exist_ok=True)
    machine = describe()
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine, **result}, indent=2))
    lines = [f"- {k}: {v}" for k, v in machine.items()]
    (RESULTS / f"{name}.md").write_text(
        markdown.rstrip() + "\n\nMachine:\n" + "\n".join(lines) + "\n"
    )
    return RESULTS / f"{name}.md"
