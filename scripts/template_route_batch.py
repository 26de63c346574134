"""Snakemake adapter: a pair batch's template routes, each subject an item (cohortreg.labelling.template_route)."""
from cohortreg.batches.items import run_items, workers_for
from cohortreg.jobs import job
from cohortreg.labelling.template_route import route_items
from cohortreg.paths import Layout

smk = snakemake  # noqa: F821
with job(smk, "template_route batch", threads=1) as log:  # antspyx holds the GIL: items side by side in processes
    items = route_items(Layout(smk.params.out), smk.wildcards.cohort, smk.params.jobs)
    workers = workers_for(smk.threads, 1, len(items))
    log.info("%d subjects, %d at a time", len(items), workers)
    for name in run_items(items, smk.output.manifest, None, workers, processes=True)["failed"]:
        log.error("%s failed or skipped; see its own log", name)
