# Functions of rules/template.smk: each asks the study's TemplatePlan (cohortreg/template/plan.py, made in
# rules/template.smk) and adds what only the workflow knows at DAG time (the subject batches, a learned
# method's model, the method's params); kept apart from its rules (snakemake --lint).


def tpl(pattern, **kw):
    return TEMPLATE.path(pattern, **kw)


def tpl_subject_inputs(subjects, output):
    """Input subjects' brains and labels as the inputs of the job that writes ``output``: their files, or
    (the study's batch_size > 1) their subject batches' manifests, which make them then; those are
    ancient while the job's output was made from the same subjects (common.smk: carried), so subjects
    appended to the sheet, which rerun the last subject batch, rebuild no template."""
    if all(cs in SUBJECT_BATCH for cs in subjects):
        manifests = sorted({BATCHES.subject_manifest(c, s) for c, s in subjects})
        return {"subjects": carried(manifests, output, subject_data(subjects))}
    return TEMPLATE.subject_files(subjects)


def tpl_model():
    return MODEL_FILE[MODEL_OF[TEMPLATE.method]] if TEMPLATE.method in MODEL_OF else ""


def tpl_reference_input(wildcards):
    return TEMPLATE.reference_input()


def tpl_update_inputs(wildcards):
    return TEMPLATE.update_inputs(wildcards.next)


def tpl_register_inputs(wildcards):
    return TEMPLATE.register_inputs(wildcards.cohort, wildcards.subject, wildcards.iteration, tpl_subject_inputs,
                                    tpl_model())


def tpl_batch_inputs(wildcards):
    return TEMPLATE.batch_inputs(wildcards.iteration, wildcards.batch, tpl_subject_inputs, tpl_model())


def tpl_batch_items(wildcards):
    return TEMPLATE.batch_items(wildcards.batch)


def template_batch_manifests():
    """Every round's batch manifests (for retry_failed_batches, rules/batch.smk)."""
    return TEMPLATE.all_batch_manifests()


def tpl_gpu(wildcards):
    """A GPU for a deformable round's registrations where the template's method wants one (as
    register_method's); round 00 is affine only."""
    return gpus_for(TEMPLATE.method) if int(wildcards.iteration) > 0 else 0


def tpl_partition(wildcards):
    return partition_for(tpl_gpu(wildcards))


def tpl_method_resources():
    """slurm resources of a round's registration jobs: plain values unless the method may want a GPU."""
    if not gpus_for(TEMPLATE.method):
        return slurm_resources()
    return {"gpu": signed(tpl_gpu), **slurm_resources(partition=signed(tpl_partition))}


def tpl_method_params(wildcards):
    """The method's params for this round (template.presets: cohortreg/template/schedule.py); the final
    job records the last round's."""
    k = int(wildcards.iteration) if hasattr(wildcards, "iteration") else TEMPLATE.last
    return round_params(params_of(TEMPLATE.method), TEMPLATE.settings.get("presets", []), k)


for _f in (tpl_reference_input, tpl_update_inputs, tpl_register_inputs, tpl_batch_inputs, tpl_batch_items,
           tpl_method_params):
    signed(_f)
