"""Snakemake adapter: one shape update of a template, from a round's registrations (cohortreg.template.build)."""
from cohortreg.jobs import job
from cohortreg.template.build import reference_as_initial, round_inputs, settings_from, update_template

smk = snakemake  # noqa: F821
with job(smk, smk.rule) as log:
    i, o, p = smk.input, smk.output, smk.params
    k = int(smk.wildcards.next)
    if not hasattr(i, "manifests") and not hasattr(i, "batches"):  # iteration 01 is the chosen reference itself
        reference_as_initial(i.template, settings_from(p.settings), o.template, o.row, o.png)
    else:
        inputs = round_inputs(p.inputs, p.files, getattr(i, "batches", ()), k - 1)
        row = update_template(i.template, inputs, p.weights, settings_from(p.settings), k - 1,
                              o.template, o.row, o.png, previous_row=getattr(i, "previous_row", ""))
        log.info("iteration %d: %s", k, row)
