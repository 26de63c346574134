"""Snakemake adapter: affine initialisation of one pair (cohortreg.subject.stages.affine_files)."""
from cohortreg.jobs import job
from cohortreg.subject.stages import affine_files

smk = snakemake  # noqa: F821
with job(smk, "affine"):
    affine_files(smk.input.fixed, smk.input.moving, smk.params.settings, smk.output.mat)
