"""Snakemake adapter: cohort tables (cohortreg.aggregate)."""
from cohortreg.jobs import job
from cohortreg.aggregate import write_tables

smk = snakemake  # noqa: F821
with job(smk, "aggregate") as log:
    pairs = write_tables(smk.params.results, smk.output.pairs, smk.output.labels, smk.output.summary,
                         smk.params.manifests)
    log.info("%d rows, %d failed", len(pairs), int((pairs["status"] != "ok").sum()))
