# Functions of rules/batch.smk (its input, param and resource functions and the helpers they use),
# kept apart from its rules (snakemake --lint); included just before it.


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
    route = template_route_files() if ROUTE_BATCH_JOBS else []  # the template route's batch manifests
    labelling = backdate_failed(m for m in label_batch_manifests() + route if os.path.exists(m))
    failed = study + labelling + backdate_failed(m for m in template_batch_manifests() if os.path.exists(m))
    if labelling:
        for t in labelling_outputs():
            if os.path.exists(t):
                os.utime(t, (0, 0))
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


def register_batch_code(wildcards):
    """The fused job's code: the method's and, with batch_fuse, the metrics'."""
    return [method_code(wildcards), CODE["metrics"]] if BATCH_FUSE else method_code(wildcards)
