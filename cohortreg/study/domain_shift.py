"""The domain-shift grid: metrics/domain_shift.tsv (train cohorts x test cohort x method -> mean Dice).

A learned method's rows carry its model and the cohorts that trained it (pairs.tsv's ``model``:
'vxm_oasis (oasis)'); a test cohort among them is in domain, any other is a shift. Beside each
learned figure stand the classical methods' (rows without a model) on exactly the same pairs, so
a gap is the method's and not the pairs'.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

SHIFT_COLUMNS = ["method", "model", "train_cohorts", "test_cohort", "in_domain", "n", "dice_mean",
                 "reference_method", "reference_dice_mean", "dice_gap"]
KEY = ["moving", "fixed"]


def train_cohorts(model: str) -> str:
    m = re.search(r"\((.*)\)\s*$", model or "")
    return m.group(1) if m else ""


def domain_shift(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per learned method, test cohort and classical reference method; empty when no
    learned method ran."""
    ok = pairs[(pairs["status"] == "ok") & pairs["dice_mean"].notna()].copy()
    ok["model"] = ok["model"].fillna("").astype(str)
    learned = ok[ok["model"] != ""]
    classical = ok[ok["model"] == ""]
    rows = []
    for (method, cohort), grp in learned.groupby(["method", "cohort"], sort=False):
        model = grp["model"].iloc[0]
        trained = train_cohorts(model)
        base = {"method": method, "model": model.split(" (")[0], "train_cohorts": trained, "test_cohort": cohort,
                "in_domain": cohort in trained.split(","), "n": len(grp), "dice_mean": float(grp["dice_mean"].mean())}
        refs = classical[classical["cohort"] == cohort]
        if refs.empty:
            rows.append({**base, "reference_method": "", "reference_dice_mean": np.nan, "dice_gap": np.nan})
        for ref, rgrp in refs.groupby("method", sort=False):
            both = grp[KEY + ["dice_mean"]].merge(rgrp[KEY + ["dice_mean"]], on=KEY, suffixes=("", "_ref"))
            rows.append({**base, "n": len(both), "dice_mean": float(both["dice_mean"].mean()),
                         "reference_method": ref, "reference_dice_mean": float(both["dice_mean_ref"].mean()),
                         "dice_gap": float((both["dice_mean"] - both["dice_mean_ref"]).mean())})
    return pd.DataFrame(rows).reindex(columns=SHIFT_COLUMNS)
