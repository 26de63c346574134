"""Snakemake adapter: OUT/dataset_description.json and OUT/logs/CITATION.md (cohortreg.study.derivative)."""
import json

from cohortreg.io import write_text_atomic
from cohortreg.jobs import job
from cohortreg.paths import Layout
from cohortreg.study.derivative import citation, dataset_description, skullstrip_decisions

smk = snakemake  # noqa: F821
with job(smk, "dataset_description") as log:
    p, L = smk.params, Layout(smk.params.out)
    write_text_atomic(json.dumps(dataset_description(p.code, p.samples), indent=2) + "\n", smk.output.description)
    decisions = skullstrip_decisions(L.subject_qc.format(cohort=c, subject=s) for c, s in p.subjects)
    log.info("skull-strip decisions: %s", dict(decisions))
    write_text_atomic(citation(p.settings, p.engines, decisions, len(p.subjects), p.template, p.labelling),
                      smk.output.citation)
