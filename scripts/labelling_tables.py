"""Snakemake adapter: metrics/volumes.tsv and metrics/labelling.tsv (cohortreg.labelling.tables)."""
from cohortreg.jobs import job
from cohortreg.labelling.pictures import flagged_pictures
from cohortreg.labelling.tables import write_study_tables
from cohortreg.paths import Layout

smk = snakemake  # noqa: F821
with job(smk, "labelling_tables") as log:
    jobs = [tuple(j) for j in smk.params.jobs]
    route = [tuple(j) for j in smk.params.route_jobs]  # design: template: the template route's rows too
    table = write_study_tables(Layout(smk.params.out), jobs, smk.params.qc, smk.output.figure, route, smk.params.template)
    log.info("%d + %d (template) subjects x protocols, %d volume rows, %d flagged", len(jobs), len(route), len(table), int((table["qc"] != "ok").sum()))
    pictures = flagged_pictures(table, Layout(smk.params.out), smk.params.template, smk.output.flagged)
    log.info("%d pictures of flagged labellings", len(pictures))
