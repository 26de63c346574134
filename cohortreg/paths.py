"""Every output path of the workflow, built in one place (BIDS-like names, one tree per cohort).

Patterns keep Snakemake wildcards ({cohort}, {subject}, {moving}, {fixed}, {method}); format them
with real values to find a file. The tree a person browses:

    OUT/{cohort}/sub-{subject}/anat/            preprocessed T1, labels, brain and mask
    OUT/{cohort}/sub-{moving}/to-{fixed}/init/  affine initialisation (ANTs .mat)
    OUT/{cohort}/sub-{moving}/to-{fixed}/{method}/  transforms, warped image and labels, metrics
    OUT/metrics/                                 pairs.tsv, labels.tsv, summary.tsv
    OUT/logs/, OUT/benchmarks/                   one log and one benchmark per subject or pair
    OUT/batches/{cohort}/                        batch_size > 1: one manifest per batch job
    OUT/models/{model}/                          a learned method's model.pt, training curve, checkpoints
    OUT/{cohort}/sub-{subject}/anat/sub-{subject}_atlas-{protocol}_*  labelling: the subject's atlas labels,
                                                 their agreement, its regional volumes (its own grid)
    OUT/{cohort}/sub-{subject}/atlas-{protocol}/from-{atlas}/  each atlas's registration to the subject
    OUT/{cohort}/sub-{subject}/anat/sub-{subject}_atlas-{protocol}_desc-template_*  design: template: the
                                                 template's labels there; ..._space-{template}_desc-logjac_*
                                                 the subject's log-Jacobian map in template space
    OUT/templates/{name}/                        a built template (tpl-{name}_*), its convergence and
                                                 iter-{iteration}/ (that iteration's template, the
                                                 inputs registered to it, the update's row)
"""

from __future__ import annotations

from dataclasses import dataclass

SUBJ = "{cohort}/sub-{subject}/anat/sub-{subject}"
PAIR = "{cohort}/sub-{moving}/to-{fixed}"
PAIR_TAG = "{cohort}/sub-{moving}_to-{fixed}"


