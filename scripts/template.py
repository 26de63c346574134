"""Snakemake adapter: one step of a template build (cohortreg.template.build), chosen by the rule."""
import platform

from cohortreg.jobs import job
from cohortreg.template.build import (Input, TemplateSettings, copy_registration, finish_template, initial_reference,
                                      is_copy, reference_as_initial, register_to_template, update_template)

smk = snakemake  # noqa: F821
FIELDS = ("name", "cohorts", "iterations", "method", "gradient_step", "init", "weighting", "sharpen", "pad_mm",
          "update_steps", "affine_update", "stop_below_mm")


def settings(p):
    return TemplateSettings(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p.settings.items() if k in FIELDS})


def inputs(k):
    """Round k's inputs, from the per-input files listed in params; a batched round's manifests must
    list every input as registered (cohortreg.template.batch.check_round)."""
    if hasattr(smk.input, "batches"):
        from cohortreg.template.batch import check_round

        check_round(list(smk.input.batches), f"{k:02d}")
    manifests, warped, labels = smk.params.files
    return [Input(c, s, m, w, lab) for (c, s), m, w, lab in zip(smk.params.inputs, manifests, warped, labels)]


with job(smk, smk.rule) as log:
    i, o, p = smk.input, smk.output, smk.params
    if smk.rule == "template_reference":
        initial_reference(str(i[0]), p.pad_mm, str(o[0]))
    elif smk.rule == "template_register" and hasattr(i, "previous") and is_copy(i.row):
        copy_registration(i.previous, o.manifest, o.warped, o.warped_labels)
        log.info("template iteration %s is a copy of the last (template.stop_below_mm): registration copied from %s",
                 smk.wildcards.iteration, i.previous)
    elif smk.rule == "template_register":
        register_to_template(i.template, p.brain, p.labels, p.method, p.method_params, p.affine,
                             o.manifest, o.warped, o.warped_labels, threads=smk.threads, affine_only=p.affine_only)
    elif smk.rule == "template_register_batch":
        from cohortreg.batches import forks_items, run_items, workers_for
        from cohortreg.paths import Layout
        from cohortreg.template.batch import register_round_together, round_items

        per_item = min(int(smk.config["resources"]["register"]["threads"]), smk.threads)
        w = smk.wildcards
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
    elif smk.rule == "template_update":
        k = int(smk.wildcards.next)
        if not hasattr(i, "manifests") and not hasattr(i, "batches"):  # iteration 01 is the chosen reference itself
            reference_as_initial(i.template, settings(p), o.template, o.row, o.png)
        else:
            row = update_template(i.template, inputs(k - 1), p.weights, settings(p), k - 1,
                                  o.template, o.row, o.png, previous_row=getattr(i, "previous_row", ""))
            log.info("iteration %d: %s", k, row)
    elif smk.rule == "template_as_subject":
        from cohortreg.template.build import template_as_subject

        if not i.brain:
            raise ValueError(f"{smk.wildcards.subject}: no template of that name is configured (template.name)")
        template_as_subject(smk.wildcards.subject, i.brain, i.mask, i.labels[0] if i.labels else "", p.qc,
                            {k: str(getattr(o, k)) for k in ("t1", "labels", "raw_json", "brain", "mask", "qc")})
    else:  # template_finish
        from cohortreg import __version__
        from cohortreg.provenance import _version

        outputs = {k: str(getattr(o, k)) for k in ("T1w", "mask", "convergence", "convergence_png", "description")}
        outputs.update(dseg=p.dseg, probseg=p.probseg)
        description = {"settings": dict(p.settings), "method_params": dict(p.method_params), "affine": dict(p.affine),
                       "software": {"cohortreg": __version__, "code": p.code, "python": platform.python_version(),
                                    **{lib: _version(lib) for lib in ("antspyx", "torch", "nibabel", "numpy")}}}
        finish_template(i.template, inputs(int(smk.config["template"]["iterations"]) + 1), p.weights, settings(p), list(i.rows),
                        outputs, description)
    if smk.rule in ("template_register", "template_register_batch"):  # what its inputs were made from
        from cohortreg.upstream import record

        record(o.manifest, p.upstream)
