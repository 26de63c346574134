# Config and sample-sheet validation, the pair design, wildcard constraints and input functions.
import inspect
import os

from snakemake.utils import validate

from cohortreg.aggregate import PairResult, write_tables
from cohortreg.batches import auto_batch_size, backdate_failed, batch_id, chunk
from cohortreg.paths import Layout
from cohortreg.provenance import STAGES, fingerprint
from cohortreg.registration import get_method
from cohortreg.samples import SheetError, SubjectIndex, design_pairs, missing_files, read_sheet

validate(config, "../config/schemas/config.schema.yaml")

if not config["samples"]:
    raise SheetError(
        "no sample sheet: run with --config samples=PATH (a TSV with columns cohort, subject, t1 "
        "[, labels, mask, split] or a BIDS root); `cohortreg-demo DIR` makes a synthetic one"
    )
SHEET = read_sheet(config["samples"])
for _msg in missing_files(SHEET):
    logger.warning(f"CohortReg: {_msg} (that subject's jobs will fail; the others run with --keep-going)")
ROW = SubjectIndex(SHEET)
PAIRS = design_pairs(SHEET, config["design"], config.get("reference"), config.get("pairs"))
METHODS = list(config["methods"])
L = Layout(config["outdir"].rstrip("/"))
BATCH_SIZE = auto_batch_size(config.get("batch_size", "auto"), len(SHEET))
if config.get("batch_size", "auto") == "auto" and BATCH_SIZE > 1:
    logger.info(f"CohortReg: {len(SHEET)} subjects: batch_size auto -> {BATCH_SIZE} (one job per {BATCH_SIZE} "
                "subjects or pairs and stage; README: Very large cohorts)")
# Which code makes each stage's outputs (cohortreg.provenance): a rule param, so that editing or
# upgrading the engine reruns what it made (--rerun-triggers params) and nothing else.
CODE = {stage: fingerprint(stage) for stage in STAGES}
PERCENTILES = [config["preprocess"]["lower_percentile"], config["preprocess"]["upper_percentile"]]
if BATCH_SIZE <= 1 and len(SHEET) >= 2000:  # bench/results/scale_dry_run.json: ~27 ms per subject to plan
    logger.warning(
        f"CohortReg: {len(SHEET)} subjects with batch_size 1 is about {7 * len(SHEET)} jobs; planning them alone "
        "(2-core VM, bench/results/scale_dry_run.json) "
        f"takes ~{0.027 * len(SHEET):.0f} s and ~{0.16 * len(SHEET) + 100:.0f} MB. Consider --config batch_size=50 "
        "(one job per 50 subjects or pairs and stage; README: Very large cohorts)."
    )


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    subject="[A-Za-z0-9_-]+",
    moving="[A-Za-z0-9_-]+",
    fixed="[A-Za-z0-9_-]+",
    method="|".join(METHODS),
    batch="[0-9]+",


def signed(func):
    """Store a callable's parameters on it, through Snakemake's own overwrite_function_params hook.

    Snakemake runs inspect.signature on every input function, param function and resource of
    every job (twice for a callable resource): at 5,000 subjects that was half the dry run.
    Done once here, the lookup is an attribute read. Harmless where the hook is missing.
    """
    try:
        from snakemake.common import overwrite_function_params

        overwrite_function_params(func, inspect.signature(func).parameters)
    except Exception:  # an older or newer Snakemake: it inspects the function itself
        pass
    return func


try:  # every resource, constants included, is evaluated through Resource.evaluate(*args, **kwargs)
    from snakemake.resources import Resource as _Resource

    signed(_Resource.evaluate)
except Exception:
    pass


def res(family, key):
    return config["resources"][family][key]


def grows(family, key, per_item=1):
    """Memory and runtime grow with the attempt: a job SLURM killed for either is retried with more.
    per_item: the batch rules' runtime is per subject or pair, times the items in the batch."""
    base = res(family, key) * per_item
    cap = config["slurm"].get("max_runtime", 0) if key == "runtime" else 0
    if cap:
        return signed(lambda wildcards, attempt: min(base * attempt, cap))
    return signed(lambda wildcards, attempt: base * attempt)


def slurm_resources(partition=None):
    """slurm_partition / slurm_account only where set: each resource costs Snakemake work per job."""
    out = {"slurm_partition": partition or config["slurm"]["partition"], "slurm_account": config["slurm"]["account"]}
    return {k: v for k, v in out.items() if v}


