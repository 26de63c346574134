"""Snakemake adapter: the report's brain-mask pictures (cohortreg.evaluation.mask_gallery)."""
from cohortreg.evaluation.mask_gallery import mask_gallery
from cohortreg.jobs import job
from cohortreg.paths import Layout

smk = snakemake  # noqa: F821
with job(smk, "mask_gallery") as log:
    written = mask_gallery([tuple(cs) for cs in smk.params.subjects], Layout(smk.params.out), smk.output.gallery)
    log.info("%d mask pictures", len(written))
