# Per subject: preprocessing then brain extraction (with the subject's input QC).


rule preprocess_subject:
    input:
        unpack(get_raw_inputs),
    output:
        t1=L.preproc_t1,
        labels=L.preproc_labels,
        json=L.preproc_json,
    params:
        t1=row_value("t1"),
        labels=row_value("labels"),
        settings=config["preprocess"],
        code=CODE["preprocess"],
    log:
        L.log("preprocess"),
    benchmark:
        L.benchmark("preprocess")
    threads: res("subject", "threads")
    resources:
        mem_mb=grows("subject", "mem_mb"),
        runtime=grows("subject", "runtime"),
        **slurm_resources(),
    script:
        "../scripts/preprocess.py"


rule skullstrip_subject:
    input:
        unpack(get_mask_input),
        t1=L.preproc_t1,
        raw_json=L.preproc_json,
    output:
        brain=L.brain,
        mask=L.brain_mask,
        qc=L.subject_qc,
    params:
        settings=config["skullstrip"],
        percentiles=PERCENTILES,
        qc=SUBJECT_QC,
        seed=config["seed"],
        raw_t1=row_value("t1"),
        mask=row_value("mask"),
        code=CODE["skullstrip"],
    log:
        L.log("skullstrip"),
    benchmark:
        L.benchmark("skullstrip")
    threads: res("subject", "threads")
    resources:
        mem_mb=grows("subject", "mem_mb"),
        runtime=grows("subject", "runtime"),
        **slurm_resources(),
    script:
        "../scripts/skullstrip.py"
