# batch_size > 1: the same stages, one job per batch of subjects or pairs (cohortreg.batches.items).
# Each job writes the per-subject files of rules/preprocess.smk, register.smk and metrics.smk and a
# manifest; the per-subject rules stay defined but nothing asks for their outputs.


# Batches (config batch_size > 1): which subjects and pairs each job holds (cohortreg.batches.plan); a
# batch job keeps its finished items (cohortreg.batches.items).
BATCHES = BatchPlan.build(BATCH_SIZE, L, SHEET.index, ((p.cohort, p.moving, p.fixed) for p in PAIRS),
                          (t for _plan in TRAINING.values() for t in _plan.all_pairs()))
SUBJECT_BATCH = BATCHES.subject_batch
BATCH_FUSE = bool(config.get("batch_fuse", True))

rule subjects_batch:
    input:
        batch_raw_inputs,
    output:
        manifest=L.batch("subjects"),
    params:
        stage="subjects",
        out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
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
        out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
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
        out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
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
            out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
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
