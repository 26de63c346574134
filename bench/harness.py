"""What every benchmark shares: the machine and commit it ran on, where its result goes, and the suite.

A benchmark is a module of this package with a ``main(argv) -> int`` and a one-line docstring; ``python -m
bench run NAME [options]`` runs it, ``python -m bench list`` lists the suite, ``python -m bench summary``
prints the README's headline table from the committed results (bench/summary.py). Each run writes
``bench/results/<benchmark>/<date>-<commit>[-<tag>].json`` with the machine and commit inside; the flat
files directly under ``bench/results/`` are the results of earlier runs and of retired benchmarks
(history: the summary lists them).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# name -> what it measures (the module bench/<name>.py runs it)
SUITE: dict[str, str] = {
    "classical": "torch against ANTs SyN through the workflow: Dice, HD95, folding, seconds per pair",
    "throughput": "the README command end to end: wall seconds per pair, per job and batched",
    "scale": "planning 1,000-20,000 subjects (dry runs), aggregating 20,000 pairs",
    "labelling": "multi-atlas labelling, leave-one-out: Dice, volumes (ICC, error), seconds per subject",
    "template_route": "the template route against the multi-atlas route on held-out subjects",
    "template": "templates across cohorts: convergence, sharpness, Dice to the votes, wall time",
    "learned": "learned methods against classical, within and across cohorts",
    "learned_gpu": "pack the learned study's training sets (CPU); train its four models from them (GPU)",
    "skullstrip": "brain masks of auto, deepbet and atlas on the IXI and CANDI heads; auto on stripped brains",
    "raw_heads": "the README command on raw IXI heads: auto, auto with N4, atlas masks; Dice and QC",
    "study": "the full study on the shared cohorts, its tables and its report",
    "report_scale": "the report of a 2,000-pair study",
    "append": "one subject appended to a finished, batched 1,000-subject study: what reruns, what is kept",
    "faults": "bad input made at run time: what each defect does to the README command",
    "same_results": "an earlier checkout and this one on the same scans: pairs.tsv value by value",
    "gpu": "the torch engine, affine and learned inference timed per device (bench/gpu_check.sh)",
}


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    try:
        import torch

        torch_version = torch.__version__
        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # a benchmark without torch
        torch_version, cuda = None, None
    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "torch": torch_version,
            "gpu": cuda, "load_average": [round(x, 2) for x in os.getloadavg()]}


def commit() -> str:
    """The checkout's short commit, with +dirty when tracked files differ from it."""
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return sha + ("+dirty" if dirty else "")


def result_path(benchmark: str, tag: str = "") -> Path:
    """bench/results/<benchmark>/<date>-<commit>[-<tag>].json (the folder made)."""
    folder = RESULTS / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{time.strftime('%Y-%m-%d')}-{commit()}{'-' + tag if tag else ''}.json"


def header(benchmark: str, **settings: Any) -> dict[str, Any]:
    """The fields every result starts with: benchmark, date, commit, machine, and its settings."""
    return {"benchmark": benchmark, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": commit(),
            "machine": machine(), **settings}


def save(result: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return path


def snakemake_env() -> dict[str, str]:
    """The environment a benchmark runs the workflow in: this checkout's package first, this interpreter's
    tools (snakemake) on PATH, and SLURM's client, if installed, answered at once (cluster.slurm_probe)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    from cohortreg.cluster.slurm_probe import quick_scontrol_path

    env["PATH"] = quick_scontrol_path(os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    return env
