"""Snakemake adapter: a batch of a round's registrations (cohortreg.template.batch)."""
from cohortreg.batches.items import forks_items, run_items, workers_for
from cohortreg.jobs import job
from cohortreg.paths import Layout
from cohortreg.template.batch import register_round_together, round_items
from cohortreg.upstream import record

smk = snakemake  # noqa: F821
with job(smk, smk.rule) as log:
    i, o, p, w = smk.input, smk.output, smk.params, smk.wildcards
    per_item = min(int(smk.config["resources"]["register"]["threads"]), smk.threads)
    previous = f"{int(w.iteration) - 1:02d}"
    items = round_items(Layout(p.out), smk.config["template"]["name"], w.iteration, p.batch_inputs, i.template, p.method,
                        p.method_params, p.affine, p.affine_only, per_item, getattr(i, "row", ""), previous)
    together = register_round_together(items, i.template, p.method, p.method_params, p.affine, p.affine_only,
                                       smk.threads)
    workers = workers_for(smk.threads, per_item, len(items))
    log.info("%d inputs, %d at a time with %d threads each", len(items), workers, per_item)
    # ANTs' items (its affine, or SyN after either affine) side by side in processes: it holds the GIL
    forked = forks_items("affine", settings=p.affine) if p.affine_only else forks_items("register", p.method,
                                                                                       p.method_params)
    done = run_items(items, o.manifest, together, workers, forked)
    for name in done["failed"]:
        log.error("%s failed or skipped; see its own log", name)
    record(o.manifest, p.upstream)  # what its inputs were made from (cohortreg.upstream)
