"""Snakemake adapter: a subject's template route, the template's labels in its own space and its
log-Jacobian map in template space (cohortreg.labelling.template_route.label_from_template)."""
from cohortreg.jobs import job
from cohortreg.labelling.template_route import label_from_template

smk = snakemake  # noqa: F821
with job(smk, "template_route") as log:
    w, j = smk.wildcards, smk.params.job
    label_from_template({"cohort": w.cohort, "subject": w.subject}, j["target"], j["manifest"], j["template"],
                        j["outputs"], j["held_out"])
