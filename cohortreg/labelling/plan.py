"""Who is an atlas, who is labelled from which atlases, and where each subject's labels go (``labelling:``).

Rows of the sheet with a labels file are the atlas pool of their cohort; a cohort is a labelling protocol
(LPBA40's 56 structures and OASIS-TRT's DKT31 are never fused together). Every subject of the sheet, of any
cohort, with or without labels, gets one label map per protocol. A labelled subject is labelled from the
*other* atlases of its protocol (leave-one-out), which gives the study its own accuracy estimate.

Which K atlases: ``first``, the pool's first K in sheet order (without the subject itself), so an atlas
appended to the sheet relabels no one but itself; ``similarity``, the K of the pool most similar to the
subject after the affine (chosen in the subject's job), so every subject of a protocol is relabelled when
its pool changes. The rules ask this object (rules/labelling.smk); it is plain data, unit-tested without
Snakemake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..batches.items import batch_id
from ..paths import Layout
from ..sheet.samples import SheetError
from .fusion import FUSIONS

SELECTIONS = ("first", "similarity")
Subject = tuple[str, str]


@dataclass(frozen=True)
class LabellingSettings:
    atlases: int = 0            # K; 0: labelling off
    fusion: str = "majority"
    method: str = "torch"
    select: str = "first"
    cohorts: tuple[str, ...] = ()
    sigma_mm: float = 2.0       # weighted: the neighbourhood of the local intensity match
    jlf: dict[str, Any] = field(default_factory=dict)  # jlf: antspyx joint_label_fusion's keyword arguments

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> "LabellingSettings":
        cfg = dict(cfg or {})
        s = cls(int(cfg.get("atlases", 0) or 0), str(cfg.get("fusion", "majority")), str(cfg.get("method", "torch")),
                str(cfg.get("select", "first")), tuple(cfg.get("cohorts") or ()), float(cfg.get("sigma_mm", 2.0)),
                dict(cfg.get("jlf") or {}))
        if s.fusion not in FUSIONS:
            raise SheetError(f"labelling.fusion: {s.fusion!r} is not one of {list(FUSIONS)}")
        if s.select not in SELECTIONS:
            raise SheetError(f"labelling.select: {s.select!r} is not one of {list(SELECTIONS)}")
        if s.atlases < 0:
            raise SheetError(f"labelling.atlases: {s.atlases} (the number of atlases per subject; 0 turns labelling off)")
        return s


def protocol_id(cohort: str) -> str:
    """A cohort's name as a BIDS entity value (letters and digits only): atlas-{protocol}."""
    return re.sub(r"[^A-Za-z0-9]", "", cohort)


def subject_outputs(layout: Layout, cohort: str, subject: str, protocol: str) -> dict[str, str]:
    """A subject's labelling files for one protocol: dseg, agreement, volumes, accuracy."""
    ids = dict(cohort=cohort, subject=subject, protocol=protocol)
    return {"dseg": layout.atlas_dseg.format(**ids), "agreement": layout.atlas_agreement.format(**ids),
            "volumes": layout.atlas_file("volumes.tsv").format(**ids),
            "accuracy": layout.atlas_file("accuracy.tsv").format(**ids)}


