# Per subject: preprocessing then brain extraction.


rule preprocess_subject:
    input:
        unpack(get_raw_inputs),
    output:
        t1=L.preproc_t1,
        labels=L.preproc_labels,
    params:
        t1=row_value("t1"),
        labels=row_value("labels"),
        settings=config["preprocess"],
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
    output:
        brain=L.brain,
        mask=L.brain_mask,
    params:
        settings=config["skullstrip"],
        raw_t1=row_value("t1"),
        mask=row_value("mask"),
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
