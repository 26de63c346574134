# An unbiased template (cohortreg/template/): `snakemake template ...`. Every registration of every
# iteration is its own job (resumable at the subject and iteration where a build stopped); one update
# job per iteration averages them. Iteration 00 is the reference (the first input, or template.init),
# 01 the affine-aligned mean (init: mean), and each later one the result of one deformable update;
# the inputs registered to the last one give the template's labels.
from cohortreg.template.schedule import round_params
from cohortreg.template.batch import INPUT_STEP as TPL_INPUT_STEP
from cohortreg.template.plan import TemplatePlan

# Who builds the template, its rounds and batches, every file of a round (an init that names no subject
# of the sheet is refused here); template.batch_size (null: the study's batch_size) inputs a job.
TEMPLATE = TemplatePlan.build(config["template"], SHEET, L, config.get("batch_size", "auto"))
TPL_CODE = resolve(TEMPLATE.method, configured(TEMPLATE.method)).code("template")  # a round's engine's code too
for _p in config["template"].get("presets", []):  # an unknown preset is refused at start, naming it
    get_method(TEMPLATE.method, configured(TEMPLATE.method))({**configured(TEMPLATE.method), "preset": _p})
TPL_BATCH = TEMPLATE.batch_size
TPL_LAST = TEMPLATE.last
TPL_OUTPUTS = {**TEMPLATE.outputs()}
TPL_OUTPUTS["convergence_png"] = report(TPL_OUTPUTS["convergence_png"], caption="../report/template.rst",
                                        category="8. Templates")


rule template_reference:
    input:
        tpl_reference_input,
    output:
        tpl(L.template_iter(), iteration="00"),
    params:
        pad_mm=config["template"]["pad_mm"],
        code=fingerprint("template"),
    log:
        tpl(L.template_witness("reference")),
    script:
        "../scripts/template_reference.py"


rule template_register:
    wildcard_constraints:
        iteration="[0-9]+",
    input:
        unpack(tpl_register_inputs),
    output:
        manifest=tpl(L.template_input("transforms.json")),
        warped=tpl(L.template_input("warped_T1w.nii.gz")),
        warped_labels=tpl(L.template_input("warped_dseg.nii.gz")),
    params:
        brain=lambda w: L.brain.format(cohort=w.cohort, subject=w.subject),
        labels=lambda w: TEMPLATE.labels(w.cohort, w.subject),
        method=TEMPLATE.method,
        method_params=tpl_method_params,
        affine=config["affine"],
        affine_only=lambda w: int(w.iteration) == 0,
        seed=config["seed"],
        code=TPL_CODE,
        upstream=lambda w: subject_data([(w.cohort, w.subject)]),  # recorded beside the output (cohortreg.upstream)
    log:
        tpl(L.template_witness(TPL_INPUT_STEP)),
    benchmark:
        tpl(L.template_witness(TPL_INPUT_STEP, "benchmarks"))
    threads: res("register", "threads")
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime"),
        **tpl_method_resources(),
    script:
        "../scripts/template_register.py"


rule template_register_batch:
    wildcard_constraints:
        iteration="[0-9]+",
        batch="[0-9]+",
    input:
        unpack(tpl_batch_inputs),
    output:
        manifest=tpl(L.template_batch()),
    params:
        out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
        batch_inputs=tpl_batch_items,
        method=TEMPLATE.method,
        method_params=tpl_method_params,
        affine=config["affine"],
        affine_only=lambda w: int(w.iteration) == 0,
        seed=config["seed"],
        code=TPL_CODE,
        upstream=lambda w: subject_data(TEMPLATE.batches[int(w.batch)]),  # recorded beside the output (cohortreg.upstream)
    log:
        tpl(L.template_batch("logs")),
    benchmark:
        tpl(L.template_batch("benchmarks"))
    threads: batch_threads("register", TPL_BATCH)
    resources:
        mem_mb=grows("register", "mem_mb", per_item=batch_workers("register", TPL_BATCH)),
        runtime=grows("register", "runtime", per_item=TPL_BATCH),
        **tpl_method_resources(),
    script:
        "../scripts/template_register_batch.py"


rule template_update:
    wildcard_constraints:
        next="0[1-9]|[1-9][0-9]",
    input:
        unpack(tpl_update_inputs),
    output:
        template=tpl(L.template_iter(which="next")),
        row=tpl(L.template_iter("update.json", "next")),
        png=tpl(L.template_iter("slices.png", "next")),
    params:
        inputs=list(TEMPLATE.inputs),
        weights=TEMPLATE.weights,
        files=lambda w: TEMPLATE.round_files(int(w.next) - 1),
        settings=config["template"],
        code=fingerprint("template"),
    log:
        tpl(L.template_witness("update-{next}")),
    benchmark:
        tpl(L.template_witness("update-{next}", "benchmarks"))
    threads: 1
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime"),
        **slurm_resources(),
    script:
        "../scripts/template_update.py"


rule template_finish:
    input:
        template=TEMPLATE.iteration(TPL_LAST),
        **TEMPLATE.round_inputs(TPL_LAST),
        rows=[TEMPLATE.update_row(j) for j in range(1, TPL_LAST + 1)],
    output:
        **TPL_OUTPUTS,
        dseg=TEMPLATE.label_maps("dseg"),
        probseg=TEMPLATE.label_maps("probseg"),
    params:
        inputs=list(TEMPLATE.inputs),
        weights=TEMPLATE.weights,
        files=TEMPLATE.round_files(TPL_LAST),
        settings=config["template"],
        method_params=tpl_method_params,
        affine=config["affine"],
        dseg=lambda w: tpl(L.template_file("cohort-{cohort}_dseg.nii.gz")),  # a pattern, formatted per cohort
        probseg=lambda w: tpl(L.template_file("cohort-{cohort}_probseg.nii.gz")),
        code=fingerprint("template"),
    log:
        tpl(L.template_witness("finish")),
    threads: 1
    script:
        "../scripts/template_finish.py"


rule template:
    input:
        rules.template_finish.output,


# design: template: the built template stands in as the fixed "subject" tpl-{name} of every cohort, so
# the normal register and metrics rules run unchanged; its labels there are the cohort's own labels
# on the template (an empty map for a cohort without them: Dice is then not defined).
rule template_as_subject:
    wildcard_constraints:
        subject="tpl-[A-Za-z0-9]+",
    input:
        brain=lambda w: tpl(L.template_file("T1w.nii.gz")) if w.subject == f"tpl-{TEMPLATE.name}" else [],
        mask=lambda w: tpl(L.template_file("desc-brain_mask.nii.gz")) if w.subject == f"tpl-{TEMPLATE.name}" else [],
        labels=lambda w: ([tpl(L.template_file("cohort-{cohort}_dseg.nii.gz"), cohort=w.cohort)]
                          if w.cohort in TEMPLATE.labelled_cohorts else []),
    output:
        t1=L.preproc_t1,
        labels=L.preproc_labels,
        raw_json=L.preproc_json,
        brain=L.brain,
        mask=L.brain_mask,
        qc=L.subject_qc,
    params:
        qc=config["qc"],
        code=fingerprint("template"),
    log:
        L.log("template_as_subject"),
    threads: 1
    script:
        "../scripts/template_as_subject.py"
