"""Snakemake adapter: one deformable method on one pair (cohortreg.registration.pairs.register_pair)."""
from cohortreg.jobs import job
from cohortreg.registration.pairs import register_pair

smk = snakemake  # noqa: F821
with job(smk, "register") as log:
    extra = register_pair(smk.wildcards.method, smk.params.method_params, smk.input.fixed, smk.input.moving,
                          smk.input.moving_labels, smk.input.affine, smk.output.manifest, smk.output.warped,
                          smk.output.warped_labels, threads=smk.threads)
    log.info("registration took %.1f s", extra["register_seconds"])
