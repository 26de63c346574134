# Per pair: affine initialisation, then each configured method (a plug-in by name).


rule affine_pair:
    input:
        fixed=of(L.brain, "fixed"),
        moving=of(L.brain, "moving"),
    output:
        mat=L.affine,
    params:
        settings=config["affine"],
        seed=config["seed"],
        code=CODE["affine"],
    log:
        L.log("affine", pair=True),
    benchmark:
        L.benchmark("affine", pair=True)
    threads: res("affine", "threads")
    resources:
        mem_mb=grows("affine", "mem_mb"),
        runtime=grows("affine", "runtime"),
        **slurm_resources(),
    script:
        "../scripts/affine.py"


rule register_method:
    input:
        unpack(model_input),
        fixed=of(L.brain, "fixed"),
        moving=of(L.brain, "moving"),
        moving_labels=of(L.preproc_labels, "moving"),
        affine=L.affine,
    output:
        manifest=L.method_file("transforms.json"),
        warped=L.warped_t1,
        warped_labels=L.warped_labels,
    params:
        method_params=method_params,
        seed=config["seed"],
        code=method_code,
    log:
        L.log("register"),
    benchmark:
        L.benchmark("register")
    threads: register_threads
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime"),
        **method_resources(),
    script:
        "../scripts/register.py"
