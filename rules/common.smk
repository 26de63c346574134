# Config and sample-sheet validation, the pair design, wildcard constraints and input functions.
# Resources: rules/resources.smk; results and their witnesses: rules/results.smk; batches: rules/batch.smk.
import itertools
import os
import sys

from snakemake.utils import validate
from snakemake_interface_executor_plugins.settings import ExecMode

from cohortreg.study.aggregate import PairResult, write_tables
from cohortreg.batches.plan import BatchPlan
from cohortreg.batches.items import auto_batch_size, backdate_failed, batch_id, chunk
from cohortreg.paths import Layout
from cohortreg.provenance import STAGES, fingerprint
from cohortreg.learn.plan import has_split, plan_training, subject_row
from cohortreg.registration import get_method, pair_threads, resolve
from cohortreg.sheet.samples import references as sheet_references
from cohortreg.sheet.samples import SheetError, SubjectIndex, design_pairs, missing_files, read_sheet
from cohortreg.upstream import raw_files, unchanged

validate(config, "../config/schemas/config.schema.yaml")

if not config["samples"]:
    raise SheetError(
        "no sample sheet: run with --config samples=PATH (a TSV with columns cohort, subject, t1 "
        "[, labels, mask, split] or a BIDS root); `cohortreg-demo DIR` makes a synthetic one"
    )
# Reruns rest on Snakemake's params and input triggers (code fingerprints are params; a batch job's input
# list grows when subjects are appended). Without them Snakemake keeps a job whose output exists even when
# an input it now lists is missing: an appended subject would silently get no results.
def _rerun_triggers():
    """The run's --rerun-triggers (Snakemake's settings once set; while parsing, the command line's)."""
    settings = getattr(workflow, "dag_settings", None)
    if settings is not None:
        return {str(t).rsplit(".", 1)[-1].lower() for t in settings.rerun_triggers}
    argv = sys.argv[sys.argv.index("--rerun-triggers") + 1:] if "--rerun-triggers" in sys.argv else []
    return set(itertools.takewhile(lambda a: not a.startswith("-"), argv))


_TRIGGERS = _rerun_triggers()
if _TRIGGERS and not {"params", "input"} <= _TRIGGERS:
    logger.warning(f"CohortReg: --rerun-triggers {' '.join(sorted(_TRIGGERS))}: without 'params' and 'input', changed "
                   "code or settings rerun nothing, and subjects appended to the sheet may get NO results (a batch "
                   "job whose manifest exists is kept although its list of subjects grew). Use the default triggers "
                   "(README: Re-running, extending and resuming a study).")
if config["skullstrip"]["method"] in ("auto", "deepbet"):  # before any subject runs: a clear error, not 20,000
    from cohortreg.subject.skullstrip import deepbet_available

    _problem = deepbet_available()
    if _problem:
        raise SheetError(f"skullstrip.method: {config['skullstrip']['method']} strips heads with deepbet, but {_problem}; "
                         "or set skullstrip.method: none for scans that are all skull-stripped")
SHEET = read_sheet(config["samples"], bids=config.get("bids"))
for _msg in missing_files(SHEET):
    logger.warning(f"CohortReg: {_msg} (that subject's jobs will fail; the others run with --keep-going)")
ROW = SubjectIndex(SHEET)
# With a split column every method is evaluated among test subjects only (a paired comparison);
# the default reference of a cohort is then its first test subject.
SPLIT = has_split(SHEET)
EVALUATED = SHEET[SHEET["split"] == "test"] if SPLIT else SHEET
PAIRS = design_pairs(EVALUATED, config["design"], config.get("reference"), config.get("pairs"),
                     config["template"]["name"])
L = Layout(config["outdir"].rstrip("/"))
METHODS = [config["methods"]] if isinstance(config["methods"], str) else list(config["methods"])
METHOD_CHOICE = ""  # methods: auto: the paragraph that says why (log and report)
if "auto" in METHODS:
    from cohortreg.study.method_choice import choose_methods

    _choice = choose_methods(SHEET, list(dict.fromkeys(EVALUATED["cohort"])), config["auto"],
                             config.get("method_params", {}).get("learned", {}), L.table("mi"))
    config["method_params"] = {**config.get("method_params", {}), **_choice.method_params}
    METHODS = list(dict.fromkeys(m for m in METHODS if m != "auto")) + [m for m in _choice.methods if m not in METHODS]
    METHOD_CHOICE = _choice.reasoning
    logger.info(f"CohortReg: {METHOD_CHOICE}")
