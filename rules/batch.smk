# batch_size > 1: the same stages, one job per batch of subjects or pairs (cohortreg.batches).
# Each job writes the per-subject files of rules/preprocess.smk, register.smk and metrics.smk and a
# manifest; the per-subject rules stay defined but nothing asks for their outputs.


# Batches (config batch_size > 1): which subjects and pairs each job holds (cohortreg.batch_plan); a
# batch job keeps its finished items (cohortreg.batches).
BATCHES = BatchPlan.build(BATCH_SIZE, L, SHEET.index, ((p.cohort, p.moving, p.fixed) for p in PAIRS),
                          (t for _plan in TRAINING.values() for t in _plan.all_pairs()))
SUBJECT_BATCH = BATCHES.subject_batch
BATCH_FUSE = bool(config.get("batch_fuse", True))

def batch_workers(family, size=None, per_item=None):
    """Items a batch job runs at once, each with its stage's threads (config batch_workers).
    auto: a local run fills --cores (a batch job is then never slower than per-subject jobs);
    on a cluster, 1 (one item's threads per job, as the profile's resources say). size: the
    batches' size (default batch_size; a template's rounds have their own)."""
    setting = config.get("batch_workers", "auto")
    if setting == "auto":
        if not LOCAL_RUN:  # rules/common.smk (workflow.local_exec is not known while parsing)
            return 1
        cores = given_cores() or os.cpu_count() or 1  # a dry run without --cores: this machine's
        setting = max(min(cores, os.cpu_count() or cores) // max(per_item or res(family, "threads"), 1), 1)
    return max(1, min(int(setting), BATCH_SIZE if size is None else size))


def batch_threads(family, size=None):
    """A batch job's threads: its workers times one item's (Snakemake caps them at --cores)."""
    return res(family, "threads") * batch_workers(family, size)


def register_batch_threads(wildcards):
    """A method's register batch: its workers times one pair's threads (rules/resources.smk)."""
    per = method_threads(wildcards.method)
    return per * batch_workers("register", per_item=per)


def batch_rows(wildcards):
    c = wildcards.cohort
    return [{"subject": s, **ROW(c, s)} for s in BATCHES.subjects_of(c, wildcards.batch)]


def batch_raw_inputs(wildcards):
    """The batch's raw files that exist (a missing one fails its subject only, inside the job)."""
    keys = ("t1", "labels", "mask") if config["skullstrip"]["method"] == "provided" else ("t1", "labels")
    return [r[k] for r in batch_rows(wildcards) for k in keys if r[k] and os.path.exists(r[k])]


def batch_pairs(wildcards):
    """The batch's pairs; a learned method's without those of the subjects that train or validate its
    model (rules/learn.smk: EXCLUDED)."""
    c, m = wildcards.cohort, getattr(wildcards, "method", None)
    return BATCHES.pairs_of(c, wildcards.batch, lambda mv, fx: evaluates(m, c, mv, fx))


def batch_subject_manifests(wildcards):
    """Subject-batch manifests of every subject in this pair batch (the reference's batch included)."""
    c = wildcards.cohort
    subjects = {s for pair in batch_pairs(wildcards) for s in pair}
    # a fixed subject that no batch makes: a built template (design: template), rules/template.smk
    made = [p.format(cohort=c, subject=s) for s in sorted(subjects) if (c, s) not in SUBJECT_BATCH
            for p in (L.brain, L.brain_mask, L.preproc_labels, L.subject_qc)]
    return BATCHES.subject_manifests(c, subjects) + made


def batch_manifests():
    """Every batch job's manifest: the last stages' are the aggregation's inputs."""
    return BATCHES.manifests(METHODS)


def retry_failed_batches(fail=False):
    """batch_size > 1: backdate the manifests of batches with failed items (and the tables), so the
    next run retries those items; say which failed. fail: then end the run with an error, as a
    failed per-subject job would (a batch job itself succeeds so that its other subjects go on)."""
    study = backdate_failed(m for m in batch_manifests() if os.path.exists(m)) if BATCH_SIZE > 1 else []
    failed = study + backdate_failed(m for m in template_batch_manifests() if os.path.exists(m))
    if study:
        for t in STUDY_TABLES.values():
            if os.path.exists(t):
                os.utime(t, (0, 0))
    if failed:
        logger.error(f"CohortReg: {len(failed)} batch items failed or were skipped (their logs say why; "
                     f"{L.table('pairs')} lists the pairs); the next run retries them:")
        for name in failed[:50]:
            logger.error(f"  {name}")
        if fail:
            from snakemake.exceptions import WorkflowError

            raise WorkflowError(f"CohortReg: {len(failed)} batch items failed (listed above)")


for _f in (batch_rows, batch_raw_inputs, batch_pairs, batch_subject_manifests, register_batch_threads):
    signed(_f)


rule subjects_batch:
    input:
        batch_raw_inputs,
    output:
        manifest=L.batch("subjects"),
    params:
        stage="subjects",
        out=L.out,
        rows=batch_rows,
        preprocess=config["preprocess"],
        skullstrip=config["skullstrip"],
        qc=SUBJECT_QC,
        seed=config["seed"],
        code=[CODE["preprocess"], CODE["skullstrip"]],
    log:
        L.batch("subjects", "logs"),
    benchmark:
        L.batch("subjects", "benchmarks")
    threads: batch_threads("subject")
    resources:
        mem_mb=grows("subject", "mem_mb", per_item=batch_workers("subject")),
        runtime=grows("subject", "runtime", per_item=2 * BATCH_SIZE),
        **slurm_resources(),
    script:
        "../scripts/batch.py"


rule affine_batch:
    input:
        batch_subject_manifests,
    output:
        manifest=L.batch("affine"),
    params:
        stage="affine",
        out=L.out,
        pairs=batch_pairs,
        settings=config["affine"],
        seed=config["seed"],
        code=CODE["affine"],
    log:
        L.batch("affine", "logs"),
    benchmark:
        L.batch("affine", "benchmarks")
    threads: batch_threads("affine")
    resources:
        mem_mb=grows("affine", "mem_mb", per_item=batch_workers("affine")),
        runtime=grows("affine", "runtime", per_item=BATCH_SIZE),
        **slurm_resources(),
    script:
        "../scripts/batch.py"


def register_batch_code(wildcards):
    """The fused job's code: the method's and, with batch_fuse, the metrics'."""
    return [method_code(wildcards), CODE["metrics"]] if BATCH_FUSE else method_code(wildcards)


# batch_fuse (default): a method's metrics items run in its register batch job, right after its
# registrations: one process and one scheduling round less per batch, the files just written still in
# the page cache. Items keep their own stamps, so a changed qc setting or metrics code reruns this job
# but recomputes only the metrics (the registrations are kept), as the separate jobs would.
rule register_batch:
    input:
        batch_subject_manifests,
        L.batch("affine"),
        model_files,
    output:
        manifest=L.batch("{method}/register"),
        **({"metrics": L.batch("{method}/metrics")} if BATCH_FUSE else {}),
    params:
        stage="register",
        out=L.out,
        pairs=batch_pairs,
        settings=method_params,
        local=LOCAL_RUN,  # a local job may run a thread-invariant engine's pairs one thread each (batches.item_threads)
        seed=config["seed"],
        code=register_batch_code,
        **({"qc": config["qc"]} if BATCH_FUSE else {}),
    log:
        L.batch("{method}/register", "logs"),
    benchmark:
        L.batch("{method}/register", "benchmarks")
    threads: register_batch_threads
    resources:
        mem_mb=grows("register", "mem_mb", per_item=batch_workers("register")),
        runtime=grows("register", "runtime", per_item=BATCH_SIZE),
        **method_resources(),
    script:
        "../scripts/batch.py"


if not BATCH_FUSE:

    rule metrics_batch:
        input:
            batch_subject_manifests,
            L.batch("{method}/register"),
        output:
            manifest=L.batch("{method}/metrics"),
        params:
            stage="metrics",
            out=L.out,
            pairs=batch_pairs,
            settings=config["qc"],
            code=CODE["metrics"],
        log:
            L.batch("{method}/metrics", "logs"),
        benchmark:
            L.batch("{method}/metrics", "benchmarks")
        threads: batch_threads("metrics")
        resources:
            mem_mb=grows("metrics", "mem_mb", per_item=batch_workers("metrics")),
            runtime=grows("metrics", "runtime", per_item=BATCH_SIZE),
            **slurm_resources(),
        script:
            "../scripts/batch.py"
