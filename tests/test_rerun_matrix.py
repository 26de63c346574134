"""Reruns that are always right with batching on (issue 31's rerun matrix), on real scans at 4 mm.

Nine LPBA40 subjects (five test, three training and one validation subject of a small weakly supervised
learned model ``vxm``), a local run, so batch_size auto batches them; methods ``torch`` and its named
variant ``torch_fast``; the cohort registered to a template built from its training subjects. Each case
changes one thing and checks what is recomputed (jobs a dry run plans; items a batch job keeps) and
what is kept. Each failed on the code before issue 31 where the issue says so.
"""

import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from cohortreg.sheet.datasets import SHARED_DATA
from tests.conftest import ROOT, needs_shared_data, planned_jobs, run_snakemake

pytestmark = [needs_shared_data, pytest.mark.realdata, pytest.mark.workflow]

SUBJECTS = {"S01": "test", "S02": "test", "S03": "test", "S04": "test", "S05": "test",
            "S06": "train", "S07": "train", "S08": "train", "S09": "val"}
CONFIG = """preprocess:
  spacing: 4.0
design: template
template: {iterations: 2, method: affine, batch_size: 4}
method_params:
  torch: {preset: fast}
  torch_fast: {engine: torch, preset: fast, lr: 0.5}
  vxm: {engine: learned, supervision: weak, steps: 20, val_every: 10, checkpoint_every: 10}
"""
METHODS = "methods=[torch,torch_fast,vxm]"
TEMPLATE_RULES = {"template_reference", "template_register", "template_register_batch", "template_update",
                  "template_finish"}


def write_sheet(d, subjects):
    rows = ["cohort\tsubject\tt1\tlabels\tsplit"]
    rows += [f"lpba40\t{s}\t{s}_t1.nii.gz\t{s}_labels.nii.gz\t{split}" for s, split in subjects.items()]
    (d / "samples.tsv").write_text("\n".join(rows) + "\n")


def copy_scan(d, source, target):
    for kind, name in (("t1", "t1w_brain"), ("labels", "labels_lpba56")):
        shutil.copy(SHARED_DATA / "lpba40" / f"sub-{source}" / f"{name}.nii.gz", d / f"{target}_{kind}.nii.gz")


def args(d, *extra, cfg="cfg.yaml"):
    # One --configfile and one --config only: a second one replaces the first (argparse), it does not merge.
    return ["--cores", "2", "--configfile", d / cfg, "--config", f"samples={d / 'samples.tsv'}",
            f"outdir={d / 'out'}", METHODS, *extra]


def snakemake(d, *extra, workflow=None, cfg="cfg.yaml"):
    """Snakemake on the study; ``workflow``: a copy of the workflow with an edited package."""
    if workflow is None:
        return run_snakemake(*args(d, *extra, cfg=cfg), cwd=d)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), *map(str, args(d, *extra, cfg=cfg))]
    return subprocess.run(cmd, cwd=d, env={**os.environ, "PYTHONPATH": str(workflow)}, capture_output=True,
                          text=True, timeout=1200)


def plan(d, *extra, workflow=None, cfg="cfg.yaml"):
    r = snakemake(d, "-n", *extra, workflow=workflow, cfg=cfg)
    assert r.returncode == 0, r.stderr[-3000:]
    return planned_jobs(r.stdout + r.stderr)


def run(d, *extra, workflow=None):
    r = snakemake(d, *extra, workflow=workflow)
    assert r.returncode == 0, r.stderr[-3000:]


def kept(d, method):
    """(items, kept) of a method's register batch as its manifest records them."""
    doc = json.loads((d / "out" / "batches" / "lpba40" / method / "register" / "batch-00000.json").read_text())
    return len(doc["items"]), sum(bool(r.get("kept")) for r in doc["items"])


def edited_workflow(tmp_path, module, text="\n_EDITED = 1  # a statement: a comment reruns nothing\n"):
    """A copy of the workflow with ``text`` appended to one package module (Snakemake puts the Snakefile's
    folder first on sys.path, so the copy's package is the one its jobs import)."""
    wf = tmp_path / "wf"
    for part in ("Snakefile", "rules", "scripts", "config", "cohortreg", "report"):
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, wf / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            wf.mkdir(exist_ok=True)
            shutil.copy(ROOT / part, wf / part)
    with open(wf / "cohortreg" / module, "a") as fh:
        fh.write(text)
    return wf


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("matrix")
    for s in list(SUBJECTS) + ["S10", "S11", "S12"]:
        copy_scan(d, s, s)
    write_sheet(d, SUBJECTS)
    (d / "cfg.yaml").write_text(CONFIG)
    run(d)
    assert plan(d) == [], "a finished run plans nothing"
    return d


