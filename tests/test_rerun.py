"""Re-running only what changed (issue 4), on a small real cohort (3 LPBA40 subjects at 3 mm).

One real run, then a change and a dry-run: the planned jobs must be exactly those that depend on
the change. Last, a run killed with SIGKILL resumes with --rerun-incomplete and loses nothing.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from cohortreg.sheet.datasets import SHARED_DATA
from tests.conftest import ROOT, needs_shared_data, planned_jobs, run_snakemake

pytestmark = [needs_shared_data, pytest.mark.realdata, pytest.mark.workflow]

CONFIG = "preprocess:\n  spacing: 3.0\nmethod_params:\n  torch: {preset: fast}\n  ants: {preset: fast}\n"


def make_cohort(d, subjects):
    """Copies of LPBA40 scans in d (so a test may replace one) and a sheet listing ``subjects``."""
    for s in ("S01", "S02", "S03", "S04"):
        for kind, name in (("t1", "t1w_brain"), ("labels", "labels_lpba56")):
            shutil.copy(SHARED_DATA / "lpba40" / f"sub-{s}" / f"{name}.nii.gz", d / f"{s}_{kind}.nii.gz")
    write(d, subjects)
    (d / "cfg.yaml").write_text(CONFIG)


def write(d, subjects):
    rows = ["cohort\tsubject\tt1\tlabels"] + [f"lpba40\t{s}\t{s}_t1.nii.gz\t{s}_labels.nii.gz" for s in subjects]
    (d / "samples.tsv").write_text("\n".join(rows) + "\n")


def args(d, *extra, cfg="cfg.yaml"):
    # One --configfile only: a second one replaces the first (argparse), it does not merge.
    return ["--cores", "2", "--configfile", d / cfg, "--config", f"samples={d / 'samples.tsv'}",
            f"outdir={d / 'out'}", "methods=[affine,torch]", *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    d = tmp_path_factory.mktemp("rerun")
    make_cohort(d, ["S01", "S02", "S03"])
    r = run_snakemake(*args(d), cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_snakemake("-n", *args(d), cwd=d)
    assert planned_jobs(r.stdout + r.stderr) == [], "a finished run plans nothing"
    return d


def plan(d, *extra, cfg=None):
    """Jobs a dry-run plans; ``cfg`` replaces the study's config file for this run."""
    if cfg is not None:
        (d / "cfg2.yaml").write_text(cfg)
    r = run_snakemake("-n", *args(d, *extra, cfg="cfg2.yaml" if cfg is not None else "cfg.yaml"), cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    return planned_jobs(r.stdout + r.stderr)


# Study-level jobs (no subject): the tables, then the report's MI table and figures (issue 17).
STUDY = {"aggregate", "mutual_info", "report_figures", "method_choice", "dataset_description", "mask_gallery"}
# the study-level jobs downstream of the tables, which rerun whenever the tables do (a few seconds each): the
# derivative's description and methods paragraph, and the report's brain-mask pictures
AFTER_TABLES = {"dataset_description": 1, "mask_gallery": 1}


def test_adding_a_subject_runs_only_that_subject(finished):
    d = finished
    write(d, ["S01", "S02", "S03", "S04"])
    try:
        jobs = plan(d)
    finally:
        write(d, ["S01", "S02", "S03"])
    subjects = {w.get("subject") or w.get("moving") for r, w in jobs if r not in STUDY}
    assert subjects == {"S04"}, jobs
    assert Counter(r for r, _ in jobs) == {"preprocess_subject": 1, "skullstrip_subject": 1, "affine_pair": 1,
                                           "register_method": 2, "metrics_pair": 2, "aggregate": 1,
                                           "mutual_info": 1, "report_figures": 1, **AFTER_TABLES}, jobs


def test_a_study_without_overlays_gets_them_rerunning_only_those_metrics(finished):
    """A study made before the QC overlays and the report existed gets the overlays on its next run
    (issue 17): the report's job asks for them. (With the report already made, a deleted overlay is
    an intermediate file like a deleted warped image: Snakemake leaves it until something downstream
    reruns.)"""
    out = finished / "out"
    files = [out / "lpba40" / "sub-S02" / "to-S01" / "torch" / "sub-S02_space-S01_desc-overlay_T1w.png",
             out / "report" / "dice.png"]
    kept = [(f, f.read_bytes(), f.stat()) for f in files]
    for f in files:
        f.unlink()
    try:
        r = run_snakemake("-n", *args(finished), cwd=finished)
    finally:
        for f, data, stat in kept:
            f.write_bytes(data)
            os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    jobs = planned_jobs(r.stdout + r.stderr)
    assert Counter(r for r, _ in jobs) == {"metrics_pair": 1, "aggregate": 1, "report_figures": 1, **AFTER_TABLES}, \
        (r.stdout + r.stderr)[-3000:]
    assert [w["moving"] for r, w in jobs if r == "metrics_pair"] == ["S02"]


def test_replacing_a_t1_reruns_that_subject_only(finished):
    d = finished
    t1 = d / "S03_t1.nii.gz"
    stat = t1.stat()
    os.utime(t1, (time.time(), time.time()))  # a re-exported scan: newer file, same name
    try:
        jobs = plan(d)
    finally:
        os.utime(t1, (stat.st_atime, stat.st_mtime))
    assert {w.get("subject") or w.get("moving") for r, w in jobs if r not in STUDY} == {"S03"}, jobs
    assert Counter(r for r, _ in jobs)["preprocess_subject"] == 1


def test_changing_one_methods_parameters_reruns_that_method_only(finished):
    jobs = plan(finished, cfg=CONFIG.replace("torch: {preset: fast}", "torch: {preset: fast, iterations: [60, 30]}"))
    assert {r for r, _ in jobs} == {"register_method", "metrics_pair", "aggregate", "report_figures", *AFTER_TABLES}, jobs
    assert {w["method"] for r, w in jobs if r not in STUDY} == {"torch"}
    assert len([1 for r, _ in jobs if r == "register_method"]) == 2


def test_changing_the_reference_reruns_its_pairs_only(finished):
    jobs = plan(finished, "reference={lpba40: S02}")
    assert {r for r, _ in jobs} == {"affine_pair", "register_method", "metrics_pair", "aggregate", "report_figures",
                                    *AFTER_TABLES}, jobs
    assert {(w["moving"], w["fixed"]) for r, w in jobs if r == "affine_pair"} == {("S01", "S02"), ("S03", "S02")}


def test_editing_the_torch_engine_reruns_what_it_made_only(finished, tmp_path):
    """The rules' params carry a fingerprint of the code each stage runs (cohortreg.provenance): a copy
    of the workflow with the torch engine edited reruns torch's registrations, nothing else.
    (A copy of the whole workflow: Snakemake puts the Snakefile's folder first on sys.path.)"""
    wf = tmp_path / "wf"
    wf.mkdir()
    for part in ("Snakefile", "rules", "scripts", "config", "cohortreg", "report"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        kw = {"symlinks": True, "ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / part).is_dir() else {}
        copy(ROOT / part, wf / part, **kw)
    with open(wf / "cohortreg" / "registration" / "torch_greedy.py", "a") as fh:  # the torch method's own module
        fh.write("\n_EDITED = 1  # an edit of the engine (a comment alone reruns nothing)\n")
    env = {**os.environ, "PYTHONPATH": str(wf)}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(wf / "Snakefile"), "-n", *map(str, args(finished))]
    r = subprocess.run(cmd, cwd=finished, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = planned_jobs(r.stdout + r.stderr)
    assert Counter(r for r, _ in jobs) == {"register_method": 2, "metrics_pair": 2, "aggregate": 1,
                                           "report_figures": 1, **AFTER_TABLES}, jobs
    assert {w["method"] for r, w in jobs if r not in STUDY} == {"torch"}


def test_a_killed_run_resumes_and_keeps_finished_results(tmp_path):
    d = tmp_path
    make_cohort(d, ["S01", "S02", "S03"])
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *map(str, args(d))]
    proc = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = d / "out"
    deadline = time.time() + 600
    while time.time() < deadline and not list(out.rglob("metrics.json")):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the scheduler and its running jobs, mid-way
    proc.wait()
    # Where a pair's metrics job had started, its registration job had finished: those files are
    # final (the metrics job itself may have been cut mid-way, so its own outputs, the tables and the
    # overlay picture, are left out).
    done = {p: (p.stat().st_mtime_ns, p.read_bytes()) for m in out.rglob("metrics.json") for p in m.parent.iterdir()
            if p.name not in ("metrics.json", "labels.tsv") and not p.name.endswith("_desc-overlay_T1w.png")}
    assert done, "killed before any pair finished"
    assert not (out / "metrics" / "pairs.tsv").exists(), "killed after the end: nothing to resume"
    r = run_snakemake("--unlock", *args(d), cwd=d)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_snakemake("--rerun-incomplete", *args(d), cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "metrics" / "pairs.tsv").exists()
    for p, (mtime, data) in done.items():
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == data, f"{p} was redone or changed"


def test_mtime_only_reruns_are_flagged_at_start(phantom_cohort):
    """--rerun-triggers mtime: Snakemake keeps a job whose output exists although an input it now lists is
    missing, so an appended subject could silently get no results; the run says so at start."""
    d = phantom_cohort
    args = ("-n", "--cores", "1", "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}", "methods=[affine]")
    r = run_snakemake(*args, "--rerun-triggers", "mtime", cwd=d)
    assert r.returncode == 0 and "subjects appended to the sheet may get NO results" in r.stdout + r.stderr
    r = run_snakemake(*args, cwd=d)
    assert r.returncode == 0 and "may get NO results" not in r.stdout + r.stderr
