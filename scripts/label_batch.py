"""Snakemake adapter: a batch of subjects labelled from one protocol's atlases (cohortreg.labelling.batch)."""
from cohortreg.batches.items import run_items, workers_for
from cohortreg.jobs import job
from cohortreg.labelling.batch import labelling_items
from cohortreg.paths import Layout
from cohortreg.registration import pair_threads
from cohortreg.upstream import record

smk = snakemake  # noqa: F821
p, w = smk.params, smk.wildcards
per_item = min(pair_threads(p.method, p.method_params, int(smk.config["resources"]["register"]["threads"])), smk.threads)
with job(smk, "labelling batch", threads=per_item) as log:
    items = labelling_items(w.cohort, w.protocol, p.jobs, p.settings, p.method, p.method_params, p.affine,
                            Layout(p.out), per_item, p.engine, p.model)
    workers = workers_for(smk.threads, per_item, len(items))
    log.info("%d subjects, %d at a time with %d threads each", len(items), workers, per_item)
    failed = run_items(items, smk.output.manifest, None, workers)["failed"]
    for name in failed:
        log.error("%s failed or skipped; see its own log", name)
    record(smk.output.manifest, p.upstream)  # what its inputs were made from (cohortreg.upstream)
