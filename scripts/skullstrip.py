"""Snakemake adapter: brain extraction and input QC for one subject (cohortreg.subject.stages.skullstrip_files)."""
from cohortreg.jobs import job
from cohortreg.subject.stages import skullstrip_files

smk = snakemake  # noqa: F821
with job(smk, "skullstrip"):
    skullstrip_files(smk.wildcards.subject, smk.input.t1, smk.params.settings, smk.params.raw_t1, smk.params.mask,
                     smk.output.brain, smk.output.mask, smk.params.percentiles, smk.input.raw_json, smk.params.qc,
                     smk.output.qc)
