# Functions of rules/learn.smk (its input, param and resource functions and the helpers they use),
# kept apart from its rules (snakemake --lint); included just before it.


def evaluates(method, cohort, moving, fixed):
    """Whether a method is evaluated on this pair: not a learned method's on its model's own subjects."""
    used = EXCLUDED.get(method, ())
    return not used or ((cohort, moving) not in used and (cohort, fixed) not in used)


# Training a learned model: each training and validation subject with its affine to the cohort's training
# reference (the model then trains on every pair of them, cohortreg.learn.data).
def _training_rows(model, which):
    return [subject_row(L, c, moving, fixed) for c, moving, fixed in TRAINING[model].pairs(which)]


def training_pairs(wildcards):
    return _training_rows(wildcards.model, "train")


def validation_pairs(wildcards):
    return _training_rows(wildcards.model, "val")


def training_inputs(wildcards):
    """Per job: the files themselves. With batches (rules/batch.smk) the batch manifests that make them,
    ancient while the model was trained on exactly training_data (cohortreg.upstream): a batch job that
    reran for another subject rewrites its manifest, and that must not retrain the model; a replaced
    scan of its own must."""
    if BATCH_SIZE > 1:
        manifests = BATCHES.training_manifests(TRAINING[wildcards.model].all_pairs())
        return {"batches": carried(manifests, MODEL_FILE[wildcards.model], training_data(wildcards))}
    rows = training_pairs(wildcards) + validation_pairs(wildcards)
    return {"files": sorted({r[k] for r in rows for k in ("fixed", "fixed_labels", "moving", "moving_labels", "affine")})}


def training_data(wildcards):
    """What the training pairs' files are made from: each subject's raw files and the subject stages'
    settings and code (subject_data), and the affine's."""
    return {**subject_data(TRAINING[wildcards.model].subjects()), "affine": config["affine"], "affine_code": CODE["affine"]}


def training_settings(wildcards):
    """device auto: cuda where the job asks the scheduler for a GPU (gpu: true), else cpu (a local job must not
    take a GPU it was not given, and a CPU model trains bit for bit the same)."""
    params = configured(wildcards.model)
    if str(params.get("device", "auto")) == "auto":
        params["device"] = "auto" if gpus_for(wildcards.model) else "cpu"
    return params


def training_description(wildcards):
    return TRAINING[wildcards.model].description()


def training_runtime(wildcards, attempt):
    """Minutes: max_minutes when set (plus loading), else the register family's runtime, per attempt."""
    minutes = float(configured(wildcards.model).get("max_minutes", 0)) or res("register", "runtime")
    return int((minutes + 15) * attempt)


def model_resources():
    if not any(gpus_for(m) for m in TRAINING):
        return slurm_resources()
    return {"gpu": signed(lambda wildcards: gpus_for(wildcards.model)),
            **slurm_resources(partition=config["slurm"]["gpu_partition"] or None)}


for _f in (training_pairs, validation_pairs, training_inputs, training_data, training_settings, training_description,
           training_runtime):
    signed(_f)
