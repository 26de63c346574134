# Config and sample-sheet validation, the pair design, wildcard constraints and input functions.
# Resources: rules/resources.smk; results and their witnesses: rules/results.smk; batches: rules/batch.smk.
import os

from snakemake.utils import validate

from cohortreg.aggregate import PairResult, write_tables
from cohortreg.batches import auto_batch_size, backdate_failed, batch_id, chunk
from cohortreg.paths import Layout
from cohortreg.provenance import STAGES, fingerprint
from cohortreg.learn.plan import has_split, plan_training
from cohortreg.registration import engine_of, get_method
from cohortreg.samples import references as sheet_references
from cohortreg.samples import SheetError, SubjectIndex, design_pairs, missing_files, read_sheet

validate(config, "../config/schemas/config.schema.yaml")

if not config["samples"]:
    raise SheetError(
        "no sample sheet: run with --config samples=PATH (a TSV with columns cohort, subject, t1 "
        "[, labels, mask, split] or a BIDS root); `cohortreg-demo DIR` makes a synthetic one"
    )
SHEET = read_sheet(config["samples"], bids=config.get("bids"))
for _msg in missing_files(SHEET):
    logger.warning(f"CohortReg: {_msg} (that subject's jobs will fail; the others run with --keep-going)")
ROW = SubjectIndex(SHEET)
# With a split column every method is evaluated among test subjects only (a paired comparison);
# the default reference of a cohort is then its first test subject.
SPLIT = has_split(SHEET)
EVALUATED = SHEET[SHEET["split"] == "test"] if SPLIT else SHEET
PAIRS = design_pairs(EVALUATED, config["design"], config.get("reference"), config.get("pairs"))
METHODS = list(config["methods"])
L = Layout(config["outdir"].rstrip("/"))
BATCH_SIZE = auto_batch_size(config.get("batch_size", "auto"), len(SHEET))
if config.get("batch_size", "auto") == "auto" and BATCH_SIZE > 1:
    logger.info(f"CohortReg: {len(SHEET)} subjects: batch_size auto -> {BATCH_SIZE} (one job per {BATCH_SIZE} "
                "subjects or pairs and stage; README: Very large cohorts)")
# Which code makes each stage's outputs (cohortreg.provenance): a rule param, so that editing or
# upgrading the engine reruns what it made (--rerun-triggers params) and nothing else.
CODE = {stage: fingerprint(stage) for stage in STAGES}
PERCENTILES = [config["preprocess"]["lower_percentile"], config["preprocess"]["upper_percentile"]]
if BATCH_SIZE <= 1 and len(SHEET) >= 2000:  # bench/results/scale_dry_run.json: ~27 ms per subject to plan
    logger.warning(
        f"CohortReg: {len(SHEET)} subjects with batch_size 1 is about {7 * len(SHEET)} jobs; planning them alone "
        "(2-core VM, bench/results/scale_dry_run.json) "
        f"takes ~{0.027 * len(SHEET):.0f} s and ~{0.16 * len(SHEET) + 100:.0f} MB. Consider --config batch_size=50 "
        "(one job per 50 subjects or pairs and stage; README: Very large cohorts)."
    )





def get_row(wildcards, who="subject"):
    return ROW(wildcards.cohort, getattr(wildcards, who))


def get_raw_inputs(wildcards):
    """Raw files that exist: a missing one is reported by the job itself, naming the subject."""
    row = get_row(wildcards)
    return {k: row[k] for k in ("t1", "labels") if row[k] and os.path.exists(row[k])}


def get_mask_input(wildcards):
    row = get_row(wildcards)
    if config["skullstrip"]["method"] == "provided" and row["mask"] and os.path.exists(row["mask"]):
        return {"raw_mask": row["mask"]}
    return {}


def of(pattern, who):
    """Input function: a per-subject file of the pair's moving or fixed subject."""
    return signed(lambda w: pattern.format(cohort=w.cohort, subject=getattr(w, who)))


