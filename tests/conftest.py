"""Shared fixtures: small synthetic volumes made at run time, and the real data when present."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from cohortreg.sheet.datasets import SHARED_DATA, available
from cohortreg.cluster.slurm_probe import quick_scontrol_path

ROOT = Path(__file__).resolve().parents[1]
# Every Snakemake the tests start (run_snakemake, the SLURM tests) skips the SLURM plugin's 9 s
# `scontrol` wait on a machine whose SLURM controller is down (cohortreg/cluster/slurm_probe.py)
os.environ["PATH"] = quick_scontrol_path()

needs_shared_data = pytest.mark.skipif(
    not available(), reason=f"real data not found at {SHARED_DATA} (../shared/data beside the project; CI has it)")


def phantom(shape=(40, 44, 36), shift=(0.0, 0.0, 0.0), seed=0, scale=1.0):
    """A head-like phantom: nested ellipsoids with 4 labels, optionally shifted/scaled (voxels)."""
    rng = np.random.default_rng(seed)
    c = (np.array(shape) - 1) / 2 + np.asarray(shift)
    idx = np.indices(shape).astype(float)
    r = np.sqrt(sum(((idx[i] - c[i]) / (shape[i] * 0.36 * scale)) ** 2 for i in range(3)))
    labels = np.zeros(shape, np.int16)
    labels[r < 1.0] = 1
    labels[r < 0.7] = 2
    labels[(r < 0.7) & (idx[0] > c[0])] = 3
    labels[r < 0.35] = 4
    t1 = np.choose(labels, [0.0, 0.4, 0.8, 0.7, 1.0]).astype(np.float32)
    # Smooth texture fixed to the object (as gyri are to a brain): nested ellipsoids alone are so
    # symmetric that mutual information has false optima a real scan does not have.
    tex = ndimage.gaussian_filter(np.random.default_rng(99).standard_normal(shape), 2.0)
    tex = ndimage.shift(tex, shift, order=1, mode="nearest")
    t1 = t1 + (0.6 * tex / np.abs(tex).max()).astype(np.float32) * (labels > 0)
    t1 = t1 + rng.normal(0, 0.02, shape).astype(np.float32) * (labels > 0)
    return t1, labels


def save(arr, path, affine=None):
    affine = np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(arr, affine), str(path))
    return str(path)


def run_snakemake(*args, cwd=ROOT, timeout=1200):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def phantom_cohort(tmp_path):
    """Three phantom subjects with labels and a sheet (sub 01 is the reference)."""
    rows = ["cohort\tsubject\tt1\tlabels"]
    for i, (shift, scale) in enumerate([((0, 0, 0), 1.0), ((2, -1.5, 1), 0.93), ((-1.5, 2, -1), 1.06)], start=1):
        t1, lab = phantom(shift=shift, seed=i, scale=scale)
        save(t1 * 1000, tmp_path / f"s{i}_T1w.nii.gz")
        save(lab, tmp_path / f"s{i}_dseg.nii.gz")
        rows.append(f"ph\t0{i}\ts{i}_T1w.nii.gz\ts{i}_dseg.nii.gz")
    (tmp_path / "samples.tsv").write_text("\n".join(rows) + "\n")
    return tmp_path


LOCAL_CLUSTER = ROOT / "profiles" / "slurm" / "local_cluster.sh"


def slurm_testable() -> str:
    """'' when this machine can host the one-node test SLURM, else why not (the skip reason)."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return 'the SLURM executor plugin is not installed (pip install -e ".[slurm]")'
    if os.geteuid() != 0:
        return "starting a local SLURM needs root"
    if not (shutil.which("slurmctld") or shutil.which("apt-get")):
        return "no slurmctld and no apt-get to install it"
    return ""


@pytest.fixture(scope="session")
def local_slurm():
    """A one-node SLURM for the session (profiles/slurm/local_cluster.sh), stopped by PID at the end."""
    why = slurm_testable()
    if why:
        pytest.skip(why)
    r = subprocess.run(["bash", str(LOCAL_CLUSTER), "start"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"local SLURM did not start:\n{r.stdout}\n{r.stderr}")
    yield r.stdout.strip()
    subprocess.run(["bash", str(LOCAL_CLUSTER), "stop"], capture_output=True, text=True, timeout=60)


def planned_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a `snakemake -n` run lists, in order (not the target rule ``all``)."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in output.splitlines():
        s = line.strip()
        if (s.startswith("rule ") or s.startswith("localrule ")) and s.endswith(":"):
            jobs.append((s.split()[1].rstrip(":"), {}))
        elif s.startswith("wildcards:") and jobs:
            jobs[-1][1].update(kv.strip().split("=", 1) for kv in s[len("wildcards:"):].split(",") if "=" in kv)
    return [j for j in jobs if j[0] != "all"]


def docutils_problems(output: str) -> list[str]:
    """The lines in which docutils reports an error or a warning while Snakemake builds a report from the
    captions in report/*.rst (a caption with an error shows the error in the report instead of its text)."""
    return [line for line in output.splitlines() if re.search(r"\((WARNING|ERROR|SEVERE)/\d\)", line)]
