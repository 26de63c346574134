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


for _m, _used in EXCLUDED.items():
    if not SPLIT:
        logger.info(f"CohortReg: method {_m}: {len(_used)} subjects train or validate its model "
                    f"({MODEL_OF[_m]}, seeded split); they are left out of its pairs")


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