def method_resources():
    """register_method's gpu and partition: functions of the method only when some method may want
    a GPU (a function resource is evaluated per job), plain values otherwise."""
    if not any(gpus_for(m) for m in METHODS):
        return slurm_resources()
    return {"gpu": signed(gpus), **slurm_resources(partition=signed(slurm_partition))}


def slurm_partition(wildcards):
    """SLURM partition of a method's job: the GPU one for GPU jobs, else the CPU one ('' = default).

    Only register_method needs a function; other rules take config["slurm"]["partition"] as a
    plain value (a function resource costs Snakemake an inspect.signature per job: seconds at 20k).
    """
    if gpus(wildcards) and config["slurm"]["gpu_partition"]:
        return config["slurm"]["gpu_partition"]
    return config["slurm"]["partition"]


def get_row(wildcards, who="subject"):
    return ROW(wildcards.cohort, getattr(wildcards, who))


def get_raw_inputs(wildcards):
    """Raw files that exist: a missing one is reported by the job itself, naming the subject."""
    row = get_row(wildcards)
    return {k: row[k] for k in ("t1", "labels") if row[k] and os.path.exists(row[k])}


def get_mask_input(wildcards):
    row = get_row(wildcards)
    if config["skullstrip"]["method"] == "provided" and row["mask"] and os.path.exists(row["mask"]):
        return {"raw_mask": row["mask"]}
    return {}


def of(pattern, who):
    """Input function: a per-subject file of the pair's moving or fixed subject."""
    return signed(lambda w: pattern.format(cohort=w.cohort, subject=getattr(w, who)))


def params_of(method):
    return dict(config.get("method_params", {}).get(method, {}))


def method_params(wildcards):
    return params_of(wildcards.method)


def method_code(wildcards):
    return fingerprint("register", wildcards.method)


def row_value(key):
    """Param function: one sheet column of the job's subject."""
    return signed(lambda w: get_row(w)[key])


def gpus_for(method):
    """gpu=1 (the SLURM plugin's --gpus=1) for a GPU-capable method set to device cuda or to gpu: true."""
    params = params_of(method)
    wants = bool(params.get("gpu", False)) or str(params.get("device", "cpu")).startswith("cuda")
    return int(get_method(method).uses_gpu and wants)


def gpus(wildcards):
    return gpus_for(wildcards.method)


def pair_results():
    """Where each (pair, method)'s results and witnesses are. Patterns built once: 40,000 results
    at 20,000 subjects, each with seven log paths."""
    pre, strip = L.log("preprocess"), L.log("skullstrip")
    aff_log, reg_log, met_log = L.log("affine", pair=True), L.log("register"), L.log("metrics")
    metrics, labels = L.method_file("metrics.json"), L.method_file("labels.tsv")
    bench, bench_aff = L.benchmark("register"), L.benchmark("affine", pair=True)
    out = []
    for p in PAIRS:
        ids0 = dict(cohort=p.cohort, moving=p.moving, fixed=p.fixed)
        subj_logs = tuple(pat.format(cohort=p.cohort, subject=s) for s in (p.moving, p.fixed) for pat in (pre, strip))
        aff = aff_log.format(**ids0, method="")
        for m in METHODS:
            ids = dict(ids0, method=m)
            out.append(PairResult(**ids, metrics=metrics.format(**ids), labels=labels.format(**ids),
                                  benchmark=bench.format(**ids), benchmark_affine=bench_aff.format(**ids),
                                  logs=subj_logs + (aff, reg_log.format(**ids), met_log.format(**ids))))
    return out


def write_partial_tables():
    """On a failed run (e.g. --keep-going with a bad subject) still write the cohort tables.

    They are stamped with a 1970 mtime: older than any input, so the next run sees them as out
    of date and retries the failed subjects instead of taking the partial tables as final.
    """
    try:
        tables = [L.table("pairs"), L.table("labels"), L.table("summary")]
        pairs = write_tables(RESULTS, *tables, qc=config["qc"])
        for t in tables:
            os.utime(t, (0, 0))
        bad = pairs[pairs["status"] != "ok"]
        logger.error(f"CohortReg: {len(bad)} of {len(pairs)} pair results failed; see {L.table('pairs')}:")
        for r in bad.itertuples():
            logger.error(f"  {r.cohort}/{r.moving} -> {r.fixed} [{r.method}]: {r.error}")
    except Exception as exc:  # never mask the original failure
        logger.error(f"CohortReg: could not write partial tables: {exc}")