def rules_of(jobs):
    return Counter(r for r, _ in jobs)


def test_a_settings_change_of_one_variant_recomputes_that_variant_only(study):
    """(c) torch_fast's lr changes: its register batch only, and the study's tables."""
    (study / "cfg2.yaml").write_text(CONFIG.replace("preset: fast, lr: 0.5", "preset: fast, lr: 0.4"))
    jobs = plan(study, cfg="cfg2.yaml")
    register = [w for r, w in jobs if r == "register_batch"]
    assert {w["method"] for w in register} == {"torch_fast"}, jobs
    assert not {r for r, _ in jobs} & ({"subjects_batch", "affine_batch", "train_model"} | TEMPLATE_RULES), jobs


def test_a_retrained_model_recomputes_its_pairs_and_nothing_else(study):
    """(b) the same settings, a new model file: the learned method's pairs are recomputed, the others kept."""
    before = (study / "out" / "models" / "vxm" / "model.pt").stat().st_mtime_ns
    run(study, "--forcerun", "train_model")
    assert (study / "out" / "models" / "vxm" / "model.pt").stat().st_mtime_ns != before
    n, k = kept(study, "vxm")
    assert n > 0 and k == 0, "every pair of the retrained model is recomputed"
    assert plan(study) == []


def test_an_edit_to_the_report_figures_reruns_no_registration(study, tmp_path):
    """(d) a module that only the report imports: the report's jobs rerun, nothing of any other stage."""
    wf = edited_workflow(tmp_path, "report_figures.py")
    assert {r for r, _ in plan(study, workflow=wf)} <= {"report_figures", "mutual_info", "mask_gallery"}  # the report's


def test_appending_test_subjects_rebuilds_no_template_and_keeps_the_others(study):
    """(f) three test subjects appended to a study with a built template: their subject batch reruns
    (keeping its items), their pairs to the template are registered, and no template job reruns."""
    write_sheet(study, {**SUBJECTS, "S10": "test", "S11": "test", "S12": "test"})
    try:
        jobs = plan(study)
    finally:
        write_sheet(study, SUBJECTS)
    assert not {r for r, _ in jobs} & TEMPLATE_RULES, jobs
    assert "train_model" not in {r for r, _ in jobs}, "the model's training data did not change"
    assert "subjects_batch" in {r for r, _ in jobs}


def test_a_replaced_training_scan_retrains_the_model_and_recomputes_its_pairs(study):
    """(b) S08, a training subject, replaced by another subject's scan and labels: the model retrains (it did
    not before issue 31: its batch manifests were ancient, and Snakemake never checked the param meant to
    see the change) and its pairs are recomputed. S08 also builds the template, so that is rebuilt too."""
    copy_scan(study, "S10", "S08")
    try:
        jobs = {r for r, _ in plan(study)}
        assert {"train_model", "template_update"} <= jobs, jobs
        run(study)
        assert kept(study, "vxm")[1] == 0
    finally:
        copy_scan(study, "S08", "S08")
    assert "train_model" in {r for r, _ in plan(study)}, "restoring the scan retrains it again"
    run(study)


def test_an_engine_edit_recomputes_every_variant_of_that_engine_and_nothing_else(study, tmp_path):
    """(a) the torch engine's own module edited: torch and its variant torch_fast recompute every pair (the
    variant's items kept theirs before issue 31); the learned method (whose engine subclasses torch's but
    does not use the edited lines), the template (built with the affine method), the subjects and the
    affines are not touched."""
    wf = edited_workflow(tmp_path, "registration/torch_greedy.py")
    jobs = plan(study, workflow=wf)
    assert {w["method"] for r, w in jobs if r == "register_batch"} == {"torch", "torch_fast"}, jobs
    assert not {r for r, _ in jobs} & ({"subjects_batch", "affine_batch", "train_model"} | TEMPLATE_RULES), jobs
    run(study, workflow=wf)
    for m in ("torch", "torch_fast"):
        n, k = kept(study, m)
        assert n > 0 and k == 0, f"{m}: {k} of {n} kept after an edit of its engine"


