"""Snakemake adapter: cohort tables with the cohort-relative QC (cohortreg.study.aggregate)."""
from cohortreg.jobs import job
from cohortreg.study.aggregate import log_findings, write_tables

smk = snakemake  # noqa: F821
with job(smk, "aggregate") as log:
    pairs = write_tables(smk.params.results, smk.output.pairs, smk.output.labels, smk.output.summary,
                         smk.params.manifests, smk.params.qc, smk.output.stats, smk.output.domain_shift,
                         smk.params.methods)
    log_findings(pairs, log)
