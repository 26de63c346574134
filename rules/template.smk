# An unbiased template (cohortreg/template/): `snakemake template ...`. Every registration of every
# iteration is its own job (resumable at the subject and iteration where a build stopped); one update
# job per iteration averages them. Iteration 00 is the reference (the first input, or template.init),
# 01 the affine-aligned mean (init: mean), and each later one the result of one deformable update;
# the inputs registered to the last one give the template's labels.
from cohortreg.template.schedule import round_params
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


def iteration_id(k):
    return f"{int(k):02d}"


def tpl(pattern, **kw):
    """A template path pattern with the template's name (and any of kw) filled in, other wildcards kept."""
    for key, value in {"name": TPL_NAME, **kw}.items():
        pattern = pattern.replace("{" + key + "}", str(value))
    return pattern


if TPL_REFERENCE and not TPL_FILE and tuple(TPL_REFERENCE) not in set(SHEET.index):
    raise SheetError(f"template.init: {TPL['init']!r} is neither mean, a file nor a subject of the sheet (cohort/subject)")


def tpl_reference_input(wildcards):
    if not TPL_INPUTS:
        raise SheetError(f"template {TPL_NAME!r}: no input subjects (template.cohorts {TPL['cohorts']}; with a split "
                         "column only train/val subjects build a template)")
    if TPL_FILE:
        return TPL_FILE
    c, s = TPL_REFERENCE
    return L.brain.format(cohort=c, subject=s)


def tpl_round(k, what):
    """Every input's file `what` of round k (its registration to iteration k's template)."""
    return [tpl(L.template_input(what), iteration=iteration_id(k), cohort=c, subject=s) for c, s in TPL_INPUTS]


def tpl_batch_manifests(k):
    """Round k's batch manifests (template.batch_size > 1)."""
    return [tpl(L.template_batch(), iteration=iteration_id(k), batch=batch_id(i)) for i in range(len(TPL_BATCHES))]


def template_batch_manifests():
    """Every round's batch manifests (for retry_failed_batches, rules/batch.smk)."""
    return [m for k in range(TPL_LAST + 1) for m in tpl_batch_manifests(k)]


def tpl_round_files(k):
    """Round k's per-input files, for the script: (manifests, warped, labels) lists in input order."""
    return [tpl_round(k, what) for what in ("transforms.json", "warped_T1w.nii.gz", "warped_dseg.nii.gz")]


def tpl_round_inputs(k):
    """What a job reading round k depends on: every input's three files, or the round's batch
    manifests (the files are then written inside the batch jobs and listed in params)."""
    if TPL_BATCHES:
        return {"batches": tpl_batch_manifests(k)}
    return dict(zip(("manifests", "warped", "labels"), tpl_round_files(k)))


def tpl_labels(c, s):
    """An input's preprocessed labels, or '' for a subject without labels."""
    return L.preproc_labels.format(cohort=c, subject=s) if ROW(c, s).get("labels") else ""


def tpl_subject_inputs(subjects, output):
    """Input subjects' brains and labels as the inputs of the job that writes ``output``: their files, or
    (the study's batch_size > 1) their subject batches' manifests, which make them then; those are
    ancient while the job's output was made from the same subjects (common.smk: carried), so subjects
    appended to the sheet, which rerun the last subject batch, rebuild no template."""
    if all(cs in SUBJECT_BATCH for cs in subjects):
        manifests = sorted({BATCHES.subject_manifest(c, s) for c, s in subjects})
        return {"subjects": carried(manifests, output, subject_data(subjects))}
    out = {}
    for c, s in subjects:
        labels = tpl_labels(c, s)
        out.setdefault("brain", []).append(L.brain.format(cohort=c, subject=s))
        out.setdefault("labels", []).extend([labels] if labels else [])
    return {k: v for k, v in out.items() if v}


def tpl_update_inputs(wildcards):
    """The update that makes iteration `next`: round next-1's registrations (none when iteration 01 is
    the chosen reference itself, init: a subject or a file)."""
    k = int(wildcards.next) - 1
    out = {"template": tpl(L.template_iter(), iteration=iteration_id(k))}
    if k == 0 and TPL["init"] not in ("mean", ""):
        return out
    out.update(tpl_round_inputs(k))
    if TPL_STOP and k >= 1:  # a converged iteration k is copied (cohortreg.template.build.update_template)
        out["previous_row"] = tpl(L.template_iter("update.json", "next"), next=iteration_id(k))
    return out