# (e) per-job and batched runs agree on what they recompute: two copies of one small study, one per job
# (batch_size 1) and one batched (4 pairs a job), each change made to both. Per job, what is recomputed
# is the register and metrics jobs a dry run plans; batched, it is the items the batch jobs that ran did
# not keep.
TWIN_SUBJECTS = ["S01", "S02", "S03", "S04", "S05"]
TWIN_CONFIG = """preprocess:
  spacing: 4.0
batch_size: {batch_size}
method_params:
  torch: {{preset: fast}}
  torch_fast: {{engine: torch, preset: fast, lr: {lr}}}
"""
TWIN_METHODS = "methods=[torch,torch_fast]"


def twin_snakemake(d, *extra, workflow=None):
    base = ["--cores", "2", "--configfile", d / "cfg.yaml", "--config", f"samples={d / 'samples.tsv'}",
            f"outdir={d / 'out'}", TWIN_METHODS, *extra]
    if workflow is None:
        r = run_snakemake(*base, cwd=d)
    else:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), *map(str, base)]
        r = subprocess.run(cmd, cwd=d, env={**os.environ, "PYTHONPATH": str(workflow)}, capture_output=True,
                           text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def twin_config(d, lr=0.5):
    (d / "cfg.yaml").write_text(TWIN_CONFIG.format(batch_size=d.name.split("-")[-1], lr=lr))


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    out = {}
    for size in ("1", "4"):
        d = root / f"bs-{size}"
        d.mkdir()
        for s in TWIN_SUBJECTS:
            copy_scan(d, s, s)
        write_sheet(d, {s: "" for s in TWIN_SUBJECTS})
        (d / "samples.tsv").write_text((d / "samples.tsv").read_text().replace("\tsplit", "").replace("\t\n", "\n"))
        twin_config(d)
        twin_snakemake(d)
        out[size] = d
    return out


def recomputed(d, workflow=None):
    """(stage, method, moving subject) of every register and metrics result the change recomputes."""
    if d.name.endswith("-1"):
        jobs = planned_jobs(twin_snakemake(d, "-n", workflow=workflow).stdout)
        stage = {"register_method": "register", "metrics_pair": "metrics"}
        return {(stage[r], w["method"], w["moving"]) for r, w in jobs if r in stage}
    manifests = {p: p.stat().st_mtime_ns for p in (d / "out" / "batches").rglob("*.json")}
    twin_snakemake(d, workflow=workflow)
    out = set()
    for p, before in manifests.items():
        if p.parent.name in ("register", "metrics") and p.stat().st_mtime_ns != before:  # the batch job ran
            for rec in json.loads(p.read_text())["items"]:
                if not rec.get("kept"):  # "register lpba40/S02->S01 [torch_fast]"
                    stage, pair, method = rec["item"].split()
                    out.add((stage, method.strip("[]"), pair.split("/")[1].split("->")[0]))
    return out


def test_per_job_and_batched_runs_recompute_the_same_results(twins, tmp_path):
    """(e) a variant's settings, its engine's code and one subject's scan changed, one at a time, in a
    per-job and a batched copy of the same study: both recompute the same register and metrics results,
    and each change the ones it should."""
    pairs = {s for s in TWIN_SUBJECTS[1:]}
    per_job, batched = twins["1"], twins["4"]
    # a variant's settings: that variant's pairs only
    for d in (per_job, batched):
        twin_config(d, lr=0.4)
    try:
        a, b = recomputed(per_job), recomputed(batched)
    finally:
        for d in (per_job, batched):
            twin_config(d)
        twin_snakemake(batched)
    assert a == b == {(st, "torch_fast", s) for st in ("register", "metrics") for s in pairs}, (a, b)
    # the engine's code: every variant of the engine
    wf = edited_workflow(tmp_path, "registration/torch_greedy.py")
    a, b = recomputed(per_job, workflow=wf), recomputed(batched, workflow=wf)
    twin_snakemake(batched)
    assert a == b == {(st, m, s) for st in ("register", "metrics") for m in ("torch", "torch_fast") for s in pairs}
    # one moving subject's scan: its pairs in every method, nothing else
    for d in (per_job, batched):
        copy_scan(d, "S10", "S03")
    a, b = recomputed(per_job), recomputed(batched)
    assert a == b == {(st, m, "S03") for st in ("register", "metrics") for m in ("torch", "torch_fast")}, (a, b)
