# Functions of rules/template.smk (its input, param and resource functions and the helpers they use),
# kept apart from its rules (snakemake --lint); included just before it.


def iteration_id(k):
    return f"{int(k):02d}"


def tpl(pattern, **kw):
    """A template path pattern with the template's name (and any of kw) filled in, other wildcards kept."""
    for key, value in {"name": TPL_NAME, **kw}.items():
        pattern = pattern.replace(f"{{{key}}}", str(value))
    return pattern


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
