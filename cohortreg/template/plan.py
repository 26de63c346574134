"""Which subjects build a template, its iterations and batches, and every file a round reads or writes.

``rules/template.smk`` asks this object for its inputs, params and outputs; it is plain data made once
from the config and the sheet, so the template's planning is unit-tested without Snakemake.

Iteration 00 is the reference (the first input, a subject named by ``init``, or a file), 01 the
affine-aligned mean (``init: mean``), each later one the result of one deformable update, and the
last (``iterations + 1``) the final template, to which the inputs registered give its labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from ..batches.items import auto_batch_size, batch_id, chunk
from ..learn.plan import has_split
from ..paths import Layout
from ..sheet.samples import SheetError
from .weights import subject_weights

Subject = tuple[str, str]  # (cohort, subject)
# (subjects, the job's output) -> the job's inputs that make those subjects' brains and labels
SubjectInputs = Callable[[list[Subject], str], dict[str, list[str]]]
ROUND_FILES = ("transforms.json", "warped_T1w.nii.gz", "warped_dseg.nii.gz")


def iteration_id(k: int | str) -> str:
    return f"{int(k):02d}"


@dataclass(frozen=True)
class TemplatePlan:
    layout: Layout
    settings: dict[str, Any]
    inputs: tuple[Subject, ...]          # sheet order; with a split column train/val subjects only
    labelled: frozenset[Subject]         # inputs with a labels file
    batch_size: int                      # > 1: a round's registrations this many inputs a job

    @classmethod
    def build(cls, settings: dict[str, Any], sheet: pd.DataFrame, layout: Layout,
              study_batch_size: int | str = "auto") -> "TemplatePlan":
        """settings: config['template']; sheet: indexed by (cohort, subject), with labels (and split) columns.
        An ``init`` that is neither mean, a file nor a subject of the sheet is an error here, at start."""
        rows = sheet[sheet["cohort"].isin(settings["cohorts"])] if settings["cohorts"] else sheet
        if has_split(sheet):  # the test subjects are registered to it, never part of it
            rows = rows[rows["split"] != "test"]
        inputs = tuple((c, s) for c, s in rows.index)
        labelled = frozenset((c, s) for (c, s), lab in zip(rows.index, rows["labels"]) if lab)
        setting = settings["batch_size"] if settings.get("batch_size") is not None else study_batch_size
        plan = cls(layout, dict(settings), inputs, labelled, auto_batch_size(setting, len(inputs)))
        ref = plan.reference
        if ref and not plan.file and tuple(ref) not in set(sheet.index):
            raise SheetError(f"template.init: {settings['init']!r} is neither mean, a file nor a subject of the "
                             "sheet (cohort/subject)")
        return plan

    # what the settings say
    @property
    def name(self) -> str:
        return str(self.settings["name"])

    @property
    def method(self) -> str:
        return str(self.settings["method"])

    @property
    def last(self) -> int:
        """The final template's iteration number."""
        return int(self.settings["iterations"]) + 1

    @property
    def stop(self) -> bool:
        """Early stop (stop_below_mm): the rows that say whether a round is copied are inputs only then."""
        return self.settings.get("stop_below_mm") is not None

    @property
    def file(self) -> str:
        """init as a NIfTI file, or ''."""
        init = str(self.settings["init"])
        return init if init.endswith((".nii", ".nii.gz")) else ""

    @property
    def starts_from_mean(self) -> bool:
        return self.settings["init"] in ("mean", "")

    @property
    def reference(self) -> Subject | None:
        """The subject iteration 00 is made from (the first input unless init names one); None without inputs."""
        if not self.inputs:
            return None
        if self.starts_from_mean or self.file:
            return self.inputs[0]
        return tuple(str(self.settings["init"]).split("/", 1))  # type: ignore[return-value]

    @property
    def weights(self) -> list[float]:
        return subject_weights([c for c, _ in self.inputs], self.settings["weighting"]) if self.inputs else []

    @property
    def batches(self) -> list[list[Subject]]:
        return chunk(list(self.inputs), self.batch_size) if self.batch_size > 1 else []

    @property
    def labelled_cohorts(self) -> list[str]:
        return sorted({c for c, _ in self.labelled})

    # paths
    def path(self, pattern: str, **kw: Any) -> str:
        """A template path pattern with the template's name (and any of kw) filled in, other wildcards kept."""
        for key, value in {"name": self.name, **kw}.items():
            pattern = pattern.replace(f"{{{key}}}", str(value))
        return pattern

    def iteration(self, k: int | str) -> str:
        return self.path(self.layout.template_iter(), iteration=iteration_id(k))

    def update_row(self, k: int | str) -> str:
        """The row of the update that made iteration k."""
        return self.path(self.layout.template_iter("update.json", "next"), next=iteration_id(k))

    def outputs(self) -> dict[str, str]:
        L = self.layout
        return {"T1w": self.path(L.template_file("T1w.nii.gz")),
                "mask": self.path(L.template_file("desc-brain_mask.nii.gz")),
                "convergence": self.path(L.template_doc("convergence.tsv")),
                "convergence_png": self.path(L.template_doc("convergence.png")),
                "description": self.path(L.template_doc("template_description.json"))}

    def label_maps(self, kind: str = "dseg") -> list[str]:
        """The final template's label maps (dseg or probseg), one per labelled cohort."""
        return [self.path(self.layout.template_file(f"cohort-{{cohort}}_{kind}.nii.gz"), cohort=c)
                for c in self.labelled_cohorts]

    def labels(self, cohort: str, subject: str) -> str:
        """An input's preprocessed labels, or '' for a subject without labels."""
        return self.layout.preproc_labels.format(cohort=cohort, subject=subject) if (cohort, subject) in self.labelled else ""

    def reference_input(self) -> str:
        if not self.inputs:
            raise SheetError(f"template {self.name!r}: no input subjects (template.cohorts {self.settings['cohorts']}; "
                             "with a split column only train/val subjects build a template)")
        if self.file:
            return self.file
        c, s = self.reference  # type: ignore[misc]
        return self.layout.brain.format(cohort=c, subject=s)

    # a round: every input registered to iteration k
    def round(self, k: int, what: str) -> list[str]:
        """Every input's file ``what`` of round k (its registration to iteration k's template)."""
        return [self.path(self.layout.template_input(what), iteration=iteration_id(k), cohort=c, subject=s)
                for c, s in self.inputs]

    def round_files(self, k: int) -> list[list[str]]:
        """Round k's per-input files, for the scripts: (manifests, warped, labels) lists in input order."""
        return [self.round(k, what) for what in ROUND_FILES]

    def batch_manifest(self, k: int | str, batch: int | str) -> str:
        return self.path(self.layout.template_batch(), iteration=iteration_id(k), batch=batch_id(int(batch)))

    def batch_manifests(self, k: int) -> list[str]:
        """Round k's batch manifests (batch_size > 1)."""
        return [self.batch_manifest(k, i) for i in range(len(self.batches))]

    def all_batch_manifests(self) -> list[str]:
        """Every round's batch manifests (for retry_failed_batches)."""
        return [m for k in range(self.last + 1) for m in self.batch_manifests(k)]

    def round_inputs(self, k: int) -> dict[str, list[str]]:
        """What a job reading round k depends on: every input's three files, or the round's batch manifests
        (the files are then written inside the batch jobs)."""
        if self.batches:
            return {"batches": self.batch_manifests(k)}
        return dict(zip(("manifests", "warped", "labels"), self.round_files(k)))

    # each rule's inputs
    def update_inputs(self, next_iteration: int | str) -> dict[str, Any]:
        """The update that makes iteration ``next``: round next-1's registrations (none when iteration 01 is
        the chosen reference itself: init a subject or a file)."""
        k = int(next_iteration) - 1
        out: dict[str, Any] = {"template": self.iteration(k)}
        if k == 0 and not self.starts_from_mean:
            return out
        out.update(self.round_inputs(k))
        if self.stop and k >= 1:  # a converged iteration k is copied (cohortreg.template.build.update_template)
            out["previous_row"] = self.update_row(k)
        return out

    def register_output(self, cohort: str, subject: str, k: int | str) -> str:
        return self.path(self.layout.template_input("transforms.json"), iteration=iteration_id(k), cohort=cohort,
                         subject=subject)

    def register_inputs(self, cohort: str, subject: str, k: int | str, subject_inputs: SubjectInputs,
                        model: str = "") -> dict[str, Any]:
        """One input's registration to iteration k: the template, the input's brain and labels (by
        ``subject_inputs``), a learned method's model, and with an early stop the row that says whether
        to copy the registration to the iteration before."""
        out = {"template": self.iteration(k),
               **subject_inputs([(cohort, subject)], self.register_output(cohort, subject, k))}
        out.update({"model": model} if model else {})
        if self.stop and int(k) >= 2:
            out["row"] = self.update_row(k)
            out["previous"] = self.register_output(cohort, subject, int(k) - 1)
        return out

    def batch_inputs(self, k: int | str, batch: int | str, subject_inputs: SubjectInputs, model: str = ""
                     ) -> dict[str, Any]:
        """A batch of round k: as register_inputs, for the batch's inputs, their files in one list."""
        subjects = subject_inputs(self.batches[int(batch)], self.batch_manifest(k, batch))
        out: dict[str, Any] = {"template": self.iteration(k),
                               "subject_files": sorted({f for files in subjects.values() for f in files})}
        out.update({"model": model} if model else {})
        if self.stop and int(k) >= 2:
            out["row"] = self.update_row(k)
            out["previous"] = self.batch_manifest(int(k) - 1, batch)
        return out

    def batch_items(self, batch: int | str) -> list[tuple[str, str, str]]:
        """(cohort, subject, preprocessed labels or '') of a batch's inputs."""
        return [(c, s, self.labels(c, s)) for c, s in self.batches[int(batch)]]

    def subject_files(self, subjects: list[Subject]) -> dict[str, list[str]]:
        """Subjects' brains and labels as files (a per-subject study: no batch makes them)."""
        out: dict[str, list[str]] = {}
        for c, s in subjects:
            labels = self.labels(c, s)
            out.setdefault("brain", []).append(self.layout.brain.format(cohort=c, subject=s))
            out.setdefault("labels", []).extend([labels] if labels else [])
        return {k: v for k, v in out.items() if v}
