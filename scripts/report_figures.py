"""Snakemake adapter: the study's figures, gallery and settings tables (cohortreg.study.report_figures)."""
from cohortreg.jobs import job
from cohortreg.study.report_figures import write_report_files

smk = snakemake  # noqa: F821
with job(smk, "report_figures") as log:
    p = smk.params
    sheet = smk.input.sheet if smk.input.get("sheet") else smk.config["samples"]
    notes = write_report_files(dict(smk.input), dict(smk.output), p.picture, p.worst, p.settings, str(sheet), p.config,
                               p.methods)
    for line in notes:
        log.info("%s", line)
