"""Snakemake adapter: affine initialisation of one pair (cohortreg.stages.affine_files)."""
from cohortreg.jobs import job
from cohortreg.stages import affine_files

smk = snakemake  # noqa: F821
with job(smk, "affine"):
    affine_files(smk.input.fixed, smk.input.moving, smk.params.settings, smk.output.mat)
