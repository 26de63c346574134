# Learned methods: one training job per model the workflow trains (cohortreg.learn), before its pairs.


rule train_model:
    input:
        unpack(training_inputs),
    output:
        model=L.model(),
        curve=L.model("training.tsv"),
        figure=L.model("training.png"),
    params:
        settings=training_settings,
        pairs=training_pairs,
        val=validation_pairs,
        describe=training_description,
        out=lambda w: L.model("").format(model=w.model),
        seed=config["seed"],
        code=CODE["learn"],
    log:
        L.log("train").replace("{cohort}/sub-{subject}", "{model}"),
    benchmark:
        L.benchmark("train").replace("{cohort}/sub-{subject}", "{model}")
    threads: res("register", "threads")
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=training_runtime,
        **model_resources(),
    script:
        "../scripts/train.py"
