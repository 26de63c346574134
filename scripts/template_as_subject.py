"""Snakemake adapter: a built template standing in as the fixed subject tpl-{name} (design: template)."""
from cohortreg.jobs import job
from cohortreg.template.build import template_as_subject

smk = snakemake  # noqa: F821
with job(smk, smk.rule):
    i, o = smk.input, smk.output
    if not i.brain:
        raise ValueError(f"{smk.wildcards.subject}: no template of that name is configured (template.name)")
    template_as_subject(smk.wildcards.subject, i.brain, i.mask, i.labels[0] if i.labels else "", smk.params.qc,
                        {k: str(getattr(o, k)) for k in ("t1", "labels", "raw_json", "brain", "mask", "qc")})
