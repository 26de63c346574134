"""Which subjects and pairs each batch job holds (config ``batch_size`` > 1), and the manifests that say so.

Subjects are batched per cohort in sheet order and pairs per cohort in design order, so subjects
appended to a sheet only touch a cohort's last batches. The affines of pairs that only a learned
model trains or validates on (its training subjects to the cohort's training reference), which no
method evaluates, get batches of their own, numbered from ``TRAIN_BATCH_FROM``: subjects added to
the sheet (more pair batches) do not renumber them and so do not retrain the model.

The rules ask this object (``rules/batch.smk``); it is plain data, so its planning is unit-tested
without Snakemake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from .items import batch_id, chunk
from ..paths import Layout

TRAIN_BATCH_FROM = 90000
Pair = tuple[str, str]  # (moving, fixed)


@dataclass
class BatchPlan:
    size: int
    layout: Layout
    subject_batches: dict[str, list[list[str]]] = field(default_factory=dict)   # cohort -> batches of subjects
    subject_batch: dict[tuple[str, str], str] = field(default_factory=dict)     # (cohort, subject) -> batch id
    pair_batches: dict[str, list[list[Pair]]] = field(default_factory=dict)     # cohort -> batches of pairs
    affine_batches: dict[str, dict[str, list[Pair]]] = field(default_factory=dict)  # cohort -> id -> pairs
    affine_batch_of: dict[tuple[str, str, str], str] = field(default_factory=dict)  # training pair -> batch id

    @property
    def on(self) -> bool:
        return self.size > 1

    @classmethod
    def build(cls, size: int, layout: Layout, subjects: Iterable[tuple[str, str]],
              pairs: Iterable[tuple[str, str, str]], training_pairs: Iterable[tuple[str, str, str]] = ()
              ) -> "BatchPlan":
        """subjects: (cohort, subject) in sheet order; pairs: (cohort, moving, fixed) in design order;
        training_pairs: the pairs a learned model's training reads (their affines are needed too)."""
        plan = cls(size, layout)
        if size <= 1:
            return plan
        by_cohort: dict[str, list[str]] = {}
        for c, s in subjects:
            by_cohort.setdefault(c, []).append(s)
        plan.subject_batches = {c: chunk(s, size) for c, s in by_cohort.items()}
        plan.subject_batch = {(c, s): batch_id(i) for c, bs in plan.subject_batches.items()
                              for i, b in enumerate(bs) for s in b}
        pairs = list(pairs)
        by_cohort_pairs: dict[str, list[Pair]] = {}
        for c, mv, fx in pairs:
            by_cohort_pairs.setdefault(c, []).append((mv, fx))
        plan.pair_batches = {c: chunk(p, size) for c, p in by_cohort_pairs.items()}
        plan.affine_batches = {c: {batch_id(i): b for i, b in enumerate(bs)} for c, bs in plan.pair_batches.items()}
        have = set(pairs)
        extra: dict[str, dict[Pair, None]] = {}
        for c, mv, fx in training_pairs:
            if (c, mv, fx) not in have:
                extra.setdefault(c, {})[(mv, fx)] = None
        for c, new in extra.items():
            for i, b in enumerate(chunk(list(new), size)):
                plan.affine_batches.setdefault(c, {})[batch_id(TRAIN_BATCH_FROM + i)] = b
                plan.affine_batch_of.update({(c, mv, fx): batch_id(TRAIN_BATCH_FROM + i) for mv, fx in b})
        return plan

    # what one batch job holds
    def subjects_of(self, cohort: str, batch: str) -> list[str]:
        return self.subject_batches[cohort][int(batch)]

    def pairs_of(self, cohort: str, batch: str, keep: Callable[[str, str], bool] | None = None) -> list[Pair]:
        """A pair batch's (moving, fixed) pairs, those that ``keep`` accepts (a learned method's without the
        subjects that trained or validated its model)."""
        return [p for p in self.affine_batches[cohort][batch] if keep is None or keep(*p)]

    def subject_manifest(self, cohort: str, subject: str) -> str | None:
        """The manifest of the subject batch that makes this subject's files (None: no batch makes them)."""
        b = self.subject_batch.get((cohort, subject))
        return None if b is None else self.layout.batch("subjects").format(cohort=cohort, batch=b)

    def subject_manifests(self, cohort: str, subjects: Iterable[str]) -> list[str]:
        return sorted({m for s in subjects if (m := self.subject_manifest(cohort, s))})

    # every manifest
    def manifests(self, methods: Sequence[str], stages: Sequence[str] = ("subjects", "affine", "register", "metrics")
                  ) -> list[str]:
        """Every batch job's manifest of these stages: subjects, affines, and each method's register and metrics."""
        L = self.layout
        out = [L.batch("subjects").format(cohort=c, batch=batch_id(i)) for c, bs in self.subject_batches.items()
               for i in range(len(bs))] if "subjects" in stages else []
        for c, bs in self.pair_batches.items():
            for i in range(len(bs)):
                b = batch_id(i)
                out += [L.batch("affine").format(cohort=c, batch=b)] if "affine" in stages else []
                out += [L.batch(f"{m}/{stage}").format(cohort=c, batch=b) for m in methods
                        for stage in ("register", "metrics") if stage in stages]
        if "affine" in stages:  # the training pairs' affines
            out += [L.batch("affine").format(cohort=c, batch=b) for c, bs in self.affine_batches.items()
                    for b in bs if int(b) >= TRAIN_BATCH_FROM]
        return out

    def training_manifests(self, pairs: Iterable[tuple[str, str, str]]) -> list[str]:
        """The manifests a model's training reads: its subjects' batches and its pairs' affine batches."""
        L, out = self.layout, set()
        for c, mv, fx in pairs:
            out.update(self.subject_manifests(c, (mv, fx)))
            b = self.affine_batch_of.get((c, mv, fx))
            if b is None:  # a training pair that a method also evaluates: its affine is in a pair batch
                b = next(i for i, ps in self.affine_batches[c].items() if (mv, fx) in ps)
            out.add(L.batch("affine").format(cohort=c, batch=b))
        return sorted(out)
