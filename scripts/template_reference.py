"""Snakemake adapter: a template's iteration 00, the reference grid (cohortreg.template.build.initial_reference)."""
from cohortreg.jobs import job
from cohortreg.template.build import initial_reference

smk = snakemake  # noqa: F821
with job(smk, smk.rule):
    initial_reference(str(smk.input[0]), smk.params.pad_mm, str(smk.output[0]))
