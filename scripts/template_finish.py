"""Snakemake adapter: the final template, its mask, labels per cohort, convergence and description
(cohortreg.template.build.finish_template)."""
import platform

from cohortreg import __version__
from cohortreg.jobs import job
from cohortreg.provenance import _version
from cohortreg.template.build import finish_template, round_inputs, settings_from

smk = snakemake  # noqa: F821
with job(smk, smk.rule):
    i, o, p = smk.input, smk.output, smk.params
    last = int(smk.config["template"]["iterations"]) + 1
    outputs = {k: str(getattr(o, k)) for k in ("T1w", "mask", "convergence", "convergence_png", "description")}
    outputs.update(dseg=p.dseg, probseg=p.probseg)
    description = {"settings": dict(p.settings), "method_params": dict(p.method_params), "affine": dict(p.affine),
                   "software": {"cohortreg": __version__, "code": p.code, "python": platform.python_version(),
                                **{lib: _version(lib) for lib in ("antspyx", "torch", "nibabel", "numpy")}}}
    finish_template(i.template, round_inputs(p.inputs, p.files, getattr(i, "batches", ()), last), p.weights,
                    settings_from(p.settings), list(i.rows), outputs, description)
