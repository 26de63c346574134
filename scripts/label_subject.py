"""Snakemake adapter: one subject labelled from one protocol's atlases (cohortreg.labelling.run.label_subject)."""
from cohortreg.jobs import job
from cohortreg.labelling.run import label_subject
from cohortreg.upstream import record

smk = snakemake  # noqa: F821
with job(smk, "labelling") as log:
    w, p, o = smk.wildcards, smk.params, smk.output
    label_subject({"cohort": w.cohort, "subject": w.subject, "protocol": w.protocol}, p.job["target"],
                  p.job["atlases"], p.settings, p.method, p.method_params, p.affine, p.workdir,
                  {"dseg": o.dseg, "agreement": o.agreement, "volumes": o.volumes, "accuracy": o.accuracy},
                  threads=smk.threads)
    record(o.volumes, p.upstream)  # what its inputs were made from (cohortreg.upstream)
