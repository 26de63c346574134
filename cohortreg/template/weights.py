"""How much each input counts in a template's means.

``cohort`` (the default): each cohort counts equally however many subjects it has, 1 / (n_cohorts x
n_in_its_cohort) per subject, so 19 LPBA40 scans do not outvote 3 OASIS-TRT ones. ``subject``: every
subject counts 1 / n.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

WEIGHTINGS = ("cohort", "subject")


def subject_weights(cohorts: Sequence[str], weighting: str = "cohort") -> list[float]:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"template.weighting: {weighting!r}; expected one of {WEIGHTINGS}")
    if not cohorts:
        raise ValueError("a template needs at least one input subject")
    if weighting == "subject":
        return [1.0 / len(cohorts)] * len(cohorts)
    counts = Counter(cohorts)
    return [1.0 / (len(counts) * counts[c]) for c in cohorts]