@dataclass(frozen=True)
class LabellingPlan:
    settings: LabellingSettings
    layout: Layout
    subjects: tuple[Subject, ...]                # every subject of the sheet, in sheet order
    pools: dict[str, tuple[str, ...]]            # protocol id -> its cohort's labelled subjects, sheet order
    cohort_of: dict[str, str]                    # protocol id -> cohort

    @classmethod
    def build(cls, cfg: dict[str, Any] | None, sheet: pd.DataFrame, layout: Layout) -> "LabellingPlan":
        """A clear error at start for: a labelling.cohorts entry that is not a cohort with labels, a protocol
        with too few atlases for K (leave-one-out needs K + 1), two cohorts whose protocol ids collide."""
        s = LabellingSettings.from_config(cfg)
        subjects = tuple((c, sub) for c, sub in sheet.index)
        pools: dict[str, list[str]] = {}
        cohort_of: dict[str, str] = {}
        if s.atlases:
            labelled = [(c, sub) for (c, sub), lab in zip(sheet.index, sheet["labels"]) if lab]
            with_labels = list(dict.fromkeys(c for c, _ in labelled))
            unknown = [c for c in s.cohorts if c not in with_labels]
            if unknown:
                counts = {c: int((sheet["cohort"] == c).sum()) for c in unknown}
                raise SheetError(f"labelling.cohorts: {unknown} have no labelled subjects in the sheet (subjects: "
                                 f"{counts}; cohorts with labels: {with_labels})")
            if not with_labels:
                raise SheetError(f"labelling.atlases: {s.atlases}, but no subject of the sheet has a labels file "
                                 "(the atlases are the labelled subjects); set labelling.atlases: 0 or add labels")
            for c in (s.cohorts or with_labels):
                pid = protocol_id(c)
                if pid in cohort_of:
                    raise SheetError(f"labelling: cohorts {cohort_of[pid]!r} and {c!r} make the same atlas name "
                                     f"atlas-{pid}; rename one")
                cohort_of[pid] = c
                pools[pid] = [sub for cc, sub in labelled if cc == c]
                if len(pools[pid]) < s.atlases + 1:
                    raise SheetError(f"labelling: cohort {c!r} has {len(pools[pid])} labelled subjects; atlases: "
                                     f"{s.atlases} needs at least {s.atlases + 1} (each labelled subject is labelled "
                                     "from the others)")
        return cls(s, layout, subjects, {p: tuple(v) for p, v in pools.items()}, cohort_of)

    @property
    def on(self) -> bool:
        return self.settings.atlases > 0

    @property
    def protocols(self) -> list[str]:
        return list(self.pools)

    def jobs(self) -> list[tuple[str, str, str]]:
        """(cohort, subject, protocol) of every subject's labelling: every subject, every protocol."""
        return [(c, s, p) for c, s in self.subjects for p in self.pools]

    def candidates(self, cohort: str, subject: str, protocol: str) -> list[str]:
        """The atlases a subject's job reads: the protocol's pool without the subject itself; with select
        first only its first K (the job chooses K of them by similarity otherwise)."""
        own = self.cohort_of[protocol] == cohort
        pool = [a for a in self.pools[protocol] if not (own and a == subject)]
        return pool[:self.settings.atlases] if self.settings.select == "first" else pool

    def leave_one_out(self, cohort: str, subject: str, protocol: str) -> bool:
        """Whether the subject is an atlas of this protocol: its own labels then measure the labelling."""
        return self.cohort_of[protocol] == cohort and subject in self.pools[protocol]

    def outputs(self, cohort: str, subject: str, protocol: str) -> dict[str, str]:
        return subject_outputs(self.layout, cohort, subject, protocol)

    def batch_jobs(self, subject_batches: dict[str, list[list[str]]]) -> list[tuple[str, str, str]]:
        """batch_size > 1: (cohort, batch, protocol), one job per subject batch (cohortreg.batches.plan) and protocol."""
        return [(c, batch_id(i), p) for c, batches in subject_batches.items() for i in range(len(batches))
                for p in self.pools]

    def volume_files(self) -> list[str]:
        return [self.outputs(c, s, p)["volumes"] for c, s, p in self.jobs()]

    def accuracy_files(self) -> list[str]:
        return [self.outputs(c, s, p)["accuracy"] for c, s, p in self.jobs()]


def template_route_outputs(layout: Layout, cohort: str, subject: str, protocols: list[str], template: str
                           ) -> dict[str, Any]:
    """A subject's template-route files: logjac and its sidecar logjac_json, and per protocol (protocols)
    dseg, agreement, volumes, accuracy."""
    ids = dict(cohort=cohort, subject=subject)
    per = {p: {"dseg": layout.template_dseg.format(**ids, protocol=p),
               "agreement": layout.template_agreement.format(**ids, protocol=p),
               "volumes": layout.template_atlas_file("volumes.tsv").format(**ids, protocol=p),
               "accuracy": layout.template_atlas_file("accuracy.tsv").format(**ids, protocol=p)} for p in protocols}
    return {"logjac": layout.logjac(template).format(**ids), "logjac_json": layout.logjac(template, ".json").format(**ids),
            "protocols": per}


