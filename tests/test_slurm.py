"""profiles/slurm against a real one-node SLURM (profiles/slurm/local_cluster.sh), on real scans.

Skipped with the reason when the plugin is not installed or the machine cannot host SLURM
(not root, no apt-get). CI installs the ``slurm`` extra and runs as root, so it runs there.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from cohortreg.sheet.datasets import write_sheet
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


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Three LPBA40 subjects at 3 mm, and the pairs.tsv of a plain local run to compare with."""
    d = tmp_path_factory.mktemp("slurm")
    sheet = write_sheet(d / "samples.tsv", {"lpba40": 3})
    (d / "cfg.yaml").write_text("preprocess:\n  spacing: 3.0\nmethod_params:\n  torch: {gpu: true, preset: fast}\n")
    common = ["--configfile", d / "cfg.yaml", "--config", f"samples={sheet}", "methods=[affine,torch]"]
    local = run_snakemake("--cores", "2", *common, f"outdir={d / 'local'}", cwd=d)
    assert local.returncode == 0, local.stderr[-3000:]
    return d, common


def run_on_slurm(d, common, outdir: str, cancel_rule: str, *extra: str) -> list:
    """The workflow through profiles/slurm; the first running job of ``cancel_rule`` is scancelled."""
    stop, cancelled = threading.Event(), []
    watcher = threading.Thread(target=cancel_first_job_of, args=(cancel_rule, stop, cancelled), daemon=True)
    watcher.start()
    env_path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # jobs run this venv's python
    try:
        slurm = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / "slurm"),
             "--slurm-status-command", "squeue", "--seconds-between-status-checks", "2", "--latency-wait", "5",
             # the plugin's first status check of a submission waits 40 s by default: most of each job's time here
             "--slurm-init-seconds-before-status-checks", "1",
             "--cores", "2",  # this node has 2 CPUs: group jobs must fit it
             *map(str, common), f"outdir={d / outdir}", *extra],
            cwd=d, capture_output=True, text=True, timeout=900, env={**os.environ, "PATH": env_path})
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert slurm.returncode == 0, slurm.stderr[-4000:]
    # A job was cancelled by SLURM mid-run; the run still completed (exit 0, every row ok below),
    # so Snakemake resubmitted it.
    assert cancelled, f"no {cancel_rule} job was seen running in squeue"
    return cancelled


def assert_same_pairs_and_gpu_logs(d, outdir: str) -> None:
    a = pd.read_csv(d / "local" / "metrics" / "pairs.tsv", sep="\t").set_index(["moving", "method"]).sort_index()
    b = pd.read_csv(d / outdir / "metrics" / "pairs.tsv", sep="\t").set_index(["moving", "method"]).sort_index()
    assert len(a) == 4 and (b.status == "ok").all()
    pd.testing.assert_frame_equal(a[VALUES], b[VALUES], atol=1e-4, rtol=0)
    # The GPU rule's jobs ran under SLURM with a GPU allocated (a fake gres here: no CUDA, so on CPU).
    logs = sorted((d / outdir / "logs" / "register").rglob("*_torch.log"))
    assert len(logs) == 2, list((d / outdir / "logs").rglob("*"))
    for log in logs:
        text = log.read_text()
        assert "CUDA_VISIBLE_DEVICES=0" in text and "SLURM_JOB_ID=-" not in text, text[:500]


def test_slurm_profile_matches_local_run_gets_a_gpu_and_retries(cohort, local_slurm):
    d, common = cohort
    run_on_slurm(d, common, "slurm", "register_method")
    assert_same_pairs_and_gpu_logs(d, "slurm")


def test_slurm_batches_match_local_run_and_retry(cohort, local_slurm):
    """batch_size 2: subjects and pairs travel two per SLURM job; the values are those of the local run."""
    d, common = cohort
    run_on_slurm(d, common, "slurm_batch", "register_batch", "batch_size=2")
    assert_same_pairs_and_gpu_logs(d, "slurm_batch")
    manifests = sorted((d / "slurm_batch" / "batches" / "lpba40").rglob("batch-*.json"))
    stages = {m.parent.relative_to(d / "slurm_batch" / "batches" / "lpba40").as_posix() for m in manifests}
    assert stages == {"subjects", "affine", "affine/register", "torch/register", "affine/metrics", "torch/metrics"}, stages
    for m in manifests:
        items = json.loads(m.read_text())["items"]
        assert items and all(r["status"] == "ok" for r in items), (m, items)
    assert len(json.loads((d / "slurm_batch" / "batches" / "lpba40" / "torch" / "register" / "batch-00000.json")
                          .read_text())["items"]) == 2  # both pairs in one job
