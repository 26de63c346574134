"""Snakemake adapter: MI(intensity; labels) of every labelled subject (cohortreg.evaluation.mutual_info)."""
from cohortreg.io import write_text_atomic
from cohortreg.jobs import job
from cohortreg.evaluation.mutual_info import mi_table

smk = snakemake  # noqa: F821
with job(smk, "mutual_info") as log:
    table = mi_table(smk.params.subjects, smk.params.bins)
    for r in table[table["status"] != "ok"].itertuples():
        log.error("subject %r (cohort %s): MI not computed: %s", r.subject, r.cohort, r.error)
    for cohort, grp in table[table["status"] == "ok"].groupby("cohort"):
        log.info("%s: MI(i;s) %.3f bits (%.0f%% of H(labels)), %d subjects, %d bins", cohort, grp["mi_bits"].mean(),
                 100 * grp["mi_fraction"].mean(), len(grp), smk.params.bins)
    write_text_atomic(table.to_csv(sep="\t", index=False, float_format="%.6g"), smk.output.mi)
