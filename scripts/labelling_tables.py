"""Snakemake adapter: metrics/volumes.tsv and metrics/labelling.tsv (cohortreg.labelling.tables)."""
from cohortreg.jobs import job
from cohortreg.labelling.tables import write_labelling_tables
from cohortreg.paths import Layout

smk = snakemake  # noqa: F821
with job(smk, "labelling_tables") as log:
    L = Layout(smk.params.out)
    jobs = [tuple(j) for j in smk.params.jobs]
    ids = [dict(cohort=c, subject=s, protocol=p) for c, s, p in jobs]
    table = write_labelling_tables(jobs, [L.atlas_file("volumes.tsv").format(**i) for i in ids],
                                   [L.atlas_file("accuracy.tsv").format(**i) for i in ids],
                                   [L.labelling_witness().format(**i) for i in ids], smk.output.volumes,
                                   smk.output.labelling, smk.params.qc, smk.output.figure)
    log.info("%d subjects x protocols, %d volume rows, %d flagged", len(jobs), len(table), int((table["qc"] != "ok").sum()))
