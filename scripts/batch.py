"""Snakemake adapter: one stage for a batch of subjects or pairs (cohortreg.batches.items)."""
from cohortreg.batches.items import (forks_items, pair_items, register_items, register_together, run_items, subject_items,
                               workers_for)
from cohortreg.jobs import job, pin_threads
from cohortreg.paths import Layout
from cohortreg.registration import pair_threads

smk = snakemake  # noqa: F821
family = "subject" if smk.params.stage == "subjects" else smk.params.stage  # config resources' key
# Each item gets its stage's threads (config resources); the job's threads beyond that run items side by side.
per_item = min(int(smk.config["resources"][family]["threads"]), smk.threads)
method = getattr(smk.wildcards, "method", "affine")
if family == "register":  # as the rule's request (rules/resources.smk: method_threads)
    per_item = pair_threads(method, smk.params.settings, per_item)
with job(smk, f"{smk.params.stage} batch", threads=per_item) as log:
    L, w, p = Layout(smk.params.out), smk.wildcards, smk.params
    together = None
    if p.stage == "subjects":
        items = subject_items(w.cohort, p.rows, p.preprocess, p.skullstrip, L, p.qc)
    elif p.stage == "register":  # locally, torch's pairs may run one thread each, side by side (batches.item_threads)
        items = register_items(w.cohort, p.pairs, method, p.settings, L, smk.threads, per_item, smk.output.manifest,
                               p.local, smk.config["resources"]["register"]["mem_mb"])
        if items and items[0].threads != per_item:
            per_item = items[0].threads
            pin_threads(per_item)  # before torch and antspyx start their thread pools
        together = register_together(method, p.settings, smk.threads)  # torch on a GPU: stacks of pairs
    else:
        items = pair_items(p.stage, w.cohort, p.pairs, method, p.settings, L, per_item)
    workers = workers_for(smk.threads, per_item, len(items))
    log.info("%d items, %d at a time with %d threads each", len(items), workers, per_item)
    processes = forks_items(p.stage, method, p.get("settings"))  # ANTs' items: side by side in processes
    failed = run_items(items, smk.output.manifest, together, workers, processes)["failed"]
    if p.stage == "register" and hasattr(smk.output, "metrics"):  # batch_fuse: the metrics items, in this process
        items = pair_items("metrics", w.cohort, p.pairs, method, p.qc, L)
        m_threads = min(int(smk.config["resources"]["metrics"]["threads"]), smk.threads)
        workers = workers_for(smk.threads, m_threads, len(items))
        log.info("then %d metrics items, %d at a time", len(items), workers)
        failed += run_items(items, smk.output.metrics, None, workers)["failed"]
    for name in failed:
        log.error("%s failed or skipped; see its own log", name)
