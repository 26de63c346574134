"""profiles/slurm against a real one-node SLURM (profiles/slurm/local_cluster.sh), on real scans.

Skipped with the reason when the plugin is not installed or the machine cannot host SLURM
(not root, no apt-get). CI installs the ``slurm`` extra and runs as root, so it runs there.
"""

import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from cohortreg.datasets import write_sheet
from tests.conftest import ROOT, needs_shared_data, run_snakemake

pytestmark = [needs_shared_data, pytest.mark.realdata, pytest.mark.workflow]

VALUES = ["dice_mean", "hd95", "folding_frac", "sdlogj"]


def cancel_first_job_of(rule: str, stop: threading.Event, cancelled: list) -> None:
    """Watch squeue and scancel the first job of ``rule``: SLURM kills it, Snakemake must retry it."""
    while not stop.is_set() and not cancelled:
        out = subprocess.run(["squeue", "-h", "-o", "%i %k %T"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            job_id, comment, state = (line.split() + ["", "", ""])[:3]
            if rule in comment and state == "RUNNING":
                subprocess.run(["scancel", job_id], check=False)
                cancelled.append(job_id)
                return
        time.sleep(0.2)


def test_slurm_profile_matches_local_run_gets_a_gpu_and_retries(tmp_path, local_slurm):
    sheet = write_sheet(tmp_path / "samples.tsv", {"lpba40": 3})
    (tmp_path / "cfg.yaml").write_text("preprocess:\n  spacing: 3.0\nmethod_params:\n  torch: {gpu: true, preset: fast}\n")
    common = ["--configfile", tmp_path / "cfg.yaml", "--config", f"samples={sheet}", "methods=[affine,torch]"]

    local = run_snakemake("--cores", "2", *common, f"outdir={tmp_path / 'local'}", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-3000:]

    stop, cancelled = threading.Event(), []
    watcher = threading.Thread(target=cancel_first_job_of, args=("register_method", stop, cancelled), daemon=True)
    watcher.start()
    env_path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # jobs run this venv's python
    try:
        slurm = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / "slurm"),
             "--slurm-status-command", "squeue", "--seconds-between-status-checks", "2", "--latency-wait", "5",
             "--cores", "2",  # this node has 2 CPUs: group jobs must fit it
             *map(str, common), f"outdir={tmp_path / 'slurm'}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ, "PATH": env_path})
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert slurm.returncode == 0, slurm.stderr[-4000:]

    a = pd.read_csv(tmp_path / "local" / "metrics" / "pairs.tsv", sep="\t").set_index(["moving", "method"]).sort_index()
    b = pd.read_csv(tmp_path / "slurm" / "metrics" / "pairs.tsv", sep="\t").set_index(["moving", "method"]).sort_index()
    assert len(a) == 4 and (b.status == "ok").all()
    pd.testing.assert_frame_equal(a[VALUES], b[VALUES], atol=1e-4, rtol=0)

    # The GPU rule's jobs ran under SLURM with a GPU allocated (a fake gres here: no CUDA, so on CPU).
    logs = sorted((tmp_path / "slurm" / "logs" / "register").rglob("*_torch.log"))
    assert len(logs) == 2, list((tmp_path / "slurm" / "logs").rglob("*"))
    for log in logs:
        text = log.read_text()
        assert "CUDA_VISIBLE_DEVICES=0" in text and "SLURM_JOB_ID=-" not in text, text[:500]

    # One register job was cancelled by SLURM mid-run; the run still completed with every pair
    # (exit 0, all rows ok above), so Snakemake resubmitted it.
    assert cancelled, "no register_method job was seen running in squeue"
