"""``methods: auto``: the paper's recipe as a choice the workflow makes, and says why.

Jena et al. (NeurIPS 2024): classical optimisation generalises across sites and wins without
labels; a learned model wins only with label supervision and enough labelled training scans of
the cohort it is tested on, and loses under domain shift. So, per evaluated cohort:

- classical (``torch``, beside the ``affine`` baseline) always: it needs no training and no labels;
- a weakly supervised learned model, refined per pair (``learned_io``), beside it when the cohort
  has at least ``min_labelled_train`` labelled training subjects of its own; never for a cohort that
  would only see a model trained elsewhere;
- where the study already measured MI(intensity; labels) (``OUT/metrics/mi.tsv`` of an earlier run),
  a cohort whose intensities carry at least ``max_mi_fraction`` of its labels' entropy is left to the
  classical method (its labels add little the intensities do not hold); ``null`` turns that gate off.

Defaults (``config['auto']``) from our own bench (bench/results/learned_2mm_inference.json): with
10 labelled LPBA40 training subjects, weak ``learned_io`` reached 0.713 against torch's 0.716, no
gain; so 10 is too few, and the default asks for twice that.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..learn.plan import has_split


@dataclass(frozen=True)
class Choice:
    methods: list[str]
    method_params: dict[str, dict[str, Any]]
    reasoning: str


def labelled_training(sheet: pd.DataFrame, train_fraction: float = 0.5) -> dict[str, int]:
    """Labelled training subjects per cohort: split == train with a labels file; without a split
    column, the learned methods' seeded share (train_fraction) of each cohort's labelled subjects."""
    labelled = sheet[sheet["labels"].fillna("").astype(str) != ""]
    if has_split(sheet):
        train = labelled[labelled["split"] == "train"].groupby("cohort").size()
        return {c: int(train.get(c, 0)) for c in sheet["cohort"].unique()}
    counts = labelled.groupby("cohort").size()
    return {c: int(math.floor(counts.get(c, 0) * train_fraction)) for c in sheet["cohort"].unique()}


def cohort_mi(mi_tsv: str | None) -> dict[str, float]:
    """Mean mi_fraction per cohort from an earlier run's mi.tsv; {} when there is none."""
    if not mi_tsv or not os.path.exists(mi_tsv):
        return {}
    mi = pd.read_csv(mi_tsv, sep="\t", dtype={"subject": str})
    mi = mi[mi["status"] == "ok"]
    return mi.groupby("cohort")["mi_fraction"].mean().to_dict()


def choose_methods(sheet: pd.DataFrame, evaluated: list[str], settings: dict[str, Any],
                   learned_defaults: dict[str, Any], mi_tsv: str | None = None) -> Choice:
    """The methods to run for the evaluated cohorts, the learned variants' params, and a paragraph
    that says why."""
    min_train = int(settings.get("min_labelled_train", 20))
    max_mi = settings.get("max_mi_fraction")
    classical = list(settings.get("classical", ["affine", "torch"]))
    counts = labelled_training(sheet, float(learned_defaults.get("train_fraction", 0.5)))
    mi = cohort_mi(mi_tsv)
    methods, params, lines = list(classical), {}, []
    for cohort in evaluated:
        n = counts.get(cohort, 0)
        frac = mi.get(cohort)
        mi_text = f"; MI(i;s) holds {frac:.0%} of its label entropy" if frac is not None else ""
        if n < min_train:
            lines.append(f"{cohort}: {n} labelled training subjects (fewer than {min_train}){mi_text}: classical only "
                         f"({', '.join(classical)}); a learned model would need labels of this cohort to win.")
            continue
        if max_mi is not None and frac is not None and frac >= float(max_mi):
            lines.append(f"{cohort}: {n} labelled training subjects{mi_text} (at least {float(max_mi):.0%}): its "
                         "intensities already carry its labels, so classical only.")
            continue
        name = f"auto_{cohort}"
        params[name] = {**learned_defaults, "engine": "learned", "supervision": "weak", "train_cohorts": [cohort]}
        params[name + "_io"] = {"engine": "learned_io", "model": name}
        methods += [name, name + "_io"]
        lines.append(f"{cohort}: {n} labelled training subjects (at least {min_train}){mi_text}: classical and a "
                     f"weakly supervised model trained on {cohort} ({name}), refined per pair ({name}_io).")
    other = [c for c in counts if c not in evaluated]
    head = ("methods: auto (Jena et al., NeurIPS 2024: classical optimisation generalises and needs no labels; "
            "learned models win only with label supervision on their own cohort). ")
    tail = f" Cohorts not evaluated: {', '.join(other)}." if other else ""
    return Choice(list(dict.fromkeys(methods)), params, head + " ".join(lines) + tail + f" Methods: {', '.join(dict.fromkeys(methods))}.")
