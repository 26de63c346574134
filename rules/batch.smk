# batch_size > 1: the same stages, one job per batch of subjects or pairs (cohortreg.batches).
# Each job writes the per-subject files of rules/preprocess.smk, register.smk and metrics.smk and a
# manifest; the per-subject rules stay defined but nothing asks for their outputs.


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
        qc=config["qc"],
        seed=config["seed"],
        code=[CODE["preprocess"], CODE["skullstrip"]],
    log:
        L.batch("subjects", "logs"),
    benchmark:
        L.batch("subjects", "benchmarks")
    threads: res("subject", "threads")
    resources:
        mem_mb=grows("subject", "mem_mb"),
        runtime=grows("subject", "runtime", per_item=2 * BATCH_SIZE),
        **slurm_resources(),
    script:
        "../scripts/batch.py"


rule affine_batch:
    input:
        batch_subject_manifests,
    output:
        manifest=L.batch("init"),
    params:
        stage="affine",
        out=L.out,
        pairs=batch_pairs,
        settings=config["affine"],
        seed=config["seed"],
        code=CODE["affine"],
    log:
        L.batch("init", "logs"),
    benchmark:
        L.batch("init", "benchmarks")
    threads: res("affine", "threads")
    resources:
        mem_mb=grows("affine", "mem_mb"),
        runtime=grows("affine", "runtime", per_item=BATCH_SIZE),
        **slurm_resources(),
    script:
        "../scripts/batch.py"


rule register_batch:
    input:
        batch_subject_manifests,
        L.batch("init"),
    output:
        manifest=L.batch("{method}/register"),
    params:
        stage="register",
        out=L.out,
        pairs=batch_pairs,
        settings=method_params,
        seed=config["seed"],
        code=method_code,
    log:
        L.batch("{method}/register", "logs"),
    benchmark:
        L.batch("{method}/register", "benchmarks")
    threads: res("register", "threads")
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime", per_item=BATCH_SIZE),
        **method_resources(),
    script:
        "../scripts/batch.py"


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
    threads: res("metrics", "threads")
    resources:
        mem_mb=grows("metrics", "mem_mb"),
        runtime=grows("metrics", "runtime", per_item=BATCH_SIZE),
        **slurm_resources(),
    script:
        "../scripts/batch.py"
