"""Snakemake adapter: affine initialisation of one pair (cohortreg.registration.affine)."""
from pathlib import Path

import nibabel as nib

from cohortreg.io import nib_to_ants
from cohortreg.jobs import job
from cohortreg.registration import AffineSettings, estimate_affine

smk = snakemake  # noqa: F821
with job(smk, "affine"):
    fixed = nib_to_ants(nib.load(smk.input.fixed))
    moving = nib_to_ants(nib.load(smk.input.moving))
    estimate_affine(fixed, moving, Path(smk.output.mat), AffineSettings(**smk.params.settings))