for _f in (get_row, get_raw_inputs, get_mask_input, method_params, method_code):
    signed(_f)

RESULTS = pair_results()


# Batches (config batch_size > 1, rules/batch.smk): consecutive subjects of a cohort in sheet order,
# and consecutive pairs of a cohort in design order. Appending subjects to a sheet only touches the
# cohort's last batch; a batch job keeps its finished items (cohortreg.batches).
SUBJECT_BATCHES, SUBJECT_BATCH, PAIR_BATCHES = {}, {}, {}
if BATCH_SIZE > 1:
    for _c, _s in SHEET.index:
        SUBJECT_BATCHES.setdefault(_c, []).append(_s)
    SUBJECT_BATCHES = {c: chunk(s, BATCH_SIZE) for c, s in SUBJECT_BATCHES.items()}
    SUBJECT_BATCH = {(c, s): batch_id(i) for c, bs in SUBJECT_BATCHES.items() for i, b in enumerate(bs) for s in b}
    for _p in PAIRS:
        PAIR_BATCHES.setdefault(_p.cohort, []).append((_p.moving, _p.fixed))
    PAIR_BATCHES = {c: chunk(p, BATCH_SIZE) for c, p in PAIR_BATCHES.items()}


def batch_rows(wildcards):
    c = wildcards.cohort
    return [{"subject": s, **ROW(c, s)} for s in SUBJECT_BATCHES[c][int(wildcards.batch)]]


def batch_raw_inputs(wildcards):
    """The batch's raw files that exist (a missing one fails its subject only, inside the job)."""
    keys = ("t1", "labels", "mask") if config["skullstrip"]["method"] == "provided" else ("t1", "labels")
    return [r[k] for r in batch_rows(wildcards) for k in keys if r[k] and os.path.exists(r[k])]


def batch_pairs(wildcards):
    return PAIR_BATCHES[wildcards.cohort][int(wildcards.batch)]


def batch_subject_manifests(wildcards):
    """Subject-batch manifests of every subject in this pair batch (the reference's batch included)."""
    c = wildcards.cohort
    ids = sorted({SUBJECT_BATCH[(c, s)] for pair in batch_pairs(wildcards) for s in pair})
    return [L.batch("subjects").format(cohort=c, batch=b) for b in ids]


def batch_manifests():
    """Every batch job's manifest: the last stages' are the aggregation's inputs."""
    out = [L.batch("subjects").format(cohort=c, batch=batch_id(i)) for c, bs in SUBJECT_BATCHES.items()
           for i in range(len(bs))]
    for c, bs in PAIR_BATCHES.items():
        for i in range(len(bs)):
            b = batch_id(i)
            out.append(L.batch("init").format(cohort=c, batch=b))
            out += [L.batch(f"{m}/{stage}").format(cohort=c, batch=b) for m in METHODS for stage in ("register", "metrics")]
    return out


def aggregate_inputs():
    if BATCH_SIZE > 1:  # per-pair benchmark files are written by the batch jobs, not tracked
        return {"metrics": [m for m in batch_manifests() if "/metrics/batch-" in m]}
    return {"metrics": [r.metrics for r in RESULTS],
            "benchmarks": [b for r in RESULTS for b in (r.benchmark, r.benchmark_affine)]}


def retry_failed_batches(fail=False):
    """batch_size > 1: backdate the manifests of batches with failed items (and the tables), so the
    next run retries those items; say which failed. fail: then end the run with an error, as a
    failed per-subject job would (a batch job itself succeeds so that its other subjects go on)."""
    if BATCH_SIZE <= 1:
        return
    failed = backdate_failed(m for m in batch_manifests() if os.path.exists(m))
    if failed:
        for t in (L.table("pairs"), L.table("labels"), L.table("summary")):
            if os.path.exists(t):
                os.utime(t, (0, 0))
        logger.error(f"CohortReg: {len(failed)} batch items failed or were skipped (their logs say why; "
                     f"{L.table('pairs')} lists the pairs); the next run retries them:")
        for name in failed[:50]:
            logger.error(f"  {name}")
        if fail:
            from snakemake.exceptions import WorkflowError

            raise WorkflowError(f"CohortReg: {len(failed)} batch items failed (listed above)")


for _f in (batch_rows, batch_raw_inputs, batch_pairs, batch_subject_manifests):
    signed(_f)
