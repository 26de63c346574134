"""Snakemake adapter: one input registered to one round's template (cohortreg.template.build); with an early
stop, a copied template's registration is copied from the round before."""
from cohortreg.jobs import job
from cohortreg.template.build import copy_registration, is_copy, register_to_template
from cohortreg.upstream import record

smk = snakemake  # noqa: F821
with job(smk, smk.rule) as log:
    i, o, p = smk.input, smk.output, smk.params
    if hasattr(i, "previous") and is_copy(i.row):
        copy_registration(i.previous, o.manifest, o.warped, o.warped_labels)
        log.info("template iteration %s is a copy of the last (template.stop_below_mm): registration copied from %s",
                 smk.wildcards.iteration, i.previous)
    else:
        register_to_template(i.template, p.brain, p.labels, p.method, p.method_params, p.affine,
                             o.manifest, o.warped, o.warped_labels, threads=smk.threads, affine_only=p.affine_only)
    record(o.manifest, p.upstream)  # what its inputs were made from (cohortreg.upstream)
