# An unbiased template (cohortreg/template/): `snakemake template ...`. Every registration of every
# iteration is its own job (resumable at the subject and iteration where a build stopped); one update
# job per iteration averages them. Iteration 00 is the reference (the first input, or template.init),
# 01 the affine-aligned mean (init: mean), and each later one the result of one deformable update;
# the inputs registered to the last one give the template's labels.
from cohortreg.template.schedule import round_params
from cohortreg.template.batch import INPUT_STEP as TPL_INPUT_STEP
from cohortreg.template.weights import subject_weights

TPL = config["template"]
TPL_NAME = TPL["name"]
TPL_ITERATIONS = int(TPL["iterations"])
TPL_LAST = TPL_ITERATIONS + 1  # the final template's iteration number
_tpl_rows = SHEET[SHEET["cohort"].isin(TPL["cohorts"])] if TPL["cohorts"] else SHEET
if SPLIT:  # with a split column, train/val subjects build it; the test subjects are registered to it
    _tpl_rows = _tpl_rows[_tpl_rows["split"] != "test"]
TPL_INPUTS = [(c, s) for c, s in _tpl_rows.index]
TPL_WEIGHTS = subject_weights([c for c, _ in TPL_INPUTS], TPL["weighting"]) if TPL_INPUTS else []
TPL_METHOD = TPL["method"]
TPL_CODE = resolve(TPL_METHOD, configured(TPL_METHOD)).code("template")  # a round's registrations: its engine's code too
for _p in TPL.get("presets", []):  # an unknown preset is refused at start, naming it
    get_method(TPL_METHOD, configured(TPL_METHOD))({**configured(TPL_METHOD), "preset": _p})
TPL_STOP = TPL.get("stop_below_mm") is not None  # early stop: the inputs below, only then (no reruns of a study without)
TPL_FILE = str(TPL["init"]) if str(TPL["init"]).endswith((".nii", ".nii.gz")) else ""
if not TPL_INPUTS:
    TPL_REFERENCE = None  # no template can be built from this sheet; only `snakemake template` says so
elif TPL["init"] in ("mean", "") or TPL_FILE:
    TPL_REFERENCE = TPL_INPUTS[0]
else:
    TPL_REFERENCE = tuple(str(TPL["init"]).split("/", 1))


# template.batch_size (null: the study's batch_size): a round's registrations, this many inputs a job
# (cohortreg/template/batch.py); the per-input files, logs and benchmarks stay where they are.
TPL_BATCH = auto_batch_size(TPL["batch_size"] if TPL.get("batch_size") is not None else config.get("batch_size", "auto"),
                            len(TPL_INPUTS))
TPL_BATCHES = chunk(TPL_INPUTS, TPL_BATCH) if TPL_BATCH > 1 else []


if TPL_REFERENCE and not TPL_FILE and tuple(TPL_REFERENCE) not in set(SHEET.index):
    raise SheetError(f"template.init: {TPL['init']!r} is neither mean, a file nor a subject of the sheet (cohort/subject)")


TPL_OUTPUTS = {
    "T1w": tpl(L.template_file("T1w.nii.gz")),
    "mask": tpl(L.template_file("desc-brain_mask.nii.gz")),
    "convergence": tpl(L.template_doc("convergence.tsv")),
    "convergence_png": report(tpl(L.template_doc("convergence.png")), caption="../report/template.rst",
                              category="8. Templates"),
    "description": tpl(L.template_doc("template_description.json")),
}
TPL_LABELLED = sorted({c for c, s in TPL_INPUTS if ROW(c, s).get("labels")})


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
        labels=lambda w: tpl_labels(w.cohort, w.subject),
        method=config["template"]["method"],
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
        method=config["template"]["method"],
        method_params=tpl_method_params,
        affine=config["affine"],
        affine_only=lambda w: int(w.iteration) == 0,
        seed=config["seed"],
        code=TPL_CODE,
        upstream=lambda w: subject_data(TPL_BATCHES[int(w.batch)]),  # recorded beside the output (cohortreg.upstream)
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
        inputs=TPL_INPUTS,
        weights=TPL_WEIGHTS,
        files=lambda w: tpl_round_files(int(w.next) - 1),
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
        template=tpl(L.template_iter(), iteration=iteration_id(TPL_LAST)),
        **tpl_round_inputs(TPL_LAST),
        rows=[tpl(L.template_iter("update.json", "next"), next=iteration_id(j)) for j in range(1, TPL_LAST + 1)],
    output:
        **TPL_OUTPUTS,
        dseg=[tpl(L.template_file("cohort-{cohort}_dseg.nii.gz"), cohort=c) for c in TPL_LABELLED],
        probseg=[tpl(L.template_file("cohort-{cohort}_probseg.nii.gz"), cohort=c) for c in TPL_LABELLED],
    params:
        inputs=TPL_INPUTS,
        weights=TPL_WEIGHTS,
        files=tpl_round_files(TPL_LAST),
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
        brain=lambda w: tpl(L.template_file("T1w.nii.gz")) if w.subject == f"tpl-{TPL_NAME}" else [],
        mask=lambda w: tpl(L.template_file("desc-brain_mask.nii.gz")) if w.subject == f"tpl-{TPL_NAME}" else [],
        labels=lambda w: ([tpl(L.template_file("cohort-{cohort}_dseg.nii.gz"), cohort=w.cohort)]
                          if w.cohort in TPL_LABELLED else []),
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
