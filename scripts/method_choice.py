"""Snakemake adapter: the study design's paragraph on how the methods were chosen, for the report."""
from cohortreg.io import write_text_atomic
from cohortreg.jobs import job

smk = snakemake  # noqa: F821
with job(smk, "method choice") as log:
    write_text_atomic(smk.params.text + "\n", smk.output[0])
    log.info("%s", smk.params.text)
