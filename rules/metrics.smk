# Per pair metrics, then the cohort tables.


rule metrics_pair:
    input:
        fixed_labels=of(L.preproc_labels, "fixed"),
        moving_labels=of(L.preproc_labels, "moving"),
        fixed_mask=of(L.brain_mask, "fixed"),
        fixed_brain=of(L.brain, "fixed"),
        moving_qc=of(L.subject_qc, "moving"),
        fixed_qc=of(L.subject_qc, "fixed"),
        warped=rules.register_method.output.warped,
        warped_labels=rules.register_method.output.warped_labels,
        manifest=rules.register_method.output.manifest,
    output:
        json=L.method_file("metrics.json"),
        labels=L.method_file("labels.tsv"),
        picture=report(L.qc_picture, caption="../report/qc_pair.rst", category="3b. QC: every pair",
                       subcategory="{cohort}", labels={"moving": "{moving}", "fixed": "{fixed}", "method": "{method}"})
        if INLINE_PICTURES else L.qc_picture,
    params:
        qc=config["qc"],
        code=CODE["metrics"],
    log:
        L.log("metrics"),
    benchmark:
        L.benchmark("metrics")
    threads: res("metrics", "threads")
    resources:
        mem_mb=grows("metrics", "mem_mb"),
        runtime=grows("metrics", "runtime"),
        **slurm_resources(),
    script:
        "../scripts/metrics_pair.py"


AGGREGATE_INPUTS = aggregate_inputs()


rule aggregate:
    input:
        **AGGREGATE_INPUTS,
    output:
        pairs=L.table("pairs"),  # in the report as report_figures' copies: this job's params list every pair
        labels=L.table("labels"),
        summary=L.table("summary"),
        stats=L.table("stats"),
        domain_shift=L.table("domain_shift"),
    params:
        methods=METHODS,
        results=RESULTS,
        manifests=AGGREGATE_INPUTS["metrics"] if BATCH_SIZE > 1 else [],
        qc=config["qc"],
        code=CODE["aggregate"],
    log:
        L.study_log("aggregate"),
    threads: 1
    script:
        "../scripts/aggregate.py"
