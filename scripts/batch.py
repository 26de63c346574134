"""Snakemake adapter: one stage for a batch of subjects or pairs (cohortreg.batches)."""
from cohortreg.batches import pair_items, register_together, run_items, subject_items
from cohortreg.jobs import job
from cohortreg.paths import Layout

smk = snakemake  # noqa: F821
with job(smk, f"{smk.params.stage} batch") as log:
    L, w, p = Layout(smk.params.out), smk.wildcards, smk.params
    together = None
    if p.stage == "subjects":
        items = subject_items(w.cohort, p.rows, p.preprocess, p.skullstrip, L, p.qc)
    else:
        method = getattr(w, "method", "affine")
        items = pair_items(p.stage, w.cohort, p.pairs, method, p.settings, L, smk.threads)
        if p.stage == "register":  # torch on a GPU: the batch's pairs optimised as stacks
            together = register_together(method, p.settings, smk.threads)
    done = run_items(items, smk.output.manifest, together)
    for name in done["failed"]:
        log.error("%s failed or skipped; see its own log", name)
