"""Snakemake adapter: preprocess one subject (cohortreg.preprocess)."""
from cohortreg.io import save_atomic
from cohortreg.jobs import job
from cohortreg.preprocess import PreprocessSettings, preprocess_subject

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job(smk, "preprocess"):
    out = preprocess_subject(smk.wildcards.subject, smk.params.t1, smk.params.labels,
                             settings=PreprocessSettings(**smk.params.settings))
    save_atomic(out.t1, smk.output.t1)
    save_atomic(out.labels, smk.output.labels)
