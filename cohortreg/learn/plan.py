"""Who trains a learned model, who validates it, and which pairs it must then not be evaluated on.

With the sheet's ``split`` column (train/val/test): the model's cohorts' ``train`` subjects
train it and ``val`` subjects select it, and every method is evaluated among ``test`` subjects
only (rules/common.smk). Without it: a seeded share of each cohort (its evaluation reference
excepted) trains and validates, and those subjects are left out of this model's pairs.

Each training and validation subject is affinely aligned to a training reference per cohort (its
first training subject, never a subject the model is evaluated on); the model then trains on every
ordered pair of training subjects on that grid, and is selected on pairs whose fixed image is a
validation subject (cohortreg.learn.data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..paths import Layout
from ..sheet.samples import SheetError


@dataclass(frozen=True)
class TrainingPlan:
    model: str
    cohorts: tuple[str, ...]
    train: tuple[tuple[str, str], ...]      # (cohort, subject)
    val: tuple[tuple[str, str], ...]
    reference: tuple[tuple[str, str], ...]  # (cohort, training reference)
    from_split: bool

    def pairs(self, which: str = "train") -> list[tuple[str, str, str]]:
        """(cohort, moving, fixed): each training or validation subject to its cohort's training reference,
        the affines the training data is resampled through."""
        ref = dict(self.reference)
        subjects = self.train if which == "train" else self.val
        return [(c, s, ref[c]) for c, s in subjects if s != ref[c]]

    def all_pairs(self) -> list[tuple[str, str, str]]:
        """The training pairs, then the validation pairs: every pair the training reads."""
        return self.pairs("train") + self.pairs("val")

    def used(self) -> set[tuple[str, str]]:
        return set(self.train) | set(self.val)

    def subjects(self) -> list[tuple[str, str]]:
        """Every (cohort, subject) whose files the training reads: its pairs' moving and fixed subjects."""
        return sorted({(c, s) for c, mv, fx in self.all_pairs() for s in (mv, fx)})

    def description(self) -> dict[str, Any]:
        """Who trained and validated the model (model.json beside it; pairs.tsv's model column)."""
        return {"model": self.model, "train_cohorts": list(self.cohorts), "from_split": self.from_split,
                "train_subjects": [f"{c}/{s}" for c, s in self.train], "val_subjects": [f"{c}/{s}" for c, s in self.val]}


def has_split(sheet: pd.DataFrame) -> bool:
    return bool((sheet["split"] != "").any())


def plan_training(sheet: pd.DataFrame, model: str, params: dict[str, Any], references: dict[str, str]) -> TrainingPlan:
    """references: each cohort's evaluation reference (kept out of training without a split column)."""
    cohorts = list(params.get("train_cohorts") or list(dict.fromkeys(sheet["cohort"])))
    known = set(sheet["cohort"])
    missing = [c for c in cohorts if c not in known]
    if missing:
        raise SheetError(f"method {model!r}: train_cohorts {missing} are not cohorts of the sample sheet "
                         f"(it has {sorted(known)})")
    split = has_split(sheet)
    seed = int(params.get("seed", 0))
    train, val, refs = [], [], []
    for c in cohorts:
        rows = sheet[sheet["cohort"] == c]
        if split:
            tr = list(rows.loc[rows["split"] == "train", "subject"])
            va = list(rows.loc[rows["split"] == "val", "subject"])
        else:
            pool = [s for s in rows["subject"] if s != references.get(c)]
            order = [pool[i] for i in np.random.default_rng([seed, len(pool)]).permutation(len(pool))]
            n_train = max(2, int(round(float(params.get("train_fraction", 0.5)) * len(pool))))
            n_val = int(round(float(params.get("val_fraction", 0.1)) * len(pool)))
            n_val = max(1, n_val) if params.get("val_fraction", 0.1) and len(pool) > n_train else n_val
            tr = sorted(order[:n_train], key=list(rows["subject"]).index)
            va = sorted(order[n_train:n_train + n_val], key=list(rows["subject"]).index)
        if len(tr) < 2:
            raise SheetError(f"method {model!r}: cohort {c!r} has {len(tr)} training subject(s); at least 2 are needed "
                             "(split column 'train', or more subjects)")
        train += [(c, s) for s in tr]
        val += [(c, s) for s in va]
        refs.append((c, tr[0]))
    return TrainingPlan(model, tuple(cohorts), tuple(train), tuple(val), tuple(refs), split)


def subject_row(layout: Layout, cohort: str, subject: str, reference: str) -> dict[str, str]:
    """What training reads of one subject: its brain and labels, its affine to the cohort's training
    reference, and the reference's brain and labels (the rows rules/learn.smk passes the training job)."""
    at = lambda pattern, s: pattern.format(cohort=cohort, subject=s)  # noqa: E731
    return {"cohort": cohort, "subject": subject, "reference": reference,
            "moving": at(layout.brain, subject), "moving_labels": at(layout.preproc_labels, subject),
            "fixed": at(layout.brain, reference), "fixed_labels": at(layout.preproc_labels, reference),
            "affine": layout.affine.format(cohort=cohort, moving=subject, fixed=reference)}