@dataclass(frozen=True)
class Layout:
    out: str

    def _p(self, rel: str) -> str:
        return f"{self.out}/{rel}"

    def _witness(self, what: str, rel: str) -> str:
        """A job's log (what: logs) or benchmark (benchmarks): OUT/{what}/{rel}.{log,tsv}."""
        return self._p(f"{what}/{rel}" + (".log" if what == "logs" else ".tsv"))

    # per subject
    @property
    def preproc_t1(self) -> str:
        return self._p(SUBJ + "_desc-preproc_T1w.nii.gz")

    @property
    def preproc_labels(self) -> str:
        return self._p(SUBJ + "_desc-preproc_dseg.nii.gz")

    @property
    def brain(self) -> str:
        return self._p(SUBJ + "_desc-brain_T1w.nii.gz")

    @property
    def brain_mask(self) -> str:
        return self._p(SUBJ + "_desc-brain_mask.nii.gz")

    @property
    def preproc_json(self) -> str:
        """The raw scan's stats that QC judges (levels, background, header handedness)."""
        return self._p(SUBJ + "_desc-preproc_T1w.json")

    @property
    def subject_qc(self) -> str:
        """The subject's input verdict (cohortreg.evaluation.qc.subject_qc)."""
        return self._p(SUBJ + "_qc.json")

    # labelling (rules/labelling.smk): atlas labels on the subject's own input grid, per protocol
    @property
    def atlas_dseg(self) -> str:
        return self._p(SUBJ + "_atlas-{protocol}_dseg.nii.gz")

    @property
    def atlas_agreement(self) -> str:
        """The share of atlases that voted for the winning label at each voxel."""
        return self._p(SUBJ + "_atlas-{protocol}_desc-agreement_probseg.nii.gz")

    def atlas_file(self, name: str) -> str:
        """The subject's volumes.tsv (per region) and accuracy.tsv (leave-one-out, an atlas only)."""
        return self._p(SUBJ + "_atlas-{protocol}_" + name)

    @property
    def atlas_workdir(self) -> str:
        """The atlases' registrations to the subject: from-{atlas}/ affine.mat, transforms.json, warped T1."""
        return self._p("{cohort}/sub-{subject}/atlas-{protocol}")

    def labelling_witness(self, what: str = "logs") -> str:
        return self._witness(what, "labelling/{cohort}/sub-{subject}_atlas-{protocol}")

    # the template route (design: template): the template's labels in the subject's own space, and the
    # subject's log-Jacobian map in the template's space (cohortreg.labelling.template_route)
    @property
    def template_dseg(self) -> str:
        return self._p(SUBJ + "_atlas-{protocol}_desc-template_dseg.nii.gz")

    @property
    def template_agreement(self) -> str:
        """The share of the template's inputs that voted for the winning label, carried to the subject."""
        return self._p(SUBJ + "_atlas-{protocol}_desc-templateagreement_probseg.nii.gz")

    def template_atlas_file(self, name: str) -> str:
        """The template route's volumes.tsv and accuracy.tsv (a subject with labels of the protocol only)."""
        return self._p(SUBJ + "_atlas-{protocol}_desc-template_" + name)

    def logjac(self, template: str, ext: str = ".nii.gz") -> str:
        """log det Jacobian of template -> subject on the template's grid (ext .json: its sidecar)."""
        return self._p(SUBJ + "_space-" + template + "_desc-logjac_jacobian" + ext)

    def template_route_witness(self, what: str = "logs") -> str:
        return self._witness(what, "template_route/{cohort}/sub-{subject}")

    # per pair
    @property
    def affine(self) -> str:
        return self._p(PAIR + "/init/affine.mat")

    def method_file(self, name: str) -> str:
        return self._p(PAIR + "/{method}/" + name)

    @property
    def warped_t1(self) -> str:
        return self.method_file("sub-{moving}_space-{fixed}_desc-warped_T1w.nii.gz")

    @property
    def warped_labels(self) -> str:
        return self.method_file("sub-{moving}_space-{fixed}_desc-warped_dseg.nii.gz")

    @property
    def qc_picture(self) -> str:
        """The pair's overlay (cohortreg.evaluation.qc_picture): checkerboard of warped and fixed, warped label contours."""
        return self.method_file("sub-{moving}_space-{fixed}_desc-overlay_T1w.png")

    # learned models (rules/learn.smk): OUT/models/{model}/model.pt, training.tsv, training.png, checkpoints/
    def model(self, name: str = "model.pt") -> str:
        return self._p("models/{model}/" + name)

    def model_witness(self, what: str = "logs") -> str:
        """The training job's log or benchmark: OUT/{logs,benchmarks}/train/{model}.{log,tsv}."""
        return self._witness(what, "train/{model}")

    # templates (rules/template.smk): {name} is template.name; iteration 00 is the reference, 01 the
    # affine-aligned mean, each later one the result of one deformable update
    def template_file(self, suffix: str) -> str:
        """A deliverable: tpl-{name}_T1w.nii.gz, ..._desc-brain_mask.nii.gz, ..._cohort-{cohort}_dseg.nii.gz."""
        return self._p("templates/{name}/tpl-{name}_" + suffix)

    def template_doc(self, name: str) -> str:
        """convergence.tsv, convergence.png, template_description.json."""
        return self._p("templates/{name}/" + name)

    def template_iter(self, name: str = "T1w.nii.gz", which: str = "iteration") -> str:
        return self._p("templates/{name}/iter-{" + which + "}/tpl-{name}_iter-{" + which + "}_" + name)

    def template_batch(self, what: str = "batches") -> str:
        """A batch of a round's registrations (template.batch_size > 1): its manifest, log or benchmark."""
        where = {"batches": "templates", "logs": "logs/template_batches", "benchmarks": "benchmarks/template_batches"}[what]
        ext = ".json" if what == "batches" else ".log" if what == "logs" else ".tsv"
        return self._p(f"{where}/{{name}}/iter-{{iteration}}/batch-{{batch}}{ext}")

    def template_witness(self, step: str, what: str = "logs") -> str:
        """A template job's log or benchmark: OUT/{logs,benchmarks}/template/{name}/{step}.{log,tsv}, step one of
        reference, iter-{iteration}/{cohort}/sub-{subject} (an input's registration), update-{next}, finish."""
        return self._witness(what, f"template/{{name}}/{step}")

    def template_input(self, name: str) -> str:
        """An input's registration to iteration {iteration}'s template: transforms.json, warped files."""
        return self._p("templates/{name}/iter-{iteration}/{cohort}/sub-{subject}/" + name)

    # cohort tables
    def table(self, name: str) -> str:
        return self._p(f"metrics/{name}.tsv")

    # batch jobs (config batch_size > 1): stage is subjects, affine, or {method}/register, {method}/metrics
    def batch(self, stage: str, what: str = "batches") -> str:
        where = {"batches": "batches", "logs": "logs/batches", "benchmarks": "benchmarks/batches"}[what]
        ext = ".json" if what == "batches" else ".log" if what == "logs" else ".tsv"
        return self._p(f"{where}/{{cohort}}/{stage}/batch-{{batch}}{ext}")

    # the tree as a BIDS derivative dataset (cohortreg.study.derivative)
    @property
    def dataset_description(self) -> str:
        return self._p("dataset_description.json")

    @property
    def citation(self) -> str:
        """The methods paragraph of this run, with references."""
        return self._p("logs/CITATION.md")

    # the study report's items (rules/report.smk): figures, tables, the gallery
    def report_file(self, name: str) -> str:
        return self._p(f"report/{name}")

    # witnesses
    def study_benchmark(self, rule: str) -> str:
        """A study-level job's benchmark: OUT/benchmarks/{rule}.tsv."""
        return self._p(f"benchmarks/{rule}.tsv")

    def study_log(self, rule: str) -> str:
        """A study-level job's log (the aggregation, the report's figures): OUT/logs/{rule}.log."""
        return self._p(f"logs/{rule}.log")

    def log(self, rule: str, pair: bool = False) -> str:
        return self._p(f"logs/{rule}/" + (PAIR_TAG + "_{method}" if rule.startswith(("register", "metrics")) else
                                          PAIR_TAG if pair else "{cohort}/sub-{subject}") + ".log")

    def benchmark(self, rule: str, pair: bool = False) -> str:
        return self._p(f"benchmarks/{rule}/" + (PAIR_TAG + "_{method}" if rule.startswith(("register", "metrics")) else
                                                PAIR_TAG if pair else "{cohort}/sub-{subject}") + ".tsv")
