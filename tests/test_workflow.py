"""The workflow end to end on small phantoms: dry-runs, start-up refusals, --keep-going, ANTs reuse."""

import gzip
import json

import ants
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohortreg.evaluation.metrics import dice_per_label
from tests.conftest import run_snakemake

FAST_CONFIG = "method_params:\n  ants: {preset: fast}\npreprocess:\n  spacing: null\n"


def config_args(d, *extra):
    """Flat keys on --config (the public contract); nested settings through a --configfile."""
    (d / "fast.yaml").write_text(FAST_CONFIG)
    return ["--configfile", str(d / "fast.yaml"), "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}",
            *extra]


@pytest.mark.parametrize("extra", [
    [],
    ["methods=[affine]"],
    ["design=pairwise"],
    ["design=reference", "methods=[ants]"],
])
def test_dry_run_builds_the_dag(phantom_cohort, extra):
    d = phantom_cohort
    if "design=pairwise" in extra:
        (d / "pairs.tsv").write_text("cohort\tmoving\tfixed\nph\t02\t03\nph\t03\t02\n")
        extra = extra + [f"pairs={d / 'pairs.tsv'}"]
    r = run_snakemake("-n", "--cores", "2", *config_args(d, *extra), cwd=d)
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout + r.stderr
    n_methods = 1 if any(e.startswith("methods=") for e in extra) else 2
    assert f"register_method       {2 * n_methods}" in out.replace("\t", " ") or \
        out.count("rule register_method") == 2 * n_methods


def test_config_typo_is_an_error_naming_the_key(phantom_cohort):
    r = run_snakemake("-n", "--cores", "1", *config_args(phantom_cohort, "methodz=[ants]"), cwd=phantom_cohort)
    assert r.returncode != 0 and "methodz" in r.stderr + r.stdout


def test_unknown_method_and_odd_subject_are_refused_at_start(phantom_cohort):
    d = phantom_cohort
    r = run_snakemake("-n", "--cores", "1", *config_args(d, "methods=[magic]"), cwd=d)
    assert r.returncode != 0 and "magic" in r.stderr + r.stdout
    sheet = (d / "samples.tsv").read_text() + "ph\tbad id!\ts1_T1w.nii.gz\t\n"
    (d / "samples.tsv").write_text(sheet)
    r = run_snakemake("-n", "--cores", "1", *config_args(d), cwd=d)
    assert r.returncode != 0 and "line 5 (ph/bad id!): subject" in r.stderr + r.stdout


def add_bad_subjects(d):
    """Subject 04 with a truncated T1 (its bytes returned, to repair it later), 05 with a missing one."""
    raw = gzip.decompress((d / "s3_T1w.nii.gz").read_bytes())
    (d / "broken_T1w.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 3]))
    with open(d / "samples.tsv", "a") as fh:
        fh.write("ph\t04\tbroken_T1w.nii.gz\ts3_dseg.nii.gz\nph\t05\tmissing_T1w.nii.gz\t\n")
    return raw


@pytest.mark.workflow
def test_keep_going_finishes_the_others_and_lists_the_failed_subject(phantom_cohort):
    d = phantom_cohort
    add_bad_subjects(d)
    r = run_snakemake("--cores", "2", "--keep-going", *config_args(d), cwd=d)
    assert r.returncode != 0
    pairs = pd.read_csv(d / "out" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    ok = pairs[pairs.status == "ok"]
    assert set(ok.moving) == {"02", "03"} and len(ok) == 4
    failed = pairs[pairs.status == "failed"].set_index(["moving", "method"])
    assert len(failed) == 4
    assert "subject '04'" in failed.loc[("04", "ants"), "error"] and "truncated" in failed.loc[("04", "ants"), "error"]
    assert "subject '05'" in failed.loc[("05", "affine"), "error"] and "does not exist" in failed.loc[("05", "affine"), "error"]
    # Registration did its job (the phantoms differ by an affine only; SyN > affine is tested on
    # real LPBA40 scans in test_realdata.py).
    assert (ok["dice_mean"] > 0.88).all(), ok
    summary = pd.read_csv(d / "out" / "metrics" / "summary.tsv", sep="\t")
    assert set(summary.n_failed) == {2} and set(summary.n_ok) == {2}
    # Finished results stay: a second run reruns nothing that succeeded.
    stamp = (d / "out" / "ph" / "sub-02" / "to-01" / "ants" / "metrics.json").stat().st_mtime_ns
    r2 = run_snakemake("-n", "--cores", "2", "--keep-going", *config_args(d), cwd=d)
    planned = r2.stdout + r2.stderr
    assert "rule register_method" in planned  # the failed subjects are retried ...
    assert "moving=04" in planned and "subject=05" in planned
    for done in ("moving=02", "moving=03", "subject=02", "subject=03", "subject=01"):
        assert done not in planned  # ... the finished ones are not
    assert (d / "out" / "ph" / "sub-02" / "to-01" / "ants" / "metrics.json").stat().st_mtime_ns == stamp

    # The transforms are ANTs files: ants.apply_transforms with them reproduces our warped labels.
    pair = d / "out" / "ph" / "sub-02" / "to-01" / "ants"
    tx = json.loads((pair / "transforms.json").read_text())
    fixed = ants.image_read(str(d / "out" / "ph" / "sub-01" / "anat" / "sub-01_desc-brain_T1w.nii.gz"))
    moving_labels = ants.image_read(str(d / "out" / "ph" / "sub-02" / "anat" / "sub-02_desc-preproc_dseg.nii.gz"))
    theirs = ants.apply_transforms(fixed, moving_labels, [str(pair / t) for t in tx["forward"]],
                                   interpolator="genericLabel").numpy()
    ours = np.asarray(nib.load(pair / "sub-02_space-01_desc-warped_dseg.nii.gz").dataobj)
    d_agree = dice_per_label(ours, theirs)
    assert min(d_agree.values()) >= 0.99


def test_gpu_resource_only_for_methods_set_to_cuda(phantom_cohort):
    d = phantom_cohort
    (d / "gpu.yaml").write_text("method_params:\n  torch: {device: cuda}\nslurm: {partition: cpu, gpu_partition: gpu}\n")
    r = run_snakemake("-n", "--cores", "2", "--configfile", d / "gpu.yaml", "--config", f"samples={d / 'samples.tsv'}",
                      f"outdir={d / 'out'}", "methods=[ants,torch]", cwd=d)
    assert r.returncode == 0, r.stderr
    jobs = []
    for block in (r.stdout + r.stderr).split("rule register_method:")[1:]:
        lines = block.splitlines()
        wild = next(x for x in lines if "wildcards:" in x)
        res = next(x for x in lines if "resources:" in x)
        jobs.append(("method=torch" in wild, "gpu=1" in res, "slurm_partition=gpu" in res,
                     "slurm_partition=cpu" in res))
    assert len(jobs) == 4, jobs
    assert all(is_torch == has_gpu == on_gpu_partition != on_cpu_partition
               for is_torch, has_gpu, on_gpu_partition, on_cpu_partition in jobs), jobs
    # no method on CUDA: no gpu resource at all, and no partition where none is configured
    r = run_snakemake("-n", "--cores", "2", "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}",
                      "methods=[ants,torch]", cwd=d)
    assert r.returncode == 0, r.stderr
    assert "gpu=" not in r.stdout + r.stderr and "slurm_partition" not in r.stdout + r.stderr