# Which code makes each stage's outputs (cohortreg.provenance): a rule param, so that editing or
# upgrading the engine reruns what it made (--rerun-triggers params) and nothing else.
CODE = {stage: fingerprint(stage) for stage in STAGES}
PERCENTILES = [config["preprocess"]["lower_percentile"], config["preprocess"]["upper_percentile"]]
# The qc keys a subject's input check reads (cohortreg.evaluation.qc.subject_qc): a pair-level threshold
# (max_folding, z_warn, ...) changed later reruns the metrics, not every skull strip below them.
SUBJECT_QC = {k: v for k, v in config["qc"].items() if k in ("on_fail", "brain_ml", "min_levels", "max_mode_fraction")}


def subject_data(subjects):
    """What a subject batch makes each (cohort, subject)'s files from: its raw files by path, size and
    mtime, and the subject stages' settings and code (cohortreg.upstream: a job downstream of the
    subject batches reruns when this changes, not when a batch reran for other subjects)."""
    return {"raw": raw_files((c, s, ROW(c, s)) for c, s in subjects), "preprocess": config["preprocess"],
            "skullstrip": config["skullstrip"], "qc": SUBJECT_QC, "code": [CODE["preprocess"], CODE["skullstrip"]]}


def carried(manifests, output, data):
    """Batch manifests as a downstream job's inputs: ancient while ``output`` was made from ``data``
    (cohortreg.upstream), so that a batch rerun for other subjects does not rerun the job."""
    keep = unchanged(output, data)
    return [ancient(m) if keep else m for m in manifests]


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
    """A method's settings as the config gives them (method_params.NAME)."""
    return dict(config.get("method_params", {}).get(method, {}))


# Each method resolved once (cohortreg.registration.ResolvedMethod): an unknown method or engine is
# refused here, at start, naming it; everything below asks RESOLVED for a method's engine and code.
RESOLVED = {m: resolve(m, configured(m)) for m in METHODS}
ENGINE = {m: r.engine for m, r in RESOLVED.items()}
METHOD_CODE = {m: r.code() for m, r in RESOLVED.items()}  # an engine whose code cannot be found: an error now
# A local run? The executor is not known yet while the workflow is parsed, but a cluster executor
# runs with --jobs (the profile's jobs:) and its jobs in remote mode, while the local executor folds
# --jobs into --cores. (A local run given both --cores and --jobs counts as a cluster: per-job.)
LOCAL_RUN = workflow.exec_mode != ExecMode.REMOTE and workflow.resource_settings.nodes is None
# batch_size auto batches a local run of 8+ subjects (cohortreg.batches.items.auto_batch_size).
BATCH_SIZE = auto_batch_size(config.get("batch_size", "auto"), len(SHEET), local=LOCAL_RUN)
if config.get("batch_size", "auto") == "auto" and BATCH_SIZE > 1:
    logger.info(f"CohortReg: {len(SHEET)} subjects{' on this machine' if LOCAL_RUN else ''}: batch_size auto -> "
                f"{BATCH_SIZE} (one job per {BATCH_SIZE} subjects or pairs and stage, its items side by side; "
                "batch_size=1 for one job each; README: Very large cohorts)")
if BATCH_SIZE <= 1 and len(SHEET) >= 2000:  # bench/results/scale_dry_run.json: ~27 ms per subject to plan
    logger.warning(
        f"CohortReg: {len(SHEET)} subjects with batch_size 1 is about {7 * len(SHEET)} jobs; planning them alone "
        "(2-core VM, bench/results/scale_dry_run.json) "
        f"takes ~{0.027 * len(SHEET):.0f} s and ~{0.16 * len(SHEET) + 100:.0f} MB. Consider --config batch_size=50 "
        "(one job per 50 subjects or pairs and stage; README: Very large cohorts)."
    )


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    subject="(?!tpl-)[A-Za-z0-9_-]+",  # tpl-{name}: a built template standing in as a fixed subject
    moving="[A-Za-z0-9_-]+",
    fixed="[A-Za-z0-9_-]+",
    method="|".join(METHODS),
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
    return METHOD_CODE[wildcards.method]


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
