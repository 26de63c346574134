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
        pairs=report(L.table("pairs"), caption="../report/pairs.rst", category="1. Accuracy", labels={"table": "pairs"}),
        labels=L.table("labels"),
        summary=report(L.table("summary"), caption="../report/summary.rst", category="1. Accuracy",
                       labels={"table": "summary"}),
        stats=report(L.table("stats"), caption="../report/stats.rst", category="2. Paired statistics",
                     labels={"table": "stats"}),
        domain_shift=report(L.table("domain_shift"), caption="../report/domain_shift.rst", category="5. Domain shift",
                            labels={"table": "domain_shift"}),
    params:
        methods=METHODS,
        results=RESULTS,
        manifests=AGGREGATE_INPUTS["metrics"] if BATCH_SIZE > 1 else [],
        qc=config["qc"],
        code=CODE["aggregate"],
    log:
        f"{L.out}/logs/aggregate.log",
    threads: 1
    script:
        "../scripts/aggregate.py"
