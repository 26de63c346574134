# Learned methods: one training job per model the workflow trains (cohortreg.learn), before its pairs.
# Which models train, on whom, and which subjects their methods then leave out (cohortreg.learn.plan).

# Learned models: each learned method, and the one each learned_io starts from (params 'model').
MODEL_OF = {m: (m if ENGINE[m] == "learned" else configured(m).get("model", "learned"))
            for m in METHODS if ENGINE[m] in ("learned", "learned_io")}
for _m, _model in MODEL_OF.items():
    if resolve(_model, configured(_model)).engine != "learned":
        raise ValueError(f"method {_m!r}: model {_model!r} is not a learned method (method_params.{_model}.engine: learned)")
TRAINING = {}  # model -> cohortreg.learn.plan.TrainingPlan, for models the workflow trains
MODEL_FILE = {}
for _model in dict.fromkeys(MODEL_OF.values()):
    _own = configured(_model).get("checkpoint", "")
    if _own:  # a model of the user's own: refused at start if it is missing, corrupt or of another network
        from cohortreg.learn.checkpoint import load_model

        MODEL_FILE[_model] = os.path.abspath(_own)
        load_model(MODEL_FILE[_model])
    else:
        TRAINING[_model] = plan_training(SHEET, _model, configured(_model), sheet_references(EVALUATED, config.get("reference")))
        MODEL_FILE[_model] = L.model().format(model=_model)
# A learned method is not evaluated on the subjects that trained or validated its model.
EXCLUDED = {m: TRAINING[MODEL_OF[m]].used() for m in MODEL_OF if MODEL_OF[m] in TRAINING}


def evaluates(method, cohort, moving, fixed):
    """Whether a method is evaluated on this pair: not a learned method's on its model's own subjects."""
    used = EXCLUDED.get(method, ())
    return not used or ((cohort, moving) not in used and (cohort, fixed) not in used)


for _m, _used in EXCLUDED.items():
    if not SPLIT:
        logger.info(f"CohortReg: method {_m}: {len(_used)} subjects train or validate its model "
                    f"({MODEL_OF[_m]}, seeded split); they are left out of its pairs")


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
    plan = TRAINING[wildcards.model]
    subjects = sorted({(c, s) for c, mv, fx in plan.all_pairs() for s in (mv, fx)})
    return {**subject_data(subjects), "affine": config["affine"], "affine_code": CODE["affine"]}


def training_settings(wildcards):
    params = configured(wildcards.model)
    if str(params.get("device", "auto")) == "auto":
        params["device"] = "cpu"
    return params


def training_description(wildcards):
    plan = TRAINING[wildcards.model]
    return {"model": wildcards.model, "train_cohorts": list(plan.cohorts), "from_split": plan.from_split,
            "train_subjects": ["/".join(x) for x in plan.train], "val_subjects": ["/".join(x) for x in plan.val]}


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


rule train_model:
    wildcard_constraints:
        model="|".join(TRAINING) or "no-model-to-train",
    input:
        unpack(training_inputs),
    output:
        model=L.model(),
        curve=L.model("training.tsv"),
        figure=report(L.model("training.png"), caption="../report/training.rst", category="5. Learned models",
                      labels={"model": "{model}"}),
    params:
        settings=training_settings,
        pairs=training_pairs,
        val=validation_pairs,
        describe=training_description,
        out=lambda w: L.model("").format(model=w.model),
        seed=config["seed"],
        code=CODE["learn"],
        data=training_data,  # recorded beside the model (cohortreg.upstream); per job the input files' mtimes do this too
    log:
        L.model_witness("logs"),
    benchmark:
        L.model_witness("benchmarks")
    threads: res("register", "threads")
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=training_runtime,
        **model_resources(),
    script:
        "../scripts/train.py"