def configured(method):
    return dict(config.get("method_params", {}).get(method, {}))


for _m in METHODS:
    get_method(_m, configured(_m))  # an unknown method or engine is refused at start, naming it
ENGINE = {m: engine_of(m, configured(m)) for m in METHODS}
# Learned models: each learned method, and the one each learned_io starts from (params 'model').
MODEL_OF = {m: (m if ENGINE[m] == "learned" else configured(m).get("model", "learned"))
            for m in METHODS if ENGINE[m] in ("learned", "learned_io")}
for _m, _model in MODEL_OF.items():
    if engine_of(_model, configured(_model)) != "learned":
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
if TRAINING and BATCH_SIZE > 1:
    raise ValueError(f"training learned models ({sorted(TRAINING)}) needs batch_size 1 (auto gives it below 1,000 "
                     "subjects); train in a smaller study and give the model file as method_params.NAME.checkpoint")
# A learned method is not evaluated on the subjects that trained or validated its model.
EXCLUDED = {m: TRAINING[MODEL_OF[m]].used() for m in MODEL_OF if MODEL_OF[m] in TRAINING}
for _m, _used in EXCLUDED.items():
    if not SPLIT:
        logger.info(f"CohortReg: method {_m}: {len(_used)} subjects train or validate its model "
                    f"({MODEL_OF[_m]}, seeded split); they are left out of its pairs")


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    subject="[A-Za-z0-9_-]+",
    moving="[A-Za-z0-9_-]+",
    fixed="[A-Za-z0-9_-]+",
    method="|".join(METHODS),
    model="|".join(TRAINING) or "no-model-to-train",
    batch="[0-9]+",


def params_of(method):
    """A method's params as its jobs get them: the config's, and for a learned method its model file."""
    params = configured(method)
    if method in MODEL_OF:
        params["model_file"] = MODEL_FILE[MODEL_OF[method]]
    return params


def method_params(wildcards):
    return params_of(wildcards.method)


def method_code(wildcards):
    return fingerprint("register", ENGINE[wildcards.method])


def model_input(wildcards):
    """A learned method's model file: a rule input, so a retrained model reruns its pairs."""
    m = wildcards.method
    return {"model": MODEL_FILE[MODEL_OF[m]]} if m in MODEL_OF else {}


def model_files(wildcards):
    return list(model_input(wildcards).values())


def row_value(key):
    """Param function: one sheet column of the job's subject."""
    return signed(lambda w: get_row(w)[key])



for _f in (get_row, get_raw_inputs, get_mask_input, method_params, method_code, model_input, model_files):
    signed(_f)


# Training a learned model (rules/learn.smk): its pairs to each cohort's training reference.
def _training_rows(model, which):
    plan = TRAINING[model]
    out = []
    for c, moving, fixed in plan.pairs(which):
        fmt = lambda pat, s: pat.format(cohort=c, subject=s)  # noqa: E731
        out.append({"name": f"{c}/{moving}->{fixed}", "fixed": fmt(L.brain, fixed), "fixed_labels": fmt(L.preproc_labels, fixed),
                    "moving": fmt(L.brain, moving), "moving_labels": fmt(L.preproc_labels, moving),
                    "affine": L.affine.format(cohort=c, moving=moving, fixed=fixed)})
    return out


def training_pairs(wildcards):
    return _training_rows(wildcards.model, "train")


def validation_pairs(wildcards):
    return _training_rows(wildcards.model, "val")


def training_inputs(wildcards):
    rows = training_pairs(wildcards) + validation_pairs(wildcards)
    return {"files": sorted({r[k] for r in rows for k in ("fixed", "fixed_labels", "moving", "moving_labels", "affine")})}


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


for _f in (training_pairs, validation_pairs, training_inputs, training_settings, training_description, training_runtime):
    signed(_f)
