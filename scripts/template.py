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


def inputs(manifests, warped, labels):
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
        register_to_template(i.template, i.brain, getattr(i, "labels", ""), p.method, p.method_params, p.affine,
                             o.manifest, o.warped, o.warped_labels, threads=smk.threads, affine_only=p.affine_only)
    elif smk.rule == "template_update":
        k = int(smk.wildcards.next)
        if not hasattr(i, "manifests"):  # iteration 01 is the chosen reference itself
            reference_as_initial(i.template, settings(p), o.template, o.row, o.png)
        else:
            row = update_template(i.template, inputs(i.manifests, i.warped, i.labels), p.weights, settings(p), k - 1,
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
        finish_template(i.template, inputs(i.manifests, i.warped, i.labels), p.weights, settings(p), list(i.rows),
                        outputs, description)
