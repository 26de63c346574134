"""Paired comparisons of methods on the pairs both finished: metrics/stats.tsv.

A study compares methods on the same pairs, so every test is paired: for one cohort and metric,
methods a and b are compared on the (moving, fixed) pairs for which both have a finite value.
``scipy.stats.ttest_rel`` and ``scipy.stats.wilcoxon`` with their defaults (two-sided); the 95 %
interval is the t interval of the mean of the differences a - b; the effect size is Cohen's d_z
(mean difference over the standard deviation of the differences); ``p_holm`` is Holm's step-down
adjustment of ``p_wilcoxon`` over the comparisons of one cohort and metric (the signed-rank test,
because Dice and HD95 differences are skewed; the t-test's p is beside it).
"""

from __future__ import annotations

import warnings
from itertools import combinations
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

STATS_COLUMNS = ["cohort", "metric", "method_a", "method_b", "n", "mean_a", "mean_b", "mean_diff", "ci_low",
                 "ci_high", "p_ttest", "p_wilcoxon", "p_holm", "effect_size"]
STATS_METRICS = ("dice_mean", "hd95", "folding_frac")
KEY = ["moving", "fixed"]


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1); NaN stays NaN and does not count."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """One paired comparison of a and b (same pairs, same order)."""
    from scipy import stats

    d = a - b
    n = len(d)
    rec = {"n": n, "mean_a": float(np.mean(a)) if n else np.nan, "mean_b": float(np.mean(b)) if n else np.nan,
           "mean_diff": float(np.mean(d)) if n else np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "p_ttest": np.nan, "p_wilcoxon": np.nan, "effect_size": np.nan}
    if n < 2:
        return rec
    sd = float(np.std(d, ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    rec.update(ci_low=rec["mean_diff"] - half, ci_high=rec["mean_diff"] + half)
    if sd > 0:
        rec["effect_size"] = rec["mean_diff"] / sd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec["p_ttest"] = float(stats.ttest_rel(a, b).pvalue)
    if np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rec["p_wilcoxon"] = float(stats.wilcoxon(a, b).pvalue)
            except ValueError:  # too few non-zero differences
                pass
    return rec


def paired_stats(pairs: pd.DataFrame, methods: Iterable[str] | None = None,
                 metrics: Iterable[str] = STATS_METRICS) -> pd.DataFrame:
    """stats.tsv: per cohort, metric and pair of methods (in ``methods`` order, default pairs.tsv's)."""
    ok = pairs[pairs["status"] == "ok"]
    order = list(methods) if methods is not None else list(dict.fromkeys(pairs["method"]))
    rows = []
    for cohort, grp in ok.groupby("cohort", sort=False):
        present = [m for m in order if m in set(grp["method"])]
        for metric in metrics:
            if metric not in grp:
                continue
            wide = grp.pivot_table(index=KEY, columns="method", values=metric, aggfunc="first")
            block = []
            for ma, mb in combinations(present, 2):
                both = wide[[ma, mb]].apply(pd.to_numeric, errors="coerce").dropna() if {ma, mb} <= set(wide) else \
                    pd.DataFrame(columns=[ma, mb])
                block.append({"cohort": cohort, "metric": metric, "method_a": ma, "method_b": mb,
                              **compare(both[ma].to_numpy(float), both[mb].to_numpy(float))})
            for row, p in zip(block, holm([r["p_wilcoxon"] for r in block])):
                row["p_holm"] = p
            rows.extend(block)
    return pd.DataFrame(rows).reindex(columns=STATS_COLUMNS)
