"""Snakemake adapter: preprocess one subject (cohortreg.subject.stages.preprocess_files)."""
from cohortreg.jobs import job
from cohortreg.subject.stages import preprocess_files

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job(smk, "preprocess"):
    preprocess_files(smk.wildcards.subject, smk.params.t1, smk.params.labels, smk.params.settings,
                     smk.output.t1, smk.output.labels, smk.output.json)
