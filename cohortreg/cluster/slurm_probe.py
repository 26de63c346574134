"""Snakemake starts 9 s late where SLURM is installed but its controller is down; a stub fixes that.

Snakemake imports every installed executor plugin at start, local runs included, and the SLURM
plugin (the ``slurm`` extra) runs ``scontrol show config`` as it is imported. Where the SLURM client
is installed but no controller answers (a workstation, or this project's CI machine between the
one-node test cluster's runs) that call retries for about 9 s before it fails, so every
``snakemake`` command, a dry run included, waits 9 s for nothing. ``scontrol ping`` answers at once.

:func:`quick_scontrol_path` puts a stub ``scontrol`` first on PATH: it hands the call to the real
one while a controller answers and fails at once while none does, which the plugin treats as no
SLURM. The tests and benches run Snakemake with it; a user who meets the pause can do the same, or
uninstall the plugin where no cluster is used (README: On a SLURM cluster).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

STUB = """#!/bin/sh
# CohortReg (cohortreg/cluster/slurm_probe.py): scontrol, failing at once while no SLURM controller answers
"{real}" ping >/dev/null 2>&1 && exec "{real}" "$@"
echo "scontrol: no SLURM controller answers (stub of cohortreg.cluster.slurm_probe)" >&2
exit 1
"""


def quick_scontrol_path(path: str | None = None) -> str:
    """PATH (default: this process's) with the stub's folder first, or unchanged without scontrol."""
    path = os.environ.get("PATH", "") if path is None else path
    real = shutil.which("scontrol", path=path)
    if real is None or b"cohortreg/cluster/slurm_probe.py" in Path(real).read_bytes()[:200]:  # no client, or the stub
        return path
    folder = Path(tempfile.mkdtemp(prefix="cohortreg-scontrol-"))
    stub = folder / "scontrol"
    stub.write_text(STUB.format(real=real))
    stub.chmod(0o755)
    return os.pathsep.join([str(folder), path])