def tpl_register_inputs(wildcards):
    c, s, k = wildcards.cohort, wildcards.subject, wildcards.iteration
    output = tpl(L.template_input("transforms.json"), iteration=k, cohort=c, subject=s)
    out = {"template": tpl(L.template_iter(), iteration=k), **tpl_subject_inputs([(c, s)], output)}
    out.update({"model": MODEL_FILE[MODEL_OF[TPL_METHOD]]} if TPL_METHOD in MODEL_OF else {})
    k = int(wildcards.iteration)
    if TPL_STOP and k >= 2:  # to a copied template, the registration to the one before is copied
        out["row"] = tpl(L.template_iter("update.json", "next"), next=iteration_id(k))
        out["previous"] = tpl(L.template_input("transforms.json"), iteration=iteration_id(k - 1),
                              cohort=wildcards.cohort, subject=wildcards.subject)
    return out


def tpl_batch_inputs(wildcards):
    """A batch of a round: the round's template, its inputs' brains and labels (or subject batches),
    the model of a learned method, and with an early stop the row that says whether to copy."""
    out = {"template": tpl(L.template_iter(), iteration=wildcards.iteration)}
    output = tpl(L.template_batch(), iteration=wildcards.iteration, batch=wildcards.batch)
    subjects = tpl_subject_inputs(TPL_BATCHES[int(wildcards.batch)], output)
    out["subject_files"] = sorted({f for files in subjects.values() for f in files})
    out.update({"model": MODEL_FILE[MODEL_OF[TPL_METHOD]]} if TPL_METHOD in MODEL_OF else {})
    k = int(wildcards.iteration)
    if TPL_STOP and k >= 2:
        out["row"] = tpl(L.template_iter("update.json", "next"), next=iteration_id(k))
        out["previous"] = tpl(L.template_batch(), iteration=iteration_id(k - 1), batch=wildcards.batch)
    return out


def tpl_batch_items(wildcards):
    """(cohort, subject, preprocessed labels or '') of the batch's inputs."""
    return [(c, s, tpl_labels(c, s)) for c, s in TPL_BATCHES[int(wildcards.batch)]]


def tpl_gpu(wildcards):
    """A GPU for a deformable round's registrations where the template's method wants one (as
    register_method's); round 00 is affine only."""
    return gpus_for(TPL_METHOD) if int(wildcards.iteration) > 0 else 0


def tpl_partition(wildcards):
    return partition_for(tpl_gpu(wildcards))


def tpl_method_resources():
    """slurm resources of a round's registration jobs: plain values unless the method may want a GPU."""
    if not gpus_for(TPL_METHOD):
        return slurm_resources()
    return {"gpu": signed(tpl_gpu), **slurm_resources(partition=signed(tpl_partition))}


def tpl_method_params(wildcards):
    """The method's params for this round (template.presets: cohortreg/template/schedule.py); the final
    job records the last round's."""
    k = int(wildcards.iteration) if hasattr(wildcards, "iteration") else TPL_LAST
    return round_params(params_of(TPL_METHOD), TPL.get("presets", []), k)


for _f in (tpl_reference_input, tpl_update_inputs, tpl_register_inputs, tpl_batch_inputs, tpl_batch_items,
           tpl_method_params):
    signed(_f)

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
        tpl(L._p("logs/template/{name}/reference.log")),
    script:
        "../scripts/template.py"


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
        tpl(L._p("logs/template/{name}/iter-{iteration}/{cohort}/sub-{subject}.log")),
    benchmark:
        tpl(L._p("benchmarks/template/{name}/iter-{iteration}/{cohort}/sub-{subject}.tsv"))
    threads: res("register", "threads")
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime"),
        **tpl_method_resources(),
    script:
        "../scripts/template.py"


rule template_register_batch:
    wildcard_constraints:
        iteration="[0-9]+",
        batch="[0-9]+",
    input:
        unpack(tpl_batch_inputs),
    output:
        manifest=tpl(L.template_batch()),
    params:
        out=L.out,
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
        "../scripts/template.py"


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
        tpl(L._p("logs/template/{name}/update-{next}.log")),
    benchmark:
        tpl(L._p("benchmarks/template/{name}/update-{next}.tsv"))
    threads: 1
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime"),
        **slurm_resources(),
    script:
        "../scripts/template.py"


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
        tpl(L._p("logs/template/{name}/finish.log")),
    threads: 1
    script:
        "../scripts/template.py"


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
        brain=lambda w: tpl(L.template_file("T1w.nii.gz")) if w.subject == "tpl-" + TPL_NAME else [],
        mask=lambda w: tpl(L.template_file("desc-brain_mask.nii.gz")) if w.subject == "tpl-" + TPL_NAME else [],
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
        "../scripts/template.py"
