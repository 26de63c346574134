# Config and sample-sheet validation, the pair design, wildcard constraints and input functions.
import inspect
import os

from snakemake.utils import validate

from cohortreg.aggregate import PairResult, write_tables
from cohortreg.paths import Layout
from cohortreg.registration import get_method
from cohortreg.samples import SheetError, SubjectIndex, design_pairs, missing_files, read_sheet

validate(config, "../config/schemas/config.schema.yaml")

if not config["samples"]:
    raise SheetError(
        "no sample sheet: run with --config samples=PATH (a TSV with columns cohort, subject, t1 "
        "[, labels, mask, split] or a BIDS root); `cohortreg-demo DIR` makes a synthetic one"
    )
SHEET = read_sheet(config["samples"])
for _msg in missing_files(SHEET):
    logger.warning(f"CohortReg: {_msg} (that subject's jobs will fail; the others run with --keep-going)")
ROW = SubjectIndex(SHEET)
PAIRS = design_pairs(SHEET, config["design"], config.get("reference"), config.get("pairs"))
METHODS = list(config["methods"])
L = Layout(config["outdir"].rstrip("/"))


wildcard_constraints:
    cohort="[A-Za-z0-9_-]+",
    subject="[A-Za-z0-9_-]+",
    moving="[A-Za-z0-9_-]+",
    fixed="[A-Za-z0-9_-]+",
    method="|".join(METHODS),


def signed(func):
    """Store a callable's parameters on it, through Snakemake's own overwrite_function_params hook.

    Snakemake runs inspect.signature on every input function, param function and resource of
    every job (twice for a callable resource): at 5,000 subjects that was half the dry run.
    Done once here, the lookup is an attribute read. Harmless where the hook is missing.
    """
    try:
        from snakemake.common import overwrite_function_params

        overwrite_function_params(func, inspect.signature(func).parameters)
    except Exception:  # an older or newer Snakemake: it inspects the function itself
        pass
    return func


try:  # every resource, constants included, is evaluated through Resource.evaluate(*args, **kwargs)
    from snakemake.resources import Resource as _Resource

    signed(_Resource.evaluate)
except Exception:
    pass


def res(family, key):
    return config["resources"][family][key]


def grows(family, key):
    """Memory and runtime grow with the attempt: a job SLURM killed for either is retried with more."""
    base = res(family, key)
    return signed(lambda wildcards, attempt: base * attempt)


def slurm_resources(partition=None):
    """slurm_partition / slurm_account only where set: each resource costs Snakemake work per job."""
    out = {"slurm_partition": partition or config["slurm"]["partition"], "slurm_account": config["slurm"]["account"]}
    return {k: v for k, v in out.items() if v}


def method_resources():
    """register_method's gpu and partition: functions of the method only when some method may want
    a GPU (a function resource is evaluated per job), plain values otherwise."""
    if not any(gpus_for(m) for m in METHODS):
        return slurm_resources()
    return {"gpu": signed(gpus), **slurm_resources(partition=signed(slurm_partition))}


def slurm_partition(wildcards):
    """SLURM partition of a method's job: the GPU one for GPU jobs, else the CPU one ('' = default).

    Only register_method needs a function; other rules take config["slurm"]["partition"] as a
    plain value (a function resource costs Snakemake an inspect.signature per job: seconds at 20k).
    """
    if gpus(wildcards) and config["slurm"]["gpu_partition"]:
        return config["slurm"]["gpu_partition"]
    return config["slurm"]["partition"]


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


def params_of(method):
    return dict(config.get("method_params", {}).get(method, {}))


def method_params(wildcards):
    return params_of(wildcards.method)


def row_value(key):
    """Param function: one sheet column of the job's subject."""
    return signed(lambda w: get_row(w)[key])


def gpus_for(method):
    """gpu=1 (the SLURM plugin's --gpus=1) for a GPU-capable method set to device cuda or to gpu: true."""
    params = params_of(method)
    wants = bool(params.get("gpu", False)) or str(params.get("device", "cpu")).startswith("cuda")
    return int(get_method(method).uses_gpu and wants)


def gpus(wildcards):
    return gpus_for(wildcards.method)


def pair_results():
    out = []
    for p in PAIRS:
        for m in METHODS:
            ids = dict(cohort=p.cohort, moving=p.moving, fixed=p.fixed, method=m)
            subj = lambda pat, s: pat.format(cohort=p.cohort, subject=s)
            logs = [subj(L.log(r), s) for s in (p.moving, p.fixed) for r in ("preprocess", "skullstrip")]
            logs += [L.log("affine", pair=True).format(**ids), L.log("register").format(**ids),
                     L.log("metrics").format(**ids)]
            out.append(PairResult(**ids, metrics=L.method_file("metrics.json").format(**ids),
                                  labels=L.method_file("labels.tsv").format(**ids),
                                  benchmark=L.benchmark("register").format(**ids),
                                  benchmark_affine=L.benchmark("affine", pair=True).format(**ids),
                                  logs=tuple(logs)))
    return out


def write_partial_tables():
    """On a failed run (e.g. --keep-going with a bad subject) still write the cohort tables.

    They are stamped with a 1970 mtime: older than any input, so the next run sees them as out
    of date and retries the failed subjects instead of taking the partial tables as final.
    """
    try:
        tables = [L.table("pairs"), L.table("labels"), L.table("summary")]
        pairs = write_tables(RESULTS, *tables)
        for t in tables:
            os.utime(t, (0, 0))
        bad = pairs[pairs["status"] != "ok"]
        logger.error(f"CohortReg: {len(bad)} of {len(pairs)} pair results failed; see {L.table('pairs')}:")
        for r in bad.itertuples():
            logger.error(f"  {r.cohort}/{r.moving} -> {r.fixed} [{r.method}]: {r.error}")
    except Exception as exc:  # never mask the original failure
        logger.error(f"CohortReg: could not write partial tables: {exc}")


for _f in (get_row, get_raw_inputs, get_mask_input, method_params):
    signed(_f)

RESULTS = pair_results()