def flat_outputs(outputs: dict[str, Any]) -> dict[str, str]:
    """template_route_outputs as one flat name -> path dict (a rule's named outputs, a batch item's files)."""
    flat = {"logjac": outputs["logjac"], "logjac_json": outputs["logjac_json"]}
    for p, files in outputs["protocols"].items():
        flat.update({f"{p}_{k}": v for k, v in files.items()})
    return flat


@dataclass(frozen=True)
class TemplateRoute:
    """design: template: every subject registered to the template gets the template's labels of each protocol
    in its own space, and its log-Jacobian map in template space, from its registration by ``method``.

    The protocols are the template's labelled cohorts (within labelling.cohorts where that is set). The
    method is labelling.method where the study registers with it, else (labelling.atlases: 0) the study's
    first method. A subject that was one of the template's inputs is not held out: its own labels voted on
    the template's, so its accuracy rows say held_out false and stay out of labelling.tsv's summary."""
    layout: Layout
    name: str                               # template.name: the fixed subject tpl-{name}
    method: str
    subjects: tuple[Subject, ...]           # the moving subject of every pair to the template
    protocols: dict[str, str]               # protocol id -> cohort
    inputs: frozenset[Subject]              # the template's inputs

    @classmethod
    def build(cls, design: str, settings: LabellingSettings, methods: list[str], subjects: list[Subject],
              template_name: str, template_inputs: frozenset[Subject] | set[Subject], labelled_cohorts: list[str],
              layout: Layout) -> "TemplateRoute | None":
        """None unless design is template. subjects: the moving subjects of the design's pairs."""
        if design != "template":
            return None
        if settings.method in methods:
            method = settings.method
        elif settings.atlases == 0 and methods:
            method = methods[0]
        else:
            raise SheetError(f"labelling.method: {settings.method!r} is not one of the study's methods {methods}; with "
                             "design: template the template's labels reach each subject through that method's "
                             "registration to the template: add it to methods or name one of them")
        cohorts = [c for c in labelled_cohorts if not settings.cohorts or c in settings.cohorts]
        return cls(layout, template_name, method, tuple(subjects), {protocol_id(c): c for c in cohorts},
                   frozenset(template_inputs))

    @property
    def fixed(self) -> str:
        return f"tpl-{self.name}"

    def outputs(self, cohort: str, subject: str) -> dict[str, Any]:
        return template_route_outputs(self.layout, cohort, subject, list(self.protocols), self.name)

    def jobs(self) -> list[tuple[str, str, str]]:
        """(cohort, subject, protocol) of every template-route labelling (the tables' rows)."""
        return [(c, s, p) for c, s in self.subjects for p in self.protocols]

    def manual_labels(self, cohort: str, subject: str, labels_file: str) -> dict[str, str]:
        """protocol -> the subject's own labels file, for the protocol of its own cohort (accuracy)."""
        return {p: labels_file for p, c in self.protocols.items() if c == cohort and labels_file}

    def held_out(self, cohort: str, subject: str) -> bool:
        return (cohort, subject) not in self.inputs

    def files(self) -> tuple[list[str], list[str], list[str]]:
        """Every template-route volumes.tsv, accuracy.tsv and log, in jobs() order."""
        return template_route_files(self.layout, self.jobs(), self.name)


def template_route_files(layout: Layout, jobs: list[tuple[str, str, str]], template: str
                         ) -> tuple[list[str], list[str], list[str]]:
    """The volumes.tsv, accuracy.tsv and log of each template-route (cohort, subject, protocol)."""
    vols, accs, logs = [], [], []
    for c, s, p in jobs:
        out = template_route_outputs(layout, c, s, [p], template)["protocols"][p]
        vols.append(out["volumes"])
        accs.append(out["accuracy"])
        logs.append(layout.template_route_witness().format(cohort=c, subject=s))
    return vols, accs, logs
